"""The small commands: About EPySeg..., and the string-API helpers of ``PyBridge.call``.

text = call("epyseg.bridge.PyBridge.call", "about");
call("epyseg.bridge.PyBridge.call", "cancel");   // also: ping, status, last_error
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from ... import __version__
from .. import dialogs
from ..service import Reply, Request, Service, command
from ._common import log, options


@command("about", "version")
def about(request: Request, service: Service) -> Reply:
    """Versions, where the models are, whether a GPU runs the network, and links."""
    options(request, service, "About EPySeg", ())
    gpu = service.compute(_gpu, what="About EPySeg")
    text = version_text(service, gpu)
    if request.display:
        if service.headless:
            log(text)
        else:
            from ij import IJ

            IJ.showMessage("About EPySeg", _html(text))
    return Reply(text, {"gpu": gpu})


def version_text(service: Service, gpu: str) -> str:
    """What About shows: versions, the model folders, the GPU and the links, one fact a line."""
    from ij import IJ

    from ... import models

    tf_version = "not installed"
    for package in ("tensorflow-cpu", "tensorflow"):
        try:
            tf_version = version(package)
            break
        except PackageNotFoundError:
            continue
    lines = [
        f"epyseg-ij {__version__}: EPySeg-style segmentation of epithelia",
        f"ImageJ {IJ.getFullVersion()} ({'headless' if service.headless else 'GUI'}), "
        f"Python {sys.version.split()[0]}, TensorFlow {tf_version}",
        f"Your models: {models.home() / 'models'}",
        f"Downloaded models: {models.home() / 'pretrained'}",
        f"GPU: {gpu}",
        f"EPySeg: {dialogs.EPYSEG}",
        f"Paper: Aigouy et al. 2020, Development, {dialogs.PAPER}",
    ]
    return "\n".join(lines)


def _gpu(progress) -> str:
    """Whether a GPU runs the network, else what runs it on the CPU (backend auto); TensorFlow is imported for this
    only where its GPU build is installed."""
    from ... import backends

    progress.say("looking for a GPU…")
    if not backends.gpu_visible():
        engine = "OpenVINO" if backends.choose("auto") == "openvino" else "TensorFlow"
        return f"none: the network runs on the CPU ({engine})"
    from ..._tf import tf

    gpus = tf().config.list_physical_devices("GPU")
    names = [tf().config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    return f"used: {', '.join(names)} (TensorFlow)"


def _html(text: str) -> str:
    """The About text as HTML, its links clickable."""
    import html
    import re

    linked = re.sub(r"(https?://\S+)", r'<a href="\1">\1</a>', html.escape(text))
    return "<html>" + linked.replace("\n", "<br>") + "</html>"


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
