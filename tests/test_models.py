"""Models: save/load round trips with Keras and EPySeg layouts, cards, registry, downloads (real HTTP on localhost)."""

import hashlib

import h5py
import numpy as np
import pytest

from epyseg_ij import models
from epyseg_ij.errors import Cancelled, InputError, ModelError


@pytest.fixture(scope="module")
def network():
    from epyseg_ij._tf import tf

    tf().keras.utils.set_random_seed(1)
    return models.build_linknet("vgg16", 7)


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).random((1, 64, 64, 1)).astype(np.float32)


def test_round_trip_with_card_and_float16(tmp_path, network, batch):
    card = models.ModelCard("mine", normalization="percentile", tile=128, provenance={"by": "test"})
    path = models.save_model(network, tmp_path / "mine.h5", card)
    loaded = models.load(path)
    assert loaded.card == card
    np.testing.assert_array_equal(loaded.predict_batch(batch), network.predict(batch, verbose=0))
    half = models.save_model(network, tmp_path / "half.h5", card, dtype="float16")
    assert half.stat().st_size < 0.55 * path.stat().st_size
    np.testing.assert_allclose(models.load(half).predict_batch(batch), loaded.predict_batch(batch), atol=1e-3)
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave nothing behind


def test_keras_and_epyseg_files_load_and_ours_load_in_keras(tmp_path, network, batch):
    expected = network.predict(batch, verbose=0)
    network.save_weights(tmp_path / "weights_only.h5")
    network.save(tmp_path / "full_model.h5")
    for name in ("weights_only.h5", "full_model.h5"):
        loaded = models.load(tmp_path / name)
        assert loaded.card.outputs == "epyseg7" and loaded.card.encoder == "vgg16"
        assert loaded.card.provenance["card"] == "inferred from the weights"
        np.testing.assert_allclose(loaded.predict_batch(batch), expected, atol=1e-6)
    ours = models.save_model(network, tmp_path / "ours.h5", models.ModelCard("ours"))
    keras_side = models.build_linknet("vgg16", 7)
    keras_side.load_weights(ours)  # what EPySeg does with a weights file
    np.testing.assert_allclose(keras_side.predict(batch, verbose=0), expected, atol=1e-6)


def test_loading_never_deserialises_code(tmp_path, network):
    path = tmp_path / "full.h5"
    network.save(path)
    with h5py.File(path, "r+") as f:  # a config that would run code if it were deserialised
        f.attrs["model_config"] = '{"class_name": "Lambda", "config": {"function": "evil"}}'
    assert models.load(path).card.encoder == "vgg16"


def test_bad_files_are_clear_errors(tmp_path, network):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(500))
    with pytest.raises(ModelError, match="not a readable Keras .h5 model"):
        models.load(corrupt)
    other = models.build_linknet("vgg16", 1)
    path = models.save_model(other, tmp_path / "one.h5", models.ModelCard("one", outputs="bonds", n_outputs=1))
    with h5py.File(path, "r+") as f:  # a card that lies about the outputs
        f.attrs[models.CARD_ATTR] = models.ModelCard("one").to_json()
    with pytest.raises(ModelError, match="wrong shapes"):
        models.load(path)
    with pytest.raises(ModelError, match="not found"):
        models.load(tmp_path / "missing.h5")
    with pytest.raises(ModelError, match="encoder"):
        models.build_linknet("no-such-encoder")


def test_import_list_and_load_by_name(tmp_path, network, batch):
    network.save_weights(tmp_path / "from_epyseg.h5")
    target = models.import_model(tmp_path / "from_epyseg.h5", "wing")
    assert target == models.user_model_path("wing")
    assert "wing" in [m.name for m in models.list_models() if m.kind == "user"]
    np.testing.assert_allclose(models.load("wing").predict_batch(batch), network.predict(batch, verbose=0), atol=1e-6)
    with pytest.raises(InputError, match="already exists"):
        models.import_model(tmp_path / "from_epyseg.h5", "wing")
    with pytest.raises(InputError, match="invalid model name"):
        models.user_model_path("../escape")


