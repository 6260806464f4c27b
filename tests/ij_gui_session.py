"""The GUI half of the ImageJ bridge tests, run by test_ij_gui.py in a subprocess under Xvfb (a JVM starts once per
process, and the other tests run headless). Prints one JSON object with what it saw.

    DISPLAY=:n EPYSEG_IJ_HOME=... python tests/ij_gui_session.py IMAGE.tif MODEL FOLDER

FOLDER receives screenshots of the Segment and Train dialogs (segment-dialog.png, train-dialog.png).
"""

import json
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np


def main(image_path: str, model: str, out: str) -> None:
    shots = Path(out)
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

    # 4. the Segment dialog: a screenshot, its Help page, a model that still has to be loaded, percentiles and the
    #    overlay chosen; the Recorder writes what the dialog did; the status bar shows the phases and the tiles
    from epyseg_ij import models
    from epyseg_ij.ij.commands.segment import NORMALIZATION_WORDS, OUTPUT_WORDS

    shutil.copyfile(models.user_model_path(model), models.user_model_path("gui-copy"))  # not loaded yet
    target = IJ.openImage(image_path)
    target.show()
    Recorder(False)
    Recorder.class_.getField("record").setBoolean(None, True)
    IJ.doCommand("EPySeg Segment")  # like a menu click: runs on a new thread, the dialog waits there
    dialog = _window("EPySeg Segment")
    seen["segment_shot"] = _screenshot(dialog, shots / "segment-dialog.png")
    seen["segment_help"] = _help(dialog, "EPySeg Segment Help")
    _select(dialog, next(str(i) for i in _items(dialog) if i.startswith("gui-copy")))
    _select(dialog, NORMALIZATION_WORDS["percentile"])
    _tick(dialog, OUTPUT_WORDS["overlay"])
    _press(dialog, "OK")
    seen["statuses"] = sorted(_statuses_while("EPySeg Segment"))
    seen["recorded"] = _recorded("EPySeg Segment")
    options = seen["recorded"].split('", "', 1)[1].rsplit('");', 1)[0] if '", "' in seen["recorded"] else ""
    from epyseg_ij.ij.commands import SEGMENT_OPTIONS

    parsed = parse(options, SEGMENT_OPTIONS, "EPySeg Segment")
    seen["recorded_parses"] = f"{parsed['model']} {parsed['normalization']} {' '.join(parsed['output'])}"
    overlay = target.getOverlay()
    seen["overlay"] = -1 if overlay is None else int(overlay.size())

    # 5. the Train dialog: the correction loop's defaults; masks of unknown origin are not corrected ones
    from epyseg_ij.synth import write_dataset

    data = Path(tempfile.mkdtemp()) / "train-data"
    write_dataset(data, 2, (64, 64))
    IJ.log("\\Clear")
    IJ.doCommand("EPySeg Train")
    dialog = _window("EPySeg Train")
    seen["train_shot"] = _screenshot(dialog, shots / "train-dialog.png")
    fields = dialog.getStringFields()
    fields.get(0).setText(str(data))
    fields.get(1).setText("gui-model")
    _press(dialog, "OK")
    _statuses_while("EPySeg Train")
    seen["train_recorded"] = _recorded("EPySeg Train").replace(str(data), "DATA")
    seen["train_log"] = str(IJ.getLog())
    seen["train_error"] = str(System.getProperties().get("epyseg.lastError"))

    # 6. Models...: the manager shows the card of the model chosen; About: versions, GPU, links
    IJ.doCommand("EPySeg Models...")
    _press(_window("EPySeg Models"), "OK")
    seen["card"] = _close(_window("EPySeg model default"))
    IJ.doCommand("About EPySeg...")
    seen["about"] = _close(_window("About EPySeg"))
    plain = (bool, int, float, list, type(None))
    print(json.dumps({k: v if isinstance(v, plain) else str(v) for k, v in seen.items()}))


