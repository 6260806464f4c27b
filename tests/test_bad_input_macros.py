"""Bad input in ImageJ macros (issue 9): every error is one line with its macro line, ``exit`` is a normal end.

Each family of bad input is one parametrised list: add a case to try another member of the family. Everything is
real: the headless ImageJ 1.53t in this process (one JVM per pytest process), the EPySeg service and its worker
thread, TensorFlow with a tiny Linknet, real files, and ``epyseg-ij macro`` in a subprocess where the exit status of
the process matters.
"""

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import ij_fixtures
import pytest
import tifffile

import epyseg_ij
from epyseg_ij.errors import InputError, ModelError

REPO = Path(__file__).resolve().parents[1]
samples = ij_fixtures.samples
tiny_model = ij_fixtures.tiny_model
IMAGE = 'setBatchMode(true); newImage("g", "8-bit ramp", 64, 64, 1);'


@pytest.fixture(scope="module")
def imagej(private_home):
    from epyseg_ij import ij

    yield ij.start()
    from ij import IJ

    IJ.runMacro("setBatchMode(true); while (nImages > 0) { selectImage(1); close(); }")  # leave the JVM as found


def run_file(path, capfd, arg: str = "") -> tuple[int, str, str]:
    from epyseg_ij.ij import run_macro_file

    status = run_macro_file(path, arg)
    out, err = capfd.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def alive() -> bool:
    from epyseg_ij.ij import execute

    return execute('return call("epyseg.bridge.PyBridge.call", "ping");').value == "pong"


# ------------------------------------------------------------------------------------- macro files (item 16)

TEXTS = {
    "latin-1": 'print("5 \u00b5m");\n'.encode("latin-1"),
    "utf-8": 'print("5 \u00b5m");\n'.encode(),
    "utf-8 with BOM": '\ufeffprint("5 \u00b5m");\n'.encode(),
    "utf-16 with BOM": 'print("5 \u00b5m");\r\n'.encode("utf-16"),
    "cp1252 curly quotes in a comment": '// \u201cquoted\u201d\nprint("5 \u00b5m");\n'.encode("cp1252"),
}


@pytest.mark.parametrize("encoding", TEXTS)
def test_macro_files_are_read_as_imagej_reads_them(imagej, tmp_path, capfd, encoding):
    path = tmp_path / "m.ijm"
    path.write_bytes(TEXTS[encoding])
    status, out, err = run_file(path, capfd)
    assert (status, err) == (0, "")
    assert "5 \u00b5m" in out


