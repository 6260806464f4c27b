"""Models: build Linknets, find them by name, download EPySeg's published weights, load and save .h5 files.

A model is one HDF5 file of weights in the Keras-2 layout (what EPySeg and ``model.load_weights`` read) plus a small
JSON *card* stored in the file's attributes, which tells prediction how to decode the outputs. Files are never
deserialised as Keras models: the network is built by this code and only weight arrays are read, so a file cannot
run code. Full-model .h5 files saved by EPySeg or Keras work the same way (their ``model_weights`` group is read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import threading
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pooch

from . import checks
from ._tf import sm, tf
from .cards import CARD_ATTR, ModelCard
from .errors import Cancelled, InputError, ModelError, first_line

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
CLASSICAL_MODEL = "classical"


@dataclass(frozen=True)
class Pretrained:
    """A published EPySeg model: where to download it and how to check it."""

    name: str
    url: str
    md5: str
    description: str
    encoder: str = "vgg16"
    n_outputs: int = 7

    def card(self) -> ModelCard:
        return ModelCard(
            name=self.name,
            encoder=self.encoder,
            n_outputs=self.n_outputs,
            outputs="epyseg7" if self.n_outputs == 7 else "bonds",
            provenance={"source": self.url, "md5": self.md5, "origin": "EPySeg (Aigouy et al. 2020)"},
        )


_GITLAB = "https://gitlab.com/baigouy/models/raw/master/"
PRETRAINED = {
    p.name: p
    for p in (
        Pretrained(
            "Linknet-vgg16-sigmoid-v2",
            _GITLAB + "model_linknet-vgg16_shells_v2.h5",
            "98c8a51f3365e77c07a4f9e95669c259",
            "EPySeg's default published model (v2)",
        ),
        Pretrained(
            "Linknet-vgg16-sigmoid",
            _GITLAB + "model_linknet-vgg16_shells.h5",
            "266ca9acd9d7a4fe74a473e17952fb6c",
            "EPySeg's first published model (v1)",
        ),
    )
}


@dataclass(frozen=True)
class ModelInfo:
    """One line of ``epyseg-ij models list``."""

    name: str
    kind: str  # "shipped", "pretrained", "user", "classical"
    available: bool
    description: str


@dataclass
class Model:
    """A loaded network with its card.

    The Keras network of a model loaded with ``build=False`` is built from its file on first use of ``keras``.
    ``compiled`` holds the network compiled for other backends (see ``backends``), by backend.
    """

    _keras: Any  # None for the classical baseline, and until a model file's network is built
    card: ModelCard
    path: Path | None
    _compiled: Any = field(default=None, repr=False)
    compiled: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def keras(self) -> Any:
        """The Keras network (None for the classical baseline), built from the model file if it is not yet."""
        return self.build()._keras

    @property
    def classical(self) -> bool:
        """True for the classical baseline, which has no network."""
        return self._keras is None and self.path is None

    def build(self) -> Model:
        """Build the Keras network from the model file (checking its weights) if it is not yet; return the model."""
        if self._keras is None and self.path is not None:
            with _building:
                if self._keras is None:
                    self._keras = _network(self.path, self.card)
        return self

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """Network outputs (N, H, W, C) for a float32 batch (N, H, W, 1); H and W multiples of 32."""
        if self._compiled is None:
            spec = tf().TensorSpec([None, None, None, self.card.input_channels], tf().float32)
            self._compiled = tf().function(lambda x: self.keras(x, training=False), input_signature=[spec])
        try:
            return self._compiled(batch).numpy()
        except tf().errors.ResourceExhaustedError:
            raise InputError(
                f"out of memory running the network on {batch.shape[0]} tiles of {batch.shape[2]}x{batch.shape[1]} "
                "px: use a smaller tile or batch"
            ) from None


# ---------------------------------------------------------------------------------------------------------- places


@contextmanager
def model_files(action: str):
    """Turn an ``OSError`` of model file I/O (permissions, full disk, a file where a folder should be) into one
    ``ModelError`` line naming the file; usable as a decorator."""
    try:
        yield
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        raise ModelError(f"cannot {action}: {where}{error.strerror or first_line(error)}") from None


def home() -> Path:
    """The cache directory: ``$EPYSEG_IJ_HOME`` or the per-user cache (e.g. ``~/.cache/epyseg-ij``)."""
    return Path(os.environ.get("EPYSEG_IJ_HOME") or pooch.os_cache("epyseg-ij")).expanduser()


def user_model_path(name: str) -> Path:
    """Where the user model called ``name`` lives."""
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise InputError(f"invalid model name {name!r}: use a plain name such as 'wing-disc-v1'")
    return home() / "models" / f"{name}.h5"


def shipped_model_path() -> Path:
    """The default model that ships inside the package."""
    return Path(str(resources.files("epyseg_ij") / "data" / "default.h5"))


def epyseg_cache_path(name: str) -> Path:
    """Where EPySeg itself caches a published model."""
    return Path.home() / ".keras" / "epyseg" / f"{name}.h5"


# ------------------------------------------------------------------------------------------------------ registry


@model_files("list the models")
def list_models() -> list[ModelInfo]:
    """All models known by name: the shipped default, EPySeg's published ones, the user's own.

    A file in the user store that is not a usable model is left out with a warning.
    """
    infos = [
        ModelInfo(DEFAULT_MODEL, "shipped", shipped_model_path().exists(), "epyseg-ij's default model"),
        ModelInfo(CLASSICAL_MODEL, "classical", True, "ridge filter + seeded watershed (no network)"),
    ]
    for p in PRETRAINED.values():
        infos.append(ModelInfo(p.name, "pretrained", _cached_pretrained(p) is not None, p.description))
    for path in sorted((home() / "models").glob("*.h5")):
        try:
            card = read_card(path)
        except ModelError as error:
            log.warning("skipping %s: %s", path, error)
            continue
        infos.append(ModelInfo(path.stem, "user", True, card.provenance.get("description", card.encoder)))
    return infos


@model_files("find the model")
def resolve(model: str | os.PathLike | None) -> Path:
    """The .h5 file behind a model name or path, downloading a published model if needed."""
    checks.instance("model", model, (str, os.PathLike))
    name = DEFAULT_MODEL if model is None else str(model)
    if name == DEFAULT_MODEL:
        path = shipped_model_path()
        if not path.exists():
            raise ModelError(f"the default model is missing from the installation ({path}); reinstall epyseg-ij")
        return path
    if name in PRETRAINED:
        return fetch(name)
    path = Path(name).expanduser()
    if path.suffix.lower() == ".h5" or path.exists():
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path
    user = user_model_path(name)
    if user.exists():
        return user
    known = ", ".join(i.name for i in list_models())
    raise ModelError(f"unknown model {name!r}; known models: {known} (or give a path to an .h5 file)")


def describe(model: str | os.PathLike) -> dict[str, Any]:
    """A model's card with its file (``path``), by name or path; a published model is not downloaded for it.

    Examples
    --------
    >>> describe("default")["encoder"]  # doctest: +SKIP
    'vgg16'
    """
    name = str(model)
    if name == CLASSICAL_MODEL:
        return {"name": name, "outputs": "bonds", "description": "ridge filter + seeded watershed (no network)"}
    if name in PRETRAINED and not is_downloaded(name):
        card, where = PRETRAINED[name].card(), f"not downloaded yet ({PRETRAINED[name].url})"
    else:
        path = resolve(model)
        card, where = read_card(path), str(path)
    return {"path": where, **json.loads(card.to_json())}


@model_files("fetch the model")
def fetch(name: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Path to a published EPySeg model, downloaded once into the cache (or reused from EPySeg's own cache).

    ``progress(bytes_done, bytes_total)`` follows a download (default: a text progress bar on stderr).
    """
    if name not in PRETRAINED:
        raise ModelError(f"{name!r} is not a published model; published: {', '.join(PRETRAINED)}")
    pretrained = PRETRAINED[name]
    return _cached_pretrained(pretrained) or download(pretrained, home() / "pretrained", progress)