def _window(title: str, timeout: float = 180):
    """The window called ``title`` once it shows."""
    from java.awt import Window

    deadline = time.time() + timeout
    while time.time() < deadline:
        for window in Window.getWindows():
            if window.isShowing() and str(window.getTitle()) == title:
                return window
        time.sleep(0.05)
    from java.lang import Thread

    showing = [str(w.getTitle()) for w in Window.getWindows() if w.isShowing() and hasattr(w, "getTitle")]
    threads = sorted(str(t.getName()) for t in Thread.getAllStackTraces().keySet())
    raise TimeoutError(f"no window {title!r}; showing: {showing}; threads: {threads}")


def _press(dialog, label: str) -> None:
    """Press a button of a GenericDialog (as a click does: through its action listener)."""
    from java.awt.event import ActionEvent

    button = next(b for b in dialog.getButtons() if b is not None and str(b.getLabel()).strip() == label)
    dialog.actionPerformed(ActionEvent(button, ActionEvent.ACTION_PERFORMED, label))


def _items(dialog) -> list[str]:
    return [str(c.getItem(i)) for c in dialog.getChoices() for i in range(c.getItemCount())]


def _select(dialog, item: str) -> None:
    """Choose ``item`` in the drop-down list that has it."""
    choice = next(c for c in dialog.getChoices() if item in [str(c.getItem(i)) for i in range(c.getItemCount())])
    choice.select(item)


def _tick(dialog, label: str) -> None:
    next(b for b in dialog.getCheckboxes() if str(b.getLabel()) == label).setState(True)


def _texts(component) -> list[str]:
    """The text of the labels and HTML panes in a window."""
    found = []
    for child in component.getComponents():
        if hasattr(child, "getText") and not hasattr(child, "setEchoChar"):
            found.append(str(child.getText()))
        if hasattr(child, "getComponents"):
            found.extend(_texts(child))
    return found


def _close(window) -> str:
    """Close a message window; its text."""
    text = " ".join(_texts(window))
    window.dispose()
    return text


def _help(dialog, title: str) -> str:
    """Press Help (it shows a modal page, so from another thread), read the page and close it."""
    clicker = threading.Thread(target=_press, args=(dialog, "Help"), daemon=True)
    clicker.start()
    text = _close(_window(title))
    clicker.join(30)
    return text


def _screenshot(window, path: Path) -> str:
    """The window as it shows on the screen (java.awt.Robot), as a PNG; ``WIDTHxHEIGHT COLOURS``."""
    from java.awt import Robot
    from java.io import File
    from javax.imageio import ImageIO

    robot = Robot()
    robot.waitForIdle()
    time.sleep(0.5)  # the last paints
    image = robot.createScreenCapture(window.getBounds())
    path.parent.mkdir(parents=True, exist_ok=True)
    ImageIO.write(image, "png", File(str(path)))
    width, height = int(image.getWidth()), int(image.getHeight())
    colours = {int(image.getRGB(x, y)) for x in range(0, width, 3) for y in range(0, height, 3)}
    return f"{width}x{height} {len(colours)}"


def _running(name: str) -> bool:
    from java.lang import Thread

    return any(str(t.getName()) == name and t.isAlive() for t in Thread.getAllStackTraces().keySet())


def _statuses_while(command: str) -> set[str]:
    """What ImageJ's status bar said while the menu command ran."""
    from ij import ImageJ

    seen = set()
    deadline = time.time() + 120
    while _running(command) and time.time() < deadline:
        seen.add(str(ImageJ.getStatusBarText()))
        time.sleep(0.002)
    seen.add(str(ImageJ.getStatusBarText()))
    return seen


def _recorded(command: str) -> str:
    from ij.plugin.frame import Recorder

    text = str(Recorder.getInstance().getText()) if Recorder.getInstance() else ""
    return next((line for line in text.splitlines() if f'run("{command}"' in line), "")


if __name__ == "__main__":
    status = 1
    try:
        main(sys.argv[1], sys.argv[2], sys.argv[3])
        status = 0
    except BaseException:
        traceback.print_exc()  # before System.exit, which would end the process without it
    finally:  # also after an error: the JVM's AWT threads would keep the process up
        sys.stdout.flush()
        sys.stderr.flush()
        from java.lang import System

        System.exit(status)  # idle Java thread pools (Gaussian Blur's) would keep the JVM up for another minute
