"""Estimators a strategy can query: the tabular oracle at a budget, or a training-free score.

``tabular:ROLE@EPOCHS[:SEED]`` reads the benchmark: ROLE is ``valid`` or ``test`` of the search
dataset's protocol (CIFAR-10 validation = ``cifar10-valid x-valid``), EPOCHS is 12 or 200, SEED
is ``random`` (a seed drawn per query among those the benchmark has, NB201's ``is_random``;
the default where per-seed values exist) or ``mean``. Each query charges the simulated clock the
cell's training time for EPOCHS epochs: the drawn seed's own training time where the store has
per-seed times (as NB201's ``is_random`` lookup does), else the run's seed-mean training time,
else EPOCHS/200 of the 200-epoch training time (NB201 records the same per-epoch time for both
runs), plus one evaluation pass when the store has its time.

Anything else is a training-free estimator (``naswot``, ``epe_nas:official10``, ...): it charges
nothing to the simulated clock and its measured scoring seconds to the wall clock.
"""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import torch

from ..benchmarks.nb201 import NB201, protocol
from ..errors import HarnessError
from ..estimators.base import ESTIMATORS
from ..estimators.run import CellScorer, EstimatorSpec, default_device, make_batch
from ..runstore import RunStore
from .base import Evaluation

log = logging.getLogger(__name__)

_TABULAR = re.compile(r"tabular:(valid|test)@(12|200)(?::(random|mean))?")


class TabularEvaluator:
    """The benchmark as an oracle; all lookups precomputed as arrays (a query is an index)."""

    def __init__(self, bench: NB201, dataset: str, role: str = "valid", epochs: int = 12, seed: str | None = None):
        ds, split = getattr(protocol(dataset), role)
        self._args = (bench, dataset, role, seed)
        self.epochs = epochs
        cells = np.arange(len(bench))
        self.per_seed = None
        if seed in (None, "random"):
            try:
                self.per_seed = bench.query(cells, dataset=ds, split=split, epochs=epochs, seed="all")
            except HarnessError:
                if seed == "random":
                    raise HarnessError(f"the store has no per-seed {ds} {split} accuracy at {epochs} epochs",
                                       f"use tabular:{role}@{epochs}:mean, or import the official NATS/.pth "
                                       "files (nas-harness data import nb201)") from None
                log.info("no per-seed %s %s @%d in the store: the reward is the seed mean", ds, split, epochs)
        self.seed = "random" if self.per_seed is not None else "mean"
        self.mean = bench.query(cells, dataset=ds, split=split, epochs=epochs, seed="mean")
        self.cost, self.cost_note = _training_cost(bench, ds, split, epochs)
        self.seed_cost = self._seed_costs(bench, ds, epochs) if self.per_seed is not None else None
        self.name = f"tabular:{role}@{epochs}:{self.seed}"

    fidelities = (12, 200)  # epochs NB201 trained every cell for

    def _seed_costs(self, bench: NB201, ds: str, epochs: int) -> np.ndarray | None:
        """(cells, seeds) cost of each seed's run, where the store has every drawable seed's time."""
        cells = np.arange(len(bench))
        try:
            per_seed = bench.query(cells, dataset=ds, split="train", epochs=epochs, seed="all", metric="time")
            mean = bench.query(cells, dataset=ds, split="train", epochs=epochs, seed="mean", metric="time")
        except HarnessError:
            return None
        if not np.isfinite(per_seed[np.isfinite(self.per_seed)]).all():
            return None
        self.cost_note = self.cost_note.replace(f"{ds} train time", f"{ds} train time of the drawn seed", 1)
        return per_seed + (self.cost - mean)[:, None]  # the same evaluation pass as the seed-mean cost

    def at_epochs(self, epochs: int) -> "TabularEvaluator":
        """The same oracle (role, seed rule, dataset) at another training budget (epochs)."""
        if epochs not in self.fidelities:
            raise HarnessError(f"NB201 has no {epochs}-epoch run", f"use one of {self.fidelities}")
        if epochs == self.epochs:
            return self
        bench, dataset, role, seed = self._args
        return TabularEvaluator(bench, dataset, role, epochs, seed)

    def evaluate(self, index: int, rng: np.random.Generator) -> Evaluation:
        cost = float(self.cost[index])
        if self.per_seed is not None:
            finite = np.flatnonzero(np.isfinite(self.per_seed[index]))
            reward = math.nan
            if finite.size:
                seed = finite[rng.integers(finite.size)]
                reward = float(self.per_seed[index, seed])
                if self.seed_cost is not None:
                    cost = float(self.seed_cost[index, seed])
        else:
            reward = float(self.mean[index])
        error = "" if math.isfinite(reward) else "the benchmark has no value for this cell"
        return Evaluation(reward, cost, 0.0, error)


def _training_cost(bench: NB201, dataset: str, split: str, epochs: int) -> tuple[np.ndarray, str]:
    """Seconds to train ``epochs`` epochs (+ one evaluation pass where known), per cell."""
    cells = np.arange(len(bench))
    try:
        train = bench.query(cells, dataset=dataset, split="train", epochs=epochs, seed="mean", metric="time")
        note = f"{dataset} train time of the {epochs}-epoch run"
    except HarnessError:
        try:
            full = bench.query(cells, dataset=dataset, split="train", epochs=200, seed="mean", metric="time")
        except HarnessError:
            raise HarnessError(f"the store has no training time for {dataset}",
                               "search on cifar10, or import the official NATS/.pth files "
                               "(nas-harness data import nb201)") from None
        train = full * epochs / 200
        note = f"{epochs}/200 of the {dataset} 200-epoch train time"
    try:
        evaluation = bench.query(cells, dataset=dataset, split=split, epochs=epochs, seed="mean", metric="time")
        note += f" + one {split} evaluation"
        lacking = int((np.isfinite(train) & ~np.isfinite(evaluation)).sum())
        if lacking:  # counted, never silently 0: the note (and every table's caption) says how many
            note += f" ({lacking} cells lack the evaluation time: only their training is charged)"
        train = train + np.nan_to_num(evaluation, nan=0.0)
    except HarnessError:
        note += " (no evaluation time in the store)"
    return train, note


