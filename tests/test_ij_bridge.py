"""The ImageJ bridge against the real ImageJ 1.53t, Jython 2.7 and TensorFlow, headless (no mocks).

One headless JVM serves this whole module (a JVM starts once per process); the GUI half runs under Xvfb in a
subprocess (test_ij_gui.py). The model is a tiny real Linknet (mobilenetv2 encoder, random weights) saved as a user
model, so macros name it like any other model.
"""

import csv
import threading
import time
from pathlib import Path

import ij_fixtures
import numpy as np
import pytest
import tifffile

import epyseg_ij
from epyseg_ij import io
from epyseg_ij.synth import STYLES, synth_epithelium

samples = ij_fixtures.samples  # fixtures shared with test_ij_gui.py
tiny_model = ij_fixtures.tiny_model


@pytest.fixture(scope="session")
def imagej(private_home):
    from epyseg_ij import ij

    return ij.start()


def macro(code: str, arg: str = ""):
    from ij import IJ

    value = IJ.runMacro(code, arg)
    return None if value is None else str(value)


def last_error() -> str:
    from epyseg_ij import ij

    return ij.get_service().last_error or ""


def system_results() -> dict:
    from ij.plugin.filter import Analyzer

    from epyseg_ij.ij import convert

    return convert.results_to_table(Analyzer.getResultsTable())


# ------------------------------------------------------------------------------------------------- conversions


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("axes", ["YX", "ZYX", "TYX", "CYX", "TZYX", "TZCYX", "ZCYX"])
def test_numpy_imageplus_round_trip(imagej, dtype, axes):
    from epyseg_ij.ij import convert

    shape = {"T": 2, "Z": 3, "C": 2, "Y": 5, "X": 7}
    rng = np.random.default_rng(0)
    array = rng.integers(0, np.iinfo(dtype).max if dtype != np.float32 else 1000, [shape[a] for a in axes])
    array = array.astype(dtype)
    calibration = convert.Calibration(pixel_width=0.25, pixel_height=0.5, pixel_depth=2.0, unit="micron")
    imp = convert.to_imageplus(array, axes, title="t", calibration=calibration)
    assert int(imp.getBitDepth()) == {np.uint8: 8, np.uint16: 16, np.float32: 32}[dtype]
    assert (imp.getNChannels(), imp.getNSlices(), imp.getNFrames()) == tuple(
        shape[a] if a in axes else 1 for a in "CZT"
    )
    back, back_axes = convert.to_numpy(imp)
    assert back_axes == axes and back.dtype == dtype
    np.testing.assert_array_equal(back, array)
    assert convert.calibration_of(imp) == calibration
    if "C" in axes:
        second, second_axes = convert.to_numpy(imp, channel=1)
        assert second_axes == axes.replace("C", "")
        np.testing.assert_array_equal(second, np.take(array, 1, axis=axes.index("C")))


def test_rgb_and_wide_integers(imagej):
    from ij import IJ

    from epyseg_ij.ij import convert

    rgb = IJ.createImage("rgb", "RGB ramp", 16, 4, 1)
    array, axes = convert.to_numpy(rgb)
    assert axes == "YXC" and array.shape == (4, 16, 3) and array.dtype == np.uint8
    green, axes = convert.to_numpy(rgb, channel=1)
    assert axes == "YX" and np.array_equal(green, array[..., 1])
    labels = np.arange(70_000, dtype=np.uint32).reshape(100, 700)
    imp = convert.to_imageplus(labels)
    assert imp.getBitDepth() == 32 and np.array_equal(convert.to_numpy(imp)[0], labels)


