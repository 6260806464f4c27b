"""bioimage.io model packages: export a model as a zip that deepImageJ, JDLL, ilastik or bioimageio.core run, and
read one back.

The package is built and checked by bioimageio.spec's own model description (format 0.5, the version that
bioimageio.core 0.11 reads). It holds ``rdf.yaml``; the weights as ``keras_hdf5`` (the whole Keras model,
architecture and weights), ``tensorflow_saved_model_bundle`` (a zipped SavedModel whose ``serve`` function maps the
input batch to ``{"probabilities": outputs}``) and ``onnx`` when ``tf2onnx`` is installed; a test input (a crop of
the sample image, float32, axes batch, y, x, channel) with the network's outputs on it; a cover (the sample beside
the model's outlines); a README; the licence (an SPDX id) and EPySeg's paper as citation.

The card's normalisation is the input's preprocessing: ``percentile`` is ``scale_range`` over the plane with the
2 and 99.8 percentiles, then ``clip`` to [0, 1]; ``minmax`` is ``scale_range`` with the 0 and 100 percentiles (the
minimum and maximum). The whole card travels in ``config.epyseg_ij``; the tile context (half the overlap) is the
outputs' halo.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tifffile

from . import __version__, checks, files, io, models, pipeline, predict
from ._tf import tf
from .cards import ModelCard
from .errors import EpysegError, InputError, ModelError, first_line
from .synth import synth_epithelium

log = logging.getLogger(__name__)

ONNX_OPSET = 17
LICENSE = "BSD-3-Clause"
EPYSEG_PAPER = (
    "Aigouy B, Cortes C, Liu S, Le Goff B. EPySeg: a coding-free solution for automated segmentation of epithelia "
    "using deep learning. Development 147(24): dev194589 (2020)",
    "10.1242/dev.194589",
)
CHANNELS = {  # EPySeg's seven outputs (see targets.py); "bonds" models have one
    "epyseg7": ["bonds_1px", "bonds_3px", "bonds_5px", "not_bonds_3px", "not_bonds_5px", "seeds", "not_seeds"],
    "bonds": ["bonds"],
}
PERCENTILES = {"minmax": (0.0, 100.0), "percentile": predict.PERCENTILES}
TAGS = ["segmentation", "instance-segmentation", "epithelium", "cell-membrane", "2d", "fluorescence-light-microscopy",
        "tensorflow", "keras", "epyseg"]  # fmt: skip
TEST_SIZE = 256  # px: the test input is at most this large (a centred crop of the sample)


def export_package(
    model: str | os.PathLike | models.Model | None,
    out: str | os.PathLike,
    *,
    sample: np.ndarray | str | os.PathLike | None = None,
    authors: Sequence[str] = (),
    license: str = LICENSE,
    onnx: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a bioimage.io package (a .zip), checked by bioimageio.spec before it replaces anything.

    Parameters
    ----------
    model : name, path or loaded model (``None``: the shipped default).
    out : path of the new .zip.
    sample : a 2D image (array or file) for the test tensors and the cover; default: a synthetic epithelium.
    authors : names of the model's authors (default: epyseg-ij).
    license : SPDX identifier of the weights' licence.
    onnx : also convert the network to ONNX (needs ``tf2onnx``); default: when ``tf2onnx`` is installed.
    overwrite : replace an existing ``out``.

    Examples
    --------
    >>> export_package("default", "epyseg-default.zip", sample="samples/wingdisc_frame00.tif")  # doctest: +SKIP
    PosixPath('epyseg-default.zip')
    """
    checks.path("out", out)
    checks.flag("overwrite", overwrite)
    checks.text("license", license)
    checks.instance("onnx", onnx, bool)
    authors = [checks.text(f"authors[{i}]", a) for i, a in enumerate(checks.instance("authors", authors, list | tuple))]
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InputError(f"{out}: a bioimage.io package is a .zip file")
    if files.require_regular(out) and not overwrite:
        raise InputError(f"{out} exists: kept (use --overwrite to replace it)")
    plane = _test_plane(sample)
    network = models.load(model)
    if network.keras is None:
        raise InputError(f"the {network.name!r} model has no network to export")
    if network.card.input_channels != 1:
        raise InputError(
            f"{network.name!r} takes {network.card.input_channels} channels; epyseg-ij runs one-channel models"
        )
    with (
        _spec_errors(f"cannot export {network.name!r}"),
        tempfile.TemporaryDirectory(prefix="epyseg-bioimageio-") as folder,
    ):
        descr = _describe(network, plane, Path(folder), authors or ["epyseg-ij"], license, onnx)
        files.make_folder(out.parent)
        with files.prepared(out, lambda fh: _spec().save_bioimageio_package_to_stream(descr, output_stream=fh)) as tmp:
            with zipfile.ZipFile(tmp) as written:
                _valid(_spec().load_description(written, perform_io_checks=True), out)
            files.put(tmp, out, overwrite)
    return out


