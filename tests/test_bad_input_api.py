"""Bad input to the Python API, models, training and the command line: one clear error, nothing lost (issue 9).

Every family of bad input is one table; add a row to try another input. Real files, real TensorFlow, no mocks.
Permission cases run in a subprocess without root's file powers (CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped),
as the tests run as root.
"""

import ctypes
import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import tifffile
from conftest import REPO, SAMPLE

import epyseg_ij
from epyseg_ij import EpysegError, InputError, ModelError, cli, data, models
from epyseg_ij.runs import run_dir
from epyseg_ij.synth import synth_epithelium, write_dataset

TINY = dict(encoder="resnet18", tile=64, batch=2, steps_per_epoch=2, val_fraction=0, patience=None)


@pytest.fixture(scope="module")
def frame():
    return tifffile.imread(SAMPLE)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epyseg-ij: "), err
    assert "Traceback" not in err and all(f in lines[0] for f in fragments), err


def snapshot(folder) -> dict:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*")}


def _without_file_powers() -> None:
    """preexec_fn: root loses the powers that let it ignore file permissions (the child then obeys chmod)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP: applies from the next exec


def run_unprivileged(script: str, **env) -> list:
    """Run Python code that prints one JSON value, without file powers; return that value."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, cwd=REPO, preexec_fn=_without_file_powers,
        env={**os.environ, **env}, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------- item 6: every dtype and range gives the same cells


DTYPES = {
    "float64 x 1e38 (beyond float32)": lambda f: f.astype(np.float64) * 1e38,
    "float64 x 1e300": lambda f: f.astype(np.float64) * 1e300,
    "float64 from -9e307 to 9e307 (range beyond float64)": lambda f: (f.astype(np.float64) - 128) * 7e305,
    "float32 x 1e-42 (subnormal)": lambda f: f.astype(np.float32) * np.float32(1e-42),
    "float64 x 1e-320 (subnormal)": lambda f: f.astype(np.float64) * 1e-320,
    "float32 x 1e36": lambda f: f.astype(np.float32) * np.float32(1e36),
    "float16": lambda f: f.astype(np.float16),
    "int64 x 2**54": lambda f: f.astype(np.int64) * 2**54,
    "int64 near -2**62": lambda f: f.astype(np.int64) * 2**52 - 2**62,
    "uint64 x 2**56": lambda f: f.astype(np.uint64) * 2**56,
    "uint16 x 257": lambda f: f.astype(np.uint16) * 257,
    "int8": lambda f: (f.astype(np.int16) - 128).astype(np.int8),
}


@pytest.mark.parametrize("model", ["local", "classical"])
@pytest.mark.parametrize("convert", DTYPES.values(), ids=DTYPES.keys())
def test_any_dtype_and_range_gives_the_cells_of_8_bits(frame, local_model, model, convert):
    network = local_model if model == "local" else model
    reference = epyseg_ij.segment(frame, network)
    result = epyseg_ij.segment(convert(frame), network)
    assert abs(result.n_cells[0] - reference.n_cells[0]) <= 1 and reference.n_cells[0] > 50
    assert (result.outlines == reference.outlines).mean() > 0.999


@pytest.mark.parametrize("options", [{"normalization": "percentile"}, {"tta": "epyseg"}, {"invert": True}])
def test_huge_and_tiny_ranges_with_every_normalisation(frame, local_model, options):
    reference = epyseg_ij.segment(frame, local_model, **options).outlines
    for convert in (DTYPES["float64 x 1e38 (beyond float32)"], DTYPES["float32 x 1e-42 (subnormal)"]):
        assert (epyseg_ij.segment(convert(frame), local_model, **options).outlines == reference).mean() > 0.999


def test_bool_image_is_its_0_1_image(local_model):
    binary = synth_epithelium((96, 96), seed=2).outlines > 0
    reference = epyseg_ij.segment(binary.astype(np.uint8), local_model)
    assert reference.n_cells[0] > 5
    np.testing.assert_array_equal(epyseg_ij.segment(binary, local_model).outlines, reference.outlines)


