"""N-sample training-free search under the papers' batch protocols, for many N at once.

The official EPE-NAS search draws N cells uniformly with replacement and scores each on a
*fresh* batch of 256 augmented training images (a new ``next(iter(loader))`` per cell); the
official NASWOT search (ICML 2021) scores every cell of one run on the *same* batch of 128
unaugmented images, and a new run draws a new batch. Which batch a draw sees is a
:class:`BatchProtocol`:

- ``per-cell``: draw ``p`` of the stream gets batch seed ``derive(1, batch_seed, seed, p)`` and
  its own network initialisation ``derive(2, init_seed, seed, p)`` (EPE-NAS);
- ``per-run``: run ``r`` of size ``N`` gets ``derive(1, batch_seed, seed, N, r)`` and
  ``derive(2, init_seed, seed, N, r)`` for all its cells (NASWOT);
- ``shared``: one batch (``batch_seed``) and ``init_seed`` for every cell of every run, as
  ``nas-harness search --strategy n_sample`` does.

The cells come from one stream of i.i.d. uniform draws (``seed``): run ``r`` of size ``N`` is
draws ``[rN, (r+1)N)``, so a stream of ``D`` draws gives ``D // N`` independent runs of each N.
Under ``per-cell`` the rows of different N reuse the same scored draws (the runs *within* a
row are independent; rows are correlated with each other, as common random numbers), so 10,000
draws give 1,000 runs of N=10, 100 of N=100, 20 of N=500 and 10 of N=1000 for the price of
10,000 scorings. Every score goes through the run store at once: an interrupted study resumes
where it stopped, and a longer stream extends a shorter one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import torch
from tqdm import tqdm

from ..data import load_images
from ..errors import HarnessError
from ..estimators.run import CellScorer, EstimatorSpec, compute_score, default_device
from ..executors import Executor, LocalExecutor
from ..runstore import RunStore
from ..seeds import BATCH, INIT, derive  # noqa: F401 - derive is part of this module's API
from .base import SearchResult

log = logging.getLogger(__name__)

KINDS = ("per-cell", "per-run", "shared")
BLOCK = 1000  # draws per seeded block of the stream (so a longer stream extends a shorter one)


@dataclass(frozen=True)
class BatchProtocol:
    """Which batch and network initialisation each draw is scored with.

    ``batch_size`` images of the dataset's training set, ``augment``: random crop (pad 4) and
    horizontal flip; ``kind`` as in the module docstring.
    """

    kind: str = "per-cell"
    batch_size: int = 256
    augment: bool = True
    batch_seed: int = 0
    init_seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise HarnessError(f"batch protocol {self.kind!r} is not known", f"use one of {', '.join(KINDS)}")
        if self.batch_size < 1:
            raise HarnessError(f"batch size {self.batch_size} is not positive", "use e.g. --batch-size 256")

    def seeds(self, seed: int, n: int, run: int, position: int) -> tuple[int, int]:
        """(batch seed, init seed) of stream draw ``position`` in run ``run`` of size ``n``."""
        if self.kind == "per-cell":
            return derive(BATCH, self.batch_seed, seed, position), derive(INIT, self.init_seed, seed, position)
        if self.kind == "per-run":
            return derive(BATCH, self.batch_seed, seed, n, run), derive(INIT, self.init_seed, seed, n, run)
        return self.batch_seed, self.init_seed

    def describe(self) -> str:
        what = {"per-cell": "a fresh batch and initialisation for every drawn cell",
                "per-run": "one batch and initialisation per run, shared by its cells",
                "shared": f"one batch (seed {self.batch_seed}) and init seed {self.init_seed} for every run"}[self.kind]
        aug = "random crop + flip" if self.augment else "no augmentation"
        return f"{self.kind}: {what}; {self.batch_size} training images, {aug}"


#: the official protocols (papers.md sections 2 and 3)
PROTOCOLS = {"epe_nas": BatchProtocol("per-cell", 256, True), "naswot": BatchProtocol("per-run", 128, False)}


def stream(draws: int, seed: int, total: int) -> np.ndarray:
    """``draws`` cell indices drawn i.i.d. uniformly from ``total`` (with replacement)."""
    if draws < 1:
        raise HarnessError(f"--draws {draws} is not positive", "ask for at least N draws")
    blocks = [np.random.default_rng([seed, b]).integers(0, total, size=BLOCK) for b in range(math.ceil(draws / BLOCK))]
    return np.concatenate(blocks)[:draws]


@dataclass
class StudyResult:
    """Per N: the runs (one :class:`SearchResult` each, history = (cell, score, 0, seconds))."""

    runs: dict[int, list[SearchResult]]
    computed: int  # scores computed in this call (the rest were read from the run store)
    scored: int  # draws scored in all (with repeats across rows)
    keys: list  # the run-store key of every scored draw (for RunStore.rows / export)


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during the scoring: every draw scored so far is in the run store; ``keys`` are the
    run-store keys of every draw of the study, so the caller can keep the scored ones."""

    def __init__(self, keys: list):
        super().__init__()
        self.keys = keys


