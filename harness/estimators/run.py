"""Scoring many cells: one preprocessed batch reused across cells, results in the run store.

Each (cell, estimator) is scored on a freshly initialised network (``torch.manual_seed(init_seed
+ index)``, so a cell's network does not depend on which other cells are scored or in which
order), and its score, time and failure reason are committed to the :class:`RunStore` at once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..data import load_images, sample_batch, to_tensor_batch
from ..devices import default_device  # noqa: F401 - re-exported: callers import it from here
from ..errors import HarnessError
from ..executors import Executor, LocalExecutor
from ..models import network_for
from ..paths import portable_path
from ..runstore import RunStore, ScoreKey
from ..seeds import BATCH, derive
from .base import ESTIMATORS, TRANSIENT_FAILURES, Batch, ScoreResult, TransientScoreError, score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EstimatorSpec:
    name: str
    variant: str

    @classmethod
    def parse(cls, text: str) -> "EstimatorSpec":
        """``name`` or ``name:variant`` (e.g. ``epe_nas:official10``)."""
        name, _, variant = text.strip().partition(":")
        entry = ESTIMATORS.get(name)
        variants = entry.meta.get("variants", ())
        variant = variant or entry.meta.get("default_variant", "")
        canonical = entry.meta.get("canonical_variant")
        if canonical is not None:  # an open family of variants (e.g. any BPE configuration)
            return cls(name, canonical(variant))
        if variant and variant not in variants:
            raise HarnessError(f"estimator {name} has no variant {variant!r}",
                               f"use one of {', '.join(variants)}" if variants else f"write just {name}")
        return cls(name, variant)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.variant}" if self.variant else self.name


def make_batch(dataset: str, batch_size: int, batch_seed: int, augment: bool, device: torch.device,
               source=None) -> tuple[Batch, str]:
    """A batch of real training images of ``dataset``; returns it and the image set's source."""
    images = load_images(dataset, "train", source)
    return batch_from(images, dataset, batch_size, batch_seed, augment, device), images.source


def batch_from(images, dataset: str, batch_size: int, batch_seed: int, augment: bool, device) -> Batch:
    """``batch_size`` images of ``images`` drawn with ``batch_seed`` (augmented with the same seed)."""
    idx = sample_batch(images.y, batch_size, batch_seed)
    x, y = to_tensor_batch(images, idx, device=torch.device(device), augment=augment,
                           generator=torch.Generator().manual_seed(batch_seed))
    return Batch(x, y, images.num_classes, dataset, batch_seed)


class CellScorer:
    """Scores cells with one estimator on one batch; every score goes through the run store.

    ``arch_of(index) -> arch string``. :meth:`score` returns (score, seconds, error, cached):
    a cached score is read back with the seconds it took when it was computed. ``batch`` may be
    a zero-argument callable that builds the batch, called only when a score is not cached
    (``dtype`` then names the batch's dtype for the run-store key).
    """

    def __init__(self, arch_of, dataset: str, spec: EstimatorSpec, *, batch, images: str,
                 batch_size: int, batch_seed: int, init_seed: int = 0, augment: bool = False,
                 device: torch.device | None = None, store: RunStore | None = None, space: str = "nb201",
                 dtype: str = "float32"):
        self.arch_of, self.dataset, self.spec, self._batch, self.images = arch_of, dataset, spec, batch, images
        self.dtype = str(batch.x.dtype).removeprefix("torch.") if isinstance(batch, Batch) else dtype
        self.batch_size, self.batch_seed, self.init_seed, self.augment = batch_size, batch_seed, init_seed, augment
        self.device = device or default_device()
        self.store = store or RunStore()
        self.space = space
        self.images_key = portable_path(images)  # the same key on every machine (HARNESS_DATA/images/...)

    def key(self, index: int) -> ScoreKey:
        return ScoreKey(self.space, self.dataset, int(index), self.spec.name, self.spec.variant, self.batch_size,
                        self.batch_seed, self.init_seed, self.augment, self.images_key, self.version, self.device.type,
                        torch.__version__, self.dtype)

    @property
    def batch(self) -> Batch:
        if not isinstance(self._batch, Batch):
            self._batch = self._batch()
        return self._batch

    @property
    def version(self) -> str:
        return str(ESTIMATORS.get(self.spec.name).meta.get("version", ""))

    def score(self, index: int) -> tuple[float, float, str, bool]:
        key = self.key(index)
        cached = self.store.get(key)
        if cached is not None:
            return float(cached[0]), float(cached[1]), cached[2] or "", True
        result = score_network(self.arch_of(int(index)), self.dataset, self.spec, self.batch,
                               self.init_seed + int(index), self.device, self.space)
        self.store.put(key, result.score, result.seconds, result.error)
        return float(result.score), float(result.seconds), result.error or "", False

    def task(self, index: int, batch_seed: int | None = None, source=None, device: str | None = None) -> ScoreTask:
        """What a worker needs to compute :meth:`score` of ``index`` elsewhere (see :func:`compute_score`);
        ``device``: its name as the worker sees it (default: this scorer's device)."""
        return ScoreTask(self.arch_of(int(index)), int(index), self.dataset, self.spec.name, self.spec.variant,
                         self.batch_size, self.batch_seed if batch_seed is None else batch_seed, self.init_seed,
                         self.augment, device or str(self.device), None if source is None else str(source),
                         self.space)