@pytest.mark.parametrize("name", ["float64 x 1e38 (beyond float32)", "float32 x 1e-42 (subnormal)", "uint64 x 2**56"])
def test_training_images_are_normalised_the_same(tmp_path, name):
    sample = synth_epithelium((64, 64), seed=3)
    loaded = []
    for stem, image in (("ref", sample.image), ("conv", DTYPES[name](sample.image))):
        tifffile.imwrite(tmp_path / f"{stem}.tif", image)
        tifffile.imwrite(tmp_path / f"{stem}_mask.tif", sample.outlines)
        loaded.append(data.load_pair(data.Pair(tmp_path / f"{stem}.tif", tmp_path / f"{stem}_mask.tif", "pair")))
    np.testing.assert_allclose(loaded[1].source.image, loaded[0].source.image, atol=1e-6)


# ------------------------------------------------------------------ item 18: wrong argument types in the Python API


SEGMENT_ARGUMENTS = [
    ({"axes": 5}, "axes"),
    ({"axes": ""}, "axes"),
    ({"tile": "abc"}, "tile"),
    ({"tile": 64.5}, "tile"),
    ({"tile": True}, "tile"),
    ({"tile": float("inf")}, "tile"),
    ({"tile": 8}, "tile"),
    ({"tile": 100_000}, "tile"),
    ({"overlap": 100_000}, "overlap"),
    ({"overlap": -2}, "overlap"),
    ({"overlap": 33}, "overlap"),
    ({"tile": 64, "overlap": 128}, "overlap"),
    ({"batch": 0}, "batch"),
    ({"batch": 10**6}, "batch"),
    ({"batch": "8"}, "batch"),
    ({"min_size": -1}, "min_size"),
    ({"min_size": 1.5}, "min_size"),
    ({"progress": 5}, "progress"),
    ({"channel": "a"}, "channel"),
    ({"channel": -1}, "channel"),
    ({"channel": 1.0}, "channel"),
    ({"tta": 3}, "tta"),
    ({"tta": "max"}, "tta"),
    ({"invert": "yes"}, "invert"),
    ({"invert": 1}, "invert"),
    ({"normalization": 1}, "normalization"),
    ({"normalization": "zscore"}, "normalization"),
    ({"model": 3}, "model"),
    ({"model": 2.5}, "model"),
    ({"model": ["default"]}, "model"),
]


@pytest.mark.parametrize("options,name", SEGMENT_ARGUMENTS, ids=[str(o) for o, _ in SEGMENT_ARGUMENTS])
def test_segment_arguments_of_the_wrong_type_or_range(frame, options, name):
    options = {"model": "classical", **options}
    with pytest.raises(InputError, match=rf"^{name} must be"):
        epyseg_ij.segment(frame, **options)


@pytest.mark.parametrize(
    "image", [None, "abc", [[1, 2], [3]], object(), np.zeros((4, 4), complex), np.zeros((0, 5)), {"a": 1}]
)
def test_segment_refuses_what_is_not_an_image(image):
    with pytest.raises(InputError, match="image"):
        epyseg_ij.segment(image, "classical")


def test_tiles_too_large_for_memory_are_refused_before_any_work(local_model):
    image = np.zeros((4096, 4096), np.uint8)
    image[::2] = 255
    with pytest.raises(InputError, match="tile=2048, overlap=2048 and batch=8 send 34 Mpx to the network"):
        epyseg_ij.segment(image, local_model, tile=2048, overlap=2048)