@pytest.mark.parametrize("writer", ["RoiEncoder", "roifile"])
def test_rois_zip_reopened_by_roidecoder(imagej, tmp_path, writer):
    """RoiSets written by ImageJ's RoiEncoder and without the JVM (roifile) reopen in ImageJ as the same cells, with
    the permissions of any other new file."""
    from epyseg_ij import measure, roiset
    from epyseg_ij.ij import convert

    labels = synth_epithelium((128, 128), seed=5, style=STYLES["clean"]).labels.copy()
    ring = np.zeros_like(labels)  # a cell that encloses another cell: its ROI must have a hole
    ring[40:70, 40:70] = 1
    ring[45:65, 45:65] = 0
    labels[40:70, 40:70] = 0
    labels[ring > 0] = labels.max() + 1
    labels[47:63, 47:63] = labels.max() + 1
    path = tmp_path / "RoiSet.zip"
    if writer == "RoiEncoder":
        convert.rois_to_zip(convert.labels_to_rois(labels), path)
    else:
        roiset.write(path, roiset.cell_rois(labels, "YX"))
    reopened = convert.rois_from_zip(path)  # ImageJ's RoiDecoder
    counts = np.bincount(labels.ravel())[1:]
    ids = np.nonzero(counts)[0] + 1
    assert len(reopened) == len(ids)
    assert [int(r.getStatistics().pixelCount) for r in reopened] == counts[ids - 1].tolist()
    assert [str(r.getName()) for r in reopened] == [f"{i:05d}" for i in ids]
    np.testing.assert_array_equal(convert.rois_to_labels(reopened, labels.shape) > 0, labels > 0)
    ring_name = f"{int(labels[40, 40]):05d}"
    assert [r.getType() == r.COMPOSITE for r in reopened if str(r.getName()) == ring_name] == [True]
    traced = [r for r in reopened if r.getType() == r.TRACED_ROI]
    table = measure.cell_table(labels)
    perimeters = dict(zip(table["Label"].tolist(), table["Perim."].tolist(), strict=True))
    np.testing.assert_allclose([r.getLength() for r in traced], [perimeters[int(str(r.getName()))] for r in traced])
    other = tmp_path / "other"
    other.write_bytes(b"")
    assert path.stat().st_mode & 0o777 == other.stat().st_mode & 0o777  # not 0600


# ------------------------------------------------------------------------------------------------- macros


def test_macro_segment_round_trip(imagej, tiny_model, samples, tmp_path):
    """run("EPySeg Segment") on an image from a macro: label image, outlines, ROIs and Results, calibrated; the input
    stays the current image, and nothing is written beside it."""
    from epyseg_ij import measure
    from epyseg_ij.ij import convert

    path = samples["calibrated"]
    beside = sorted(path.parent.iterdir())
    value = macro(f"""
        setBatchMode(true);
        open("{path}");
        run("EPySeg Segment", "model={tiny_model} output=[labels outlines rois results]");
        current = getTitle();
        selectImage("calibrated-labels");
        getPixelSize(unit, pw, ph);
        info = current + "|" + bitDepth() + "|" + nResults + "|" + unit + "|" + pw + "|" + nImages;
        saveAs("Tiff", "{tmp_path}/labels.tif");
        close("*");
        return info;
    """)
    image = tifffile.imread(path)
    expected = epyseg_ij.segment(image, tiny_model).labels
    n = len(measure.cell_ids(expected))
    assert n > 20
    assert value == f"calibrated.tif|16|{n}|microns|0.5|3"  # getPixelSize says "microns"
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "labels.tif"), expected)
    assert sorted(path.parent.iterdir()) == beside  # no RoiSet beside the user's image without save=

    results = system_results()
    table = measure.cell_table(expected, spacing=(0.5, 0.5))
    for column in ("Label", "Area", "Perim.", "X", "Y", "Neighbours"):
        np.testing.assert_allclose(results[column], table[column], rtol=1e-9, err_msg=column)
    calibrated = convert.to_imageplus(expected, calibration=convert.Calibration(0.5, 0.5, unit="micron"))
    rois = convert.labels_to_rois(expected)
    lengths = []
    for roi in rois:  # ImageJ's own perimeter of each traced ROI is the table's
        roi.setImage(calibrated)
        lengths.append(float(roi.getLength()))
    np.testing.assert_allclose(lengths, results["Perim."], rtol=1e-12)


