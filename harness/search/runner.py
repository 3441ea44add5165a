"""Many runs of one (strategy, estimator, budget): the runs table with every accuracy of the choice."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..benchmarks.nb201 import NB201, PROTOCOLS
from ..errors import HarnessError
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


def run_many(strategy: str, evaluator, space, budget: Budget, runs: int, seed: int,
             **options) -> list[SearchResult]:
    """``runs`` independent runs (run r uses rng ``[seed, r]``), with a progress bar."""
    if runs < 1:
        raise HarnessError(f"--runs {runs} is not positive", "ask for at least one run")
    results = []
    for r in tqdm(range(runs), desc=f"{strategy} x {evaluator.name}", unit="run", disable=runs < 5):
        results.append(run_strategy(strategy, space, evaluator, budget, seed, r, **options))
    return results


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