TRAIN_ARGUMENTS = [
    ((None, "x"), {}, "data_folders"),
    (([], "x"), {}, "data_folders"),
    (([3], "x"), {}, r"data_folders\[0\]"),
    (("DATA", None), {}, "invalid model name"),
    (("DATA", 5), {}, "invalid model name"),
    (("DATA", "x"), {"epochs": "3"}, "epochs"),
    (("DATA", "x"), {"epochs": 0}, "epochs"),
    (("DATA", "x"), {"epochs": 2.5}, "epochs"),
    (("DATA", "x"), {"learning_rate": float("nan")}, "learning_rate"),
    (("DATA", "x"), {"learning_rate": float("inf")}, "learning_rate"),
    (("DATA", "x"), {"learning_rate": -1e-3}, "learning_rate"),
    (("DATA", "x"), {"learning_rate": 0}, "learning_rate"),
    (("DATA", "x"), {"learning_rate": 5.0}, "learning_rate"),
    (("DATA", "x"), {"learning_rate": "0.001"}, "learning_rate"),
    (("DATA", "x"), {"tile": 50}, "multiple of 32"),
    (("DATA", "x"), {"tile": "64"}, "tile"),
    (("DATA", "x"), {"tile": 4096}, "multiple of 32 px from 32 to 2048"),
    (("DATA", "x"), {"tile": 2048, "batch": 8}, "tile=2048 and batch=8 put 34 Mpx"),
    (("DATA", "x"), {"batch": 0}, "batch"),
    (("DATA", "x"), {"batch": 2.0}, "batch"),
    (("DATA", "x"), {"steps_per_epoch": 0}, "steps_per_epoch"),
    (("DATA", "x"), {"steps_per_epoch": 10**30}, "steps_per_epoch"),
    (("DATA", "x"), {"val_fraction": 1}, "val_fraction"),
    (("DATA", "x"), {"val_fraction": -0.1}, "val_fraction"),
    (("DATA", "x"), {"val_fraction": float("nan")}, "val_fraction"),
    (("DATA", "x"), {"patience": 0}, "patience"),
    (("DATA", "x"), {"patience": "3"}, "patience"),
    (("DATA", "x"), {"keep_best": 0}, "keep_best"),
    (("DATA", "x"), {"seed": -1}, "seed"),
    (("DATA", "x"), {"seed": 1.5}, "seed"),
    (("DATA", "x"), {"precision": "float16"}, "precision"),
    (("DATA", "x"), {"channel": "a"}, "channel"),
    (("DATA", "x"), {"invert": 1}, "invert"),
    (("DATA", "x"), {"corrected_only": "no"}, "corrected_only"),
    (("DATA", "x"), {"weights": [1, 2]}, "weights: 2 given for 1 data folder"),
    (("DATA", "x"), {"weights": [-1]}, r"weights\[0\]"),
    (("DATA", "x"), {"replay": 1}, "replay"),
    (("DATA", "x"), {"replay": "some"}, "replay"),
    (("DATA", "x"), {"overwrite": None}, "overwrite"),
    (("DATA", "x"), {"resume": "yes"}, "resume"),
    (("DATA", "x"), {"on_epoch": 5}, "on_epoch"),
    (("DATA", "x"), {"on_step": "print"}, "on_step"),
    (("DATA", "x"), {"cancel": 5}, "cancel"),
    (("DATA", "x"), {"augmentation": "strong"}, "augmentation"),
    (("DATA", "x"), {"workers": 0}, "workers"),
    (("DATA", "x"), {"base": 3}, "base"),
    (("DATA", "x"), {"encoder": ""}, "encoder"),
]


@pytest.mark.parametrize("args,options,message", TRAIN_ARGUMENTS, ids=[m for _, _, m in TRAIN_ARGUMENTS])
def test_train_settings_of_the_wrong_type_or_range(tmp_path, args, options, message):
    write_dataset(tmp_path / "data", 2, (64, 64), seed=1)
    args = [tmp_path / "data" if a == "DATA" else a for a in args]
    with pytest.raises(InputError, match=message):
        epyseg_ij.train(*args, **options)
    assert not run_dir("x").exists() and not models.user_model_path("x").exists()


def test_an_unknown_encoder_is_refused_before_the_run_folder_is_made(tmp_path):
    write_dataset(tmp_path / "data", 2, (64, 64), seed=1)
    with pytest.raises(ModelError, match="encoder 'no-such-encoder'"):
        epyseg_ij.train(tmp_path / "data", "x", encoder="no-such-encoder")
    assert not run_dir("x").exists()