def published(server, network, tmp_path, md5=None):
    root, url = server
    path = models.save_model(network, root / "model.h5", models.ModelCard("x"))
    digest = md5 or hashlib.md5(path.read_bytes()).hexdigest()
    return models.Pretrained("Test-model", f"{url}/model.h5", digest, "test")


def test_download_once_and_check_md5(server, network, tmp_path):
    entry = published(server, network, tmp_path)
    path = models.download(entry, tmp_path / "cache")
    assert models.md5sum(path) == entry.md5 and path.parent == tmp_path / "cache"
    (server[0] / "model.h5").unlink()  # the second call must not need the network
    assert models.download(entry, tmp_path / "cache") == path


def test_download_progress_and_cancel(server, network, tmp_path):
    """A download reports its bytes to a callback (ImageJ's progress bar); raising Cancelled from it keeps nothing."""
    entry = published(server, network, tmp_path)
    size = (server[0] / "model.h5").stat().st_size
    seen = []
    path = models.download(entry, tmp_path / "cache", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (size, size) and all(b >= a for (a, _), (b, _) in zip(seen, seen[1:], strict=False))
    assert models.md5sum(path) == entry.md5

    def cancel(done, total):
        raise Cancelled("download cancelled")

    with pytest.raises(Cancelled, match="download cancelled"):
        models.download(entry, tmp_path / "other", progress=cancel)
    assert not list((tmp_path / "other").glob("*"))


def test_md5_mismatch_is_refused_and_nothing_kept(server, network, tmp_path):
    entry = published(server, network, tmp_path, md5="0" * 32)
    with pytest.raises(ModelError, match=r"could not download Test-model from http://127.0.0.1.*put it at .*md5 0{32}"):
        models.download(entry, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.h5"))


def test_offline_error_names_url_and_where_to_put_the_file(tmp_path):
    entry = models.Pretrained("Offline", "http://127.0.0.1:9/model.h5", "0" * 32, "unreachable")
    with pytest.raises(ModelError) as error:
        models.download(entry, tmp_path)
    assert "http://127.0.0.1:9/model.h5" in str(error.value) and str(tmp_path / "Offline.h5") in str(error.value)


def test_published_model_reused_from_epyseg_cache(monkeypatch, tmp_path, network, batch):
    monkeypatch.setenv("HOME", str(tmp_path))
    name = "Linknet-vgg16-sigmoid-v2"
    path = models.epyseg_cache_path(name)
    models.save_model(network, path, models.ModelCard(name))
    offline = models.Pretrained(name, "http://127.0.0.1:9/unreachable.h5", models.md5sum(path), "test")
    monkeypatch.setitem(models.PRETRAINED, name, offline)
    assert models.fetch(name) == path
    assert models.load(name).card.name == name


def test_any_segmentation_models_encoder_builds_with_one_input_channel():
    network = models.build_linknet("seresnet18", 7)
    assert network.input_shape == (None, None, None, 1) and network.output_shape == (None, None, None, 7)
    assert network.layers[-1].activation.__name__ == "sigmoid"
    out = network.predict(np.zeros((1, 64, 64, 1), np.float32), verbose=0)
    assert out.shape == (1, 64, 64, 7) and 0 <= out.min() and out.max() <= 1


def test_cardless_file_of_another_encoder_imports_with_encoder(tmp_path):
    network = models.build_linknet("resnet18", 1)
    network.save_weights(tmp_path / "r18.h5")
    with pytest.raises(ModelError, match="--encoder"):
        models.load(tmp_path / "r18.h5")
    models.import_model(tmp_path / "r18.h5", "r18-bonds", encoder="resnet18")
    card = models.load("r18-bonds").card
    assert (card.encoder, card.outputs, card.n_outputs) == ("resnet18", "bonds", 1)
    with pytest.raises(ModelError, match="not a readable"):
        (tmp_path / "junk.h5").write_bytes(b"junk")
        models.import_model(tmp_path / "junk.h5", "junk", encoder="resnet18")
