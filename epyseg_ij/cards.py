"""The model card: what prediction needs to know about a model besides its weights, stored as JSON in its file.

A card is checked field by field when it is made or read: a card of the wrong shape or with a field of the wrong
type or value is one ``ModelError`` naming the file and the field, whatever the JSON holds.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from . import checks, predict
from .errors import ModelError, first_line

CARD_ATTR = "epyseg_ij_card"  # the HDF5 attribute that holds the card
OUTPUT_KINDS = ("epyseg7", "bonds")


@dataclass(frozen=True)
class ModelCard:
    """What prediction needs to know about a model besides its weights."""

    name: str
    encoder: str = "vgg16"
    outputs: str = "epyseg7"  # "epyseg7": EPySeg's 7 channels; "bonds": 1 boundary-probability channel
    n_outputs: int = 7
    input_channels: int = 1
    normalization: str = "minmax"  # or "percentile" (2-99.8 %)
    tile: int = 256
    overlap: int = 32
    # (contrast, bonds) of postprocess.faint_interfaces: merge across interfaces faint in the image and unclear in
    # the outputs; None: off
    merge_faint: tuple[float, float] | None = None
    # px: a plane whose median cell is wider is segmented again at a reduced size (rescale); None: off
    max_cell_diameter: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        """Every field of the right type and range: ``ModelError`` naming the first one that is not."""
        bad = dict(error=ModelError)
        checks.instance("card field 'name'", self.name, str, optional=False, **bad)
        checks.text("card field 'encoder'", self.encoder, **bad)
        checks.choice("card field 'outputs'", self.outputs, OUTPUT_KINDS, **bad)
        checks.integer("card field 'n_outputs'", self.n_outputs, 1, 4096, **bad)
        checks.integer("card field 'input_channels'", self.input_channels, 1, 16, **bad)
        checks.choice("card field 'normalization'", self.normalization, predict.NORMALIZATIONS, **bad)
        checks.integer("card field 'tile'", self.tile, predict.MIN_TILE, predict.MAX_TILE, **bad)
        checks.integer("card field 'overlap'", self.overlap, 0, self.tile, **bad)
        checks.instance("card field 'provenance'", self.provenance, dict, optional=False, **bad)
        if self.merge_faint is not None:
            if not isinstance(self.merge_faint, list | tuple) or len(self.merge_faint) != 2:
                raise ModelError(f"card field 'merge_faint' must be two numbers or null, got {self.merge_faint!r}")
            for value in self.merge_faint:
                checks.number("card field 'merge_faint'", value, 0, 1, **bad)
            object.__setattr__(self, "merge_faint", tuple(float(v) for v in self.merge_faint))
        largest = checks.number("card field 'max_cell_diameter'", self.max_cell_diameter, 8, 1e5, optional=True, **bad)
        object.__setattr__(self, "max_cell_diameter", None if largest is None else float(largest))
        if self.overlap % 2:
            raise ModelError(f"card field 'overlap' must be even, got {self.overlap}")
        if (self.outputs == "epyseg7") != (self.n_outputs == 7):
            raise ModelError(f"card of {self.name!r}: {self.outputs} outputs with {self.n_outputs} channels")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model card", name: str = "") -> ModelCard:
        """A card from its JSON text; ``ModelError`` naming ``source`` and the field for anything unusable."""
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ModelError(f"{source}: the model card is not valid JSON ({first_line(error)})") from None
        if not isinstance(values, dict):
            raise ModelError(f"{source}: the model card must be a JSON object, not a {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{"name": name, **{k: v for k, v in values.items() if k in known}})
        except ModelError as error:
            raise ModelError(f"{source}: {error}") from None