def test_augmentation_values_are_checked(tmp_path):
    from epyseg_ij.augment import Augmentation

    write_dataset(tmp_path / "data", 2, (64, 64), seed=1)
    for bad, name in ((Augmentation(p_blur=2.0), "augmentation.p_blur"), (Augmentation(gamma=0.0), "gamma")):
        with pytest.raises(InputError, match=name):
            epyseg_ij.train(tmp_path / "data", "x", augmentation=bad)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: models.load(3), "model must be"),
        (lambda: models.import_model(3, "x"), "source must be"),
        (lambda: models.import_model("m.h5", 5), "name must be"),
        (lambda: models.import_model("m.h5", "x", overwrite="yes"), "overwrite must be"),
        (lambda: models.fetch(None), "not a published model"),
    ],
)
def test_model_functions_check_their_arguments(call, message):
    with pytest.raises(EpysegError, match=message):
        call()


# ------------------------------------------------- item 7: a loss that becomes NaN stops the run, nothing is lost


@pytest.fixture(scope="module")
def ta_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_input_train") / "data"
    write_dataset(folder, 2, (64, 64), seed=5)
    return folder


def _poison_checkpoint(run, encoder: str) -> None:
    """Put NaN into the weights of a run's last checkpoint, as a diverged optimizer would leave them."""
    from epyseg_ij import training
    from epyseg_ij._tf import tf

    state = json.loads((run / "state.json").read_text())
    network = training.build(models.ModelCard("", encoder=encoder))
    optimizer = training.compile_network(network, 1e-3)
    optimizer.build(network.trainable_variables)
    checkpoint = tf().train.Checkpoint(model=network, optimizer=optimizer)
    prefix = str(run / state["last"] / "ckpt")
    checkpoint.read(prefix).assert_existing_objects_matched()
    variable = network.trainable_variables[-1]
    variable.assign(np.full(variable.shape, np.nan, np.float32))
    checkpoint.write(prefix)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(ta_data):
    from epyseg_ij.errors import Cancelled, DivergedError

    steps = []
    with pytest.raises(Cancelled):  # epoch 1 (2 steps) completes, then stop
        epyseg_ij.train(
            ta_data, "diverges", epochs=3, on_step=lambda d, t: steps.append(d), cancel=lambda: len(steps) > 2, **TINY
        )
    run = run_dir("diverges")
    before = json.loads((run / "state.json").read_text())
    assert before["epoch"] == 1 and [b["epoch"] for b in before["best"]] == [1]
    _poison_checkpoint(run, TINY["encoder"])
    reports = []
    with pytest.raises(DivergedError, match="loss became nan at step 1 of epoch 2.*lower learning rate"):
        epyseg_ij.train(ta_data, "diverges", epochs=3, resume=True, on_epoch=reports.append)
    after = json.loads((run / "state.json").read_text())
    assert reports == [] and after["best"] == before["best"] and after["epoch"] == 1, "no NaN epoch is saved or best"
    assert (run / before["last"]).is_dir() and (run / before["best"][0]["file"]).is_file()
    assert not models.user_model_path("diverges").exists(), "no broken model is saved"


# ------------------------------------------------------------------- item 8: masks that hold no cells are left out


def _framed(shape=(64, 64)):
    mask = np.zeros(shape, np.uint8)
    mask[[0, -1], :] = mask[:, [0, -1]] = 255
    return mask


def _dot(shape=(64, 64)):
    mask = np.zeros(shape, np.uint8)
    mask[30, 30] = 255
    return mask


EMPTY_MASKS = {
    "all 255": lambda: np.full((64, 64), 255, np.uint8),
    "all 0": lambda: np.zeros((64, 64), np.uint8),
    "all 1": lambda: np.ones((64, 64), np.uint8),
    "all True": lambda: np.ones((64, 64), bool),
    "all 1.0 float32": lambda: np.ones((64, 64), np.float32),
    "all 65535 uint16": lambda: np.full((64, 64), 65535, np.uint16),
    "one label everywhere": lambda: np.full((64, 64), 7, np.int32),
    "RGB all white": lambda: np.full((64, 64, 3), 255, np.uint8),
    "only Tissue Analyzer's frame": _framed,
    "a single boundary pixel": _dot,
}


