"""Bad files and file faults (issue 9): no hand-made mask is ever lost, nothing is half-written, one line each.

Each family of bad input is one parametrised test: add a case to its list to try another member of the family.
Everything is real: files, FIFOs, links to devices, concurrent processes, a full disk (RLIMIT_FSIZE in a child).
"""

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from conftest import REPO, SAMPLE

from epyseg_ij import cli, io
from epyseg_ij.batch import find_images
from epyseg_ij.errors import InputError

HAND = np.zeros((96, 96), np.uint8)
HAND[::12, :] = HAND[:, ::12] = 255  # a mask drawn by hand in Tissue Analyzer: a grid, no marker


def tissue(seed: int = 1) -> np.ndarray:
    """A 96 x 96 uint8 crop of the bundled wing-disc frame, different for each seed."""
    return np.ascontiguousarray(tifffile.imread(SAMPLE)[7 * seed : 7 * seed + 96, 5 * seed : 5 * seed + 96])


def run(capsys, *args, model="classical"):
    status = cli.main([*map(str, args), "--model", model])
    out, err = capsys.readouterr()
    return status, out + err


def one_line(text: str, message: str) -> bool:
    lines = text.strip().splitlines()
    return not any("Traceback" in line for line in lines) and sum(message in line for line in lines) == 1


def tree(folder: Path) -> dict[str, object]:
    """Every entry under a folder: the bytes of regular files, the kind of anything else (links are not followed)."""
    entries = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                entries[rel] = f"link to {os.readlink(path)}"
            elif path.is_file():
                entries[rel] = path.read_bytes()
            else:
                entries[rel] = "folder" if path.is_dir() else "special"
    return entries


def hand_mask(image: Path, array: np.ndarray = HAND) -> bytes:
    """A TA mask of unknown provenance (no marker) beside ``image``; returns its bytes."""
    mask = io.ta_mask_path(image)
    mask.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(mask, array, imagej=True)
    return mask.read_bytes()


def backups(image: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(io.ta_mask_path(image).parent.glob("handCorrection.*-*.tif"))]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp")]


