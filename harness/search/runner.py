"""Many runs of one (strategy, estimator, budget): the runs table with every accuracy of the choice."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..benchmarks.nb201 import NB201, PROTOCOLS
from ..errors import HarnessError
from ..executors import Executor, LocalExecutor
from ..runstore import LayeredStore, RunStore, StoreReader
from .base import Budget, SearchResult, run_strategy

log = logging.getLogger(__name__)

LABELS = {"cifar10": "C10", "cifar100": "C100", "ImageNet16-120": "IN16"}


def accuracy_columns(bench: NB201) -> dict[str, np.ndarray]:
    """``"C10 val"`` -> accuracy of every cell (seed mean), for every split and budget the store has.

    The 200-epoch columns are named as the papers name them; 12-epoch ones get ``@12``.
    """
    columns = {}
    cells = np.arange(len(bench))
    for epochs in (200, 12):
        for p in PROTOCOLS:
            for role, short in (("valid", "val"), ("test", "test")):
                ds, split = getattr(p, role)
                try:
                    values = bench.query(cells, dataset=ds, split=split, epochs=epochs, seed="mean")
                except HarnessError:
                    continue
                columns[f"{LABELS[p.name]} {short}" + ("" if epochs == 200 else "@12")] = values
    return columns


def run_many(strategy: str, evaluator, space, budget: Budget, runs: int, seed: int, *,
             executor: Executor | None = None, task: SearchTask | None = None, store: RunStore | None = None,
             **options) -> list[SearchResult]:
    """``runs`` independent runs (run r uses rng ``[seed, r]``), with a progress bar.

    With an ``executor`` other than local, each run is a :class:`SearchTask` (``task``, its
    ``run`` field replaced) run by a worker on its own benchmark and a private run store; the
    scores a worker computed come back with its run and are added to ``store`` here."""
    if runs < 1:
        raise HarnessError(f"--runs {runs} is not positive", "ask for at least one run")
    if executor is None or isinstance(executor, LocalExecutor):
        results = []
        for r in tqdm(range(runs), desc=f"{strategy} x {evaluator.name}", unit="run", disable=runs < 5):
            results.append(run_strategy(strategy, space, evaluator, budget, seed, r, **options))
        return results
    if task is None or store is None:
        raise ValueError("run_many with a remote executor needs the task and the driver's run store")
    results: list[SearchResult | None] = [None] * runs
    tasks = [replace(task, run=r, cache=str(store.path)) for r in range(runs)]
    computed = 0
    for i, (result, rows) in tqdm(executor.run(run_search_task, tasks), total=runs, unit="run",
                                  desc=f"{strategy} x {evaluator.name}", disable=runs < 5):
        if len(rows):
            computed += store.put_many(rows)  # the driver alone writes the run store
        results[i] = result
    if hasattr(evaluator, "computed"):
        evaluator.computed += computed
    return results


@dataclass(frozen=True)
class SearchTask:
    """One search run for a worker: the strategy, the estimator (``make_evaluator``'s text), its
    batch, the budget (``Budget.parse``'s text), seed and run, options as sorted pairs."""

    strategy: str
    estimator: str
    dataset: str
    budget: str
    seed: int
    run: int = 0
    options: tuple = ()
    batch_size: int = 64
    batch_seed: int = 0
    init_seed: int = 0
    augment: bool = False
    device: str | None = None
    cache: str | None = None  # the driver's run store: read (never written) where this machine has it

    def __repr__(self) -> str:
        return f"{self.strategy} run {self.run} with {self.estimator} ({self.dataset}, budget {self.budget})"


_WORKER: dict = {}  # per worker process: the benchmark, a private run store, the evaluators


def run_search_task(task: SearchTask) -> tuple[SearchResult, pd.DataFrame]:
    """One run in a worker; returns it and the run-store rows of the cells it queried."""
    import tempfile
    from pathlib import Path

    import torch

    from ..spaces.nb201 import NB201Space
    from .evaluators import make_evaluator

    if "bench" not in _WORKER:
        _WORKER["bench"] = NB201.open()
        _WORKER["space"] = NB201Space(_WORKER["bench"].arch_strs())
        private = RunStore(Path(tempfile.mkdtemp(prefix="nas-harness-worker-")) / "runs.sqlite")
        # the driver's store, read only, where it is a file of this machine (processes; Ray on one host):
        # a score the driver has is not computed again; on another machine the worker computes it
        driver = StoreReader(Path(task.cache)) if task.cache and Path(task.cache).is_file() else None
        _WORKER["store"] = LayeredStore(private, driver)
    key = (task.estimator, task.dataset, task.batch_size, task.batch_seed, task.init_seed, task.augment, task.device)
    if key not in _WORKER:
        _WORKER[key] = make_evaluator(task.estimator, _WORKER["bench"], task.dataset, batch_size=task.batch_size,
                                      batch_seed=task.batch_seed, init_seed=task.init_seed, augment=task.augment,
                                      device=torch.device(task.device) if task.device else None,
                                      store=_WORKER["store"])
    evaluator = _WORKER[key]
    result = run_strategy(task.strategy, _WORKER["space"], evaluator, Budget.parse(task.budget), task.seed, task.run,
                          **dict(task.options))
    scorer = getattr(evaluator, "scorer", None)
    rows = (_WORKER["store"].rows([scorer.key(i) for i in sorted({h[0] for h in result.history})])
            if scorer is not None else pd.DataFrame())
    return result, rows


def runs_frame(results: list[SearchResult], bench: NB201, dataset: str, budget: Budget) -> pd.DataFrame:
    accs = accuracy_columns(bench)
    rows = []
    for res in results:
        chose = res.chosen >= 0  # -1: every evaluation of the run failed (counted in ``failures``)
        row = {"run": res.run, "seed": res.seed, "strategy": res.strategy, "estimator": res.estimator,
               "dataset": dataset, "budget": str(budget), "index": res.chosen,
               "arch": bench.arch(res.chosen) if chose else "", "simulated_s": res.simulated_s, "wall_s": res.wall_s,
               "cells": res.cells, "distinct": res.distinct, "failures": res.failures}
        row.update({label: float(values[res.chosen]) if chose else np.nan for label, values in accs.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def nb101_accuracy_columns(bench) -> dict[str, np.ndarray]:
    """NB101's CIFAR-10 accuracies of every stored cell: the best repeat's validation accuracy
    (every source has it), the mean validation and test accuracy (per-repeat runs only)."""
    rows = np.arange(len(bench))
    columns = {}
    for label, split, repeat in (("C10 test@108", "test", "mean"), ("C10 val@108", "valid", "mean"),
                                 ("C10 val@108:max", "valid", "max")):
        try:
            values = bench.query(rows, split=split, epochs=108, repeat=repeat)
        except HarnessError:
            continue
        if np.isfinite(values).any():
            columns[label] = values
    return columns


def nb101_runs_frame(results: list[SearchResult], bench, budget: Budget) -> pd.DataFrame:
    accs = nb101_accuracy_columns(bench)
    hashes = bench.hashes
    rows = []
    for res in results:
        chose = res.chosen >= 0
        row = {"run": res.run, "seed": res.seed, "strategy": res.strategy, "estimator": res.estimator,
               "dataset": "cifar10", "budget": str(budget), "index": res.chosen,
               "hash": hashes[res.chosen] if chose else "", "simulated_s": res.simulated_s,
               "wall_s": res.wall_s, "cells": res.cells, "distinct": res.distinct, "failures": res.failures}
        row.update({label: float(values[res.chosen]) if chose else np.nan for label, values in accs.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def trajectories(results: list[SearchResult], truth: np.ndarray, grid: np.ndarray, clock: str = "simulated"
                 ) -> np.ndarray:
    """(runs, len(grid)): ``truth`` of the incumbent (best reward so far) at each clock time; NaN before
    the first evaluation. Strategies that answer otherwise (REINFORCE's argmax) still show their
    incumbent here, as NB201's curves do."""
    out = np.full((len(results), len(grid)), np.nan)
    col = 2 if clock == "simulated" else 3
    for r, res in enumerate(results):
        if not res.history:
            continue
        hist = np.array([(h[0], h[1], h[col]) for h in res.history], dtype=np.float64)
        rewards = np.where(np.isfinite(hist[:, 1]), hist[:, 1], -np.inf)
        running = np.maximum.accumulate(rewards)
        is_record = rewards > np.concatenate([[-np.inf], running[:-1]])  # first best wins ties, as nanargmax
        best_pos = np.maximum.accumulate(np.where(is_record, np.arange(len(hist)), 0))
        incumbent_acc = truth[hist[best_pos, 0].astype(int)]
        pos = np.searchsorted(hist[:, 2], grid, side="right") - 1
        ok = pos >= 0
        out[r, ok] = incumbent_acc[pos[ok]]
    return out
