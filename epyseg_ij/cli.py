"""The ``epyseg-ij`` command line: thin wrappers around the engine; errors are one line, never a traceback.

Each sub-command is a pair: ``_add_<name>(subparsers)`` declares it, ``_run_<name>(args)`` runs it and returns the
exit status. ``COMMANDS`` lists them. ``main`` turns every exception into one line on stderr: the user's problems
(``EpysegError``, exit 2; files, disks and memory, exit 1) by their message, anything else as an internal error whose
traceback ``-v`` shows.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from traceback import print_exc

from . import __version__
from .errors import Cancelled, EpysegError, InputError, first_line

log = logging.getLogger("epyseg_ij")


def _add_segment(sub) -> None:
    p = sub.add_parser("segment", help="segment images into Tissue Analyzer folders or label images")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--model", help="model name or .h5 path (default: the shipped model)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--ta", action="store_true", help="write <dir>/<image>/handCorrection.tif (the default)")
    where.add_argument("--out", type=Path, metavar="DIR", help="write <stem>_outlines.tif and <stem>_labels.tif; "
                       "into DIR named *.zarr: Zarr groups <stem> (outlines, labels, bonds), tile by tile")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace existing results (hand corrections are kept)")
    p.add_argument("--tta", choices=("none", "flip", "epyseg"), default="none", help="test-time augmentation")
    p.add_argument("--channel", type=int, metavar="N", help="membrane channel of multichannel images, from 1")
    p.add_argument("--invert", action="store_true", help="for dark membranes on a bright background")
    p.add_argument("--normalization", choices=("minmax", "percentile"), help="default: the model's")
    p.add_argument("--tile", type=int, metavar="N", help="tile size in px (default: the model's, 256)")
    p.add_argument("--overlap", type=int, metavar="N", help="context between tiles in px (default: 32)")
    p.add_argument("--batch", type=int, default=8, metavar="N", help="tiles per network call (default: 8)")
    p.add_argument("--min-size", type=int, default=0, metavar="PX", help="merge cells smaller than this")
    p.add_argument(
        "--backend",
        choices=("auto", "tensorflow", "openvino"),
        default="auto",
        help="where the network runs (default auto: OpenVINO on a CPU when installed, TensorFlow on a GPU)",
    )
    dask = p.add_mutually_exclusive_group()
    dask.add_argument("--workers", type=int, metavar="N", help="segment on N local Dask worker processes")
    dask.add_argument("--scheduler", metavar="ADDRESS", help="segment on an existing Dask cluster (tcp://host:8786)")
    p.add_argument("--results", action="store_true", help="with --out: also <stem>_results.csv, one row per cell")
    p.add_argument("--rois", action="store_true", help="with --out: also <stem>_RoiSet.zip (Fiji's ROI Manager)")


def _run_segment(args) -> int:
    from contextlib import nullcontext

    from tqdm import tqdm

    from .batch import find_images, segment_files
    from .pipeline import check_options

    if args.channel is not None and args.channel < 1:
        raise InputError(f"--channel counts from 1 (the first channel), got {args.channel}")
    if (args.results or args.rois) and (args.out is None or args.out.suffix.lower() == ".zarr"):
        raise InputError("--results and --rois go with --out DIR (a folder of TIFFs, not *.zarr)")
    options = {
        "tta": args.tta,
        "channel": None if args.channel is None else args.channel - 1,
        "invert": args.invert,
        "normalization": args.normalization,
        "tile": args.tile,
        "overlap": args.overlap,
        "batch": args.batch,
        "min_size": args.min_size,
        "backend": args.backend,
    }
    check_options(**options)  # once, before any file
    paths = find_images(args.inputs)
    distributed = args.workers is not None or args.scheduler is not None
    if distributed:
        from .cluster import client

        logging.getLogger("distributed").setLevel(logging.INFO if args.verbose else logging.ERROR)
    with (
        client(args.workers, args.scheduler) if distributed else nullcontext() as dask,
        tqdm(total=len(paths), unit="image", disable=None) as bar,
    ):

        def report(r) -> None:
            detail = f"{r.n_cells} cells in {r.seconds:.1f} s" if r.status == "written" else r.message
            if r.status == "written" and r.message:
                detail += f"; {r.message}"
            tqdm.write(f"{r.path}: {r.status}: {detail}")
            bar.update()

        reports = segment_files(
            paths, model=args.model, ta=args.out is None, out_dir=args.out, overwrite=args.overwrite,
            on_file=report, client=dask, **options,
        )  # fmt: skip
    failed = sum(r.status == "failed" for r in reports)
    done = sum(r.status == "written" for r in reports)
    print(f"{done} segmented, {len(reports) - done - failed} skipped, {failed} failed")
    if args.results or args.rois:
        failed += _measure_segmented(args, [r.path for r in reports if r.status != "failed"])
    return 1 if failed else 0


def _measure_segmented(args, images: list[Path]) -> int:
    """``segment --out DIR --results/--rois``: measure each image's ``<stem>_labels.tif``; the number that failed."""
    from .measure_files import measure_file

    failed = 0
    for image in images:
        try:
            report = measure_file(
                args.out / f"{image.stem}_labels.tif", args.out, image.stem, results=args.results, rois=args.rois,
                overwrite=args.overwrite,
            )  # fmt: skip
        except EpysegError as error:
            print(f"{image}: measuring failed: {error}")
            failed += 1
            continue
        _say_measured(image, report)
    return failed


