"""What a Fiji user sees of the EPySeg commands, headless against the real ImageJ 1.53t and TensorFlow: progress in
the status line and Esc, the outlines as an overlay, the model manager, About, and the report of the correction loop.
The dialogs themselves are driven under Xvfb in test_ij_gui.py.
"""

import shutil

import ij_fixtures
import numpy as np
import pytest
import tifffile

from epyseg_ij import io, models
from epyseg_ij.errors import Cancelled, EpysegError
from epyseg_ij.synth import STYLES, synth_epithelium

samples = ij_fixtures.samples
tiny_model = ij_fixtures.tiny_model


@pytest.fixture(scope="module")
def service(private_home):
    from epyseg_ij import ij

    ij.start()
    return ij.get_service()


def request(service, command: str, options: str, image=None):
    return service.request(command, options, image, display=False)


def test_progress_phases_steps_and_escape(service):
    """A job says its phase, then its steps (status line and progress bar); Esc stops it at the next step."""
    from ij import IJ
    from java.awt.event import KeyEvent

    seen = []

    def job(progress):
        progress.say("loading model x…")
        seen.append(service.status)
        progress(3, 10)
        seen.append(service.status)
        IJ.setKeyDown(KeyEvent.VK_ESCAPE)  # what pressing Esc in ImageJ does
        progress(4, 10)
        seen.append("not reached")

    with pytest.raises(Cancelled, match="EPySeg Test cancelled"):
        service.compute(job, what="EPySeg Test", unit="tiles")
    assert seen == ["EPySeg Test: loading model x…", "EPySeg Test: 3/10 tiles"]
    assert service.status == "idle" and not service.busy and not IJ.escapePressed()


def test_published_model_downloaded_with_progress_then_loaded(service, server, monkeypatch, tiny_model):
    """Choosing a published model that is not downloaded yet: the download's MB, then 'loading model'."""
    from epyseg_ij.ij.commands._common import load_model
    from epyseg_ij.ij.service import Progress

    root, url = server
    shutil.copyfile(models.user_model_path(tiny_model), root / "published.h5")
    entry = models.Pretrained("Test-published", f"{url}/published.h5", models.md5sum(root / "published.h5"), "test")
    monkeypatch.setitem(models.PRETRAINED, entry.name, entry)

    class Recording(Progress):  # a real Progress (status line, progress bar) that also keeps what it said
        said: list = []

        def say(self, text):
            super().say(text)
            self.said.append(text)

    network = service.compute(lambda progress: load_model(entry.name, Recording(service, "Test")))
    size = (root / "published.h5").stat().st_size / 1e6
    assert Recording.said[-2] == f"downloading Test-published: {size:.1f} of {size:.1f} MB"
    assert Recording.said[-1] == "loading model Test-published…"
    assert network.card.encoder == "mobilenetv2" and models.is_downloaded(entry.name)
    reply = request(service, "models", f"action=download model={entry.name}")  # already there: no download
    assert reply.value == str(models.fetch(entry.name))


def test_overlay_of_outlines_on_the_image(service, tiny_model, samples):
    """output=overlay: one outline per cell over the original image, its calibration untouched; stacks per slice."""
    from ij import IJ

    from epyseg_ij.ij import convert

    imp = IJ.openImage(str(samples["calibrated"]))
    reply = request(service, "segment", f"model={tiny_model} output=[overlay]", imp)
    overlay = imp.getOverlay()
    assert overlay is not None and int(overlay.size()) == int(reply.value) > 0
    assert convert.calibration_of(imp).spacing == (0.5, 0.5) and str(imp.getCalibration().getUnit()) == "micron"
    roi = overlay.get(0)
    assert roi.getStrokeColor() is not None and 0 <= roi.getBounds().x < imp.getWidth()

    planes = np.stack([synth_epithelium((64, 80), seed=s, style=STYLES["clean"]).image for s in (1, 2)])
    stack = convert.to_imageplus(planes, "ZYX", title="stack")
    reply = request(service, "segment", f"model={tiny_model} output=[overlay labels]", stack)
    positions = {int(stack.getOverlay().get(i).getPosition()) for i in range(int(stack.getOverlay().size()))}
    labels, _ = convert.to_numpy(reply.objects["labels"])
    assert positions == {1, 2} and int(stack.getOverlay().size()) == int(reply.value) == sum(
        len(np.unique(p[p > 0])) for p in labels
    )


def test_model_manager_import_card_list_and_errors(service, tiny_model, tmp_path):
    """EPySeg Models...: import a file under a name, show its card, list it; bad requests are one line."""
    source = tmp_path / "from disk.h5"
    shutil.copyfile(models.user_model_path(tiny_model), source)
    reply = request(service, "models", f"action=import file=[{source}] name=imported-here")
    assert reply.value == str(models.user_model_path("imported-here"))
    card = request(service, "models", "action=card model=imported-here").value
    assert '"encoder": "mobilenetv2"' in card and '"imported_from"' in card
    assert "imported-here\tuser\tready\tmobilenetv2" in request(service, "models", "").value.splitlines()
    published = request(service, "models", "action=card model=Linknet-vgg16-sigmoid").value  # not downloaded for it
    assert f'"path": "not downloaded yet ({models.PRETRAINED["Linknet-vgg16-sigmoid"].url})"' in published
    for options, message in (
        ("action=download model=default", "choose a published model to download"),
        ("action=import", "give the .h5 file to import"),
        ("action=rename", "action='rename' is not allowed"),
        (f"action=import file=[{source}] name=imported-here", "already exists"),
    ):
        with pytest.raises(EpysegError, match=message):
            request(service, "models", options)


def test_about_tells_versions_model_folders_gpu_and_links(service, private_home):
    text = request(service, "about", "").value
    assert text.startswith("epyseg-ij ") and "ImageJ 1.53t" in text and "TensorFlow" in text
    assert f"Your models: {private_home / 'models'}" in text
    from epyseg_ij import backends

    assert ("GPU: used: " if backends.gpu_visible() else "GPU: none: the network runs on the CPU (") in text
    assert "https://github.com/baigouy/EPySeg" in text and "https://doi.org/10.1242/dev.194589" in text


def test_training_reports_images_corrected_masks_and_split(service, tiny_model, tmp_path, capfd):
    """The correction loop: segment into the Tissue Analyzer layout, correct one mask, train: before any training
    the Log (stdout headless) says how many images and corrected masks were found and how they are split."""
    data = tmp_path / "movie"
    for i in range(3):
        io.write_tiff(data / f"frame{i}.tif", synth_epithelium((96, 96), seed=30 + i, style=STYLES["clean"]).image)
    assert request(service, "segment", f"folder=[{data}] model={tiny_model}").value == "3 written, 0 skipped, 0 failed"
    mask = io.ta_mask_path(data / "frame1.tif")
    corrected = tifffile.imread(mask)
    corrected[:, 48] = 255  # a person splits every cell crossed by the middle column
    tifffile.imwrite(mask, corrected)
    capfd.readouterr()
    for options, split in (("corrected", "the corrected masks: 1 image"), ("validation=0.34", "all masks: 2 images")):
        with pytest.raises(EpysegError, match=f"a model named '{tiny_model}' already exists"):  # stops before TF
            request(service, "train", f"data=[{data}] name={tiny_model} {options}")
        log = capfd.readouterr().out
        assert "3 images with masks in 1 folder: 1 corrected by hand, 2 unchanged machine masks, 0 of unknown" in log
        assert f"training on {split} for training, {1 if 'all' in split else 0} for validation" in log
