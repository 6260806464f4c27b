"""Paths with spaces and non-ASCII characters (a known pain of Fiji deep-learning plug-ins) through every command:
the segment command line, an ImageJ macro file, a Jython script. Real ImageJ 1.53t, Jython, TensorFlow.

Training with such paths (a data folder and a model name) is tested through the Appose worker (test_worker.py), to
train one network rather than two; install-fiji and attach() with such paths in test_fiji.py."""

import ij_fixtures
import numpy as np
import pytest
import tifffile

import epyseg_ij
from epyseg_ij import cli, io
from epyseg_ij.synth import STYLES, synth_epithelium

tiny_model = ij_fixtures.tiny_model
FOLDER = "dossier à voir 日本 ü"


@pytest.fixture(scope="module")
def imagej(private_home):
    from epyseg_ij import ij

    return ij.start()


@pytest.mark.parametrize("command", ["segment CLI", "macro", "Jython"])
def test_paths_with_spaces_and_non_ascii_characters(command, tmp_path, tiny_model, imagej):
    folder = tmp_path / FOLDER
    image = io.write_tiff(
        folder / "épithélium n°1.tif", synth_epithelium((96, 96), seed=8, style=STYLES["clean"]).image
    )
    expected = epyseg_ij.segment(tifffile.imread(image), tiny_model)
    if command == "segment CLI":
        out = folder / "résultats"
        assert cli.main(["segment", str(image), "--model", tiny_model, "--out", str(out)]) == 0
        np.testing.assert_array_equal(tifffile.imread(out / "épithélium n°1_labels.tif"), expected.labels)
    elif command == "macro":
        from epyseg_ij.ij import run_macro_file

        script = folder / "macro é.ijm"
        script.write_text(f'run("EPySeg Segment", "folder=[" + getArgument() + "] model={tiny_model}");\n')
        assert run_macro_file(script, str(folder)) == 0
        mask = folder / "épithélium n°1" / "handCorrection.tif"
        np.testing.assert_array_equal(tifffile.imread(mask), expected.outlines)
    else:
        from ij import IJ

        script = folder / "script é.py"
        script.write_text(
            "from ij import IJ\nfrom epyseg.bridge import PyBridge\n"
            f'reply = PyBridge.segment(IJ.openImage(getArgument()), "model={tiny_model} output=[labels]")\n'
            'result = str(reply.get("cells")) + " " + reply.get("labels").getTitle()\n'
        )
        assert str(IJ.runMacroFile(str(script), str(image))) == f"{expected.labels.max()} épithélium n°1-labels"
