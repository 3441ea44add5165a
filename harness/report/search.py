"""Search tables: mean and std of the chosen cells' accuracies, beside the published tables.

Wall seconds: where the experiment measures them (a training-free score's or a trained BPE's
compute, a wall-clock budget) they are a column of the tables. Where they are incidental (a
tabular search on the simulated clock: table lookups and the strategy's own microseconds, which
differ between two calls) they go to ``timing.{csv,md}`` beside the tables, a file that is not
committed (``.gitignore``), so that the tables are a deterministic function of the inputs and
seeds.
"""

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
    if estimator.startswith("tabular:"):
        table = table[table.search_dataset == dataset]
        est = estimator.rsplit(":", 1)[0] if estimator.count(":") == 2 else estimator
        rows = table[(table.strategy == strategy) & (table.estimator == est)]
        return rows if budget is None else rows[rows.budget == budget]
    # training-free: every published column, each marked comparable or not (``images_match``)
    name = PUBLISHED_NAME.get(estimator, estimator)
    rows = table[(table.strategy == strategy) & (table.estimator == name)]
    if cells is not None:
        rows = rows[pd.to_numeric(rows.n, errors="coerce") == cells]
    return rows


def images_match(published_search: str, dataset: str) -> bool:
    """Whether a published search scored the same images as a search on ``dataset`` (the
    ``cifar10-valid`` training half is part of CIFAR-10's training set). A published column
    searched on other images (EPE-NAS's C100 and IN16) is not comparable to ours."""
    family = {"cifar10": {"cifar10", "cifar10-valid"}, "cifar10-valid": {"cifar10", "cifar10-valid"}}
    return published_search in family.get(dataset, {dataset})


FEW_RUNS = 10  # a published mean over at most this many runs: compared as one draw of our protocol


def consistent(mean: float, std: float, runs: int, pub_mean: float, pub_std: float, pub_runs: int):
    """Whether the published mean is within two standard errors of ours (NaN when undecidable).

    ``std``: ours with ddof 0 (as the tables print it), converted to ddof 1 here. Fewer than two
    of our runs decide nothing. A published mean over at most :data:`FEW_RUNS` runs (EPE-NAS: 3)
    is treated as one draw of a ``pub_runs``-run mean of our protocol, whose spread our runs
    measure: se = s * sqrt(1/runs + 1/pub_runs) (the paper's own std over 3 runs rests on 2
    degrees of freedom); otherwise the two means are compared with both spreads:
    se = sqrt(s^2/runs + pub_std^2/pub_runs)."""
    values = (mean, std, pub_mean, pub_std)
    if runs < 2 or pub_runs < 1 or not all(math.isfinite(v) for v in values):
        return math.nan
    s = std * math.sqrt(runs / (runs - 1))
    if pub_runs <= FEW_RUNS:
        se = s * math.sqrt(1 / runs + 1 / pub_runs)
    else:
        se = math.sqrt(s ** 2 / runs + pub_std ** 2 / pub_runs)
    delta = mean - pub_mean
    return bool(abs(delta) <= 2 * se) if se > 0 else bool(delta == 0)