@pytest.mark.parametrize("make", EMPTY_MASKS.values(), ids=EMPTY_MASKS.keys())
def test_a_mask_without_cells_is_refused_naming_the_file(tmp_path, make):
    write_dataset(tmp_path, 1, (64, 64), seed=2)
    tifffile.imwrite(tmp_path / "synth_000" / "handCorrection.tif", make())
    with pytest.raises(InputError, match=r"no mask holds cells.*handCorrection.tif") as error:
        data.load_pairs(data.find_pairs([tmp_path]))
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match="no mask holds cells"):
        epyseg_ij.train(tmp_path, "empty-masks", **TINY)
    assert not run_dir("empty-masks").exists()


def test_masks_without_cells_are_left_out_with_a_warning(ta_data, tmp_path, caplog):
    folder = tmp_path / "data"
    write_dataset(folder, 3, (64, 64), seed=5)
    tifffile.imwrite(folder / "synth_001" / "handCorrection.tif", np.full((64, 64), 255, np.uint8))
    result = epyseg_ij.train(folder, "skips-empty", epochs=1, **TINY)
    assert result.card.provenance["images"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("synth_001" in w and "handCorrection.tif" in w and "uniform" in w for w in warnings), warnings


# --------------------------------------------------------------------------- items 12 and 13: model cards


BAD_CARDS = {
    "a JSON list": ("[]", "must be a JSON object, not a list"),
    "a JSON string": ('"abc"', "must be a JSON object, not a str"),
    "a JSON number": ("5", "must be a JSON object, not a int"),
    "null": ("null", "must be a JSON object, not a NoneType"),
    "not JSON": ("{", "not valid JSON"),
    "nested 100000 deep": ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    "provenance nested 100000 deep": ('{"provenance": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001, "not valid JSON"),
    "tile: 'abc'": ('{"tile": "abc"}', "card field 'tile' must be an integer"),
    "tile: 64.5": ('{"tile": 64.5}', "card field 'tile'"),
    "tile: true": ('{"tile": true}', "card field 'tile'"),
    "tile: 8": ('{"tile": 8}', "card field 'tile'"),
    "tile: 1e9": ('{"tile": 1000000000}', "card field 'tile'"),
    "overlap: -2": ('{"overlap": -2}', "card field 'overlap'"),
    "overlap: 33": ('{"overlap": 33}', "card field 'overlap' must be even"),
    "overlap above tile": ('{"tile": 64, "overlap": 128}', "card field 'overlap'"),
    "max_cell_diameter: 'big'": ('{"max_cell_diameter": "big"}', "card field 'max_cell_diameter'"),
    "max_cell_diameter: 2": ('{"max_cell_diameter": 2}', "card field 'max_cell_diameter'"),
    "max_cell_diameter: true": ('{"max_cell_diameter": true}', "card field 'max_cell_diameter'"),
    "encoder: 5": ('{"encoder": 5}', "card field 'encoder'"),
    "encoder: ''": ('{"encoder": ""}', "card field 'encoder'"),
    "outputs: 'x'": ('{"outputs": "x"}', "card field 'outputs'"),
    "n_outputs: '7'": ('{"n_outputs": "7"}', "card field 'n_outputs'"),
    "n_outputs: 3 with epyseg7": ('{"n_outputs": 3}', "epyseg7 outputs with 3 channels"),
    "input_channels: 0": ('{"input_channels": 0}', "card field 'input_channels'"),
    "normalization: 'zscore'": ('{"normalization": "zscore"}', "card field 'normalization'"),
    "provenance: a list": ('{"provenance": []}', "card field 'provenance'"),
    "name: 5": ('{"name": 5}', "card field 'name'"),
}


def _card_file(path, text: str):
    with h5py.File(path, "w") as f:
        f.attrs[models.CARD_ATTR] = text
    return path


@pytest.mark.parametrize("text,message", BAD_CARDS.values(), ids=BAD_CARDS.keys())
def test_a_bad_model_card_is_a_model_error_naming_file_and_field(tmp_path, frame, text, message):
    path = _card_file(tmp_path / "bad.h5", text)
    for call in (
        lambda: models.read_card(path),
        lambda: epyseg_ij.segment(frame, path),
        lambda: models.import_model(path, "imported-bad"),
    ):
        with pytest.raises(ModelError, match=str(path)) as error:
            call()
        assert message in str(error.value) and "\n" not in str(error.value)
    assert not models.user_model_path("imported-bad").exists()


def test_models_list_skips_bad_cards_with_a_warning(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("EPYSEG_IJ_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    for i, (text, _) in enumerate(BAD_CARDS.values()):
        _card_file(tmp_path / "models" / f"bad{i}.h5", text)
    (tmp_path / "models" / "junk.h5").write_bytes(b"junk")
    names = [m.name for m in models.list_models()]
    assert names == ["default", "classical", *models.PRETRAINED]
    assert sum("skipping" in r.getMessage() for r in caplog.records) == len(BAD_CARDS) + 1
    status, out, _ = run_cli(capsys, "models", "list")
    assert status == 0 and "Linknet-vgg16-sigmoid-v2" in out and "bad0" not in out


def test_cli_segment_with_a_bad_card_is_one_line(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((32, 32), np.uint8))
    model = _card_file(tmp_path / "bad.h5", '{"tile": "abc"}')
    before = snapshot(tmp_path)
    status, _, err = run_cli(capsys, "segment", tmp_path / "x.tif", "--model", model)
    assert status == 2 and snapshot(tmp_path) == before
    assert_one_line(err, str(model), "card field 'tile'")


# ---------------------------------------------------------- item 14: model files that cannot be read or written


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A real Linknet-resnet18 model file with a card (the fastest encoder to build)."""
    network = models.build_linknet("resnet18", 7)
    card = models.ModelCard("small", encoder="resnet18", provenance=models.stamp(source="tests"))
    return models.save_model(network, tmp_path_factory.mktemp("small") / "small.h5", card)


@pytest.mark.parametrize("blocked", ["home", "home/models"])
def test_model_store_where_a_file_is_in_the_way(tmp_path, monkeypatch, small_model, blocked):
    """A file where the model store's folder should be: import, save and list give one ModelError line."""
    blocker = tmp_path / blocked.replace("/", "_")
    blocker.write_text("a file, not a folder")
    home = blocker / "home" if blocked == "home" else tmp_path / "home"
    if blocked != "home":
        home.mkdir()
        os.replace(blocker, home / "models")
    monkeypatch.setenv("EPYSEG_IJ_HOME", str(home))
    with pytest.raises(ModelError, match="cannot import the model: .*(Not a directory|File exists)"):
        models.import_model(small_model, "blocked")
    with pytest.raises(ModelError, match="cannot save the model"):
        models.save_model(models.load(small_model).keras, models.user_model_path("blocked"), models.ModelCard("b"))
    assert [m.name for m in models.list_models()] == ["default", "classical", *models.PRETRAINED]


def test_unreadable_and_read_only_model_files_without_root_powers(tmp_path, small_model):
    home, keras_home = tmp_path / "home", tmp_path / "user"
    (home / "models").mkdir(parents=True)
    (keras_home / ".keras" / "epyseg").mkdir(parents=True)
    locked = tmp_path / "locked.h5"
    locked.write_bytes(small_model.read_bytes())
    locked.chmod(0)
    (home / "models").chmod(0o555)
    (keras_home / ".keras" / "epyseg").chmod(0)
    try:
        results = run_unprivileged(
            f"""
            import contextlib, io, json
            from epyseg_ij import _tf, cli, models

            _tf.sm()  # its import banner is not what this test is about

            offline = models.Pretrained("Linknet-vgg16-sigmoid", "http://127.0.0.1:9/m.h5", "0" * 32, "offline")
            models.PRETRAINED[offline.name] = offline
            results = []
            for argv in (["models", "import", {str(small_model)!r}, "--name", "ro"],
                         ["models", "fetch", offline.name],
                         ["models", "info", {str(locked)!r}],
                         ["models", "list"]):
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    status = cli.main(argv)
                results.append([status, err.getvalue()])
            print(json.dumps(results))
            """,
            EPYSEG_IJ_HOME=str(home), HOME=str(keras_home),
        )  # fmt: skip
    finally:
        (home / "models").chmod(0o755)
        (keras_home / ".keras" / "epyseg").chmod(0o755)
    (imported, fetched, info, listed) = results
    assert imported[0] == 2
    assert_one_line(imported[1], "cannot import the model", "Permission denied")
    assert fetched[0] == 2 and "http://127.0.0.1:9/m.h5" in fetched[1] and "Traceback" not in fetched[1]
    assert fetched[1].strip().splitlines()[-1].startswith("epyseg-ij: error: could not download")
    assert info[0] == 2
    assert_one_line(info[1], str(locked), "not a readable Keras .h5 model")
    assert listed[0] == 0 and "Traceback" not in listed[1]
    assert not list((home / "models").iterdir())


# ------------------------------------------------------ item 17: tile, overlap, batch and min_size on every path


CLI_OPTIONS = [
    (["--overlap", "100000"], "overlap must be"),
    (["--overlap", "33"], "overlap"),
    (["--tile", "100000"], "tile must be"),
    (["--tile", "8"], "tile must be"),
    (["--batch", "0"], "batch must be"),
    (["--batch", "100000"], "batch must be"),
    (["--min-size", "-1"], "min_size must be"),
    (["--channel", "0"], "--channel counts from 1"),
]


@pytest.mark.parametrize("options,message", CLI_OPTIONS, ids=[" ".join(o) for o, _ in CLI_OPTIONS])
def test_cli_tiling_options_are_one_line_and_write_nothing(tmp_path, capsys, options, message):
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((32, 32), np.uint8))
    before = snapshot(tmp_path)
    status, _, err = run_cli(capsys, "segment", tmp_path / "x.tif", "--model", "classical", *options)
    assert status == 2 and snapshot(tmp_path) == before
    assert_one_line(err, message)


@pytest.fixture(scope="module")
def imagej(private_home):
    from epyseg_ij import ij

    return ij.start()


MACRO_OPTIONS = [  # what ImageJ's option parser lets through reaches the engine's checks
    ("overlap=100000", "overlap must be"),
    ("overlap=3", "overlap must be even"),
    ("tile=100000", "tile must be"),
    ("tile=8", "tile must be"),
    ("batch=5000", "batch must be"),
    ("minimum=-1", "minimum"),
]


@pytest.mark.parametrize("option,message", MACRO_OPTIONS)
def test_macro_tiling_options_are_one_line_macro_errors(imagej, option, message):
    from ij import IJ

    from epyseg_ij import ij

    code = f'newImage("g", "8-bit ramp", 64, 64, 1); run("EPySeg Segment", "model=classical {option}"); return "x";'
    assert IJ.runMacro(code, "") is None
    error = ij.get_service().last_error or ""
    assert message in error and "\n" not in error


# ------------------------------------------------------------------- the CLI: no traceback for the user's problems


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["segment"], ["segment", "x.tif", "--tile", "abc"], ["segment", "x.tif", "--tta", "max"],
     ["train", "--name", "x"], ["train", "--data", "d", "--name", "x", "--epochs", "1.5"], ["models"],
     ["models", "import", "m.h5"], ["evaluate", "a.tif"], ["synth", "out", "--size", "64"]],
)  # fmt: skip
def test_cli_usage_errors_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("epyseg-ij") and ": error: " in err and "--help" in err


def _open_missing(args):
    return open(args.inputs[0] + "/missing/file.tif")


def _huge(args):
    return bytearray(1 << 60)


def _nested(args):
    return json.loads("[" * 100_000 + "]" * 100_000)


def _bug(args):
    return {}["no such key"]


def _enospc(args):
    import errno

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), args.inputs[0])