def test_repeated_segment_gives_unique_titles(imagej, tiny_model, samples):
    titles = macro(f"""
        setBatchMode(true);
        close("*");
        open("{samples["s1"]}");
        run("EPySeg Segment", "model={tiny_model} output=[labels outlines]");
        run("EPySeg Segment", "model={tiny_model} output=[labels outlines]");
        t = getTitle();
        for (i = 1; i <= nImages; i++) {{ selectImage(i); t = t + "," + getTitle(); }}
        close("*");
        return t;
    """)
    current, *titles = titles.split(",")
    assert current == "s1.tif"  # the input stays the current image
    assert sorted(titles) == ["s1-labels", "s1-labels-1", "s1-outlines", "s1-outlines-1", "s1.tif"]


def test_call_string_api(imagej, tiny_model, samples):
    cells = macro(f"""
        setBatchMode(true);
        open("{samples["s0"]}");
        return call("epyseg.bridge.PyBridge.call", "segment", "model={tiny_model} output=[labels]");
    """)
    expected = epyseg_ij.segment(tifffile.imread(samples["s0"]), tiny_model)
    assert cells == str(sum(expected.n_cells))
    assert macro('return call("epyseg.bridge.PyBridge.call", "ping");') == "pong"
    assert tiny_model in macro('return call("epyseg.bridge.PyBridge.call", "models");')
    assert "ImageJ 1.53t" in macro('return call("epyseg.bridge.PyBridge.call", "about");')
    assert macro('return call("epyseg.bridge.PyBridge.call", "status");') == "idle"


def test_measure_command(imagej, samples, tmp_path):
    from epyseg_ij import measure

    labels = synth_epithelium((96, 96), seed=2, style=STYLES["clean"]).labels
    path = io.write_tiff(tmp_path / "cells.tif", labels, spacing=(2.0, 2.0), unit="micron")
    value = macro(f'setBatchMode(true); open("{path}"); run("EPySeg Measure", ""); return "" + nResults;')
    assert value == str(labels.max())
    results = system_results()
    np.testing.assert_allclose(results["Area"], measure.cell_table(labels, spacing=(2.0, 2.0))["Area"])
    inner = macro(f'setBatchMode(true); open("{path}"); run("EPySeg Measure", "exclude"); return "" + nResults;')
    border = measure.border_cells(labels)
    assert 0 < len(border) < labels.max() and inner == str(labels.max() - len(border))
    assert not set(system_results()["Label"].astype(int)) & set(border.tolist())


def test_jython_round_trip(imagej, tiny_model, samples, tmp_path):
    """A Jython script passes an ImagePlus to the service and gets ImagePlus, ROIs and Results back."""
    from ij import IJ

    script = tmp_path / "segment.py"
    out = tmp_path / "jython-labels.tif"
    script.write_text(f"""
from ij import IJ
from epyseg.bridge import PyBridge
imp = IJ.openImage(getArgument())
reply = PyBridge.segment(imp, "model={tiny_model} output=[labels rois results]")
labels = reply.get("labels")
result = "%s %d %d %d" % (labels.getTitle(), len(reply.get("rois")), reply.get("results").size(), reply.get("cells"))
IJ.saveAsTiff(labels, "{out}")
""")
    value = str(IJ.runMacroFile(str(script), str(samples["s1"])))
    expected = epyseg_ij.segment(tifffile.imread(samples["s1"]), tiny_model).labels
    n = int(expected.max())
    assert value == f"s1-labels {n} {n} {n}"
    np.testing.assert_array_equal(tifffile.imread(out), expected)