def summary_table(runs: pd.DataFrame, cells_budget: int | None = None, published: bool = True) -> pd.DataFrame:
    """One row per accuracy column: ours (mean, std, runs) and the published one with the delta.

    ``within_2se``: :func:`consistent`. ``wall_s`` is a column only when ``runs`` has it (see the
    module docstring).
    """
    strategy, estimator = runs.strategy.iloc[0], runs.estimator.iloc[0]
    published = (_published_rows(strategy, estimator, cells_budget, runs.dataset.iloc[0], str(runs.budget.iloc[0]))
                 if published else pd.DataFrame(columns=["label"]))
    rows = []
    for label in [c for c in runs.columns if c.split(" ")[0] in ("C10", "C100", "IN16")]:
        values = runs[label].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if finite.size else math.nan
        std = float(finite.std(ddof=0)) if finite.size else math.nan
        row = {"strategy": strategy, "estimator": estimator, "dataset": runs.dataset.iloc[0],
               "budget": runs.budget.iloc[0], "metric": label, "mean": mean, "std": std, "runs": int(finite.size),
               "simulated_s": float(runs.simulated_s.mean())}
        if "wall_s" in runs:
            row["wall_s"] = float(runs.wall_s.mean())
        row["cells"] = float(runs.cells.mean())
        pub = published[published.label == label]
        if len(pub):
            p = pub.iloc[0]
            delta = mean - float(p["mean"])
            comparable = images_match(str(p.search_dataset), runs.dataset.iloc[0])
            row.update({"published_mean": float(p["mean"]), "published_std": float(p["std"]),
                        "published_runs": int(p.runs), "published_time_s": float(p.time_s), "delta": delta,
                        "within_2se": consistent(mean, std, int(finite.size), float(p["mean"]), float(p["std"]),
                                                 int(p.runs)) if comparable else math.nan,
                        "published_search": str(p.search_dataset), "comparable": comparable})
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
    # the curve as data: ``nas-harness report`` draws every strategy's on one figure
    write_table(pd.DataFrame({"simulated_s": grid, "metric": label, "mean": mean, "std": std,
                              "runs": np.isfinite(curves).sum(axis=0)}),
                out, name, f"Incumbent {label} against simulated seconds (mean and std over runs)", digits=4)


def write_trajectory(results, bench, out: Path, title: str, name: str = "trajectory",
                     columns: dict[str, np.ndarray] | None = None) -> None:
    """``out/trajectory.{png,csv,md}``: the incumbent's C10 test accuracy (or the first accuracy the
    runs have) against simulated seconds, mean and std over ``results``; nothing when no run spent
    simulated time (a training-free search). ``columns``: label -> accuracy of every cell
    (default: NB201's, :func:`~harness.search.runner.accuracy_columns`)."""
    from ..search.runner import accuracy_columns, trajectories

    horizon = max((r.simulated_s for r in results), default=0)
    if not horizon > 0:
        return
    columns = columns if columns is not None else accuracy_columns(bench)
    label = "C10 test" if "C10 test" in columns else next(iter(columns))
    grid = np.linspace(0, horizon, 200)
    trajectory_plot(grid, trajectories(results, columns[label], grid), label, title, out, name)


TIMING = "timing"  # out/timing.{csv,md}: incidental wall seconds, not committed (.gitignore)


def write_timing(table: pd.DataFrame, out: Path, title: str, notes: str = "") -> None:
    """``out/timing.{csv,md}``: wall-clock figures of this machine, kept out of the committed tables."""
    write_table(table, out, TIMING, title, (notes + " " if notes else "") + "Wall seconds measured on this machine "
                "in this call: they differ between calls, so this file is not committed (`.gitignore`).", digits=6)


def write_search_report(runs: pd.DataFrame, out: Path, cells_budget: int | None, context: str,
                        options: str = "", separate_timing: bool = False, benchmark: str = "NB201") -> pd.DataFrame:
    """``out/runs.{csv,md}``, ``out/summary.{csv,md}``; with ``separate_timing`` the runs' wall
    seconds go to ``out/timing.{csv,md}`` instead of the two tables (see the module docstring)."""
    out = Path(out)
    if separate_timing:
        write_timing(runs[["run", "seed", "wall_s"]], out, "Search runs: wall seconds per run",
                     f"{len(runs)} runs, mean {runs.wall_s.mean():.6g} s per run (the strategy's own compute and "
                     "the table lookups).")
        runs = runs.drop(columns="wall_s")
    write_table(runs, out, "runs", "Search runs: the chosen cell of each run and its accuracies", digits=3)
    summary = summary_table(runs, cells_budget if benchmark == "NB201" else None, published=benchmark == "NB201")
    summary.insert(2, "options", options)
    clocks = ("`simulated_s`, `cells`: means per run (wall seconds: `timing.csv`, not committed)"
              if separate_timing else "`simulated_s`, `wall_s`, `cells`: means per run")
    write_table(summary, out, "summary", "Search summary (mean and std over runs)",
                context + ("\n\nAccuracies: 200-epoch seed means of the chosen cell (`@12`: the 12-epoch run). "
                           if benchmark == "NB201" else "\n\nAccuracies of the chosen cell: 108-epoch means over the "
                           "repeats (`:max`: the best repeat, all nasbench-vis gives; NaN where the store lacks it). ")
                + f"{clocks}. `within_2se`: |delta| <= 2 standard errors (`consistent` in harness/report/search.py: "
                "of the difference of the two means, or, for a published mean over at most 10 runs, of our protocol's "
                "mean over as many runs; empty with fewer than 2 of our runs)."
                + (" Published numbers: `baselines/nb201_search.csv`." if benchmark == "NB201" else ""), digits=2)
    return summary