# What no layer below turns into an EpysegError reaches ``main``'s safety net: real errors from a real sub-command.
SAFETY_NET = [
    (_open_missing, 1, ["error:", "missing/file.tif", "No such file or directory"]),
    (_enospc, 1, ["error:", "XDIR", "No space left on device"]),
    (_huge, 1, ["error: out of memory"]),
    (_nested, 1, ["error: input nested too deeply"]),
    (_bug, 1, ["internal error: KeyError", "run with -v for details"]),
]


@pytest.mark.parametrize("run,status,fragments", SAFETY_NET, ids=[r.__name__ for r, _, _ in SAFETY_NET])
def test_cli_safety_net_is_one_line_and_traceback_only_with_v(tmp_path, capsys, monkeypatch, run, status, fragments):
    add, _ = cli.COMMANDS["segment"]
    monkeypatch.setitem(cli.COMMANDS, "segment", (add, run))
    fragments = [f.replace("XDIR", str(tmp_path)) for f in fragments]
    got, _, err = run_cli(capsys, "segment", tmp_path)
    assert got == status
    assert_one_line(err, *fragments)
    got, _, err = run_cli(capsys, "-v", "segment", tmp_path)
    assert got == status and "Traceback" in err, "-v shows the details"
    assert err.strip().splitlines()[-1].startswith("epyseg-ij: ") and "run with -v" not in err