def test_python_error_is_a_macro_error(imagej, samples):
    from epyseg_ij import ij
    from epyseg_ij.ij.service import Reply

    value = macro(f"""
        setBatchMode(true);
        open("{samples["s0"]}");
        run("EPySeg Segment", "model=no-such-model");
        return "not reached";
    """)
    assert value is None  # the macro stopped at the failing line
    assert last_error().startswith("unknown model 'no-such-model'") and "\n" not in last_error()
    assert macro('return call("epyseg.bridge.PyBridge.call", "ping");') == "pong"  # the JVM and service live on

    def broken(request, service):
        return Reply(str(1 / 0))

    ij.get_service().commands["broken"] = broken
    try:
        assert macro('call("epyseg.bridge.PyBridge.call", "broken"); return "not reached";') is None
        assert last_error() == "internal error: ZeroDivisionError: division by zero"
    finally:
        del ij.get_service().commands["broken"]
    assert macro('return call("epyseg.bridge.PyBridge.call", "ping");') == "pong"


def test_four_macro_threads_at_once(imagej, tiny_model, samples, tmp_path):
    """Four macros on four threads call the service together; each gets its own image's result."""
    values = {}

    def run(i):
        values[i] = macro(f"""
            setBatchMode(true);
            open("{samples[f"s{i}"]}");
            run("EPySeg Segment", "model={tiny_model} output=[labels] batch=2");
            selectImage("s{i}-labels");
            saveAs("Tiff", "{tmp_path}/out{i}.tif");
            return "ok";
        """)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert values == {i: "ok" for i in range(4)}, last_error()
    for i in range(4):
        expected = epyseg_ij.segment(tifffile.imread(samples[f"s{i}"]), tiny_model).labels
        np.testing.assert_array_equal(tifffile.imread(tmp_path / f"out{i}.tif"), expected)


@pytest.mark.parametrize("how", ["escape", "cancel command"])
def test_cancel_between_tiles(imagej, tiny_model, tmp_path, how):
    from ij import IJ
    from java.awt.event import KeyEvent

    from epyseg_ij import ij

    path = io.write_tiff(tmp_path / "big.tif", synth_epithelium((640, 640), seed=1).image)
    values = {}
    worker = threading.Thread(
        target=lambda: values.setdefault(
            "v", macro(f'setBatchMode(true); open("{path}"); '
                       f'run("EPySeg Segment", "model={tiny_model} tile=64 overlap=16 batch=1"); return "finished";')
        )
    )  # fmt: skip
    service = ij.get_service()
    worker.start()
    deadline = time.time() + 60
    while "/" not in service.status and time.time() < deadline:  # wait for the first progress report
        time.sleep(0.01)
    assert service.busy, service.status
    start = time.time()
    if how == "escape":
        IJ.setKeyDown(KeyEvent.VK_ESCAPE)  # what pressing Esc in ImageJ does
    else:
        assert macro('return call("epyseg.bridge.PyBridge.call", "cancel");') == "cancelling"
    worker.join(60)
    assert values["v"] is None and time.time() - start < 10
    assert "cancelled" in last_error()
    assert not service.busy and not IJ.escapePressed()
    assert macro('return call("epyseg.bridge.PyBridge.call", "ping");') == "pong"


# ------------------------------------------------------------------------------------------------ folders


