"""A budgeted performance estimation (BPE) configuration: how cheaply one candidate is trained.

The eight hyper-parameters of Zheng et al. (CVPR 2020, Fig. 2) plus the fraction of the training
data. ``layers`` counts cells the way the target space does: for DARTS networks the total number
of cells (the paper's ``n_layers``), for NB201 networks the cells per stage (NB201's ``N``;
the full network has 5).
"""

from __future__ import annotations

import math
import re

import numpy as np
from dataclasses import asdict, dataclass, fields

from ..errors import HarnessError

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class BPEConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.03  # initial SGD learning rate (cosine to 0 over ``epochs``)
    layers: int = 6  # DARTS: total cells; NB201: cells per stage
    channels: int = 8  # initial channels
    image_size: int = 16  # pixels (images are resized after augmentation)
    precision: str = "fp32"  # fp32, or fp16/bf16 autocast
    cutout: int = 0  # cutout length in pixels (0: none)
    fraction: float = 1.0  # fraction of the training split used (class-stratified, seeded)
    valid_images: int = 0  # validation images measured (class-stratified subset; 0: the whole held-out split)
    momentum: float = 0.9
    weight_decay: float = 3e-4

    def __post_init__(self):
        if self.precision not in PRECISIONS:  # first: the label below writes the precision as it is
            raise HarnessError(f"BPE precision {_shown(self.precision)} is not one of {', '.join(PRECISIONS)}",
                               "write e.g. fp32 (compact form) or precision=fp16")
        numbers = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "precision"}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise HarnessError(f"BPE setting {name}={_shown(value)} is not a number", f"write e.g. {name}=1")
            if isinstance(value, (float, np.floating)) and not math.isfinite(value):  # (an int may exceed a float)
                raise HarnessError(f"BPE setting {name}={value} is not finite", "give it a finite value")
        checks = [(self.epochs >= 1, "epochs >= 1"), (self.batch_size >= 1, "batch_size >= 1"),
                  (self.lr > 0, "lr > 0"), (self.layers >= 1, "layers >= 1"), (self.channels >= 1, "channels >= 1"),
                  (self.image_size >= 8, "image_size >= 8"), (self.precision in PRECISIONS, f"precision in {PRECISIONS}"),
                  (self.cutout >= 0, "cutout >= 0"), (0 < self.fraction <= 1, "0 < fraction <= 1"),
                  (self.valid_images >= 0, "valid_images >= 0"), (self.momentum >= 0, "momentum >= 0"),
                  (self.weight_decay >= 0, "weight_decay >= 0")]
        for ok, rule in checks:
            if not ok:
                raise HarnessError(f"BPE configuration {self.label} breaks the rule {rule}", "fix that value")

    @property
    def label(self) -> str:
        """All fields in one stable, readable key (``e10-b128-lr0.03-...``), used to key results;
        :meth:`parse` reads it back."""
        return "-".join(f"{short}{_num(getattr(self, name))}" if name != "precision" else self.precision
                        for short, name in SHORT.items())

    @classmethod
    def _parse_compact(cls, text: str) -> "BPEConfig":
        return cls(**_compact_values(text))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, text: str) -> "BPEConfig":
        """A preset name (``BPE1``, ``BPE2``), ``key=value`` pairs separated by commas or
        semicolons (``epochs=2;batch=128;layers=1;channels=8;image=16;fraction=0.1``; short keys
        ``batch``, ``image``, ``fp`` are accepted, ``fp=16`` means fp16), or the compact form of
        :attr:`label` with any subset of its fields (``e2-l1-c8-i16-f0.1``). Unnamed fields keep
        their defaults."""
        text = text.strip()
        if text.upper() in PRESETS:
            return PRESETS[text.upper()]
        if "=" not in text and text:
            return cls._parse_compact(text)
        text = text.replace(";", ",")
        names = {f.name: f.type for f in fields(cls)}
        aliases = {"batch": "batch_size", "image": "image_size", "fp": "precision", "lr": "lr", "c": "channels"}
        values: dict = {}
        for pair in filter(None, text.split(",")):
            key, sep, value = pair.partition("=")
            key = aliases.get(key.strip(), key.strip())
            if not sep or key not in names:
                raise HarnessError(f"BPE setting {_shown(pair)} is not understood",
                                   f"write a preset ({', '.join(PRESETS)}) or key=value pairs with keys "
                                   f"{', '.join(names)}")
            if key in values:
                raise HarnessError(f"BPE setting {key} is given twice in {_shown(text)}", "give each setting once")
            value = value.strip()
            if key == "precision":
                lowered = value.lower()
                value = lowered if lowered in PRECISIONS else f"fp{lowered}"
            elif names[key] in ("int", int):
                value = _whole(key, value, f"write e.g. {key}=8")
            elif names[key] in ("float", float):
                try:
                    value = float(value)
                except ValueError:
                    raise HarnessError(f"BPE setting {key}={_shown(value)} is not a number",
                                       f"write e.g. {key}=0.5") from None
            values[key] = value
        return cls(**values)


def _shown(value, limit: int = 60) -> str:
    """``value`` quoted for a one-line message (repr escapes newlines), shortened when long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _whole(name: str, text: str, fix: str) -> int:
    """``text`` (ASCII digits, optionally ``.0``) as an int, else a one-line error."""
    m = re.fullmatch(r"([0-9]+)(?:\.(0*))?", text)
    if not m:
        raise HarnessError(f"BPE setting {name}={_shown(text)} is not a whole number", fix)
    try:
        return int(m.group(1))
    except ValueError:  # longer than Python's limit on int() digits
        raise HarnessError(f"BPE setting {name}={_shown(text)} is too large", fix) from None


def _num(value) -> str:
    return str(value) if isinstance(value, (int, str)) else np.format_float_positional(value, trim="-")


#: compact label prefixes, in label order (``precision`` is written as its value)
SHORT = {"e": "epochs", "b": "batch_size", "lr": "lr", "l": "layers", "c": "channels", "i": "image_size",
         "p": "precision", "co": "cutout", "f": "fraction", "v": "valid_images", "m": "momentum", "wd": "weight_decay"}


def _compact_values(text: str) -> dict:
    values: dict = {}
    fix = "write e.g. e2-b128-lr0.03-l1-c8-i16-fp32-co0-f0.1, a preset, or key=value pairs"
    for token in text.split("-"):
        if token in PRECISIONS:
            name, value = "precision", token
        else:
            m = re.fullmatch(r"(wd|lr|co|[eblcifmv])([0-9]+(?:\.[0-9]+)?)", token)
            if not m:
                raise HarnessError(f"BPE setting {_shown(token)} in {_shown(text)} is not understood", fix)
            name = SHORT[m.group(1)]
            value = (float(m.group(2)) if name in ("lr", "fraction", "momentum", "weight_decay")
                     else _whole(name, m.group(2), fix))
        if name in values:
            raise HarnessError(f"BPE setting {name} is given twice in {_shown(text)}", "give each setting once")
        values[name] = value
    return values


#: the paper's two chosen BPEs (sheet "Hyperparameters Search": BPE1 = Task5, BPE2 = Task32)
PRESETS = {
    "BPE1": BPEConfig(epochs=10, batch_size=128, lr=0.03, layers=6, channels=8, image_size=16, precision="fp32"),
    "BPE2": BPEConfig(epochs=30, batch_size=128, lr=0.03, layers=16, channels=16, image_size=16, precision="fp32"),
}