def combined_table(summaries: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows: one per search (strategy, estimator, options, budget); columns: the six 200-epoch
    accuracies as ``ours mean +- std`` and the published ``mean +- std`` with the delta.

    ``wall_s`` (a column when any summary has it): the measured wall seconds of the searches whose
    summary holds them; NaN for those whose wall seconds are only in their ``timing.csv``."""
    rows = []
    for summary in summaries:
        head = summary.iloc[0]
        if "published_search" not in summary and not str(head.estimator).startswith("tabular"):
            # a summary written before the column existed: the search datasets from the baselines
            cells = pd.to_numeric(str(head.budget).split(" ")[0], errors="coerce") if "cells" in str(head.budget) else None
            pub = _published_rows(head.strategy, head.estimator, None if pd.isna(cells) else int(cells), head.dataset)
            summary = summary.assign(published_search=summary.metric.map(dict(zip(pub.label, pub.search_dataset))))
        wall = head.get("wall_s", math.nan)
        row = {"strategy": head.strategy, "options": head.get("options", ""), "estimator": head.estimator,
               "budget": head.budget, "runs": int(head.runs), "simulated_s": f"{head.simulated_s:.0f}",
               "wall_s": f"{wall:.3g}" if pd.notna(wall) else math.nan}
        for _, r in summary.iterrows():
            if r.metric not in SPLITS:
                continue
            row[r.metric] = f"{r['mean']:.2f}±{r['std']:.2f}"
            if "published_mean" in summary and pd.notna(r.get("published_mean")):
                published = f"{r.published_mean:.2f}±{r.published_std:.2f}"
                search = r.get("published_search")
                if isinstance(search, str) and not images_match(search, head.dataset):
                    row[f"{r.metric} published (Δ)"] = f"{published} (n/c: searched on {search})"
                    continue
                verdict = consistent(float(r["mean"]), float(r["std"]), int(r["runs"]), float(r.published_mean),
                                     float(r.published_std), int(r.get("published_runs", 0) or 0))
                flag = " *" if verdict is False else ""  # recomputed, so older summaries follow the same rule
                row[f"{r.metric} published (Δ)"] = f"{published} ({r.delta:+.2f}{flag})"
        rows.append(row)
    table = pd.DataFrame(rows)
    order = ["strategy", "options", "estimator", "budget", "runs", "simulated_s"]
    if table.wall_s.notna().any():
        order.append("wall_s")
    for label in SPLITS:
        order += [c for c in (label, f"{label} published (Δ)") if c in table]
    return table[order]


def study_table(runs_frames: dict[int, pd.DataFrame], estimator: str, dataset: str) -> pd.DataFrame:
    """One row per (N, metric): ours (runs, mean, std) beside the published mean, and the fraction
    of our k-run subsets (k = the published run count, 3 for EPE-NAS) whose mean reaches it: how
    typical the published figure is of the protocol. ``comparable``: False where the published
    search scored other images than ours (EPE-NAS searched C100 and IN16 on those datasets)."""
    from ..search.n_sample_study import fraction_reaching

    published = _published_rows("n_sample", estimator, None, dataset)
    rows = []
    for n, frame in sorted(runs_frames.items()):
        for label in [c for c in frame.columns if c in SPLITS]:
            values = frame[label].to_numpy(dtype=np.float64)
            finite = values[np.isfinite(values)]
            row = {"N": n, "metric": label, "runs": int(finite.size),
                   "mean": float(finite.mean()) if finite.size else math.nan,
                   "std": float(finite.std(ddof=0)) if finite.size else math.nan}
            pub = published[(pd.to_numeric(published.n, errors="coerce") == n) & (published.label == label)]
            if len(pub):
                p = pub.iloc[0]
                comparable = images_match(str(p.search_dataset), dataset)
                k = int(p.runs)
                if not comparable:
                    fraction, how = math.nan, "not comparable"
                elif k > FEW_RUNS:
                    fraction, how = math.nan, f"published over {k} runs: see within_2se"
                else:
                    fraction, how = fraction_reaching(finite, float(p["mean"]), k)
                delta = row["mean"] - float(p["mean"])
                row.update({"published_mean": float(p["mean"]), "published_std": float(p["std"]),
                            "published_runs": k, "delta": delta,
                            "within_2se": consistent(row["mean"], row["std"], row["runs"], float(p["mean"]),
                                                     float(p["std"]), k) if comparable else math.nan,
                            "frac_subsets_reaching": fraction, "subsets": how,
                            "published_search": str(p.search_dataset), "comparable": comparable})
            rows.append(row)
    return pd.DataFrame(rows)


def study_plot(runs_frames: dict[int, pd.DataFrame], table: pd.DataFrame, label: str, title: str, out: Path,
               name: str) -> None:
    """Our runs' ``label`` accuracy per N (box plot) with the published mean as a red mark."""
    ns = sorted(n for n, f in runs_frames.items() if np.isfinite(f[label]).any())
    if not ns:
        return
    fig, ax = new_figure(figsize=(5.0, 3.6))
    data = [runs_frames[n][label].dropna().to_numpy() for n in ns]
    ax.boxplot(data, showfliers=True, flierprops={"markersize": 2})
    ax.set_xticks(range(1, len(ns) + 1), [f"N={n}\n({len(d)} runs)" for n, d in zip(ns, data)])
    if "published_mean" in table:
        for i, n in enumerate(ns, start=1):
            pub = table[(table.N == n) & (table.metric == label)].published_mean.dropna()
            if len(pub):
                ax.plot([i], [pub.iloc[0]], "r*", markersize=9, label="published mean" if i == 1 else None)
    ax.set_ylabel(f"{label} of the chosen cell (%)")
    ax.set_title(title, fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, out, name)


def write_study_report(runs_frames: dict[int, pd.DataFrame], estimator: str, dataset: str, out: Path,
                       context: str, options: str = "") -> pd.DataFrame:
    """``out/N{n}/{runs,summary}.{csv,md}`` per N (the format of ``nas-harness search``, so
    ``report search`` can take them), ``out/study.{csv,md}`` and ``out/study_<metric>.png``."""
    out = Path(out)
    for n, frame in sorted(runs_frames.items()):
        write_search_report(frame, out / f"N{n}", n, context, options=options)
    table = study_table(runs_frames, estimator, dataset)
    write_table(table, out, "study", f"N-sample search with {estimator} under the paper's batch protocol",
                context + "\n\nOurs: mean and std (ddof 0) of the chosen cell's 200-epoch seed-mean accuracy over "
                "the runs. `frac_subsets_reaching`: the fraction of the subsets of our runs, as many runs as the "
                "paper averaged, whose mean is at least the published mean (`subsets`: every subset, or 10^6 "
                "random ones; only where the paper averaged at most 10 runs; one-sided: near 0 the published figure is "
                "better than our protocol typically gives, near 1 worse). `within_2se`: |delta| <= 2 standard errors, "
                "se = s sqrt(1/n + 1/k) for a published mean over k <= 10 runs (one draw of our k-run mean), else "
                "sqrt(s^2/n + s_pub^2/k) (s with ddof 1; empty with fewer than 2 of our runs). `comparable`: False where the published search scored other images than ours "
                "(`published_search`); such columns are shown, not compared.", digits=3)
    for label in ("C10 test", "C10 val"):
        study_plot(runs_frames, table, label, f"{estimator} on {dataset}: {label}", out,
                   "study_" + label.lower().replace(" ", "_"))
    return table
