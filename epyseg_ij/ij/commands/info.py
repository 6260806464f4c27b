"""The small commands: EPySeg Models..., About EPySeg..., and the string-API helpers of ``PyBridge.call``.

list = call("epyseg.bridge.PyBridge.call", "models");
call("epyseg.bridge.PyBridge.call", "cancel");   // also: ping, status, last_error, about
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from ... import __version__
from ..service import Reply, Request, Service, command
from ._common import log, options


@command("models")
def list_models(request: Request, service: Service) -> Reply:
    """The models known by name, one per line: ``name<TAB>kind<TAB>ready|missing<TAB>description``."""
    options(request, service, "EPySeg Models", ())
    from ... import models

    lines = [
        f"{m.name}\t{m.kind}\t{'ready' if m.available else 'missing'}\t{m.description}" for m in models.list_models()
    ]
    lines += [f"{name}\tsession\tready\tregistered from Python" for name in sorted(service.models)]
    if request.display:
        log("EPySeg models:\n" + "\n".join("  " + line.replace("\t", "  ") for line in lines))
    return Reply("\n".join(lines))


@command("about", "version")
def about(request: Request, service: Service) -> Reply:
    """Versions of epyseg-ij, ImageJ, Python and TensorFlow."""
    options(request, service, "About EPySeg", ())
    text = version_text(service)
    if request.display:
        if service.headless:
            log(text)
        else:
            from ij import IJ

            IJ.showMessage("About EPySeg", text)
    return Reply(text)


def version_text(service: Service) -> str:
    from ij import IJ

    tf_version = "not installed"
    for package in ("tensorflow-cpu", "tensorflow"):
        try:
            tf_version = version(package)
            break
        except PackageNotFoundError:
            continue
    return (
        f"epyseg-ij {__version__}: EPySeg-style segmentation of epithelia\n"
        f"ImageJ {IJ.getFullVersion()} ({'headless' if service.headless else 'GUI'}), "
        f"Python {sys.version.split()[0]}, TensorFlow {tf_version}"
    )


@command("ping")
def ping(request: Request, service: Service) -> Reply:
    options(request, service, "ping", ())
    return Reply("pong")


@command("cancel")
def cancel(request: Request, service: Service) -> Reply:
    options(request, service, "cancel", ())
    service.cancel()
    return Reply("cancelling" if service.busy else "idle")


@command("status")
def status(request: Request, service: Service) -> Reply:
    options(request, service, "status", ())
    return Reply(service.status)


@command("last_error")
def last_error(request: Request, service: Service) -> Reply:
    options(request, service, "last_error", ())
    return Reply(service.last_error or "")