@contextlib.contextmanager
def unpacked(path: os.PathLike, encoder: str | None = None) -> Iterator[tuple[Path, ModelCard]]:
    """The ``keras_hdf5`` weights of a package, in a temporary file, and the card rebuilt from its rdf.

    The card is ``config.epyseg_ij`` when the package was written by epyseg-ij, else inferred from the weights (give
    ``encoder`` for encoders other than VGG16); either way its normalisation is the one the rdf's preprocessing
    states. ``ModelError`` for an invalid package, one without Keras weights or with preprocessing epyseg-ij lacks.
    """
    with (
        _spec_errors(f"{path}: not a usable bioimage.io package"),
        zipfile.ZipFile(path) as package,
        tempfile.TemporaryDirectory(prefix="epyseg-import-") as folder,
    ):
        descr = _valid(_spec().load_description(package, format_version="latest", perform_io_checks=True), path)
        if descr.type != "model" or descr.weights.keras_hdf5 is None:
            raise ModelError(f"{path}: a bioimage.io package without keras_hdf5 weights (epyseg-ij reads only those)")
        weights = Path(folder) / "weights.h5"
        weights.write_bytes(descr.weights.keras_hdf5.get_reader().read())
        card = _card_from_rdf(descr, weights, encoder)
        yield weights, dataclasses.replace(card, provenance={**card.provenance, "bioimageio_name": descr.name})


# ------------------------------------------------------------------------------------------------------ describe