NOT_MACROS = {
    "NUL bytes": (lambda p: p.write_bytes(b"\x00\x01\x02binary\xff\xfe"), "it holds binary data"),
    "a TIFF": (lambda p: tifffile.imwrite(p, [[1, 2], [3, 4]]), "it holds binary data"),
    "a folder": (lambda p: p.mkdir(), "a folder"),
    "missing": (lambda p: None, "no such file"),
    "a link to a device": (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    "too large": (lambda p: (p.touch(), os.truncate(p, 17 * 2**20)), "over 16 MiB"),
    "unreadable": (lambda p: (p.write_text("print(1);"), p.chmod(0)), "Permission denied"),
}


@pytest.mark.parametrize("kind", NOT_MACROS)
def test_what_is_not_a_macro_file_is_refused_in_one_line(imagej, tmp_path, capfd, kind):
    make, message = NOT_MACROS[kind]
    path = tmp_path / "m.ijm"
    make(path)
    if kind == "unreadable" and os.access(path, os.R_OK):
        pytest.skip("running as a user who can read any file")
    status, out, err = run_file(path, capfd)
    line = one_error_line(err)
    assert status == 2 and line.startswith("epyseg-ij: error: ") and message in line, line


# ------------------------------------------------------------------------- Jython scripts and other file kinds

SCRIPTS_PY = {  # a .py file runs as a Jython script: (script, status, what stdout holds, the one error line)
    "runs, with its argument and ImageJ": (
        'from ij import IJ\nimp = IJ.createImage("j", "8-bit ramp", 64, 64, 1)\nprint("jy " + getArgument() + " "'
        " + str(imp.getWidth()))\n",
        0, "jy ARG 64", None,
    ),
    "a Python error": ('print("start")\nx = undefined + 1\nprint("never")\n', 1, "start",
                       "epyseg-ij: script error in line 2: NameError: name 'undefined' is not defined"),
    "an EPySeg error": (
        'from ij import IJ\nfrom epyseg.bridge import PyBridge\nimp = IJ.createImage("j", "8-bit ramp", 64, 64, 1)'
        '\nPyBridge.segment(imp, "model=nope")\n',
        1, "", "epyseg-ij: script error in line 4: unknown model 'nope'",
    ),
    "sys.exit() is a normal end": ('import sys\nprint("start")\nsys.exit()\nprint("never")\n', 0, "start", None),
    "sys.exit(3) is not": ("import sys\nsys.exit(3)\n", 1, "", "epyseg-ij: script error: the script exited with 3"),
}  # fmt: skip


@pytest.mark.parametrize("case", SCRIPTS_PY)
def test_python_files_run_as_jython_scripts(imagej, tmp_path, capfd, case):
    script, status, printed, error = SCRIPTS_PY[case]
    path = tmp_path / "script.py"
    path.write_text(script)
    got, out, err = run_file(path, capfd, "ARG")
    assert got == status and printed in out and "never" not in out
    assert one_error_line(err).startswith(error) if error else err == "", err


@pytest.mark.parametrize("name", ["script.js", "macro", "notes.md"])
def test_other_file_kinds_are_refused_in_one_line(imagej, tmp_path, capfd, name):
    path = tmp_path / name
    path.write_text('print("never");\n')
    status, out, err = run_file(path, capfd)
    line = one_error_line(err)
    assert status == 2 and "never" not in out and line.startswith(f"epyseg-ij: error: {path} is not a macro file")
    assert ".ijm" in line and ".py" in line


# ---------------------------------------------------------------------------------------------- exit (item 15)

EXITS = {
    "exit;": ('print("a");\nexit;\nprint("never");\n', ""),
    "exit();": ('print("a");\nexit();\nprint("never");\n', ""),
    'exit("msg")': ('print("a");\nexit("Open an image first.");\nprint("never");\n', "Open an image first."),
    "exit in a function": ('f();\nprint("never");\nfunction f() {\n  print("a");\n  exit("bye");\n}\n', "bye"),
    "exit in a loop": ('for (i = 0; i < 3; i++) {\n  print("a");\n  if (i == 0) exit;\n}\nprint("never");\n', ""),
    "exit after an EPySeg command": (
        f'{IMAGE}\nprint("a" + call("epyseg.bridge.PyBridge.call", "ping"));\nexit("done");\nprint("never");\n',
        "done",
    ),
}


@pytest.mark.parametrize("case", EXITS)
def test_exit_is_a_normal_end(imagej, tmp_path, capfd, case):
    code, message = EXITS[case]
    path = tmp_path / "exit.ijm"
    path.write_text(code)
    status, out, err = run_file(path, capfd)
    assert (status, err) == (0, "")  # Fiji's status too; the message of exit("...") goes to stdout
    assert "a" in out and "never" not in out and message in out


SCRIPTS = REPO / "fiji_scripts"
WITHOUT_ARGUMENT = {
    "EPySeg_Measure_Cells.ijm": "Open a label image or a handCorrection.tif first.",
    "EPySeg_Segment_Image.ijm": "Open an image first",
    "EPySeg_Segment_Folder.ijm": "Give the folder with --arg",
    "EPySeg_Train.ijm": "Give the options with --arg",
}
BAD_ARGUMENT = {
    "EPySeg_Segment_Image.ijm": ("/no/such.tif", "File not found: /no/such.tif"),
    "EPySeg_Measure_Cells.ijm": ("TEXT", "ImageJ needs a display here (Editor)"),  # ImageJ opens text in an editor
    "EPySeg_Segment_Folder.ijm": ("/no/such", "folder not found: /no/such"),
    "EPySeg_Train.ijm": ("data=[/no/such] name=x epochs=1", "/no/such"),
}


@pytest.mark.parametrize("script", WITHOUT_ARGUMENT)
def test_shipped_scripts_without_their_argument_exit_with_a_hint(imagej, capfd, script):
    from epyseg_ij.ij import execute

    execute('close("*");')  # no image left open by the other tests of this JVM
    status, out, err = run_file(SCRIPTS / script, capfd)
    assert (status, err) == (0, "") and WITHOUT_ARGUMENT[script] in out


@pytest.mark.parametrize("script", BAD_ARGUMENT)
def test_shipped_scripts_with_a_bad_argument_stop_with_one_line(imagej, tmp_path, capfd, script):
    text = tmp_path / "notes.tif"
    text.write_text("not an image")
    arg, message = (part.replace("TEXT", str(text)) for part in BAD_ARGUMENT[script])
    status, out, err = run_file(SCRIPTS / script, capfd, arg)
    line = one_error_line(err)
    assert status == 1 and line.startswith("epyseg-ij: macro error in line ") and message in line, line


def test_shipped_script_without_its_argument_exits_with_its_message(tmp_path):
    """The issue's case: fiji_scripts/EPySeg_Measure_Cells.ijm without --arg, through the real command line."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "epyseg_ij.cli", "macro", str(REPO / "fiji_scripts" / "EPySeg_Measure_Cells.ijm")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Open a label image or a handCorrection.tif first." in done.stdout
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr


# ------------------------------------------------------------------------------------- errors are one line

ERRORS = {  # macro (line 1 prints "start", the error is on line 2, the last line prints "never"), message
    "undefined variable": ("x = nothing + 1;", "Undefined variable"),
    "syntax error": ('print("a";', "expected"),
    "unknown macro function": ("noSuchFunction(2);", "Undefined identifier"),
    "unknown ImageJ command": ('run("No Such Command");', 'Unrecognized command: "No Such Command" (headless'),
    "EPySeg run(...) error": (f'{IMAGE} run("EPySeg Segment", "model=nope");', "unknown model 'nope'"),
    "EPySeg call(...) error": (
        f'{IMAGE} call("epyseg.bridge.PyBridge.call", "segment", "model=nope");',
        "unknown model 'nope'",
    ),
    "unknown EPySeg command": ('call("epyseg.bridge.PyBridge.call", "segmnet");', "unknown EPySeg command 'segmnet'"),
    "EPySeg Measure without an image": ('close("*"); run("EPySeg Measure", "");', "no image is open"),
    "a command that needs a display": ('roiManager("count");', "ImageJ needs a display here (RoiManager)"),
    "ImageJ's commands, truly headless": (  # epyseg-ij macro has them on its private display (test_ij_headless)
        'run("Set Measurements...", "area");',
        'Unrecognized command: "Set Measurements..." (headless ImageJ has only the EPySeg commands: install Xvfb',
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_macro_errors_stop_the_macro_with_one_line(imagej, tiny_model, tmp_path, capfd, case):
    statement, message = ERRORS[case]
    path = tmp_path / "bad.ijm"
    path.write_text(f'print("start");\n{statement.replace("MODEL", tiny_model)}\nprint("never");\n')
    status, out, err = run_file(path, capfd)
    line = one_error_line(err)
    assert status == 1 and "start" in out and "never" not in out
    assert line.startswith("epyseg-ij: macro error in line 2: ") and message in line, line
    assert alive()


def test_error_in_a_function_names_the_line_of_the_error(imagej, tmp_path, capfd):
    path = tmp_path / "bad.ijm"
    path.write_text('print("start");\nf();\nprint("never");\nfunction f() {\n  run("EPySeg Segment", "tta=x");\n}\n')
    status, _, err = run_file(path, capfd)
    assert status == 1 and one_error_line(err).startswith("epyseg-ij: macro error in line 5: EPySeg Segment: tta=")


# ------------------------------------------------------------------------------------ option values (item 17)

SEGMENT_BAD = {  # options of run("EPySeg Segment") on a 64 x 64 image: what the message must say
    "tile=1e400": "tile=1e400 is too large",
    "tile=-1e400": "tile=-1e400 is too small",
    "tile=nan": "tile='nan' is not a whole number",
    "tile=inf": "tile=inf is too large",
    "tile=64.5": "tile='64.5' is not a whole number",
    "tile=abc": "tile='abc' is not a whole number",
    "tile=": "option 'tile' needs a value",
    "tile=99999999999": "tile=99999999999 is too large",
    "tile=1" + "0" * 400: "tile=1000000000000000000000000000000000000... is too large",
    "tile=100000": "tile",  # the engine's bound
    "tile=8": "tile",
    "overlap=100000": "overlap",  # the engine bounds it by the tile (was a 37 GiB MemoryError)
    "overlap=-2": "overlap=-2 is too small",
    "overlap=7": "overlap",
    "batch=0": "batch=0 is too small (minimum 1)",
    "batch=1e9": "batch",
    "channel=1e9": "channel=1e9 is too large (maximum 999)",
    "channel=2": "channel=2 does not exist: the image has 1 channel(s)",
    "minimum=-5": "minimum=-5 is too small",
    "minimum=nan": "minimum='nan' is not a whole number",
    "tta=5": "tta='5' is not allowed",
    "tta=": "option 'tta' needs a value",
    "normalization=zscore": "normalization='zscore' is not allowed",
    "output=[pixels]": "unknown item(s) pixels",
    "output=5": "unknown item(s) 5",
    "output=[]": "choose at least one output",
    "invert=3": "'invert' is a flag",
    "model=": "option 'model' needs a value",
    "model=[]": "option 'model' needs a value",
    "modle=default": "unknown option 'modle'",
    "model=default model=default": "option 'model' is given twice",
    "model=[unclosed": "EPySeg Segment: cannot read the options near '[unclosed",
    "model=default]": "cannot read the options near ']",
    "tile=[256": "cannot read the options near '[256",
    "=5": "cannot read the options near '=5",
    "output=[[labels]]": "cannot read the options near ']",
    "folder=[/no/such/folder]": "folder not found: /no/such/folder",
    "save=[FILE/out]": "cannot write to the output folder",
}
MEASURE_BAD = {
    "output=[labels]": "unknown item(s) labels",
    "overwrite=2": "'overwrite' is a flag",
    "save=[FILE/out]": "cannot write to the output folder",
    "tile=256": "unknown option 'tile'",
}
TRAIN_BAD = {
    "epochs=0": "epochs=0 is too small (minimum 1)",
    "epochs=1e400": "epochs=1e400 is too large",
    "epochs=nan": "epochs='nan' is not a whole number",
    "steps=1e9": "steps=1e9 is too large (maximum 10000000)",
    "tile=1e400": "tile=1e400 is too large",
    "tile=16": "tile=16 is too small (minimum 32)",
    "batch=abc": "batch='abc' is not a whole number",
    "validation=nan": "validation='nan' is not a number",
    "validation=2": "validation=2 is too large",
    "validation=-1": "validation=-1 is too small",
    "channel=-1": "channel=-1 is too small",
    "encoder=": "option 'encoder' needs a value",
    "name=x": "give the training folders",
    "data=[DATA]": "give the new model a name",
    "data=[DATA] name=x epochs=1e3 vaildation=0.5": "unknown option 'vaildation'",
}
CASES = (
    [("EPySeg Segment", o, m) for o, m in SEGMENT_BAD.items()]
    + [("EPySeg Measure", o, m) for o, m in MEASURE_BAD.items()]
    + [("EPySeg Train", o, m) for o, m in TRAIN_BAD.items()]
    + [("EPySeg Models...", "action=card modle=default", "unknown option 'modle'")]
    + [("EPySeg Models...", "action=delete", "action")]
    + [("About EPySeg...", "model=default", "unknown option 'model'")]
)


@pytest.mark.parametrize(("command", "options", "message"), CASES, ids=[f"{c[7:]}:{o[:40]}" for c, o, _ in CASES])
def test_bad_option_values_are_one_macro_error_naming_the_option(imagej, tiny_model, tmp_path, command, options,
                                                                 message):  # fmt: skip
    from epyseg_ij.ij import execute

    (tmp_path / "a-file").write_text("")
    options = options.replace("FILE", str(tmp_path / "a-file")).replace("DATA", str(tmp_path))
    if command == "EPySeg Segment" and "model=" not in options:
        options += f" model={tiny_model}"
    before = sorted(tmp_path.rglob("*"))
    result = execute(f'{IMAGE}\nrun("{command}", "{options}");\nreturn "not reached";')
    assert result.value is None and result.line == 2 and result.status == 1, result
    assert message in result.error and "\n" not in result.error, result.error
    assert not result.error.startswith("internal error"), result.error
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even half
    assert alive()


# ------------------------------------------------------------------ errors raised by the engine reach the macro


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


ENGINE_ERRORS = {  # raised on the worker thread by the command's heavy part: the one line it becomes
    "InputError": (lambda: InputError("tile=100000 is too large for a 64 x 64 image"), "tile=100000 is too large"),
    "ModelError": (lambda: ModelError("the model file is damaged\nsecond line"), "the model file is damaged"),
    "MemoryError": (lambda: MemoryError(), "out of memory: use a smaller tile or batch"),
    "RecursionError": (lambda: _recurse(0), "input nested too deeply (maximum recursion depth exceeded"),
    "OSError": (
        lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out/a_labels.tif"),
        "/data/out/a_labels.tif: No space left on device",
    ),
    "PermissionError": (
        lambda: PermissionError(errno.EACCES, "Permission denied", "/data/a.tif"),
        "/data/a.tif: Permission denied",
    ),
    "a bug": (lambda: 1 / 0, "internal error: ZeroDivisionError: division by zero"),
}


@pytest.fixture
def failing_segment(imagej):
    """Replace the segment command by one whose heavy part raises the given error (the rest of the path is real)."""
    from epyseg_ij import ij

    service = ij.get_service()
    saved = service.commands["segment"]

    def install(make_error):
        def job(progress):
            error = make_error()
            raise error

        service.commands["segment"] = lambda request, svc: svc.compute(job)

    yield install
    service.commands["segment"] = saved


@pytest.mark.parametrize("how", ["run", "call"])
@pytest.mark.parametrize("kind", ENGINE_ERRORS)
def test_every_engine_error_is_one_macro_error_line(failing_segment, kind, how):
    from epyseg_ij.ij import execute

    make_error, message = ENGINE_ERRORS[kind]
    failing_segment(make_error)
    statement = 'run("EPySeg Segment");' if how == "run" else 'call("epyseg.bridge.PyBridge.call", "segment", "");'
    result = execute(f'print("start");\n{statement}\nreturn "not reached";')
    assert result.status == 1 and result.line == 2 and result.value is None
    assert result.error.startswith(message) and "\n" not in result.error, result.error
    assert alive()


def test_ctrl_c_during_a_command_is_a_cancellation(failing_segment):
    from epyseg_ij.ij import execute

    failing_segment(lambda: KeyboardInterrupt())
    result = execute('run("EPySeg Segment");\nreturn "not reached";')
    assert result.cancelled and result.status == 130 and result.message() == "epyseg-ij: interrupted (Ctrl-C)"
    assert alive()


# ----------------------------------------------------------------------------- concurrent macros (item 9)


def _concurrent_macros(sources: list[str], run_one) -> dict[int, str | None]:
    """Run one macro per source on its own thread; every macro writes its Results before any reads them."""
    from java.lang import System

    values: dict[int, str | None] = {}
    System.clearProperty("epyseg.test.go")
    for i in range(len(sources)):
        System.clearProperty(f"epyseg.test.done{i}")
    threads = [
        threading.Thread(target=lambda i=i: values.__setitem__(i, run_one(sources[i]))) for i in range(len(sources))
    ]
    for t in threads:
        t.start()
    deadline = time.time() + 120
    while time.time() < deadline and not all(
        System.getProperty(f"epyseg.test.done{i}") or not t.is_alive() for i, t in enumerate(threads)
    ):
        time.sleep(0.05)
    System.setProperty("epyseg.test.go", "1")
    for t in threads:
        t.join(120)
    return values


def _results_macro(i: int, options: str) -> str:
    return f"""
        setBatchMode(true);
        open(getArgument());
        run("EPySeg Segment", "{options}");
        call("java.lang.System.setProperty", "epyseg.test.done{i}", "1");
        while (call("java.lang.System.getProperty", "epyseg.test.go") != "1") wait(20);
        area = 0;
        for (row = 0; row < nResults; row++) area += getResult("Area", row);
        return "" + nResults + " " + round(area);
    """


@pytest.mark.parametrize("runner", ["epyseg_ij.ij.execute", "IJ.runMacro"])
def test_four_macro_threads_each_read_their_own_results(imagej, tiny_model, samples, runner):
    from ij import IJ

    from epyseg_ij.ij import execute

    paths = [samples[f"s{i}"] for i in range(4)]
    expected = []
    for path in paths:
        labels = epyseg_ij.segment(tifffile.imread(path), tiny_model).labels
        expected.append(f"{int(labels.max())} {int((labels > 0).sum())}")  # cells, area in px (uncalibrated)
    assert len(set(expected)) == 4, expected  # otherwise a mix-up could not be seen
    macros = [(_results_macro(i, f"model={tiny_model} output=[labels results] batch=2"), str(p)) for i, p in
              enumerate(paths)]  # fmt: skip

    def run_one(macro):
        if runner == "IJ.runMacro":
            value = IJ.runMacro(*macro)
            return None if value is None else str(value)
        return execute(*macro).value

    assert _concurrent_macros(macros, run_one) == dict(enumerate(expected))


def test_an_error_stops_only_the_macro_that_made_it(imagej, tiny_model, samples):
    from epyseg_ij.ij import execute

    macros = [(_results_macro(i, f"model={tiny_model} output=[results]"), str(samples[f"s{i}"])) for i in range(3)]
    macros.append((_results_macro(3, "model=nope"), str(samples["s3"])))
    results = {}
    _concurrent_macros(macros, lambda m: results.setdefault(m[1], execute(*m)))
    for i in range(3):
        assert results[str(samples[f"s{i}"])].error is None, results
    failed = results[str(samples["s3"])]
    assert failed.line == 4 and failed.error.startswith("unknown model 'nope'")