def _say_measured(path: Path, report) -> None:
    written = ", ".join(p.name for p in report.written)
    kept = "; ".join(f"{p} exists: kept (use --overwrite to replace it)" for p in report.kept)
    cells = f"{report.cells} cells" + (f" ({report.left_out} on the border left out)" if report.left_out else "")
    print(f"{path}: " + "; ".join(part for part in (f"{cells} -> {written}" if written else "", kept) if part))


def _add_measure(sub) -> None:
    p = sub.add_parser("measure", help="per-cell measurements (CSV) of label images or Tissue Analyzer masks")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="label images or outline masks (files, glob patterns), "
                   "or folders: their Tissue Analyzer masks (*/handCorrection.tif)")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="write <name>_results.csv there")
    p.add_argument("--exclude-border", action="store_true", help="leave out the cells that touch the image border")
    p.add_argument("--rois", action="store_true", help="also write <name>_RoiSet.zip (Fiji's ROI Manager opens it)")
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")


def _run_measure(args) -> int:
    from .measure_files import find_masks, measure_file, result_name

    paths = find_masks(args.inputs)
    names = [result_name(p) for p in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"several inputs would write {args.out / (twice[0] + '_results.csv')}: measure them apart")
    failed = 0
    for path in paths:
        try:
            report = measure_file(path, args.out, rois=args.rois, exclude_border=args.exclude_border,
                                  overwrite=args.overwrite)  # fmt: skip
        except EpysegError as error:
            print(f"{path}: failed: {error}")
            failed += 1
            continue
        _say_measured(path, report)
    return 1 if failed else 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list, inspect, download or import models")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="models known by name")
    actions.add_parser("info", help="a model's card").add_argument("name")
    actions.add_parser("fetch", help="download a published EPySeg model").add_argument("name")
    imp = actions.add_parser("import", help="copy an .h5 model or a bioimage.io package (.zip) into your model store")
    imp.add_argument("path", type=Path)
    imp.add_argument("--name", required=True)
    imp.add_argument("--encoder", help="the network's encoder, for files without a card (e.g. vgg16)")
    imp.add_argument("--overwrite", action="store_true")
    exp = actions.add_parser("export", help="write a model as a bioimage.io package (deepImageJ, JDLL, ilastik...)")
    exp.add_argument("name", help="model name or .h5 path")
    exp.add_argument("out", type=Path, metavar="OUT.zip")
    exp.add_argument("--format", choices=("bioimageio",), default="bioimageio")
    exp.add_argument("--sample", type=Path, metavar="IMAGE", help="2D image for the test tensors and the cover "
                     "(default: a synthetic epithelium)")  # fmt: skip
    exp.add_argument("--author", action="append", default=[], metavar="NAME", help="repeat for several")
    exp.add_argument("--license", default="BSD-3-Clause", metavar="SPDX", help="default: BSD-3-Clause")
    exp.add_argument("--no-onnx", action="store_true", help="leave out the ONNX weights (made when tf2onnx is there)")
    exp.add_argument("--overwrite", action="store_true")


def _run_models(args) -> int:
    from . import models

    if args.action == "list":
        for m in models.list_models():
            state = "ready" if m.available else "not downloaded" if m.kind == "pretrained" else "missing"
            print(f"{m.name:<28} {m.kind:<10} {state:<15} {m.description}")
    elif args.action == "info":
        print(json.dumps(models.describe(args.name), indent=1))
    elif args.action == "fetch":
        print(models.fetch(args.name))
    elif args.action == "export":
        from .bioimage_io import export_package

        onnx = False if args.no_onnx else None
        print(export_package(args.name, args.out, sample=args.sample, authors=args.author, license=args.license,
                             onnx=onnx, overwrite=args.overwrite))  # fmt: skip
    else:
        print(models.import_model(args.path, args.name, args.encoder, args.overwrite))
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="compare a segmentation with a ground truth")
    p.add_argument("pred", type=Path, help="outline mask or label image")
    p.add_argument("gt", type=Path, help="outline mask or label image")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--exclude-border", action="store_true", help="score only cells not touching the image border")