def _describe(network: models.Model, plane: np.ndarray, folder: Path, authors, license, onnx) -> object:
    """The model description of ``network``, its files written into ``folder``."""
    from bioimageio.spec.model import v0_5 as bio

    card = network.card
    test_input = plane[np.newaxis, ..., np.newaxis].astype(np.float32)
    normalized = predict.intensity_range(plane, card.normalization)(plane)
    test_output = network.predict_batch(normalized[np.newaxis, ..., np.newaxis])
    for name, tensor in (("input", test_input), ("output", test_output)):
        np.save(folder / f"test_{name}.npy", tensor)
        tifffile.imwrite(folder / f"sample_{name}.tif", tensor[0])  # the same, for people (imageio reads it)
    _cover(network, plane, folder / "cover.png")
    (folder / "README.md").write_text(_readme(card))
    halo = card.overlap // 2
    space = bio.ParameterizedSize(min=-(-(2 * halo + 32) // 32) * 32, step=32)
    low, high = PERCENTILES[card.normalization]
    preprocessing = [
        bio.ScaleRangeDescr(
            kwargs=bio.ScaleRangeKwargs(
                axes=[bio.AxisId(a) for a in ("channel", "y", "x")], min_percentile=low, max_percentile=high
            )
        )
    ]
    if card.normalization == "percentile":
        preprocessing.append(bio.ClipDescr(kwargs=bio.ClipKwargs(min=0.0, max=1.0)))
    raw = bio.InputTensorDescr(
        id=bio.TensorId("raw"),
        description="a 2D image of a membrane (junction) marker, bright on a dark background",
        axes=[
            bio.BatchAxis(),
            bio.SpaceInputAxis(id=bio.AxisId("y"), size=space),
            bio.SpaceInputAxis(id=bio.AxisId("x"), size=space),
            bio.ChannelAxis(channel_names=["membrane"]),
        ],
        test_tensor=bio.FileDescr(source=folder / "test_input.npy"),
        sample_tensor=bio.FileDescr(source=folder / "sample_input.tif"),
        data=bio.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=preprocessing,
    )
    probabilities = bio.OutputTensorDescr(
        id=bio.TensorId("probabilities"),
        description="sigmoid outputs: " + ", ".join(CHANNELS[card.outputs]),
        axes=[
            bio.BatchAxis(),
            *(_output_axis(bio, a, halo) for a in "yx"),
            bio.ChannelAxis(channel_names=CHANNELS[card.outputs]),
        ],
        test_tensor=bio.FileDescr(source=folder / "test_output.npy"),
        sample_tensor=bio.FileDescr(source=folder / "sample_output.tif"),
        data=bio.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
    text, doi = EPYSEG_PAPER
    return bio.ModelDescr(
        name=_name(card.name),
        description=f"Segmentation of epithelial cells: a Linknet ({card.encoder} encoder) from epyseg-ij, "
        "after EPySeg; it predicts cell outlines from a membrane marker",
        authors=[bio.Author(name=a) for a in authors],
        cite=[bio.CiteEntry(text=text, doi=bio.Doi(doi))],
        license=bio.LicenseId(license),
        covers=[bio.FileDescr(source=folder / "cover.png")],
        documentation=bio.FileDescr(source=folder / "README.md"),
        tags=TAGS,
        inputs=[raw],
        outputs=[probabilities],
        weights=_weights(bio, network.keras, folder, onnx),
        packaged_by=[bio.Author(name=f"epyseg-ij {__version__}")],
        config=bio.Config(epyseg_ij=json.loads(card.to_json())),
    )


def _output_axis(bio, name: str, halo: int):
    size = bio.SizeReference(tensor_id=bio.TensorId("raw"), axis_id=bio.AxisId(name))
    if halo:
        return bio.SpaceOutputAxisWithHalo(id=bio.AxisId(name), size=size, halo=halo)
    return bio.SpaceOutputAxis(id=bio.AxisId(name), size=size)


def _weights(bio, network, folder: Path, onnx: bool | None):
    """keras_hdf5, tensorflow_saved_model_bundle and (when tf2onnx is there, unless ``onnx`` is False) onnx."""
    version = bio.Version(tf().__version__)
    logger, level = tf().get_logger(), tf().get_logger().level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras calls HDF5 "legacy"; it is the format keras_hdf5 means
        logger.setLevel(logging.ERROR)  # and warns that the (never compiled) model has no compiled metrics
        try:
            network.save(folder / "model.h5", include_optimizer=False)
        finally:
            logger.setLevel(level)
    _saved_model(network, folder / "saved_model")
    bundle = _zip_folder(folder)
    entries = {
        "keras_hdf5": bio.KerasHdf5WeightsDescr(source=folder / "model.h5", tensorflow_version=version),
        "tensorflow_saved_model_bundle": bio.TensorflowSavedModelBundleWeightsDescr(
            source=bundle, tensorflow_version=version, parent="keras_hdf5"
        ),
    }
    if onnx or (onnx is None and importlib.util.find_spec("tf2onnx") is not None):
        _onnx(network, folder / "model.onnx")
        entries["onnx"] = bio.OnnxWeightsDescr(
            source=folder / "model.onnx", opset_version=ONNX_OPSET, parent="keras_hdf5"
        )
    return bio.WeightsDescr(**entries)


def _saved_model(network, folder: Path) -> None:
    """A SavedModel of the network alone: its variables and a ``serve`` function (also ``serving_default``)."""
    signature = tf().TensorSpec([None, None, None, 1], tf().float32, name="raw")
    module = tf().Module()
    module.variables_ = list(network.variables)  # tracked as plain variables: no Keras layer is traced or saved
    module.serve = tf().function(lambda raw: {"probabilities": network(raw, training=False)}, [signature])
    tf().saved_model.save(module, str(folder), signatures={"serving_default": module.serve})


def _zip_folder(folder: Path) -> Path:
    """``folder/saved_model`` as ``folder/saved_model.zip`` (bioimage.io's form for weights of several files)."""
    source, bundle = folder / "saved_model", folder / "saved_model.zip"
    with zipfile.ZipFile(bundle, "w") as z:  # stored: the package deflates it
        for path in sorted(source.rglob("*")):
            z.write(path, path.relative_to(source))
    return bundle


def _onnx(network, path: Path) -> None:
    try:
        import tf2onnx
    except ImportError:
        raise InputError("ONNX weights need tf2onnx: pip install 'epyseg-ij[onnx]'") from None
    signature = (tf().TensorSpec([None, None, None, 1], tf().float32, name="raw"),)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        tf2onnx.convert.from_keras(network, input_signature=signature, opset=ONNX_OPSET, output_path=str(path))


def _test_plane(sample: np.ndarray | str | os.PathLike | None) -> np.ndarray:
    """The test input: a centred square crop, a multiple of 32 px and at most ``TEST_SIZE``, of a 2D image."""
    if sample is None:
        image = synth_epithelium((TEST_SIZE, TEST_SIZE), seed=0).image
    elif isinstance(sample, str | os.PathLike):
        image = io.read_image(sample).array
    else:
        image = pipeline.as_array(sample)
    planes, _, _ = pipeline.as_planes(image, None, None)
    if len(planes) != 1:
        raise InputError(f"the sample must be one 2D plane, not a stack of {len(planes)}")
    plane = planes[0]
    size = min(*plane.shape, TEST_SIZE) // 32 * 32
    if size < 64:
        raise InputError(f"the sample must be at least 64 x 64 px, got {plane.shape[1]} x {plane.shape[0]}")
    y, x = (plane.shape[0] - size) // 2, (plane.shape[1] - size) // 2
    return np.ascontiguousarray(plane[y : y + size, x : x + size]).astype(np.float32)


def _cover(network: models.Model, plane: np.ndarray, path: Path) -> None:
    """The sample (left) and the model's outlines in magenta over it (right), 8-bit RGB."""
    from skimage import io as skio

    low, high = predict.percentiles(plane, (0.5, 99.5))
    grey = (np.clip((plane - low) / max(high - low, 1e-12), 0, 1) * 255).astype(np.uint8)
    outlines = pipeline.segment(plane, network, backend="tensorflow").outlines > 0
    rgb = np.repeat(grey[..., np.newaxis], 3, axis=2)
    overlay = rgb.copy()
    overlay[outlines] = (255, 0, 255)
    skio.imsave(path, np.concatenate([rgb, overlay], axis=1), check_contrast=False)


def _readme(card: ModelCard) -> str:
    text, doi = EPYSEG_PAPER
    channels = ", ".join(CHANNELS[card.outputs])
    norm = {"percentile": "2-99.8 % percentiles, clipped to [0, 1]", "minmax": "minimum and maximum of the image"}
    return f"""# {card.name}: segmentation of epithelial cells (epyseg-ij)

A Linknet with a {card.encoder} encoder, exported by epyseg-ij {__version__}. Input: one 2D image of a membrane
(junction) marker, bright membranes on a dark background, scaled by its {norm[card.normalization]}. Output:
{card.n_outputs} sigmoid maps ({channels}), which epyseg-ij turns into 1-px cell outlines and labels (a seeded
watershed). Tiles of {card.tile} px with {card.overlap // 2} px of context on each side give the same result as the
whole image.

With epyseg-ij: `epyseg-ij models import THIS.zip --name NAME`, then `epyseg-ij segment IMAGE --model NAME`.

The model card (`config.epyseg_ij` of rdf.yaml):

```json
{json.dumps(json.loads(card.to_json()), indent=1)}
```

## Validation

The test output is the network's output on the normalised test input as epyseg-ij computes it; `bioimageio test`
(bioimageio.core) reproduces it from the test input in every weight format of the package. This package says nothing
of the model's accuracy: see the provenance above and epyseg-ij's README for measured segmentation quality.

## Citation

Please cite EPySeg, whose method this follows: {text}, https://doi.org/{doi}
"""


def _name(name: str) -> str:
    """A bioimage.io model name: letters, digits, ``_+- ()``, 5 to 128 characters."""
    return re.sub(r"[^A-Za-z0-9_+\- ()]", "-", f"epyseg-ij {name}")[:128]


# ---------------------------------------------------------------------------------------------------- import side


def _card_from_rdf(descr, weights: Path, encoder: str | None) -> ModelCard:
    extra = descr.config.model_extra or {}
    if "epyseg_ij" in extra and encoder is None:
        card = ModelCard.from_json(json.dumps(extra["epyseg_ij"]), "config.epyseg_ij of the package")
    else:
        card = models.read_card(weights, encoder)
    inputs = descr.inputs
    if len(inputs) != 1 or len(descr.outputs) != 1:
        raise ModelError(f"{len(inputs)} inputs and {len(descr.outputs)} outputs: epyseg-ij models have one of each")
    return dataclasses.replace(card, normalization=_normalization(inputs[0].preprocessing))


def _normalization(steps) -> str:
    """The card normalisation that a list of bioimage.io preprocessing steps states."""
    steps = [s for s in steps if s.id != "ensure_dtype"]
    ids = [s.id for s in steps]
    for name, percentiles in PERCENTILES.items():
        if ids == (["scale_range", "clip"] if name == "percentile" else ["scale_range"]):
            kwargs = steps[0].kwargs
            clipped = name != "percentile" or (steps[1].kwargs.min, steps[1].kwargs.max) == (0, 1)
            if clipped and np.allclose((kwargs.min_percentile, kwargs.max_percentile), percentiles):
                return name
    raise ModelError(f"preprocessing {' + '.join(ids) or 'none'} has no epyseg-ij normalisation (minmax, percentile)")


# ----------------------------------------------------------------------------------------------------- plumbing


def _spec():
    """bioimageio.spec, imported on first use (it takes a second), its log quiet."""
    from loguru import logger

    logger.disable("bioimageio")
    import bioimageio.spec

    return bioimageio.spec


def _valid(descr, source):
    """The description, or one ``ModelError`` line with the first reason bioimageio.spec gives."""
    if isinstance(descr, _spec().InvalidDescr) or descr.validation_summary.status == "failed":
        errors = descr.validation_summary.details[-1].errors if descr.validation_summary.details else []
        reason = f"{'.'.join(map(str, errors[0].loc))}: {errors[0].msg}" if errors else descr.validation_summary.name
        raise ModelError(f"{source}: not a valid bioimage.io package ({first_line(Exception(reason))})")
    return descr


@contextlib.contextmanager
def _spec_errors(what: str) -> Iterator[None]:
    """bioimageio.spec's log off; its errors become one ``ModelError`` line, ``what (reason)`` (ours pass through)."""
    _spec()
    try:
        yield
    except EpysegError:
        raise
    except (ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ModelError(f"{what} ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    """The first problem pydantic (behind bioimageio.spec) found, as ``field.path: message``, or the first line."""
    problems = error.errors() if callable(getattr(error, "errors", None)) else []
    if problems:
        return f"{'.'.join(map(str, problems[0]['loc']))}: {first_line(Exception(problems[0]['msg']))}"
    return first_line(error)