def is_downloaded(name: str) -> bool:
    """True when the published model ``name`` is in the cache (or in EPySeg's), so using it needs no download."""
    return name in PRETRAINED and _cached_pretrained(PRETRAINED[name]) is not None


def download(pretrained: Pretrained, folder: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Download a published model into ``folder`` and check its md5; one clear error if that fails.

    ``progress(bytes_done, bytes_total)`` is called for every chunk; raising from it (``Cancelled``) stops the
    download and keeps nothing.
    """
    checks.function("progress", progress)
    target = folder / f"{pretrained.name}.h5"
    bar = True if progress is None else _ByteProgress(progress)
    try:
        fetched = pooch.retrieve(
            pretrained.url,
            known_hash=f"md5:{pretrained.md5}",
            fname=target.name,
            path=folder,
            # GitLab refuses requests that look like scripts.
            downloader=pooch.HTTPDownloader(headers={"User-Agent": "Mozilla/5.0"}, progressbar=bar, timeout=30),
        )
    except Cancelled:
        raise
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(
            f"could not download {pretrained.name} from {pretrained.url} ({reason[:200]}); "
            f"download it by hand and put it at {target} (md5 {pretrained.md5})"
        ) from None
    return Path(fetched)


class _ByteProgress:
    """The progress-bar object pooch drives (``total``, ``update``, ``reset``, ``close``), reported to a callback."""

    def __init__(self, progress: Callable[[int, int], None]):
        self.progress = progress
        self.total = 0
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n
        total = self.total or self.done  # servers may not send a length
        self.progress(min(self.done, total), total)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass


def _cached_pretrained(pretrained: Pretrained) -> Path | None:
    for path in (home() / "pretrained" / f"{pretrained.name}.h5", epyseg_cache_path(pretrained.name)):
        try:
            if path.is_file() and md5sum(path) == pretrained.md5:
                return path
        except OSError as error:  # an unreadable cache is no cache
            log.warning("cannot read %s (%s): not using it", path, error.strerror or error)
    return None


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------- build/load


def build_linknet(encoder: str = "vgg16", n_outputs: int = 7, input_channels: int = 1):
    """A segmentation-models Linknet with sigmoid outputs and no ImageNet weights.

    Examples
    --------
    >>> build_linknet("vgg16", 7).output_shape
    (None, None, None, 7)
    """
    try:
        return sm().Linknet(
            encoder,
            encoder_weights=None,
            input_shape=(None, None, input_channels),
            classes=n_outputs,
            activation="sigmoid",
        )
    except (ValueError, KeyError) as error:
        raise ModelError(f"cannot build a Linknet with encoder {encoder!r}: {error}") from None


@model_files("load the model")
def load(model: str | os.PathLike | Model | None = None, build: bool = True) -> Model:
    """Load a model by name (``default``, a published or user model) or from an .h5 path.

    With ``build=False`` only its card is read: the Keras network (and TensorFlow) waits for its first use.
    """
    checks.instance("model", model, (str, os.PathLike, Model))
    if isinstance(model, Model):
        return model
    if str(model) == CLASSICAL_MODEL:
        return Model(None, ModelCard(CLASSICAL_MODEL, encoder="none", outputs="bonds", n_outputs=1), None)
    path = resolve(model).resolve()
    loaded = _load_cached(path, path.stat().st_mtime_ns)
    return loaded.build() if build else loaded


@lru_cache(maxsize=2)
def _load_cached(path: Path, mtime_ns: int) -> Model:
    return Model(None, read_card(path), path)


_building = threading.Lock()


def _network(path: Path, card: ModelCard):
    """The Keras network of a model file, built and given its weights."""
    network = build_linknet(card.encoder, card.n_outputs, card.input_channels)
    load_weights(network, path)
    log.info("loaded model %s from %s", card.name, path)
    return network


def read_card(path: Path, encoder: str | None = None) -> ModelCard:
    """The card of an .h5 model file; inferred from the weights for files saved by EPySeg or plain Keras.

    ``encoder`` names the encoder of a file without a card when it is not EPySeg's VGG16 (which is recognised).
    """
    try:
        with h5py.File(path, "r") as f:
            if CARD_ATTR in f.attrs and encoder is None:
                return ModelCard.from_json(_text(f.attrs[CARD_ATTR]), str(path), path.stem)
            names, shapes = _weight_layout(f)
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ModelError(f"{path} is not a readable Keras .h5 model ({first_line(error)})") from None
    for p in PRETRAINED.values():
        if path.name == f"{p.name}.h5" and encoder is None:
            return p.card()
    if not names:
        raise ModelError(f"{path} holds no weights")
    if encoder is None and ("block5_conv3" not in names or "block5_conv4" in names):
        raise ModelError(
            f"cannot tell the encoder of {path}; import it with: epyseg-ij models import PATH --encoder ENC"
        )
    kernels = [shape for layer in shapes for shape in layer if len(shape) == 4]  # convolutions, first to last
    if not kernels:
        raise ModelError(f"{path} holds no convolution weights: not a Linknet")
    n_outputs = kernels[-1][3]
    return ModelCard(
        name=path.stem,
        encoder=encoder or "vgg16",
        n_outputs=n_outputs,
        outputs="epyseg7" if n_outputs == 7 else "bonds",
        input_channels=kernels[0][2],
        provenance={"source": str(path), "card": "inferred from the weights"},
    )


def load_weights(network, path: Path) -> None:
    """Set the network's weights from an .h5 file, layer by layer in order (as Keras does), checking shapes."""
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            stored = [
                [np.asarray(group[name][_text(w)]) for w in group[name].attrs["weight_names"]]
                for name in map(_text, group.attrs["layer_names"])
                if len(group[name].attrs["weight_names"])
            ]
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ModelError(f"{path} is not a readable Keras .h5 model ({first_line(error)})") from None
    layers = [layer for layer in network.layers if layer.weights]
    if len(layers) != len(stored):
        raise ModelError(f"{path} has {len(stored)} layers with weights, the network {len(layers)}: not this model")
    for layer, values in zip(layers, stored, strict=True):
        expected = [tuple(w.shape) for w in layer.weights]
        if expected != [v.shape for v in values]:
            raise ModelError(f"{path}: weights of layer {layer.name} have the wrong shapes: not this model")
        layer.set_weights([v.astype(np.float32) for v in values])


@model_files("save the model")
def save_model(network, path: os.PathLike, card: ModelCard, dtype: str = "float32") -> Path:
    """Write weights (Keras-2 .h5 layout, loadable by EPySeg) and card atomically; ``dtype`` float16 halves the size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    layers = [layer for layer in network.layers]
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.21.0"  # the tf-keras layout this writes
            f.attrs[CARD_ATTR] = card.to_json()
            for layer in layers:
                group = f.create_group(layer.name)
                names = [w.name for w in layer.weights]
                group.attrs["weight_names"] = [n.encode() for n in names]
                for name, value in zip(names, layer.get_weights(), strict=True):
                    group.create_dataset(name, data=value.astype(dtype))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@model_files("import the model")
def import_model(source: os.PathLike, name: str, encoder: str | None = None, overwrite: bool = False) -> Path:
    """Copy an .h5 model, or the Keras weights of a bioimage.io package (.zip, see ``bioimage_io``), into the user
    store under ``name`` with a card, after checking that it loads."""
    checks.path("source", source)
    checks.text("name", name)
    checks.text("encoder", encoder, optional=True)
    checks.flag("overwrite", overwrite)
    source, target = Path(source), user_model_path(name)
    if target.exists() and not overwrite:
        raise InputError(f"a model named {name!r} already exists ({target}); choose another name or overwrite")
    if zipfile.is_zipfile(source):
        from .bioimage_io import unpacked  # packages are built on this module, not the other way round

        with unpacked(source, encoder) as (weights, card):
            return _store(weights, card, name, source, target)
    return _store(source, read_card(source, encoder), name, source, target)


def _store(weights: Path, card: ModelCard, name: str, source: Path, target: Path) -> Path:
    card = dataclasses.replace(card, name=name, provenance={**card.provenance, "imported_from": str(source)})
    network = build_linknet(card.encoder, card.n_outputs, card.input_channels)
    load_weights(network, weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(weights, tmp)
        with h5py.File(tmp, "r+") as f:
            f.attrs[CARD_ATTR] = card.to_json()
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def stamp(**provenance: Any) -> dict[str, Any]:
    """Provenance with a UTC time stamp, for new cards."""
    return {"created": datetime.now(UTC).isoformat(timespec="seconds"), **provenance}


def _weight_layout(f: h5py.File) -> tuple[list[str], list[list[tuple[int, ...]]]]:
    group = f["model_weights"] if "model_weights" in f else f
    names, shapes = [], []
    for name in map(_text, group.attrs["layer_names"]):
        weights = [_text(w) for w in group[name].attrs["weight_names"]]
        if weights:
            names.append(name)
            shapes.append([group[name][w].shape for w in weights])
    return names, shapes


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