def score_network(arch: str, dataset: str, spec: EstimatorSpec, batch: Batch, seed: int,
                  device: torch.device, space: str = "nb201") -> ScoreResult:
    """The network of ``arch`` in ``space`` (:func:`harness.models.network_for`) initialised after
    ``torch.manual_seed(seed)``, scored on ``batch``. Out of memory while the network is built or
    moved raises :class:`TransientScoreError` too (never cached), as it does inside the estimator."""
    torch.manual_seed(seed)
    try:
        net = network_for(space, arch, dataset).to(device)
    except TRANSIENT_FAILURES as err:
        raise TransientScoreError(f"building the network of {arch} on {device} ran out of memory "
                                  f"({type(err).__name__})", "nothing was cached: free memory, then rerun "
                                  "(scores already computed are kept)") from err
    options = {"variant": spec.variant} if spec.variant else {}
    return score(spec.name, net, batch, **options)


@dataclass(frozen=True)
class ScoreTask:
    """One (cell, estimator) to score in a worker: everything :func:`compute_score` needs, and small.

    ``source``: the image file (None: the dataset's default under HARNESS_DATA on the worker)."""

    arch: str
    index: int
    dataset: str
    estimator: str
    variant: str
    batch_size: int
    batch_seed: int
    init_seed: int
    augment: bool
    device: str
    source: str | None = None
    space: str = "nb201"

    def __repr__(self) -> str:  # how a task is named in a log line or an error
        label = f"{self.estimator}:{self.variant}" if self.variant else self.estimator
        return f"{label} on cell {self.index} ({self.dataset}, batch seed {self.batch_seed})"


def _worker_images(dataset: str, source: str | None):
    """The training images, loaded once per process and place they are looked up in (a per-cell
    protocol needs a batch per task; a default source depends on HARNESS_DATA and HARNESS_HOME)."""
    return _images_at(dataset, source, os.environ.get("HARNESS_DATA"), os.environ.get("HARNESS_HOME"))


@lru_cache(maxsize=2)
def _images_at(dataset: str, source: str | None, data: str | None, home: str | None):
    return load_images(dataset, "train", source)


@lru_cache(maxsize=4)
def _worker_batch(dataset: str, batch_size: int, batch_seed: int, augment: bool, device: str, source: str) -> Batch:
    return batch_from(_worker_images(dataset, source), dataset, batch_size, batch_seed, augment, device)


def compute_score(task: ScoreTask) -> tuple[float, float, str]:
    """(score, seconds, error) of one task, in whichever process runs it; the same value as
    :meth:`CellScorer.score` computes in the driver (the same batch, seed and network)."""
    source = task.source or _worker_images(task.dataset, None).source  # the resolved file keys the batch cache
    batch = _worker_batch(task.dataset, task.batch_size, task.batch_seed, task.augment, task.device, str(source))
    result = score_network(task.arch, task.dataset, EstimatorSpec(task.estimator, task.variant), batch,
                           task.init_seed + task.index, torch.device(task.device), task.space)
    return float(result.score), float(result.seconds), result.error or ""


BATCH_PROTOCOLS = ("shared", "per-cell")


