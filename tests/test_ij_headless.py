"""``epyseg-ij macro`` headless and with ``--gui``, through the real command line (one JVM per process).

Headless, epyseg-ij runs ImageJ on a private invisible display (Xvfb), so that ImageJ's own commands work as in
Fiji's ``--headless``: a batch macro (calibrate, set measurements, segment, measure, save Results as CSV, count ROIs)
gives byte-for-byte the results it gives with ``--gui``. Nobody is at that screen: dialogs without options take
their defaults, and what waits for a person stops the macro with one line.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ij_fixtures
import numpy as np
import pytest
import tifffile

import epyseg_ij

HERE = Path(__file__).resolve().parent
samples = ij_fixtures.samples
tiny_model = ij_fixtures.tiny_model
display = ij_fixtures.display

BATCH = """
args = split(getArgument(), ",");
open(args[0]);
run("Properties...", "channels=1 slices=1 frames=1 unit=micron pixel_width=0.5 pixel_height=0.5 voxel_depth=1");
run("Set Measurements...", "area mean centroid perimeter redirect=None decimal=3");
run("EPySeg Segment", "model=MODEL output=[labels rois results]");
print("cells: " + nResults + " in " + getTitle());
saveAs("Results", args[1] + "/cells.csv");
roiManager("Measure");
print("measured: " + nResults);
saveAs("Results", args[1] + "/intensity.csv");
print("rois: " + roiManager("count"));
"""


def epyseg_ij_macro(env, *args):
    command = [sys.executable, "-m", "epyseg_ij.cli", "macro", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def environments(display, private_home):
    """The environment of a --gui run (the test's display) and of a headless one (no display at all)."""
    env = {**os.environ, "EPYSEG_IJ_HOME": str(private_home)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    headless = {k: v for k, v in env.items() if k not in ("DISPLAY", "XAUTHORITY")}
    return {True: {**env, "DISPLAY": display}, False: headless}


def test_headless_macro_gives_the_gui_results(display, tiny_model, samples, private_home, tmp_path):
    """The issue's batch macro, both ways; then ImageJ's and EPySeg's errors, and exit, through the command line."""
    batch = tmp_path / "batch.ijm"
    batch.write_text(BATCH.replace("MODEL", tiny_model))
    bad = tmp_path / "bad.ijm"
    bad.write_text(f'print("start");\nrun("EPySeg Segment", "model={tiny_model} tta=sideways");\nprint("never");\n')
    labels = epyseg_ij.segment(tifffile.imread(samples["s1"]), tiny_model).labels
    n = int(labels.max())
    pixels = np.bincount(labels.ravel())[1:]
    outputs = {}
    for gui, env in environments(display, private_home).items():
        out = tmp_path / ("gui" if gui else "headless")
        out.mkdir()
        done = epyseg_ij_macro(env, batch, "--arg", f"{samples['s1']},{out}", *(["--gui"] if gui else []))
        assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
        assert done.stdout.splitlines() == [f"cells: {n} in s1.tif", f"measured: {n}", f"rois: {n}"]
        outputs[gui] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        with open(out / "intensity.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == n and all(float(r["Mean"]) >= 0 for r in rows)  # one row per cell, not only the last
        areas = np.array([float(r["Area"]) for r in rows])
        np.testing.assert_allclose(areas, 0.25 * pixels, atol=1e-3)  # calibrated by Properties..., cell by cell
        with open(out / "cells.csv", encoding="utf-8") as f:
            cells = list(csv.DictReader(f))
        np.testing.assert_allclose([float(r["Area"]) for r in cells], areas, rtol=1e-3)  # ImageJ's 3 decimals

        flags = ["--gui"] if gui else []
        done = epyseg_ij_macro(env, bad, *flags)
        assert done.returncode == 1 and "start" in done.stdout and "never" not in done.stdout
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("epyseg-ij: macro error in line 2: EPySeg Segment: tta='sideways' is not allowed")
        for statement, error in (  # ImageJ's own errors stop the macro as EPySeg's do; exit is a plain end
            ("x = undefined + 1;", "Undefined variable"),
            ('open("/no/such.tif");', "File not found: /no/such.tif"),
            ('exit("stopped");', None),
        ):
            other = tmp_path / "other.ijm"
            other.write_text(f'print("start");\n{statement}\nprint("never");\n')
            done = epyseg_ij_macro(env, other, *flags)
            assert done.returncode == (1 if error else 0) and "never" not in done.stdout, done.stderr[-2000:]
            expected = [f"epyseg-ij: macro error in line 2: {error}"] if error else []
            assert done.stderr.strip().splitlines() == expected
            assert error or "stopped" in done.stdout
    assert outputs[False] == outputs[True] and set(outputs[False]) == {"cells.csv", "intensity.csv"}


def test_nobody_answers_dialogs_headless(display, private_home, tmp_path):
    """A dialog without options takes its defaults (a note names the line); waiting for a person is an error."""
    env = environments(display, private_home)[False]
    macro = tmp_path / "dialogs.ijm"
    macro.write_text(
        'newImage("a", "32-bit ramp", 64, 64, 1);\n'
        'run("Gaussian Blur...");\n'
        'print("sigma " + getNumber("sigma", 3));\n'
        'waitForUser("Check the image");\n'
        'print("never");\n'
    )
    done = epyseg_ij_macro(env, macro)
    assert done.returncode == 1 and done.stdout.splitlines() == ["sigma 3"]
    ours = [line for line in done.stderr.splitlines() if line.startswith("epyseg-ij:")]
    assert "Exception" not in done.stderr and len(ours) == 3, done.stderr  # one line each, no Java trace
    *notes, error = ours
    assert [n.split(":")[1] for n in notes] == [" macro note in line 2", " macro note in line 3"], done.stderr
    assert '"Gaussian Blur..." dialog got no options: its defaults were used' in notes[0]
    assert error == (
        "epyseg-ij: macro error in line 4: waitForUser waits for a person at the screen: leave it out of batch "
        "macros, or run with --gui"
    )


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_ctrl_c_or_sigterm_stops_a_long_macro_in_one_line(display, private_home, tmp_path, sent):
    """The macro stops after its current statement (it used to run to its end), the process ends with 130 and one
    line, and the JVM does not crash (no hs_err file: JPype's forwarding of SIGTERM to Python's default handler
    crashed it)."""
    env = environments(display, private_home)[False]
    started = tmp_path / "started"
    macro = tmp_path / "long.ijm"
    macro.write_text(
        f'File.saveString("yes", "{started}");\n'
        'for (i = 0; i < 1000000; i++) { newImage("a", "32-bit ramp", 256, 256, 1); close(); }\n'
        'print("never");\n'
    )
    command = [sys.executable, "-m", "epyseg_ij.cli", "macro", str(macro)]
    run = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120
    while not started.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists(), run.communicate()[1][-2000:]
    run.send_signal(sent)
    out, err = run.communicate(timeout=60)
    reason = "interrupted (Ctrl-C)" if sent == signal.SIGINT else "terminated (SIGTERM)"
    assert run.returncode == 130 and err.strip().splitlines()[-1] == f"epyseg-ij: {reason}", err[-2000:]
    assert "never" not in out and "Traceback" not in err
    assert not list(tmp_path.glob("hs_err*"))
