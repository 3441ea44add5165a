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

    @classmethod
    def from_tensors(cls, x, y, num_classes: int | None = None, dataset: str = "custom", seed: int = 0,
                     device: torch.device | str | None = None) -> "Batch":
        """A batch from tensors: images ``x`` (N x C x H x W, float, normalised as the model expects)
        and integer labels ``y`` (N); ``num_classes`` defaults to ``max(y) + 1``."""
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if x.ndim != 4:
            raise HarnessError(f"images of shape {tuple(x.shape)} are not N x C x H x W", "pass a 4-d tensor of images")
        if not torch.is_floating_point(x):
            raise HarnessError(f"images of dtype {x.dtype} are not floating point",
                               "convert and normalise them first (e.g. x.float() / 255, then the dataset's mean and std)")
        if y.ndim != 1 or len(y) != len(x) or torch.is_floating_point(y) or y.dtype == torch.bool:
            raise HarnessError(f"labels of shape {tuple(y.shape)} and dtype {y.dtype} do not match {len(x)} images",
                               "pass one integer label per image")
        if len(y) == 0 or int(y.min()) < 0:
            raise HarnessError("labels must be non-negative class indices, at least one image", "pass labels 0..C-1")
        classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
        if classes <= int(y.max()):
            raise HarnessError(f"label {int(y.max())} is not below num_classes {classes}", "pass the model's class count")
        target = torch.device(device) if device is not None else x.device
        return cls(x.to(target, torch.float32), y.to(target, torch.int64), classes, dataset, seed)

    @classmethod
    def from_loader(cls, loader, num_classes: int | None = None, dataset: str = "custom",
                    device: torch.device | str | None = None) -> "Batch":
        """The first ``(images, labels)`` batch of a ``DataLoader`` (or of any iterable of them)."""
        try:
            first = next(iter(loader))
        except StopIteration:
            raise HarnessError("the loader yields no batch", "pass a DataLoader over at least one image") from None
        if not isinstance(first, (tuple, list)) or len(first) < 2:
            raise HarnessError("the loader's batches are not (images, labels) pairs", "yield (x, y) from the dataset")
        return cls.from_tensors(first[0], first[1], num_classes=num_classes, dataset=dataset, device=device)


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


def logits_of(out):
    """A model's output reduced to its logits: a tensor as it is, the last tensor of a tuple or
    list (NB201's official TinyNetwork returns ``(features, logits)``), ``out["logits"]`` of a dict."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        tensors = [o for o in out if isinstance(o, torch.Tensor)]
        if tensors:
            return tensors[-1]
    if isinstance(out, dict) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]
    raise HarnessError(f"the model returns {type(out).__name__}, not logits",
                       "return a logits tensor, a (features, logits) tuple, or a dict with 'logits'")


class LogitsOf(torch.nn.Module):
    """``net`` whose forward returns only its logits (see :func:`logits_of`); its modules are
    ``net``'s, so hooks, weight layers and BatchNorm layers are found as they are."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return logits_of(self.net(x))

    def __getattr__(self, name: str):
        # the wrapped model's own methods stay reachable (zen reads ``net.forward_pre_pool``)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("net"), name)


def as_batch(batch, device=None) -> "Batch":
    """A :class:`Batch` as it is, ``(x, y)`` tensors, or a DataLoader's first batch."""
    if isinstance(batch, Batch):
        return batch
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch):
        return Batch.from_tensors(*batch, device=device)
    if hasattr(batch, "__iter__"):
        return Batch.from_loader(batch, device=device)
    raise HarnessError(f"a {type(batch).__name__} is not a batch", "pass a Batch, (x, y) tensors or a DataLoader")


def score_module(estimator: str, net: torch.nn.Module, batch, seed: int | None = 0, **options) -> "ScoreResult":
    """Score any ``torch.nn.Module`` with ``estimator`` (``name`` or ``name:variant``).

    ``batch``: a :class:`Batch`, ``(x, y)`` tensors, or a DataLoader (its first batch). The model
    may return logits, ``(features, logits)`` or ``{"logits": ...}``; layers that the forward pass
    does not use contribute nothing to the gradient-based scores (``l2_norm``, ``params`` and
    ``flops`` still count every parameter the module holds). ``seed``: ``torch.manual_seed`` before
    scoring (estimators that draw random numbers, e.g. zen's inputs), None to leave the generator."""
    from .run import EstimatorSpec  # the one parser of "name:variant" (default and open variants included)

    spec = EstimatorSpec.parse(estimator)
    name, entry = spec.name, ESTIMATORS.get(spec.name)
    if spec.variant:
        options["variant"] = spec.variant
    method = entry.meta.get("requires_method")
    if method and not callable(getattr(net, method, None)):
        raise HarnessError(f"{name} needs the model's {method}(x) method, which {type(net).__name__} lacks",
                           f"add {method} (see harness.models.nb201.NB201Network) or use another estimator")
    batch = as_batch(batch)
    if seed is not None:
        torch.manual_seed(seed)
    return score(name, LogitsOf(net.to(batch.device)), batch, **options)


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
