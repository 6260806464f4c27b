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
import tifffile

HERE = Path(__file__).resolve().parent
samples = ij_fixtures.samples  # fixtures shared with test_ij_bridge.py
tiny_model = ij_fixtures.tiny_model


display = ij_fixtures.display


def test_gui_session(display, tiny_model, samples, private_home, tmp_path):
    env = {**os.environ, "DISPLAY": display, "EPYSEG_IJ_HOME": str(private_home)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, str(HERE / "ij_gui_session.py"), str(samples["s0"]), tiny_model, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=480,  # a loaded 2-core machine; about 2 minutes otherwise
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    import epyseg_ij

    n = int(epyseg_ij.segment(tifffile.imread(samples["s0"]), tiny_model).labels.max())
    assert seen["headless"] is False
    assert seen["segment"] == f"s0.tif 8 {n} {n} 3"  # current image (the input), ROI Manager, Results, windows
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