class TrainingFreeEvaluator:
    """A registered estimator's score as the reward (training-free, or a BPE's budgeted training);
    scores shared through the run store."""

    def __init__(self, spec: EstimatorSpec, bench: NB201, dataset: str, *, batch_size: int, batch_seed: int,
                 init_seed: int = 0, augment: bool = False, device: torch.device | None = None,
                 store: RunStore | None = None):
        device = device or default_device()
        batch, images = make_batch(dataset, batch_size, batch_seed, augment, device)
        self.scorer = CellScorer(bench.arch, dataset, spec, batch=batch, images=images, batch_size=batch_size,
                                 batch_seed=batch_seed, init_seed=init_seed, augment=augment, device=device,
                                 store=store)
        self.name = spec.label
        if "training" in ESTIMATORS.get(spec.name).meta.get("needs", ()):
            self.cost_note = ("budgeted training on this machine (simulated 0 s: no benchmark time is charged); "
                              "wall = measured training + validation seconds per cell")
        else:
            self.cost_note = "no training (simulated 0 s); wall = measured scoring seconds per cell"
        self.computed = 0

    def evaluate(self, index: int, rng: np.random.Generator) -> Evaluation:
        value, seconds, error, cached = self.scorer.score(index)
        self.computed += not cached
        return Evaluation(value if not error else math.nan, 0.0, max(seconds, 1e-12), error)


class NB101TabularEvaluator:
    """NB101 as an oracle, as the NB101 paper's benchmarking code queries it: each query draws one
    of the cell's repeats (``repeat="random"``) and charges that run's training time; with
    ``mean`` the reward is the mean over the repeats and the cost their mean time.

    Cells the store has only from nasbench-vis (no per-repeat runs) give the best repeat's
    validation accuracy and the time it records: :attr:`cost_note` says for how many cells.
    """

    def __init__(self, bench, role: str = "valid", epochs: int = 108, repeat: str | None = None):
        rows = np.arange(len(bench))
        self.epochs, self.repeat = epochs, repeat or "random"
        split = "valid" if role == "valid" else "test"
        try:
            self.per_repeat = bench.query(rows, split=split, epochs=epochs, repeat="all")
            self.times = bench.query(rows, split="train", epochs=epochs, repeat="all", metric="time")
        except HarnessError:
            self.per_repeat = self.times = np.full((len(bench), 3), np.nan)
        try:
            best = bench.query(rows, split=split, epochs=epochs, repeat="max")
            best_time = bench.query(rows, split="train", epochs=epochs, repeat="max", metric="time")
        except HarnessError:
            best = best_time = np.full(len(bench), np.nan)
        has_runs = np.isfinite(self.per_repeat).any(axis=1)
        self.fallback, self.fallback_time = best, best_time
        self.has_runs = has_runs
        # the cells a search may query: a reward and a training time to charge (NASLib's cells have neither)
        self.queryable = has_runs | (np.isfinite(best) & np.isfinite(best_time))
        n_best = int((~has_runs & np.isfinite(best)).sum())
        self.name = f"tabular:{role}@{epochs}:{self.repeat}"
        self.cost_note = (f"the training time of the queried run ({epochs} epochs, TPU v2 seconds)"
                          + (f"; {n_best} cells have no per-repeat runs (nasbench-vis): their reward is the best "
                             "repeat's validation accuracy and their cost its training time" if n_best else ""))

    def evaluate(self, index: int, rng: np.random.Generator) -> Evaluation:
        if self.has_runs[index]:
            runs = np.flatnonzero(np.isfinite(self.per_repeat[index]))
            if self.repeat == "random":
                k = runs[rng.integers(runs.size)]
                reward, cost = float(self.per_repeat[index, k]), float(self.times[index, k])
            else:
                reward = float(self.per_repeat[index, runs].mean())
                cost = float(np.nanmean(self.times[index, runs]))
        else:
            reward, cost = float(self.fallback[index]), float(self.fallback_time[index])
        error = "" if math.isfinite(reward) else "the store has no accuracy for this cell"
        return Evaluation(reward if not error else math.nan, cost, 0.0, error)


_NB101_TABULAR = re.compile(r"tabular:(valid|test)@(4|12|36|108)(?::(random|mean))?")


def make_nb101_evaluator(text: str, bench):
    m = _NB101_TABULAR.fullmatch(text.strip())
    if not m:
        raise HarnessError(f"estimator {text!r} is not an NB101 oracle",
                           "write tabular:valid@108 (optionally :random or :mean; budgets 4, 12, 36, 108)")
    return NB101TabularEvaluator(bench, m.group(1), int(m.group(2)), m.group(3))


def make_evaluator(text: str, bench: NB201, dataset: str, **training_free):
    """``tabular:valid@12`` and friends, or a training-free ``name[:variant]``."""
    m = _TABULAR.fullmatch(text.strip())
    if m:
        return TabularEvaluator(bench, dataset, m.group(1), int(m.group(2)), m.group(3))
    if text.startswith("tabular"):
        raise HarnessError(f"estimator {text!r} is not understood",
                           "write tabular:valid@12, tabular:valid@200, tabular:test@200 (optionally :mean or :random)")
    return TrainingFreeEvaluator(EstimatorSpec.parse(text), bench, dataset, **training_free)