def test_cli_output_into_a_closed_pipe_is_quiet():
    read, write = os.pipe()
    os.close(read)  # e.g. `epyseg-ij models list | head -0`: the reader has gone before anything is written
    try:
        result = subprocess.run(
            [sys.executable, "-c", "import sys; from epyseg_ij import cli; sys.exit(cli.main(['models', 'list']))"],
            stdout=write, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=300,
        )  # fmt: skip
    finally:
        os.close(write)
    assert result.returncode == 1 and result.stderr == ""


def test_cli_full_disk_is_one_line_naming_the_file(tmp_path):
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from epyseg_ij import cli
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit: EFBIG, as a full disk gives ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        sys.exit(cli.main(["synth", {str(tmp_path / "out")!r}, "--n", "1", "--size", "128", "128"]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode in (1, 2)
    assert_one_line(result.stderr, "error:", str(tmp_path / "out"))
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()], "no half-written file"


def test_cli_out_of_memory_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(capsys, "synth", tmp_path / "big", "--n", "1", "--size", "10000000", "10000000")
    assert status == 1
    assert_one_line(err, "out of memory")
    assert not list(tmp_path.rglob("*.tif"))


def test_cli_train_into_a_blocked_home_is_one_line(tmp_path, monkeypatch, capsys, ta_data):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("EPYSEG_IJ_HOME", str(blocker / "home"))
    status, _, err = run_cli(capsys, "train", "--data", ta_data, "--name", "blocked", "--tile", "64", "--epochs", "1")
    assert status == 2
    lines = [line for line in err.strip().splitlines() if not line.startswith("WARNING")]
    assert_one_line("\n".join(lines), "cannot start the training run", "Not a directory")


@pytest.mark.parametrize(
    "state", ["[" * 100_000 + "]" * 100_000, "[]", '{"epoch": "3"}', '{"settings": [], "epoch": 1}', "\x00"]
)
def test_cli_resume_with_a_broken_training_state_is_one_line(tmp_path, capsys, ta_data, state):
    run = run_dir("broken-state")
    run.mkdir(parents=True, exist_ok=True)
    (run / "state.json").write_text(state)
    status, _, err = run_cli(capsys, "train", "--data", ta_data, "--name", "broken-state", "--resume")
    assert status == 2
    assert_one_line(err, str(run / "state.json"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--learning-rate", "nan"], "learning_rate must be a finite number > 0"),
        (["--learning-rate", "-0.001"], "learning_rate"),
        (["--epochs", "0"], "epochs must be"),
        (["--val-fraction", "1.5"], "val_fraction"),
        (["--patience", "-1"], "patience"),
        (["--seed", "-5"], "seed"),
        (["--steps", "0"], "steps_per_epoch"),
        (["--tile", "4096"], "training tile"),
        (["--weights", "1", "2"], "weights: 2 given for 1 data folder"),
        (["--replay", "-0.5"], "replay"),
    ],
)
def test_cli_train_settings_are_one_line_and_write_nothing(capsys, ta_data, args, message):
    status, _, err = run_cli(capsys, "train", "--data", ta_data, "--name", "cli-bad", *args)
    assert status == 2 and not run_dir("cli-bad").exists()
    assert_one_line(err, message)