def test_folder_into_ta_layout_never_overwrites_hand_corrections(imagej, tiny_model, tmp_path):
    folder = tmp_path / "movie"
    for i in range(2):
        io.write_tiff(folder / f"frame{i}.tif", synth_epithelium((96, 96), seed=i).image)
    (folder / "notes.txt").write_text("not an image")
    run = f'run("EPySeg Segment", "folder=[{folder}] model={tiny_model} overwrite");'
    assert macro(f'{run} return "ok";') == "ok"
    masks = [folder / f"frame{i}" / "handCorrection.tif" for i in range(2)]
    for i, mask in enumerate(masks):
        expected = epyseg_ij.segment(tifffile.imread(folder / f"frame{i}.tif"), tiny_model).outlines
        np.testing.assert_array_equal(tifffile.imread(mask), expected)
    corrected = tifffile.imread(masks[0])
    corrected[10, :] = 255  # a person draws a line: this mask is now a hand correction
    tifffile.imwrite(masks[0], corrected, imagej=True)
    summary = macro(
        f'return call("epyseg.bridge.PyBridge.call", "segment", "folder=[{folder}] model={tiny_model} overwrite");'
    )
    assert summary == "1 written, 1 skipped, 0 failed"
    np.testing.assert_array_equal(tifffile.imread(masks[0]), corrected)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("setup", "options", "message"),
    [
        ('close("*");', "model=MODEL", "no image is open"),
        ('newImage("c", "RGB ramp", 64, 64, 1);', "model=MODEL", "an RGB image: choose the membrane channel"),
        ('newImage("g", "8-bit ramp", 64, 64, 1);', "model=MODEL tta=sideways", "tta='sideways' is not allowed"),
        ('newImage("g", "8-bit ramp", 64, 64, 1);', "modle=MODEL", "unknown option 'modle'"),
        ('newImage("g", "8-bit ramp", 64, 64, 1);', "model=nope", "unknown model 'nope'"),
        ('newImage("g", "8-bit ramp", 5, 4, 1);', "model=MODEL", "image too small: 5×4 px"),
        ("", "folder=[EMPTY] model=MODEL", "no images found"),
        ('newImage("g", "8-bit ramp", 64, 64, 1);', "model=MODEL save=[BLOCKED]", "cannot write to the output folder"),
    ],
)
def test_bad_input_is_a_clear_macro_error(imagej, tiny_model, tmp_path, setup, options, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    options = options.replace("MODEL", tiny_model).replace("EMPTY", str(empty))
    options = options.replace("BLOCKED", str(blocker / "out"))
    before = sorted(tmp_path.rglob("*"))
    value = macro(f'setBatchMode(true); {setup} run("EPySeg Segment", "{options}"); return "not reached";')
    assert value is None
    assert message in last_error() and "\n" not in last_error()
    assert sorted(tmp_path.rglob("*")) == before  # no file written, not even half
    assert macro('return call("epyseg.bridge.PyBridge.call", "ping");') == "pong"


# ------------------------------------------------------------------------------------------- command line


def test_run_macro_file_logs_to_stdout(imagej, tiny_model, samples, tmp_path, capfd):
    from epyseg_ij.ij import run_macro_file

    good = ij_fixtures.cell_count_macro(tmp_path, tiny_model)
    assert run_macro_file(good, str(samples["s2"])) == 0
    expected = epyseg_ij.segment(tifffile.imread(samples["s2"]), tiny_model)
    assert f"cells: {sum(expected.n_cells)}" in capfd.readouterr().out
    bad = tmp_path / "bad.ijm"
    bad.write_text('print("start");\nrun("EPySeg Segment", "model=nope");\nprint("never");\n')
    assert run_macro_file(bad) == 1
    captured = capfd.readouterr()
    assert "start" in captured.out and "never" not in captured.out
    assert captured.err.startswith("epyseg-ij: macro error in line 2: unknown model 'nope'")
    assert len(captured.err.strip().splitlines()) == 1


def test_results_csv_and_files(imagej, tiny_model, samples, tmp_path):
    out = tmp_path / "results"
    value = macro(f"""
        setBatchMode(true);
        open("{samples["s3"]}");
        return call("epyseg.bridge.PyBridge.call", "segment",
                    "model={tiny_model} output=[labels outlines rois results] save=[{out}]");
    """)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["s3_RoiSet.zip", "s3_labels.tif", "s3_outlines.tif", "s3_results.csv"]
    with open(out / "s3_results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == int(value)
    assert list(rows[0]) == ["Label", "Area (px²)", "Perim. (px)", "X (px)", "Y (px)", "Neighbours"]
    expected = epyseg_ij.segment(tifffile.imread(samples["s3"]), tiny_model)
    np.testing.assert_array_equal(tifffile.imread(out / "s3_outlines.tif"), expected.outlines)
    assert not list(Path(out).glob(".*"))  # no temporary files left behind
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = macro(f'''
        setBatchMode(true);
        open("{samples["s3"]}");
        run("EPySeg Segment", "model={tiny_model} output=[labels results] save=[{out}]");
        return "not reached";
    ''')
    assert again is None and last_error().endswith("s3_labels.tif exists: add 'overwrite' to replace it")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


# ------------------------------------------------------------------------------------------- user scripts

SCRIPTS = Path(__file__).resolve().parents[1] / "fiji_scripts"


def script_copy(name: str, folder: Path, model: str) -> Path:
    """A copy of a fiji_scripts file that uses the test model instead of the shipped default."""
    target = folder / name
    target.write_text((SCRIPTS / name).read_text().replace("model=default", f"model={model}"))
    return target


@pytest.mark.parametrize("kind", ["py", "ijm"])
def test_scripts_segment_image_and_measure(imagej, tiny_model, samples, tmp_path, capfd, kind):
    from ij import IJ

    from epyseg_ij.ij import run_macro_file

    expected = epyseg_ij.segment(tifffile.imread(samples["s2"]), tiny_model)
    n = sum(expected.n_cells)
    segment_script = script_copy(f"EPySeg_Segment_Image.{kind}", tmp_path, tiny_model)
    masks = io.write_tiff(tmp_path / "mask.tif", expected.outlines)
    measure_script = script_copy(f"EPySeg_Measure_Cells.{kind}", tmp_path, tiny_model)
    if kind == "py":  # Jython, as ImageJ runs .py files (Plugins menu, IJ.runMacroFile)
        macro(f'setBatchMode(true); open("{samples["s2"]}"); eval("python", File.openAsString("{segment_script}"));')
        assert str(IJ.runMacroFile(str(segment_script), f"model={tiny_model}")) == f"{n} cells"
        macro(f'setBatchMode(true); open("{masks}");')
        assert str(IJ.runMacroFile(str(measure_script), "")) == f"{n} cells"
    else:
        assert run_macro_file(segment_script, str(samples["s2"])) == 0
        assert run_macro_file(measure_script, str(masks)) == 0
        out = capfd.readouterr().out
        assert f"s2.tif: {n} cells, mean area" in out and f"mask.tif: {n} cells" in out


@pytest.mark.parametrize("kind", ["py", "ijm"])
def test_scripts_segment_folder(imagej, tiny_model, tmp_path, kind):
    from ij import IJ

    from epyseg_ij.ij import run_macro_file

    folder = tmp_path / "images"
    for i in range(2):
        io.write_tiff(folder / f"img{i}.tif", synth_epithelium((80, 80), seed=i).image)
    script = script_copy(f"EPySeg_Segment_Folder.{kind}", tmp_path, tiny_model)
    if kind == "py":
        assert str(IJ.runMacroFile(str(script), str(folder))) == "2 written, 0 skipped, 0 failed"
    else:
        assert run_macro_file(script, str(folder)) == 0
    assert all((folder / f"img{i}" / "handCorrection.tif").is_file() for i in range(2))


def test_train_command_and_cancel(imagej, tmp_path, capfd):
    """EPySeg Train from a macro: progress, the model saved under its name, what it was trained on in the Log; Esc
    stops a long run."""
    from ij import IJ
    from java.awt.event import KeyEvent

    from epyseg_ij import ij, models
    from epyseg_ij.ij import run_macro_file
    from epyseg_ij.synth import write_dataset

    data = tmp_path / "data"
    write_dataset(data, 2, (96, 96))
    common = f"data=[{data}] encoder=mobilenetv2 steps=2 tile=64 batch=2 validation=0"
    script = tmp_path / "train.ijm"
    script.write_text((SCRIPTS / "EPySeg_Train.ijm").read_text())
    assert run_macro_file(script, f"{common} name=ij-trained epochs=1") == 0
    assert models.user_model_path("ij-trained").is_file()
    assert "trained on 2 images: 2 for training, 0 for validation" in capfd.readouterr().out
    cells = macro("""
        setBatchMode(true);
        newImage("t", "8-bit ramp", 64, 64, 1);
        return call("epyseg.bridge.PyBridge.call", "segment", "model=ij-trained output=[labels]");
    """)
    assert int(cells) >= 0

    values = {}
    worker = threading.Thread(
        target=lambda: values.setdefault("v", macro(f'run("EPySeg Train", "{common} name=ij-cancel epochs=500");'))
    )
    service = ij.get_service()
    worker.start()
    deadline = time.time() + 120
    while "/" not in service.status and time.time() < deadline:  # the first step reported
        time.sleep(0.05)
    IJ.setKeyDown(KeyEvent.VK_ESCAPE)
    worker.join(60)
    assert not worker.is_alive() and values["v"] is None
    assert "cancel" in last_error().lower() and not models.user_model_path("ij-cancel").exists()


def test_hyperstack_channel_and_stack_positions(imagej, tiny_model):
    """A 2-channel z-stack: channel=2 is segmented plane by plane; ROIs and Results know their slice."""
    from epyseg_ij import ij
    from epyseg_ij.ij import convert

    planes = [synth_epithelium((96, 112), seed=20 + z, style=STYLES["clean"]).image for z in range(3)]
    membranes = np.stack(planes)
    noise = np.random.default_rng(0).integers(0, 50, membranes.shape).astype(np.uint8)
    stack = np.stack([noise, membranes], axis=1)  # Z, C, Y, X
    calibration = convert.Calibration(pixel_width=0.2, pixel_height=0.2, pixel_depth=1.5, unit="micron")
    imp = convert.to_imageplus(stack, "ZCYX", title="embryo.tif", calibration=calibration)
    reply = ij.get_service().request("segment", f"model={tiny_model} channel=2 output=[labels rois results]", imp)
    expected = epyseg_ij.segment(membranes, tiny_model, axes="ZYX").labels
    labels_imp = reply.objects["labels"]
    labels, axes = convert.to_numpy(labels_imp)
    assert axes == "ZYX" and str(labels_imp.getTitle()) == "embryo-labels"
    np.testing.assert_array_equal(labels, expected)
    assert convert.calibration_of(labels_imp) == calibration
    rois = list(reply.objects["rois"])
    per_plane = [int(plane.max()) for plane in expected]
    assert len(rois) == sum(per_plane) == int(reply.value)
    assert [int(r.getPosition()) for r in rois] == [z + 1 for z in range(3) for _ in range(per_plane[z])]
    table = convert.results_to_table(reply.objects["results"])
    assert table["Slice"].tolist() == [z + 1 for z in range(3) for _ in range(per_plane[z])]
    with pytest.raises(Exception, match="a 2-channel image: choose the membrane channel"):
        ij.get_service().request("segment", f"model={tiny_model}", imp)


def test_runtime_starts_once_and_checks_folders(imagej, tmp_path):
    from epyseg_ij import ij
    from epyseg_ij.errors import EpysegError
    from epyseg_ij.ij import plugin, runtime

    assert ij.start() is imagej and imagej.headless and imagej.version.startswith("1.53t")
    assert (imagej.plugins_dir / plugin.JAR_NAME).is_file()
    with pytest.raises(EpysegError, match="already runs headless"):
        ij.start(headless=False)
    with pytest.raises(EpysegError, match="a JVM starts once per process"):
        ij.start(tmp_path)
    with pytest.raises(EpysegError, match="not an ImageJ or Fiji folder"):
        runtime._app_kind(tmp_path)
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / "ij-1.54f.jar").write_bytes(b"")
    assert runtime._app_kind(tmp_path) == "fiji"
    assert runtime._app_kind("sc.fiji:fiji:2.16.0") == "endpoint"
    assert set(plugin.plugin_commands(imagej.plugins_dir / plugin.JAR_NAME)) == {
        "EPySeg Segment", "EPySeg Measure", "EPySeg Train", "EPySeg Models...", "About EPySeg...",
    }  # fmt: skip


def test_ctrl_c_is_a_keyboard_interrupt_not_the_end_of_the_process(imagej):
    """With the JVM in the process, SIGINT must still reach Python (other tests and the CLI rely on it)."""
    import signal

    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
        time.sleep(1)
    assert macro('return call("epyseg.bridge.PyBridge.call", "ping");') == "pong"
