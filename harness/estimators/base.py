"""The estimator registry, the batch an estimator sees, and the timed, failure-recording runner.

An estimator is one function registered by name in one file::

    @register("synflow", needs=("gradients",), reference="Tanaka et al., NeurIPS 2020")
    def synflow(net, batch, **options) -> float: ...

It receives a freshly initialised network and a :class:`Batch` of real images and returns a
float. ``function_only=True`` declares that the score depends only on the function
``x -> net(x)`` (not on dead weights or hooks), so :func:`score` first prunes the edges that
cannot reach the output. :func:`score` times it and records a failure with its reason: a failure
is never replaced by a number. Failures are of three kinds:

- *numerical* (deterministic: the same network and batch fail the same way): a NaN or infinite
  score, :class:`UndefinedScore` (the estimator's formula is undefined for this network, e.g.
  a zero-variance Jacobian row), another :class:`ArithmeticError`, a singular matrix
  (``LinAlgError``). They are returned as a failed :class:`ScoreResult`, and the run store keeps them;
- *transient* (out of memory): :class:`TransientScoreError` is raised, so nothing is cached and a
  rerun tries again;
- anything else is a bug in the estimator or the harness, and raises as it is.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import HarnessError
from ..registry import Registry

log = logging.getLogger(__name__)

ESTIMATORS = Registry("estimator")
register = ESTIMATORS.register


class UndefinedScore(ArithmeticError):
    """The estimator's formula is undefined for this network (a deterministic numerical failure)."""


class TransientScoreError(HarnessError):
    """Scoring failed for a reason that says nothing about the network (out of memory): not cached."""


NUMERICAL_FAILURES = (ArithmeticError, np.linalg.LinAlgError, torch.linalg.LinAlgError)
TRANSIENT_FAILURES = (torch.OutOfMemoryError, MemoryError)


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
    except NUMERICAL_FAILURES as err:
        value, error = math.nan, f"{type(err).__name__}: {err}".splitlines()[0]
    except TRANSIENT_FAILURES as err:
        raise TransientScoreError(f"{name} ran out of memory on a batch of {len(batch.y)} ({type(err).__name__})",
                                  "nothing was cached: free memory or use a smaller --batch-size, then rerun "
                                  "(scores already computed are kept)") from err
    seconds = time.perf_counter() - start
    if error:
        log.debug("%s failed: %s", name, error)
        value = math.nan
    return ScoreResult(name, value, seconds, error, variant)
