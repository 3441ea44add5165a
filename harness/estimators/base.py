"""The estimator registry, the batch an estimator sees, and the timed, failure-recording runner.

An estimator is one function registered by name in one file::

    @register("synflow", needs=("gradients",), reference="Tanaka et al., NeurIPS 2020")
    def synflow(net, batch, **options) -> float: ...

It receives a freshly initialised network and a :class:`Batch` of real images and returns a
float. ``function_only=True`` declares that the score depends only on the function
``x -> net(x)`` (not on dead weights or hooks), so :func:`score` first prunes the edges that
cannot reach the output. :func:`score` times it and records any failure (an exception, NaN or inf) with its
reason: a failure is never replaced by a number.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..registry import Registry

log = logging.getLogger(__name__)

ESTIMATORS = Registry("estimator")
register = ESTIMATORS.register


@dataclass
class Batch:
    """One batch of real images, already normalised, on the device the network runs on."""

    x: torch.Tensor  # N x 3 x H x W float32
    y: torch.Tensor  # N int64
    num_classes: int
    dataset: str
    seed: int = 0  # the batch seed (recorded with every score)

    @property
    def device(self) -> torch.device:
        return self.x.device


@dataclass
class ScoreResult:
    estimator: str
    score: float
    seconds: float  # wall time of the estimator call (network build excluded)
    error: str = ""  # empty when the score is a finite number
    variant: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error


def weight_layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    """Conv2d and Linear layers: the layers whose weights the gradient-based scores sum over."""
    return [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def score(name: str, net: torch.nn.Module, batch: Batch, **options) -> ScoreResult:
    """Run one estimator on one network; time it; record a failure instead of raising it."""
    entry = ESTIMATORS.get(name)
    variant = str(options.get("variant", entry.meta.get("default_variant", "")))
    start = time.perf_counter()
    if entry.meta.get("function_only") and hasattr(net, "prune_unreachable_"):
        net.prune_unreachable_()  # the score depends on x -> net(x) only: dead edges are wasted work
    try:
        value = float(entry.fn(net, batch, **options))
        error = "" if math.isfinite(value) else f"non-finite score ({value})"
    except (RuntimeError, ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
        value, error = math.nan, f"{type(err).__name__}: {err}".splitlines()[0]
    seconds = time.perf_counter() - start
    if error:
        log.debug("%s failed: %s", name, error)
        value = math.nan
    return ScoreResult(name, value, seconds, error, variant)