def _run_evaluate(args) -> int:
    from .metrics import evaluate_files

    scores = evaluate_files(args.pred, args.gt, args.exclude_border)
    if args.json:
        print(json.dumps(scores))
    else:
        for key, value in scores.items():
            print(f"{key:<12} {value:.4f}" if isinstance(value, float) else f"{key:<12} {value}")
    return 0


def _add_synth(sub) -> None:
    from .synth import STYLES

    p = sub.add_parser("synth", help="write synthetic epithelia with exact ground truth (TA layout)")
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", choices=sorted(STYLES), default="default")
    p.add_argument("--overwrite", action="store_true")


def _run_synth(args) -> int:
    from .synth import STYLES, write_dataset

    paths = write_dataset(args.out, args.n, tuple(args.size), args.seed, STYLES[args.style], overwrite=args.overwrite)
    print(f"wrote {len(paths)} images and their masks to {args.out}")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model on images with (corrected) outline masks")
    p.add_argument("--data", nargs="+", required=True, type=Path, metavar="DIR", help="Tissue Analyzer folders, "
                   "or folders of image/mask pairs (NAME.tif + NAME_mask.tif, or images/ + masks/)")  # fmt: skip
    start = p.add_mutually_exclusive_group()
    start.add_argument("--from", dest="base", metavar="NAME|PATH", help="fine-tune this model (default: new network)")
    start.add_argument("--encoder", help="encoder of a new network (default: vgg16, as EPySeg)")
    p.add_argument("--name", required=True, help="name of the new model, for segment --model NAME")
    p.add_argument("--epochs", type=int, default=100, metavar="N", help="default: 100")
    p.add_argument("--tile", type=int, default=256, metavar="N", help="training tile in px, a multiple of 32")
    p.add_argument("--batch", type=int, default=8, metavar="N", help="tiles per step (default: 8)")
    p.add_argument("--val-fraction", type=float, default=0.1, metavar="F", help="images kept for validation")
    p.add_argument("--steps", type=int, metavar="N", help="steps per epoch (default: one pass over the images)")
    p.add_argument("--learning-rate", type=float, default=1e-3, metavar="LR", help="Adam's (default: 0.001)")
    p.add_argument(
        "--patience", type=int, default=10, metavar="N", help="stop after N epochs without progress (0: never)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of tile sampling and augmentation")
    p.add_argument(
        "--precision",
        choices=("float32", "mixed_bfloat16"),
        default="float32",
        help="mixed_bfloat16 is ~3x faster on CPUs with AVX512-BF16 or AMX (weights stay float32)",
    )
    p.add_argument("--corrected-only", action="store_true", help="only masks corrected by hand after segment")
    p.add_argument("--weights", type=float, nargs="+", metavar="W", help="how often each --data folder's tiles are "
                   "drawn, per pixel, relative to the others (default: 1 each)")  # fmt: skip
    p.add_argument("--replay", type=float, metavar="F", help="share of tiles from synthetic epithelia, so that "
                   "fine-tuning keeps what the model knew (default: 0.25 with --from, else 0)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace a model (or interrupted run) of that name")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of that name")


