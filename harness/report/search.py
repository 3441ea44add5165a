"""Search tables: mean and std of the chosen cells' accuracies, beside the published tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import baselines
from .tables import new_figure, save_figure, write_table

#: published estimator names for our labels (default variants drop their suffix)
PUBLISHED_NAME = {"naswot:hamming": "naswot", "naswot:v1": "naswot:v1", "epe_nas:paper": "epe_nas",
                  "epe_nas:official10": "epe_nas"}
SPLITS = {"C10 val": ("cifar10-valid", "x-valid"), "C10 test": ("cifar10", "ori-test"),
          "C100 val": ("cifar100", "x-valid"), "C100 test": ("cifar100", "x-test"),
          "IN16 val": ("ImageNet16-120", "x-valid"), "IN16 test": ("ImageNet16-120", "x-test")}


def _published_rows(strategy: str, estimator: str, cells: int | None, dataset: str,
                    budget: str | None = None) -> pd.DataFrame:
    """Published rows for the same strategy, estimator and search dataset (and, for a tabular
    estimator, the same budget: a search with another budget is another experiment)."""
    table = baselines.load("nb201_search")
    table = table[table.search_dataset == dataset]
    if estimator.startswith("tabular:"):
        est = estimator.rsplit(":", 1)[0] if estimator.count(":") == 2 else estimator
        rows = table[(table.strategy == strategy) & (table.estimator == est)]
        return rows if budget is None else rows[rows.budget == budget]
    name = PUBLISHED_NAME.get(estimator, estimator)
    rows = table[(table.strategy == strategy) & (table.estimator == name)]
    if cells is not None:
        rows = rows[pd.to_numeric(rows.n, errors="coerce") == cells]
    return rows


def summary_table(runs: pd.DataFrame, cells_budget: int | None = None) -> pd.DataFrame:
    """One row per accuracy column: ours (mean, std, runs) and the published one with the delta.

    ``within_2se``: |delta| <= 2 * sqrt(std_ours^2/runs_ours + std_pub^2/runs_pub).
    """
    strategy, estimator = runs.strategy.iloc[0], runs.estimator.iloc[0]
    published = _published_rows(strategy, estimator, cells_budget, runs.dataset.iloc[0], str(runs.budget.iloc[0]))
    rows = []
    for label in [c for c in runs.columns if c.split(" ")[0] in ("C10", "C100", "IN16")]:
        values = runs[label].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if finite.size else math.nan
        std = float(finite.std(ddof=0)) if finite.size else math.nan
        row = {"strategy": strategy, "estimator": estimator, "dataset": runs.dataset.iloc[0],
               "budget": runs.budget.iloc[0], "metric": label, "mean": mean, "std": std, "runs": int(finite.size),
               "simulated_s": float(runs.simulated_s.mean()), "wall_s": float(runs.wall_s.mean()),
               "cells": float(runs.cells.mean())}
        pub = published[published.label == label]
        if len(pub):
            p = pub.iloc[0]
            se = math.sqrt(std ** 2 / max(finite.size, 1) + float(p["std"]) ** 2 / float(p.runs))
            delta = mean - float(p["mean"])
            row.update({"published_mean": float(p["mean"]), "published_std": float(p["std"]),
                        "published_runs": int(p.runs), "published_time_s": float(p.time_s), "delta": delta,
                        "within_2se": bool(abs(delta) <= 2 * se) if se > 0 else bool(delta == 0)})
        rows.append(row)
    return pd.DataFrame(rows)


def trajectory_plot(grid: np.ndarray, curves: np.ndarray, label: str, title: str, out: Path, name: str) -> None:
    fig, ax = new_figure(figsize=(5.0, 3.6))
    seen = np.isfinite(curves).any(axis=0)  # before any run's first evaluation there is nothing to plot
    grid, curves = grid[seen], curves[:, seen]
    mean = np.nanmean(curves, axis=0)
    std = np.nanstd(curves, axis=0)
    ax.plot(grid, mean, lw=1.5)
    ax.fill_between(grid, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel(f"{label} of the incumbent (%)")
    ax.set_title(title, fontsize=9)
    save_figure(fig, out, name)


def write_search_report(runs: pd.DataFrame, out: Path, cells_budget: int | None, context: str,
                        options: str = "") -> pd.DataFrame:
    out = Path(out)
    write_table(runs, out, "runs", "Search runs: the chosen cell of each run and its accuracies", digits=3)
    summary = summary_table(runs, cells_budget)
    summary.insert(2, "options", options)
    write_table(summary, out, "summary", "Search summary (mean and std over runs)",
                context + "\n\nAccuracies: 200-epoch seed means of the chosen cell (`@12`: the 12-epoch run). "
                "`simulated_s`, `wall_s`, `cells`: means per run. `within_2se`: |delta| <= 2 x the standard error "
                "of the difference of the two means. Published numbers: `baselines/nb201_search.csv`.", digits=2)
    return summary


def combined_table(summaries: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows: one per search (strategy, estimator, options, budget); columns: the six 200-epoch
    accuracies as ``ours mean +- std`` and the published ``mean +- std`` with the delta."""
    rows = []
    for summary in summaries:
        head = summary.iloc[0]
        row = {"strategy": head.strategy, "options": head.get("options", ""), "estimator": head.estimator,
               "budget": head.budget, "runs": int(head.runs), "simulated_s": f"{head.simulated_s:.0f}", "wall_s": f"{head.wall_s:.3g}"}
        for _, r in summary.iterrows():
            if r.metric not in SPLITS:
                continue
            row[r.metric] = f"{r['mean']:.2f}±{r['std']:.2f}"
            if "published_mean" in summary and pd.notna(r.get("published_mean")):
                flag = "" if r.within_2se else " *"
                row[f"{r.metric} published (Δ)"] = (f"{r.published_mean:.2f}±{r.published_std:.2f} "
                                                    f"({r.delta:+.2f}{flag})")
        rows.append(row)
    table = pd.DataFrame(rows)
    order = ["strategy", "options", "estimator", "budget", "runs", "simulated_s", "wall_s"]
    for label in SPLITS:
        order += [c for c in (label, f"{label} published (Δ)") if c in table]
    return table[order]
