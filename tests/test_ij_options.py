"""Macro option strings: parsed the same way headless and in the GUI (no JVM needed)."""

import pytest

from epyseg_ij.errors import InputError
from epyseg_ij.ij.commands import SEGMENT_OPTIONS
from epyseg_ij.ij.options import Option, format_options, parse, tokenize


def test_tokenize_imagej_syntax():
    text = "model=[my model.h5] tta=flip invert output=[labels rois] save=[] "
    assert tokenize(text) == [
        ("model", "my model.h5"),
        ("tta", "flip"),
        ("invert", None),
        ("output", "labels rois"),
        ("save", ""),
    ]


def test_segment_defaults_and_values():
    values = parse("model=tiny channel=2 tta=epyseg tile=128 invert output=[labels outlines ta]", SEGMENT_OPTIONS, "S")
    assert values["model"] == "tiny" and values["channel"] == 2 and values["tta"] == "epyseg"
    assert values["tile"] == 128 and values["invert"] is True
    assert values["output"] == ("labels", "outlines", "ta")
    defaults = parse(None, SEGMENT_OPTIONS, "S")
    assert defaults["model"] == "default" and defaults["output"] == ("labels", "rois", "results")
    assert defaults["invert"] is False and defaults["folder"] == ""


def test_dialog_checkboxes_record_as_bare_words():
    assert parse("model=default labels rois", SEGMENT_OPTIONS, "S")["output"] == ("labels", "rois")
    assert parse("output=[labels] outlines", SEGMENT_OPTIONS, "S")["output"] == ("labels", "outlines")


def test_format_parses_back():
    values = parse("model=[a b] tta=flip minimum=20 output=[labels bonds] overwrite", SEGMENT_OPTIONS, "S")
    assert parse(format_options(values, SEGMENT_OPTIONS), SEGMENT_OPTIONS, "S") == values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modle=default", "unknown option 'modle'"),
        ("tta=sideways", "tta='sideways' is not allowed; choose one of none, flip, epyseg"),
        ("tile=big", "tile='big' is not a whole number"),
        ("tile=-5", "tile=-5 is too small"),
        ("output=[labels pixels]", "unknown item(s) pixels"),
        ("invert=maybe", "'invert' is a flag"),
        ("tta=none tta=flip", "given twice"),
        ("model", "needs a value"),
        ("model=[unclosed", "cannot read the options"),
    ],
)
def test_bad_options_are_one_line_errors(text, message):
    with pytest.raises(InputError, match=None) as info:
        parse(text, SEGMENT_OPTIONS, "EPySeg Segment")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("EPySeg Segment") or "cannot read" in str(info.value)


def test_float_option():
    spec = [Option("validation", "float", 0.1)]
    assert parse("validation=0.25", spec, "T") == {"validation": 0.25}
    with pytest.raises(InputError, match="not a number"):
        parse("validation=lots", spec, "T")
