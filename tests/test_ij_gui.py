"""The ImageJ bridge with a display: real ImageJ 1.53t under Xvfb, in a subprocess (one JVM per process).

The session script (ij_gui_session.py) runs a macro outside batch mode (windows, ROI Manager, Results table),
a failing command, a built-in command that needs a display, then the menu commands' dialogs with the Recorder on:
Segment (screenshot, Help page, choices, the status bar while it runs), Train (screenshot, the correction loop's
defaults, its report), Models... (a card) and About.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ij_fixtures
import pytest
import tifffile

HERE = Path(__file__).resolve().parent
samples = ij_fixtures.samples  # fixtures shared with test_ij_bridge.py
tiny_model = ij_fixtures.tiny_model


@pytest.fixture(scope="module")
def display():
    """A private Xvfb server; its display name."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=[write],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(10)


def test_gui_session(display, tiny_model, samples, private_home, tmp_path):
    env = {**os.environ, "DISPLAY": display, "EPYSEG_IJ_HOME": str(private_home)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, str(HERE / "ij_gui_session.py"), str(samples["s0"]), tiny_model, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    import epyseg_ij

    n = int(epyseg_ij.segment(tifffile.imread(samples["s0"]), tiny_model).labels.max())
    assert seen["headless"] is False
    assert seen["segment"] == f"s0-labels 16 {n} {n} 3"  # title, bit depth, ROI Manager, Results, windows
    assert seen["labels_equal"] and seen["cells"] == n
    assert seen["roi_manager"] == n and seen["roi_areas_equal"]
    assert seen["error_macro"] is None and seen["error_message"].startswith("unknown model 'no-such-model'")
    assert seen["alive"] == "pong"
    assert seen["builtin"] == "b"

    # the Segment dialog: the Recorder writes what it did, its Help page explains the words, progress is shown
    assert seen["recorded"] == (
        'run("EPySeg Segment", "model=gui-copy normalization=percentile output=[labels rois results overlay]");'
    )
    assert seen["recorded_parses"] == "gui-copy percentile labels rois results overlay"
    assert "Tissue Analyzer mask" in seen["segment_help"] and "boundary probability" in seen["segment_help"]
    assert "normalization" in seen["segment_help"] and "Recorder" in seen["segment_help"]
    statuses = seen["statuses"]
    assert "EPySeg Segment s0.tif: loading model gui-copy…" in statuses, statuses
    assert any(re.fullmatch(r"EPySeg Segment s0\.tif: \d+/\d+ tiles", s) for s in statuses), statuses
    assert seen["overlay"] > 0  # the outlines over the image (the cell count of the percentile normalisation)

    # the Train dialog: the correction loop's defaults; what was found is reported, and why it cannot train
    assert seen["train_recorded"] == 'run("EPySeg Train", "data=DATA name=gui-model from=default epochs=20 corrected");'
    assert (
        "2 images with masks in 1 folder: 0 corrected by hand, 0 unchanged machine masks, 2 of unknown"
        in (seen["train_log"])
    )
    assert seen["train_error"].startswith("EPySeg Train: none of the 2 masks was corrected by hand")

    # Models... shows a card; About the versions, model folders, GPU and links
    card = html.unescape(seen["card"])
    shipped = epyseg_ij.models.shipped_model_path()
    assert f'"encoder": "{epyseg_ij.models.read_card(shipped).encoder}"' in card and str(shipped) in card
    assert "epyseg-ij" in seen["about"] and str(private_home) in seen["about"] and "GPU: " in seen["about"]
    assert "https://github.com/baigouy/EPySeg" in seen["about"]

    # screenshots of the dialogs as they show on the screen (size of the dialog, many colours: text, widgets)
    for name in ("segment", "train"):
        width, height, colours = map(int, seen[f"{name}_shot"].replace("x", " ").split())
        assert width > 300 and height > 200 and colours > 3, seen[f"{name}_shot"]
        assert (tmp_path / f"{name}-dialog.png").stat().st_size > 5000
        if os.environ.get("EPYSEG_IJ_SCREENSHOTS"):  # e.g. docs: the pictures of fiji_scripts/README.md
            shutil.copyfile(
                tmp_path / f"{name}-dialog.png", Path(os.environ["EPYSEG_IJ_SCREENSHOTS"], f"{name}-dialog.png")
            )


@pytest.mark.parametrize("gui", [False, True])
def test_command_line_macro(display, tiny_model, samples, private_home, tmp_path, gui):
    """epyseg-ij macro FILE.ijm [--gui]: the macro's log on stdout, errors on stderr with the exit status."""
    env = {**os.environ, "DISPLAY": display, "EPYSEG_IJ_HOME": str(private_home)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    good = ij_fixtures.cell_count_macro(tmp_path, tiny_model)
    bad = tmp_path / "bad.ijm"
    bad.write_text(f'print("start");\nrun("EPySeg Segment", "model={tiny_model} tta=sideways");\nprint("never");\n')
    command = [sys.executable, "-m", "epyseg_ij.cli", "macro", *(["--gui"] if gui else [])]
    run = dict(env=env, capture_output=True, text=True, timeout=120)
    done = subprocess.run([*command, str(good), "--arg", str(samples["s1"])], **run)
    import epyseg_ij

    n = int(epyseg_ij.segment(tifffile.imread(samples["s1"]), tiny_model).labels.max())
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"cells: {n}" in done.stdout
    done = subprocess.run([*command, str(bad)], **run)
    assert done.returncode == 1
    assert "start" in done.stdout and "never" not in done.stdout
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("epyseg-ij: macro error in line 2: EPySeg Segment: tta='sideways' is not allowed")
    for statement, error in (  # ImageJ's own errors stop the macro as EPySeg's do; exit is a plain end
        ("x = undefined + 1;", "Undefined variable"),
        ('open("/no/such.tif");', "File not found: /no/such.tif"),
        ('exit("stopped");', None),
    ):
        other = tmp_path / "other.ijm"
        other.write_text(f'print("start");\n{statement}\nprint("never");\n')
        done = subprocess.run([*command, str(other)], **run)
        assert done.returncode == (1 if error else 0) and "never" not in done.stdout, done.stderr[-2000:]
        expected = [f"epyseg-ij: macro error in line 2: {error}"] if error else []
        assert done.stderr.strip().splitlines() == expected
        assert error or "stopped" in done.stdout
