"""The differentiable-search tables and figures: runs, summary beside NB201's rows, alpha per epoch.

:mod:`harness.search.differentiable` computes (and keeps every run in the run store); this module
writes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..search.differentiable import METHODS, DifferentiableResult, alpha_frame, runs_frame
from ..spaces.nb201 import EDGES, OPS
from .search import write_search_report
from .tables import new_figure, save_figure, write_table


def plot_alpha(alpha: pd.DataFrame, out: Path, name: str = "alpha", initial: dict | None = None):
    """softmax(alpha) per edge over the epochs for the first run (lowest seed) of each method: one colour
    per op, one line style per method. ``initial``: method -> the 6 x 5 softmax(alpha) drawn at epoch 0."""
    fig, axes = new_figure(figsize=(9.0, 5.0), nrows=2, ncols=3, sharex=True, sharey=True)
    colours = dict(zip(OPS, ("0.55", "tab:red", "tab:blue", "tab:green", "tab:orange")))
    styles = dict(zip(METHODS, ("-", "--", ":")))
    for method, runs in alpha.groupby("method", sort=False):
        first = runs[runs.seed == runs.seed.min()]
        for e, (ax, edge) in enumerate(zip(axes.flat, [f"{s}->{d}" for s, d in EDGES])):
            for k, op in enumerate(OPS):
                g = first[(first.edge == edge) & (first.op == op)]
                x, y = g.epoch.tolist(), g.weight.tolist()
                if initial and method in initial:
                    x, y = [0] + x, [initial[method][e][k]] + y
                ax.plot(x, y, marker="o", ms=2, lw=1, color=colours[op], ls=styles.get(method, "-."),
                        label=f"{method} {op}" if e == 0 else None)
    from matplotlib.ticker import MaxNLocator

    for ax, (s, d) in zip(axes.flat, EDGES):  # y autoscaled: early in a search alpha moves by 1e-3
        ax.set_title(f"edge {s}->{d}", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.flat[0].legend(fontsize=5, ncol=1)
    fig.supxlabel("epoch", fontsize=8)
    fig.supylabel("softmax(alpha), first run", fontsize=8)
    return save_figure(fig, out, name)


def write_differentiable(results: list[DifferentiableResult], bench, out: Path, context: str) -> pd.DataFrame:
    """``out/runs.{csv,md}``, ``out/summary.{csv,md}`` (beside NB201's published row), ``out/alpha.csv``
    and the alpha plot. Returns the summary."""
    runs = runs_frame(results, bench)
    summary = write_search_report(runs, out, None, context, options=results[0].config)
    alpha = alpha_frame(results)
    write_table(alpha, out, "alpha", "softmax(alpha) per epoch, edge and op", context)
    plot_alpha(alpha, out, initial={r.method: r.alpha_init for r in sorted(results, key=lambda r: -r.seed)
                                    if r.alpha_init})
    return summary