def score_cells(arch_of, indices: Sequence[int], dataset: str, estimators: Sequence[EstimatorSpec], *,
                batch_size: int, batch_seed: int, init_seed: int = 0, augment: bool = False,
                device: torch.device | None = None, store: RunStore | None = None, space: str = "nb201",
                image_source=None, batch_protocol: str = "shared", executor: Executor | None = None,
                representative_of: Callable[[int], int] | None = None) -> pd.DataFrame:
    """Scores of every (cell, estimator); cached ones are read back, missing ones computed.

    ``arch_of(index) -> arch string``. ``batch_protocol``: ``shared``, one batch (``batch_seed``)
    for every cell; ``per-cell``, cell ``i`` gets its own batch, seed ``derive(1, batch_seed, i)``
    (as NASLib's zero-cost runner, which draws a fresh batch from its loader for every cell). Every
    estimator sees the same batch for a cell. ``executor``: where the missing scores are computed
    (default: this process); each is written to the run store here, as it arrives.
    ``representative_of(index) -> index``: each cell gets the score of that cell (network, init
    seed and batch seed all of the representative's own), computed once for all who share it:
    with :meth:`NB201Space.representatives`, one score per isomorphism class. Returns one row per
    cell and estimator: index, arch, estimator, score, seconds, error, cached, scored_as (the
    index whose score it is).
    """
    if batch_protocol not in BATCH_PROTOCOLS:
        raise HarnessError(f"batch protocol {batch_protocol!r} is not known", f"use {' or '.join(BATCH_PROTOCOLS)}")
    device = device or default_device()
    store = store or RunStore()
    executor = executor or LocalExecutor()
    images = load_images(dataset, "train", image_source)
    if not 1 <= batch_size <= len(images):
        raise HarnessError(f"batch size {batch_size} does not fit {len(images)} {dataset} training images",
                           f"use a batch size of 1..{len(images)}")
    scorers = [CellScorer(arch_of, dataset, spec, batch=lambda: None, images=images.source, batch_size=batch_size,
                          batch_seed=batch_seed, init_seed=init_seed, augment=augment, device=device, store=store,
                          space=space) for spec in estimators]
    rows, tasks, keys = [], [], []
    pending: dict = {}  # key -> rows waiting for it (members of one class share one task)
    for index in list(indices):
        arch = arch_of(int(index))
        scored = int(representative_of(int(index))) if representative_of is not None else int(index)
        seed = batch_seed if batch_protocol == "shared" else derive(BATCH, batch_seed, scored)
        for scorer in scorers:
            key = replace(scorer.key(scored), batch_seed=seed)
            row = {"index": int(index), "arch": arch, "estimator": scorer.spec.label, "scored_as": scored}
            cached = store.get(key)
            if cached is not None:
                row.update(score=float(cached[0]), seconds=float(cached[1]), error=cached[2] or "", cached=True)
            elif key in pending:
                pending[key].append(len(rows))
            else:
                pending[key] = [len(rows)]
                tasks.append(scorer.task(scored, seed, image_source, executor.device_name(device)))
                keys.append(key)
            rows.append(row)
    log.info("%d (cell, estimator) pairs to score, %d read from the run store or shared within a class "
             "(executor: %s)", len(tasks), len(rows) - len(tasks), executor.config.describe())
    bar = tqdm(total=len(tasks), desc=f"scoring {dataset}", unit="score", disable=len(tasks) < 5)
    try:
        for i, (value, seconds, error) in executor.run(compute_score, tasks):
            key = keys[i]
            store.put(key, value, seconds, error or None)  # the driver alone writes the store, as results come
            for n, position in enumerate(pending[key]):
                rows[position].update(score=value, seconds=seconds, error=error, cached=n > 0)
            bar.update()
    finally:
        bar.close()
    frame = pd.DataFrame(rows)
    frame["score"] = frame["score"].astype(float)
    return frame


def sample_indices(n: int, seed: int, total: int) -> np.ndarray:
    """``n`` distinct cells, seeded (the same seed gives the same cells)."""
    if not 1 <= n <= total:
        raise HarnessError(f"--archs {n} is outside 1..{total}", f"ask for 1..{total} cells")
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def nested_sample(n: int, seed: int, total: int) -> np.ndarray:
    """``n`` distinct positions of ``0..total-1``: the first ``n`` of a seeded permutation, in that
    order. Samples of one seed are nested (the 100 cells are the first 100 of the 1,000), so a
    long job scored in this order gives, when stopped, a complete smaller sample."""
    if not 1 <= n <= total:
        raise HarnessError(f"--archs {n} is outside 1..{total}", f"ask for 1..{total} cells")
    return np.random.default_rng(seed).permutation(total)[:n]