def _run_train(args) -> int:
    from tqdm import tqdm

    from .training import train

    bar = None

    def on_step(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            steps = total // args.epochs
            epoch = (done - 1) // steps + 1
            bar = tqdm(total=steps, desc=f"epoch {epoch}/{args.epochs}", unit="step", leave=False, disable=None)
        bar.update()

    def on_epoch(report) -> None:
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None
        tqdm.write(report.summary())

    try:
        result = train(
            args.data,
            args.name,
            base=args.base,
            encoder=args.encoder or "vgg16",
            epochs=args.epochs,
            tile=args.tile,
            batch=args.batch,
            steps_per_epoch=args.steps,
            val_fraction=args.val_fraction,
            learning_rate=args.learning_rate,
            patience=args.patience or None,
            seed=args.seed,
            precision=args.precision,
            corrected_only=args.corrected_only,
            weights=args.weights,
            replay=args.replay,
            overwrite=args.overwrite,
            resume=args.resume,
            on_epoch=on_epoch,
            on_step=on_step,
        )
    except Cancelled as error:
        print(f"epyseg-ij: {error}", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()
    best = result.history[result.best_epoch - 1]
    print(f"saved model {args.name!r} to {result.path}; best {best.summary()}")
    return 0


def _add_macro(sub) -> None:
    p = sub.add_parser("macro", help="run an ImageJ macro file in the embedded ImageJ, with the EPySeg commands")
    p.add_argument("file", type=Path, metavar="FILE.ijm")
    p.add_argument("--arg", default="", metavar="STRING", help="what the macro's getArgument() returns")
    p.add_argument("--gui", action="store_true", help="with a display (DISPLAY, or xvfb-run): every ImageJ command")


def _run_macro(args) -> int:
    from .ij import end_process, run_macro_file

    status = run_macro_file(args.file, args.arg, gui=args.gui)
    end_process(status)  # with a display (--gui, or the private one), idle AWT threads would keep the process up
    return status


def _add_fiji(sub) -> None:
    p = sub.add_parser("fiji", help="open ImageJ (Debian's, or your Fiji/ImageJ folder) with Plugins > EPySeg")
    p.add_argument("--fiji-dir", type=Path, metavar="DIR", help="a Fiji.app or ImageJ 1.x folder")


def _run_fiji(args) -> int:
    from .ij import end_process, open_gui

    status = open_gui(args.fiji_dir)
    end_process(status)
    return status


def _add_install_fiji(sub) -> None:
    p = sub.add_parser("install-fiji", help="make your Fiji (2.17+) start in Python mode with EPySeg (or undo it)")
    p.add_argument("fiji_dir", type=Path, metavar="FIJI_DIR", help="the Fiji.app folder")
    p.add_argument("--python", type=Path, metavar="DIR", help="the Python environment for Fiji (default: this one)")
    p.add_argument("--uninstall", action="store_true", help="put back what install-fiji changed")


def _run_install_fiji(args) -> int:
    from .ij import install

    report = install.uninstall(args.fiji_dir) if args.uninstall else install.install(args.fiji_dir, args.python)
    for warning in report.warnings:
        print(f"epyseg-ij: warning: {warning}", file=sys.stderr)
    for path in report.changed:
        print(f"changed {path}")
    backups = args.fiji_dir / install.STATE.parent
    print(f"{len(report.changed)} files changed, {len(report.backups)} backed up (in {backups})")
    if report.changed and not args.uninstall:
        print("start Fiji: Plugins > EPySeg runs in this Python environment")
    return 0


COMMANDS = {
    "segment": (_add_segment, _run_segment),
    "models": (_add_models, _run_models),
    "measure": (_add_measure, _run_measure),
    "evaluate": (_add_evaluate, _run_evaluate),
    "synth": (_add_synth, _run_synth),
    "train": (_add_train, _run_train),
    "macro": (_add_macro, _run_macro),
    "fiji": (_add_fiji, _run_fiji),
    "install-fiji": (_add_install_fiji, _run_install_fiji),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors, like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="epyseg-ij", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"epyseg-ij {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        status = COMMANDS[args.command][1](args)
        sys.stdout.flush()  # a closed pipe shows here rather than at exit
        return status
    except Cancelled:
        return _fail("cancelled", 130)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM once ImageJ runs (ij.runtime)
        return _fail(str(stop) or "interrupted", 130)
    except EpysegError as error:
        return _fail(f"error: {error}", 2)
    except BrokenPipeError:  # e.g. `epyseg-ij models list | head -1`: the reader has gone, say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:
        return _fail(f"error: {_os_error(error)}", 1, args.verbose)
    except MemoryError:
        return _fail("error: out of memory: use a smaller --tile or --batch, or a smaller image", 1, args.verbose)
    except RecursionError as error:
        return _fail(f"error: input nested too deeply ({first_line(error)})", 1, args.verbose)
    except Exception as error:
        detail = "" if args.verbose else "; run with -v for details"
        return _fail(f"internal error: {type(error).__name__}: {first_line(error)}{detail}", 1, args.verbose)


def _fail(message: str, status: int, traceback: bool = False) -> int:
    """Print one line on stderr (after the traceback of the error being handled, with ``traceback``)."""
    if traceback:
        print_exc(file=sys.stderr)
    print(f"epyseg-ij: {' '.join(message.split())}", file=sys.stderr)
    return status


def _os_error(error: OSError) -> str:
    """'FILE: reason' for an error of the operating system (permissions, a full disk, a missing folder...)."""
    files = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
    reason = error.strerror or first_line(error)
    return f"{files}: {reason}" if files else reason


if __name__ == "__main__":
    sys.exit(main())