@pytest.fixture
def images(tmp_path, monkeypatch):
    """Three images; the working directory is their folder."""
    for i in range(3):
        tifffile.imwrite(tmp_path / f"img{i}.tif", tissue(i), imagej=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def guard():
    """A bug that reads a device or a FIFO fails the test instead of filling the disk or hanging."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    xfsz = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def too_long(*_):
        raise TimeoutError("blocked on a special file")

    alarm = signal.signal(signal.SIGALRM, too_long)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, limits[1]))
    signal.alarm(60)
    yield
    signal.alarm(0)
    resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    signal.signal(signal.SIGALRM, alarm)
    signal.signal(signal.SIGXFSZ, xfsz)


# ---------------------------------------------------------------------------------------- backups (data loss 1)


def outlines(seed: int) -> np.ndarray:
    """A machine mask: 0/255, different for each seed."""
    return (np.random.default_rng(seed).random((96, 96)) < 0.2).astype(np.uint8) * 255


def test_backups_never_replace_each_other(images):
    image = images / "img0.tif"
    original = hand_mask(image)
    written = [io.write_ta_mask(image, outlines(s), overwrite=True) for s in (1, 2, 3)]  # within one second
    assert all(w.written and w.backup for w in written)
    kept = backups(image)
    assert len(kept) == 3 and kept.count(original) == 1 and len(set(kept)) == 3
    assert io.is_hand_corrected(io.ta_mask_path(image)) is False and not leftovers(images)


def test_concurrent_writers_never_lose_the_original(images):
    image = images / "img0.tif"
    original = hand_mask(image)
    start = threading.Barrier(6)
    errors = []

    def write(seed):
        start.wait()
        try:
            io.write_ta_mask(image, outlines(seed), overwrite=True)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(s,)) for s in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and original in backups(image) and len(backups(image)) == 6
    assert io.is_hand_corrected(io.ta_mask_path(image)) is False and not leftovers(images)


def test_two_overwriting_runs_at_once_keep_every_hand_mask(images):
    originals = {i: hand_mask(images / f"img{i}.tif", np.roll(HAND, i, axis=1)) for i in range(3)}
    command = [sys.executable, "-m", "epyseg_ij.cli", "segment", str(images), "--model", "classical", "--overwrite"]
    runs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [r.communicate(timeout=300)[0].decode() for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    for i, original in originals.items():
        assert original in backups(images / f"img{i}.tif"), f"img{i}: the hand-made mask is lost"
    assert not leftovers(images)


@pytest.mark.parametrize(
    "names,extra,status,message",
    [
        (["img0.tif", "ABS/img0.tif"], [], 0, "1 segmented"),  # the same file, relative and absolute
        (["img0.tif", "./img0.tif", "."], [], 0, "3 segmented"),  # and inside its folder
        (["img0.tif", "img0.png"], [], 1, "is also the output of img0.tif"),  # share img0/handCorrection.tif
        (["img0.tif", "img0.TIF"], [], 1, "is also the output of img0.tif"),
        (["img0.tif", "img0.png"], ["--out", "out"], 1, "is also the output of img0.tif"),  # img0_outlines.tif
        (["img0.tif", "img0_labels.tif"], ["--out", "."], 1, "is an image of this batch"),  # an input is no output
    ],
)
def test_one_file_is_written_once_per_batch_and_never_over_an_input(capsys, images, names, extra, status, message):
    for name, seed in (("img0.TIF", 5), ("img0_labels.tif", 6)):
        if name in names:
            tifffile.imwrite(images / name, tissue(seed), imagej=True)
    if "img0.png" in names:
        iio.imwrite(images / "img0.png", tissue(7))
    inputs = {n: (images / n).read_bytes() for n in names if (images / n).is_file()}
    original = hand_mask(images / "img0.tif")
    status_, text = run(capsys, "segment", *[n.replace("ABS", str(images)) for n in names], *extra, "--overwrite")
    assert status_ == status and one_line(text, message), text
    assert all((images / n).read_bytes() == data for n, data in inputs.items())
    if not extra:
        assert backups(images / "img0.tif") == [original]
        assert io.is_hand_corrected(io.ta_mask_path(images / "img0.tif")) is False


def test_an_unchanged_machine_mask_is_neither_backed_up_nor_rewritten(capsys, images):
    run(capsys, "segment", "img0.tif")
    mask = io.ta_mask_path(images / "img0.tif")
    before = (mask.stat().st_ino, mask.stat().st_mtime_ns, mask.read_bytes())
    status, text = run(capsys, "segment", "img0.tif", "--overwrite")
    assert status == 0 and "unchanged" in text and not backups(images / "img0.tif")
    assert (mask.stat().st_ino, mask.stat().st_mtime_ns, mask.read_bytes()) == before
    status, text = run(capsys, "segment", "img0.tif", "--overwrite", "--invert")  # a different mask: backed up
    assert status == 0 and backups(images / "img0.tif") == [before[2]] and mask.read_bytes() != before[2]


# ---------------------------------------------------------------------------- --out files, each on its own (2)


@pytest.mark.parametrize("present", [["labels"], ["outlines"], ["outlines", "labels"]])
def test_each_output_file_follows_the_no_overwrite_rule_on_its_own(capsys, images, present):
    out = images / "out"
    out.mkdir()
    mine = {kind: out / f"img0_{kind}.tif" for kind in present}
    for kind, path in mine.items():
        path.write_bytes(f"the user's own {kind}".encode())
    status, text = run(capsys, "segment", "img0.tif", "--out", out)
    assert status == 0 and all(p.read_bytes() == f"the user's own {k}".encode() for k, p in mine.items())
    assert all(f"{p} exists: kept" in text for p in mine.values())
    assert ("1 skipped" in text) == (len(present) == 2)
    for kind in {"outlines", "labels"} - set(present):
        assert tifffile.imread(out / f"img0_{kind}.tif").shape == (96, 96)
    status, text = run(capsys, "segment", "img0.tif", "--out", out, "--overwrite")
    assert status == 0 and all(tifffile.imread(p).shape == (96, 96) for p in mine.values())


# -------------------------------------------------------------------- files that are not regular files (3, 11)

SPECIAL = {
    "link to /dev/zero": lambda p: p.symlink_to("/dev/zero"),
    "FIFO": lambda p: os.mkfifo(p),
    "folder": lambda p: p.mkdir(),
    "broken link": lambda p: p.symlink_to(p.parent / "nowhere"),
}


TARGETS = {"mask": "img0/handCorrection.tif", "marker": "img0/epyseg_ij.json", "image": "img0.tif", "TA folder": "img0"}


@pytest.mark.parametrize("special", SPECIAL)
@pytest.mark.parametrize(
    "where,overwrite",
    [("mask", False), ("mask", True), ("marker", False), ("marker", True), ("image", False), ("TA folder", True)],
)
def test_a_special_file_is_refused_in_one_line_and_the_batch_goes_on(capsys, images, guard, special, where, overwrite):
    target = images / TARGETS[where]
    target.parent.mkdir(exist_ok=True)
    target.unlink(missing_ok=True)
    SPECIAL[special](target)
    before = tree(images)
    status, text = run(capsys, "segment", "img0.tif", "img1.tif", *(["--overwrite"] if overwrite else []))
    if special == "folder" and where in ("image", "TA folder"):  # a folder of images, or the TA folder: fine
        assert status == 0 and "0 failed" in text
        return
    assert status == 1 and one_line(text, "not a ") and "1 segmented, 0 skipped, 1 failed" in text, text
    assert {k: v for k, v in tree(images).items() if k.split("/")[0] != "img1"} == before  # img1 is done all the same


@pytest.mark.parametrize("special", SPECIAL)
def test_the_python_api_refuses_special_files(tmp_path, guard, special):
    (tmp_path / "a").mkdir()
    for name in ("a.tif", "a/handCorrection.tif"):
        SPECIAL[special](tmp_path / name)
    with pytest.raises(InputError, match="not a regular file"):
        io.read_image(tmp_path / "a.tif")
    with pytest.raises(InputError, match="not a regular file"):
        io.is_hand_corrected(tmp_path / "a/handCorrection.tif")
    with pytest.raises(InputError, match="not a regular file"):
        io.write_ta_mask(tmp_path / "a.tif", outlines(1), overwrite=True)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "a\0b.tif", "not a valid f"),
        (lambda d: d / ("x" * 300 + ".tif"), "File name too long"),
        (lambda d: (d / "loop.tif").symlink_to(d / "loop.tif") or d / "loop.tif", "Too many levels of symbolic links"),
    ],
)
def test_odd_paths_are_one_line_errors(tmp_path, make, message):
    path = make(tmp_path)
    calls = [io.read_image, io.is_hand_corrected]
    if "loop" not in path.name:  # (writing a mask does not read the image)
        calls.append(lambda p: io.write_ta_mask(p, outlines(1)))
    for call in calls:
        with pytest.raises(InputError, match=message):
            call(path)


_AS_NOBODY = """
import os, sys
from epyseg_ij import cli
cli.main(["segment", "warm-up/img.tif", "--model", "classical"])  # import everything while the files can be read
os.setgid(65534); os.setuid(65534)
sys.exit(cli.main(["segment", "img0.tif", "img1.tif", "--model", "classical", "--overwrite"]))
"""


@pytest.mark.parametrize("unreadable", ["img0/handCorrection.tif", "img0/epyseg_ij.json"])
def test_an_unreadable_mask_or_marker_fails_that_image_only(unreadable):
    if os.geteuid() != 0:
        pytest.skip("drops root privileges to make a file unreadable")
    folder = Path(tempfile.mkdtemp(prefix="epyseg-perm-"))
    try:
        folder.chmod(0o777)
        (folder / "warm-up").mkdir()
        for seed, name in enumerate(("img0.tif", "img1.tif", "warm-up/img.tif")):
            tifffile.imwrite(folder / name, tissue(seed), imagej=True)
        io.write_ta_mask(folder / "img0.tif", outlines(1))
        (folder / "img0").chmod(0o777)
        (folder / unreadable).chmod(0)
        env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(folder), "EPYSEG_IJ_HOME": str(folder / "home")}
        done = subprocess.run([sys.executable, "-c", _AS_NOBODY], cwd=folder, env=env, capture_output=True, text=True)
        text = done.stdout + done.stderr
        assert done.returncode == 1 and one_line(text, "Permission denied") and "1 segmented" in text, text
        assert (folder / "img1" / "handCorrection.tif").exists()
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=True)


# ---------------------------------------------------------------------- markers that make no sense (12)

_SHA = "0" * 64
MARKERS = {
    "deeply nested list": b"[" * 30_000 + b"]" * 30_000,
    "deeply nested object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "a list": json.dumps([{"sha256": _SHA}]).encode(),
    "a string": b'"sha256"',
    "a number": b"12",
    "a huge integer": b"9" * 50_000,
    "a huge float": b'{"sha256": 1e999}',
    "NaN": b'{"sha256": NaN}',
    "sha256 not a string": b'{"sha256": 5}',
    "sha256 a list": b'{"sha256": ["x"]}',
    "sha256 null": b'{"sha256": null}',
    "sha256 not hex": json.dumps({"sha256": "z" * 64}).encode(),
    "not UTF-8": b"\xff\xfe\xfa{",
    "empty": b"",
    "over 64 KB": b" " * 100_000 + json.dumps({"sha256": _SHA}).encode(),
}


@pytest.mark.parametrize("content", MARKERS)
def test_a_marker_that_makes_no_sense_makes_the_mask_precious(capsys, images, content):
    original = hand_mask(images / "img0.tif")
    (images / "img0" / io.MARKER).write_bytes(MARKERS[content])
    assert io.is_hand_corrected(images / "img0" / io.TA_MASK) is None
    status, text = run(capsys, "segment", "img0.tif")
    assert status == 0 and one_line(text, "exists: kept"), text
    status, text = run(capsys, "segment", "img0.tif", "--overwrite")
    assert status == 0 and "backed up" in text and backups(images / "img0.tif") == [original]


# -------------------------------------------------------------- full disk, half-done states (4, 5, 17)

_FULL_DISK = """
import resource, signal, sys
import numpy as np
from epyseg_ij import cli, io
from epyseg_ij.errors import InputError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, a write fails with EFBIG instead of killing us
outlines = np.load("outlines.npy")
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
if {cli!r}:
    sys.exit(cli.main(["segment", "img0.tif", "--model", "classical", "--out", "out"]))
try:
    io.write_ta_mask("img0.tif", outlines, overwrite=True, provenance={{"note": "n" * {note}}})
except InputError as error:
    print(error)
    sys.exit(3)
"""


@pytest.mark.parametrize(
    "case,limit,note,message",
    [
        ("backup", 40_000, 0, "cannot back up handCorrection.tif as"),  # an old mask bigger than the new one
        ("marker", 40_000, 60_000, "epyseg_ij.json: the disk is full"),
        ("mask", 4_000, 0, "handCorrection.tif: the disk is full"),
        ("cli --out", 4_000, 0, "img0_outlines.tif: the disk is full"),
    ],
)
def test_a_full_disk_leaves_everything_as_it_was(images, case, limit, note, message):
    np.save(images / "outlines.npy", outlines(1))
    if case == "backup":
        (images / "img0").mkdir()
        big = np.zeros((96, 96), np.float32)
        tifffile.imwrite(io.ta_mask_path(images / "img0.tif"), big, description="x" * 20_000)
    before = tree(images)
    script = textwrap.dedent(_FULL_DISK).format(limit=limit, note=note, cli=case.startswith("cli"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=images, env=env, capture_output=True, text=True)
    text = done.stdout + done.stderr
    assert done.returncode in (1, 3) and one_line(text, message) and "Traceback" not in text, text
    after = tree(images)
    new = set(after) - set(before)
    assert {k: after[k] for k in before} == before and new <= {"img0", "img0/.epyseg_ij.lock", "out"}, new
    if case in ("marker", "mask"):  # a rerun writes the mask: no half-done state makes it "exists: kept"
        assert io.write_ta_mask(images / "img0.tif", outlines(1)).written


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda d: (d / io.MARKER).mkdir(), "epyseg_ij.json is a folder"),
        (lambda d: (d / f".{io.MARKER}.tmp").write_bytes(b""), None),  # stale temporary files of older versions
        (lambda d: (d / f".{io.MARKER}.tmp").mkdir(), None),
        (lambda d: (d / f".{io.TA_MASK}.{os.getpid()}.tmp").mkdir(), None),
        (lambda d: (d / io.MARKER).write_text(json.dumps({"sha256": _SHA})), None),  # a marker without its mask
    ],
)
def test_mask_and_marker_change_together_or_not_at_all(images, make, error):
    folder = images / "img0"
    folder.mkdir()
    make(folder)
    if error:
        with pytest.raises(InputError, match=error):
            io.write_ta_mask(images / "img0.tif", outlines(1))
        assert not (folder / io.TA_MASK).exists() and not leftovers(images)
        return
    assert io.write_ta_mask(images / "img0.tif", outlines(1)).written
    assert io.is_hand_corrected(folder / io.TA_MASK) is False


# ------------------------------------------------------------------ a Tissue Analyzer folder as input (10)


@pytest.mark.parametrize(
    "inputs",
    [["img0"], ["img0/handCorrection.tif"], ["*/*.tif"], ["img1"], ["img1/handCorrection.20260101-120000.tif"]],
)
def test_a_tissue_analyzer_folder_or_mask_is_not_an_image(capsys, images, inputs):
    io.write_ta_mask(images / "img0.tif", outlines(1))
    (images / "img1").mkdir()
    tifffile.imwrite(images / "img1" / "handCorrection.20260101-120000.tif", HAND, imagej=True)  # a backup only
    before = tree(images)
    status, text = run(capsys, "segment", *inputs)
    assert status == 2 and one_line(text, "Tissue Analyzer") and tree(images) == before, text


# ---------------------------------------------------------- microscope files open as they do in Fiji


@pytest.mark.parametrize("compression", [None, "lzw", "jpeg", "zstd", "deflate", "packbits", "lzma", "jpeg2000", "png"])
def test_compressed_tiffs_are_read(capsys, images, compression):
    tifffile.imwrite(images / "c.tif", tissue(1), compression=compression)
    image = io.read_image(images / "c.tif")
    assert image.array.shape == (96, 96)
    if compression != "jpeg":
        np.testing.assert_array_equal(image.array, tissue(1))
    status, text = run(capsys, "segment", "c.tif")
    assert status == 0 and "1 segmented" in text


CLAIMS = "images=4\nframes=4\nhyperstack=true\n"  # as Mathematica's TIFF export writes for one page


@pytest.mark.parametrize(
    "claims,pages,compression",
    [
        (CLAIMS, 1, None),
        (CLAIMS, 1, "lzw"),
        (CLAIMS, 2, None),
        (CLAIMS, 2, "deflate"),
        (CLAIMS, 3, "zstd"),
        ("images=abc\n", 1, None),
        ("images=4\nframes=1e400\n", 1, "lzw"),
        ("images=0\n", 2, None),
        ("images=4\nchannels=4\nmode=composite\n", 2, "lzw"),
    ],
)
def test_imagej_metadata_claiming_other_images_reads_those_the_file_holds(images, caplog, claims, pages, compression):
    data = np.stack([tissue(i) for i in range(pages)])
    tifffile.imwrite(
        images / "m.tif", data, description=f"ImageJ=1.53t\n{claims}", metadata=None, compression=compression,
        photometric="minisblack",
    )  # fmt: skip
    image = io.read_image(images / "m.tif")
    np.testing.assert_array_equal(image.array, data.squeeze())
    assert image.axes == ("ZYX" if pages > 1 else "YX")
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and r.name == "epyseg_ij.io"]
    assert len(warnings) == 1 and "ImageJ metadata" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.name == "tifffile"]


@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".TIF", ".TIFF", ".png", ".PNG", ".jpg", ".jpeg", ".JPG", ".bmp"])
def test_every_image_suffix_behaves_like_tif(capsys, tmp_path, monkeypatch, suffix):
    monkeypatch.chdir(tmp_path)
    name = f"cells{suffix}"
    if suffix.lower().startswith(".tif"):
        tifffile.imwrite(name, tissue(1), imagej=True)
    else:
        iio.imwrite(name, tissue(1), **({"quality": 100} if "jp" in suffix.lower() else {}))
    assert find_images(["."]) == [Path(name)] and find_images(["*"]) == [Path(name)]
    assert io.read_image(name).array.shape == (96, 96)
    status, text = run(capsys, "segment", ".")
    assert status == 0 and "1 segmented" in text
    assert tifffile.imread("cells/handCorrection.tif").max() == 255
    status, text = run(capsys, "segment", name, "--out", "out")
    assert status == 0 and Path("out/cells_labels.tif").exists() and Path("out/cells_outlines.tif").exists()
