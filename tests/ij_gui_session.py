"""The GUI half of the ImageJ bridge tests, run by test_ij_gui.py in a subprocess under Xvfb (a JVM starts once per
process, and the other tests run headless). Prints one JSON object with what it saw.

    DISPLAY=:n EPYSEG_IJ_HOME=... python tests/ij_gui_session.py IMAGE.tif MODEL
"""

import json
import sys
import threading
import time

import numpy as np


def main(image_path: str, model: str) -> None:
    from epyseg_ij import ij, segment
    from epyseg_ij.ij import convert, measure
    from epyseg_ij.ij.options import parse

    ij.start(headless=False)
    from ij import IJ, ImageJ, WindowManager
    from ij.plugin.frame import Recorder, RoiManager
    from java.lang import System

    ImageJ(ImageJ.NO_SHOW)  # an ImageJ instance, as in a real session: macros run outside batch mode
    System.setProperty("epyseg.errors", "log")  # no modal error dialog to click away
    seen = {"headless": ij.current().headless, "version": ij.current().version}

    # 1. a macro outside batch mode: windows, the ROI Manager and the Results table
    macro = f"""
        open("{image_path}");
        run("EPySeg Segment", "model={model} output=[labels outlines rois results]");
        return "" + getTitle() + " " + bitDepth() + " " + roiManager("count") + " " + nResults + " " + nImages;
    """
    seen["segment"] = IJ.runMacro(macro, "")
    labels_imp = WindowManager.getImage(f"{image_path.rsplit('/', 1)[1].rsplit('.', 1)[0]}-labels")
    labels, _ = convert.to_numpy(labels_imp)
    image, _ = convert.to_numpy(IJ.openImage(image_path))
    expected = segment(image, model).labels
    seen["labels_equal"] = bool(np.array_equal(labels, expected))
    seen["cells"] = int(len(measure.cell_ids(expected)))
    manager = RoiManager.getInstance()
    seen["roi_manager"] = int(manager.getCount()) if manager is not None else -1
    seen["roi_areas_equal"] = bool(
        manager is not None
        and np.array_equal(
            [int(r.getStatistics().pixelCount) for r in manager.getRoisAsArray()],
            np.bincount(expected.ravel())[1:],
        )
    )

    # 2. a Python error is a macro error; ImageJ keeps running
    IJ.log("\\Clear")
    seen["error_macro"] = IJ.runMacro('run("EPySeg Segment", "model=no-such-model"); return "not reached";', "")
    seen["error_message"] = str(System.getProperties().get("epyseg.lastError"))
    seen["alive"] = IJ.runMacro('return call("epyseg.bridge.PyBridge.call", "ping");', "")

    # 3. built-in commands work with a display (they fail headless)
    seen["builtin"] = IJ.runMacro(
        'newImage("b", "32-bit ramp", 64, 64, 1); run("Gaussian Blur...", "sigma=2");return "" + getTitle();', ""
    )

    # 4. recordable: the menu command shows a dialog; OK records a run(...) line whose options parse back
    IJ.openImage(image_path).show()
    Recorder(False)
    Recorder.class_.getField("record").setBoolean(None, True)
    clicker = threading.Thread(target=_click_ok, args=("EPySeg Segment",), daemon=True)
    clicker.start()
    IJ.doCommand("EPySeg Segment")  # like a menu click: runs on a new thread, the dialog waits there
    clicker.join(30)
    deadline = time.time() + 30
    text = ""
    while time.time() < deadline:
        text = str(Recorder.getInstance().getText()) if Recorder.getInstance() else ""
        if "EPySeg Segment" in text:
            break
        time.sleep(0.2)
    line = next((ln for ln in text.splitlines() if "EPySeg Segment" in ln), "")
    seen["recorded"] = line
    options = line.split('", "', 1)[1].rsplit('");', 1)[0] if '", "' in line else None
    if options is not None:
        from epyseg_ij.ij.commands import SEGMENT_OPTIONS

        seen["recorded_parses"] = parse(options, SEGMENT_OPTIONS, "EPySeg Segment")["model"]
    print(json.dumps({k: v if isinstance(v, bool | int | float) or v is None else str(v) for k, v in seen.items()}))


def _click_ok(title: str) -> None:
    """Press OK in the dialog called ``title`` once it shows."""
    from java.awt import Window
    from java.awt.event import ActionEvent

    deadline = time.time() + 30
    while time.time() < deadline:
        for window in Window.getWindows():
            if window.isShowing() and hasattr(window, "getButtons") and str(window.getTitle()) == title:
                ok = window.getButtons()[0]
                window.actionPerformed(ActionEvent(ok, ActionEvent.ACTION_PERFORMED, "OK"))
                return
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    from java.lang import System

    System.exit(0)  # idle Java thread pools (Gaussian Blur's) would keep the JVM up for another minute