def run_study(bench, dataset: str, spec: EstimatorSpec, ns, draws: int, seed: int, protocol: BatchProtocol,
              *, max_runs: int | None = None, device: torch.device | None = None, store: RunStore | None = None,
              image_source=None, executor: Executor | None = None) -> StudyResult:
    """Score the stream and cut it into runs of every N in ``ns``; see the module docstring.

    ``max_runs`` caps the runs of each N (the first ones). ``executor``: where the draws not in
    the run store are scored (default: this process); each score is stored here as it arrives.
    Checks every argument before scoring.
    """
    ns = sorted({int(n) for n in ns}, reverse=True)
    if not ns or ns[-1] < 1:
        raise HarnessError(f"N must be positive (got {ns})", "pass e.g. --ns 10,100,500,1000")
    if draws < ns[0]:
        raise HarnessError(f"--draws {draws} is fewer than the largest N ({ns[0]})",
                           f"ask for at least {ns[0]} draws ({10 * ns[0]} give 10 runs of N={ns[0]})")
    device = device or default_device()
    store = store or RunStore()
    executor = executor or LocalExecutor()
    images = load_images(dataset, "train", image_source)
    if protocol.batch_size > len(images):
        raise HarnessError(f"batch size {protocol.batch_size} does not fit {len(images)} {dataset} training images",
                           f"use --batch-size 1..{len(images)}")
    cells = stream(draws, seed, len(bench))
    plan = {n: (draws // n if max_runs is None else min(draws // n, max_runs)) for n in ns}
    total = sum(n * runs for n, runs in plan.items())

    def scorer(batch_seed: int, init_seed: int) -> CellScorer:
        return CellScorer(bench.arch, dataset, spec, batch=lambda: None, images=images.source,
                          batch_size=protocol.batch_size, batch_seed=batch_seed, init_seed=init_seed,
                          augment=protocol.augment, device=device, store=store)

    # every draw of every run: its key; the ones not in the store become tasks (each once)
    draws_of = {n: [] for n in ns}
    tasks, task_keys, seen = [], [], set()
    for n in ns:
        for r in range(plan[n]):
            for p in range(r * n, (r + 1) * n):
                s = scorer(*protocol.seeds(seed, n, r, p))
                key = s.key(int(cells[p]))
                draws_of[n].append((r, int(cells[p]), key))
                if key not in seen and store.get(key) is None:
                    tasks.append(s.task(int(cells[p]), source=image_source, device=executor.device_name(device)))
                    task_keys.append(key)
                seen.add(key)
    log.info("%d draws in the runs, %d distinct scores to compute (executor: %s), the rest in the run store",
             total, len(tasks), executor.config.describe())
    bar = tqdm(total=len(tasks), desc=f"{spec.label} draws", unit="draw", disable=len(tasks) < 5)
    try:
        for i, (value, seconds, error) in executor.run(compute_score, tasks):
            store.put(task_keys[i], value, seconds, error or None)
            bar.update()
    except KeyboardInterrupt:
        raise StudyInterrupted([key for n in ns for _, _, key in draws_of[n]]) from None
    finally:
        bar.close()
    out: dict[int, list[SearchResult]] = {}
    keys = []
    for n in ns:
        histories = [[] for _ in range(plan[n])]
        for r, cell, key in draws_of[n]:
            value, seconds, error = store.get(key)
            histories[r].append((cell, math.nan if error or value is None else float(value), 0.0, float(seconds)))
            keys.append(key)
        out[n] = [_result(spec.label, n, r, seed, h) for r, h in enumerate(histories)]
    log.info("%d draws scored, %d computed now, the rest read from the run store", total, len(tasks))
    return StudyResult(out, len(tasks), total, keys)


def _result(estimator: str, n: int, run: int, seed: int, history: list) -> SearchResult:
    scores = np.array([h[1] for h in history], dtype=np.float64)
    failures = int((~np.isfinite(scores)).sum())
    chosen = -1 if failures == len(scores) else history[int(np.nanargmax(scores))][0]  # first best wins ties
    return SearchResult("n_sample", estimator, run, seed, int(chosen), n, len({h[0] for h in history}), 0.0,
                        float(sum(h[3] for h in history)), failures, history)


def fraction_reaching(values: np.ndarray, target: float, k: int = 3, *, exact_limit: int = 2_000_000,
                      samples: int = 1_000_000, seed: int = 0) -> tuple[float, str]:
    """Fraction of the ``k``-run subsets of ``values`` whose mean is >= ``target``.

    Exact (every subset) when there are at most ``exact_limit`` subsets, else estimated from
    ``samples`` random subsets (seeded); returns (fraction, "exact" or "sampled")."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) < k:
        return math.nan, "too few runs"
    if math.comb(len(values), k) <= exact_limit:
        subsets = np.fromiter((i for c in combinations(range(len(values)), k) for i in c), dtype=np.int64)
        subsets = subsets.reshape(-1, k)
        how = "exact"
    else:
        subsets = _sample_subsets(np.random.default_rng(seed), len(values), k, samples)
        how = "sampled"
    means = values[subsets].mean(axis=1)
    return float((means >= target - 1e-12).mean()), how


def _sample_subsets(rng: np.random.Generator, n: int, k: int, samples: int) -> np.ndarray:
    """``samples`` uniformly random k-subsets of range(n): rows with a repeated index are redrawn."""
    picks = rng.integers(0, n, size=(samples, k))
    while True:
        ordered = np.sort(picks, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not repeated.any():
            return picks
        picks[repeated] = rng.integers(0, n, size=(int(repeated.sum()), k))
