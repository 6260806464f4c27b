"""The epyseg-ij command line on real files: TA layout safety, atomic writes, resume, one-line errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from conftest import REPO, SAMPLE

from epyseg_ij import cli, io, measure
from epyseg_ij.synth import STYLES, synth_epithelium


def run(capsys, *args):
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def snapshot(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture
def images(tmp_path):
    frame = tifffile.imread(SAMPLE)
    for i in range(3):
        tifffile.imwrite(tmp_path / f"img{i}.tif", np.roll(frame, 40 * i, axis=1), imagej=True)
    return tmp_path


def test_ta_layout_is_written_then_kept(capsys, images):
    status, out, _ = run(capsys, "segment", images, "--model", "classical")
    assert status == 0 and "3 segmented" in out
    mask = images / "img0" / "handCorrection.tif"
    with tifffile.TiffFile(mask) as tif:
        assert tif.is_imagej and tif.pages[0].dtype == np.uint8 and set(np.unique(tif.asarray())) == {0, 255}
    assert io.is_hand_corrected(mask) is False
    before = snapshot(images)
    status, out, _ = run(capsys, "segment", images, "--model", "classical")
    assert "0 segmented, 3 skipped" in out and "exists: kept" in out and snapshot(images) == before


def test_overwrite_backs_up_machine_masks_but_never_touches_hand_corrections(capsys, images):
    run(capsys, "segment", images / "img0.tif", images / "img1.tif", "--model", "classical")
    corrected = images / "img1" / "handCorrection.tif"
    mask = tifffile.imread(corrected)
    mask[10, :] = 255  # a person draws a line
    tifffile.imwrite(corrected, mask, imagej=True)
    assert io.is_hand_corrected(corrected) is True
    hand_bytes = corrected.read_bytes()
    status, out, _ = run(  # --invert: a different machine mask (an identical one would be left as it is)
        capsys, "segment", images / "img0.tif", images / "img1.tif", "--model", "classical", "--overwrite", "--invert"
    )
    assert "corrected by hand: kept" in out and corrected.read_bytes() == hand_bytes
    assert len(list((images / "img0").glob("handCorrection.*-*.tif"))) == 1  # the backup of the machine mask


def test_unknown_masks_are_backed_up_before_overwrite(capsys, images):
    folder = images / "img2"
    folder.mkdir()
    original = np.zeros((199, 206), np.uint8)
    tifffile.imwrite(folder / "handCorrection.tif", original, imagej=True)  # made by Tissue Analyzer, say
    status, out, _ = run(capsys, "segment", images / "img2.tif", "--model", "classical", "--overwrite")
    backups = list(folder.glob("handCorrection.*-*.tif"))
    assert status == 0 and len(backups) == 1 and not tifffile.imread(backups[0]).any()
    assert tifffile.imread(folder / "handCorrection.tif").any()


def test_out_folder_outlines_labels_results_and_rois(capsys, images, tmp_path_factory):
    import roifile

    out_dir = tmp_path_factory.mktemp("out")
    args = ("segment", images / "img*.tif", "--model", "classical", "--out", out_dir, "--results", "--rois")
    status, out, _ = run(capsys, *args)
    assert status == 0
    labels = tifffile.imread(out_dir / "img0_labels.tif")
    outlines = tifffile.imread(out_dir / "img0_outlines.tif")
    assert labels.dtype == np.uint16 and labels.max() > 20 and not labels[outlines > 0].any()
    assert "cells in" in out and f"{labels.max()} cells -> img0_results.csv, img0_RoiSet.zip" in out
    table = measure.cell_table(labels)
    with open(out_dir / "img0_results.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Label", "Area (px²)", "Perim. (px)", "X (px)", "Y (px)", "Neighbours"]
    np.testing.assert_allclose(np.array(rows[1:], float), np.stack([table[k] for k in measure.COLUMNS], 1), atol=1e-6)
    rois = roifile.roiread(out_dir / "img0_RoiSet.zip")
    assert [r.name for r in rois] == [f"{i:05d}" for i in table["Label"]]
    before = snapshot(out_dir)
    status, out, _ = run(capsys, *args)  # everything exists: kept
    assert status == 0 and "img0_results.csv exists: kept" in out and snapshot(out_dir) == before
    status, out, err = run(capsys, "segment", images / "img0.tif", "--model", "classical", "--rois")
    assert status == 2 and "--results and --rois go with --out DIR" in err


def test_measure_labels_and_tissue_analyzer_masks(capsys, tmp_path):
    labels = synth_epithelium((96, 128), seed=4, style=STYLES["clean"]).labels
    io.write_tiff(tmp_path / "cells.tif", labels, spacing=(0.5, 0.5), unit="micron")
    assert io.write_ta_mask(tmp_path / "movie" / "frame_01.tif", (labels == 0).astype(np.uint8) * 255).written
    out = tmp_path / "tables"
    status, text, _ = run(capsys, "measure", tmp_path / "cells.tif", tmp_path / "movie", "--out", out,
                          "--exclude-border", "--rois")  # fmt: skip
    border = measure.border_cells(labels)
    assert status == 0 and f"{labels.max() - len(border)} cells ({len(border)} on the border left out)" in text
    with open(out / "cells_results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["Label", "Area (µm²)", "Perim. (µm)", "X (µm)", "Y (µm)", "Neighbours"]
    table = measure.cell_table(labels, spacing=(0.5, 0.5))
    inner = ~np.isin(table["Label"], border)
    assert [int(r["Label"]) for r in rows] == table["Label"][inner].tolist()
    np.testing.assert_allclose([float(r["Area (µm²)"]) for r in rows], table["Area"][inner])
    with open(out / "frame_01_results.csv", encoding="utf-8") as f:  # the mask, named after its image
        assert len(list(csv.DictReader(f))) == len(rows)  # the same cells, from their outlines
    assert (out / "cells_RoiSet.zip").is_file() and (out / "frame_01_RoiSet.zip").is_file()
    grey = io.write_tiff(tmp_path / "grey.tif", synth_epithelium((64, 64), seed=1).image)
    status, text, _ = run(capsys, "measure", grey, "--out", out)
    assert (
        status == 1
        and text.strip() == f"{grey}: failed: an 8-bit image must be an outline mask (0 and 255 only) to be measured"
    )
    status, _, err = run(capsys, "measure", tmp_path / "nothing.tif", "--out", out)
    assert status == 2 and err.strip() == f"epyseg-ij: error: {tmp_path / 'nothing.tif'}: no such file or folder"


def test_an_interrupted_batch_leaves_complete_files_and_resumes(images):
    big = np.tile(tifffile.imread(SAMPLE), (6, 6))
    for i in range(4):
        tifffile.imwrite(images / f"big{i}.tif", np.roll(big, 10 * i), imagej=True)
    command = [sys.executable, "-m", "epyseg_ij.cli", "segment", str(images / "big*.tif"), "--model", "classical"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (images / "big0" / "handCorrection.tif").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = [p for p in images.glob("big*/handCorrection.tif")]
    assert 1 <= len(done) < 4, "the kill should land in the middle of the batch"
    for mask in done:  # every mask present is complete
        assert tifffile.imread(mask).shape == big.shape
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert f"{4 - len(done)} segmented, {len(done)} skipped" in result.stdout
    assert len(list(images.glob("big*/handCorrection.tif"))) == 4


@pytest.mark.parametrize(
    "make,args,message",
    [
        (lambda d: (d / "x.tif").write_text("not an image"), ["x.tif"], "not a readable image"),
        (lambda d: (d / "x.tif").write_bytes(b""), ["x.tif"], "empty file"),
        (lambda d: tifffile.imwrite(d / "x.tif", np.zeros((30, 30, 3), np.uint8)), ["x.tif"], "choose the membrane"),
        (lambda d: tifffile.imwrite(d / "x.tif", np.full((30, 30), np.nan, np.float32)), ["x.tif"], "NaN"),
        (lambda d: None, ["missing.tif"], "no such file"),
        (lambda d: (d / "sub").mkdir(), ["sub"], "no images found"),
        (
            lambda d: tifffile.imwrite(d / "x.tif", np.zeros((30, 30), np.uint8)),
            ["x.tif", "--model", "nope"],
            "unknown",
        ),
        (lambda d: (d / "m.h5").write_bytes(b"junk"), ["x.tif", "--model", "m.h5"], "not a readable Keras"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(capsys, tmp_path, make, args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    if "m.h5" in args:
        tifffile.imwrite(tmp_path / "x.tif", np.zeros((30, 30), np.uint8))
    before = snapshot(tmp_path)
    status, out, err = run(capsys, "segment", *args, *([] if "--model" in args else ["--model", "classical"]))
    assert status != 0 and message in out + err
    text = (out + err).strip().splitlines()
    assert all("Traceback" not in line for line in text) and len([t for t in text if message in t]) == 1
    assert snapshot(tmp_path) == before


def test_evaluate_json_and_synth(capsys, tmp_path):
    status, out, _ = run(capsys, "synth", tmp_path / "s", "--n", "2", "--size", "96", "128", "--seed", "3")
    assert status == 0 and (tmp_path / "s" / "synth_001" / "groundTruth.tif").exists()
    mask = tmp_path / "s" / "synth_000" / "groundTruth.tif"
    status, out, _ = run(capsys, "evaluate", mask, mask, "--json")
    scores = json.loads(out)
    assert set(scores) == {"pixel_iou", "seg_quality", "n_gt", "n_pred", "n_correct", "n_over", "n_under"}
    assert scores["seg_quality"] == 1.0 and scores["pixel_iou"] == 1.0
    status, out, _ = run(capsys, "segment", tmp_path / "s", "--model", "classical")  # the truth is no correction
    assert status == 0 and "2 segmented, 0 skipped" in out
    assert all((tmp_path / "s" / f"synth_00{i}" / "handCorrection.tif").is_file() for i in range(2))


def test_models_commands(capsys, vgg16_path, monkeypatch):
    status, out, _ = run(capsys, "models", "list")
    assert status == 0 and "Linknet-vgg16-sigmoid-v2" in out and "classical" in out
    status, out, _ = run(capsys, "models", "import", vgg16_path, "--name", "imported-by-cli")
    assert status == 0 and out.strip().endswith("imported-by-cli.h5")
    status, out, _ = run(capsys, "models", "info", "imported-by-cli")
    assert json.loads(out)["encoder"] == "vgg16"
    from epyseg_ij import models

    offline = models.Pretrained("Linknet-vgg16-sigmoid", "http://127.0.0.1:9/m.h5", "0" * 32, "unreachable")
    monkeypatch.setitem(models.PRETRAINED, offline.name, offline)
    status, out, err = run(capsys, "models", "fetch", offline.name)
    assert status == 2 and err.count("\n") == 1 and "http://127.0.0.1:9/m.h5" in err and "put it at" in err


def test_cli_runs_as_a_console_script():
    script = os.path.join(os.path.dirname(sys.executable), "epyseg-ij")
    result = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("epyseg-ij ")
