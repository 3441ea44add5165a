"""The BPE tables and figures: the paper's sheet replayed, MIP, the sheet's DARTS cells trained here.

The computing modules (:mod:`harness.bpe.replay`, :mod:`harness.bpe.mip`,
:mod:`harness.bpe.darts_cells`) return data; this module alone writes their tables and plots.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..bpe.config import BPEConfig
from ..bpe.mip import MIPResult
from ..bpe.replay import load_table, nb201_tabular_bpe, pareto_front, published_check, replay
from .tables import new_figure, replacing, save_figure, write_table, writing


def plot_front(table: pd.DataFrame, out: Path, name: str, title: str, label_col: str = "name",
               xlabel: str = "GPU-hours per cell"):
    """Correlation against GPU-hours per cell (log scale), the Pareto front drawn through."""
    fig, ax = new_figure(figsize=(6.4, 4.4))
    ax.scatter(table.gpu_hours, table.spearman, s=22, color="tab:blue", zorder=3)
    front = table[pareto_front(table.gpu_hours.to_numpy(), table.spearman.to_numpy())].sort_values("gpu_hours")
    ax.step(front.gpu_hours, front.spearman, where="post", color="tab:red", lw=1.2, label="Pareto front")
    for _, r in table.iterrows():
        text = r.get("paper_name") or r[label_col]
        ax.annotate(str(text), (r.gpu_hours, r.spearman), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Spearman with the full training")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, out, name)


def write_replay(out: Path, bench=None, n_boot: int = 1000, path: str | Path | None = None) -> pd.DataFrame:
    """``out/configs.{csv,md}``, ``out/correlation_vs_cost.png`` and, with an NB201 store,
    ``out/nb201_tabular_bpe.{csv,md}`` and its plot. Returns the configurations table."""
    table = load_table(path)
    configs = replay(table, n_boot=n_boot)
    ok = published_check(configs)
    notes = (f"Source: {table.source} ({len(table.truth)} DARTS cells, {len(configs)} configurations). Spearman and "
             "Kendall tau-b recomputed from the sheet's accuracies against its ground truth (95 % bootstrap CIs, "
             f"{n_boot} resamples, seed 0); `sheet_spearman`: the sheet's own 'Correlation'; `gpu_hours`: its "
             "'MeanTime(GPU Hours)' per cell (the authors' GPU). `pareto`: no configuration is both cheaper and "
             "better correlated. BPE1 = Task5, BPE2 = Task32 (the paper's choices). "
             + ("Every recomputed Spearman equals the sheet's to 5e-4." if ok else
                "SOME recomputed Spearman values differ from the sheet's by more than 5e-4: see delta_vs_sheet."))
    write_table(configs, out, "configs", "The BPE paper's 32 configurations, replayed", notes)
    plot_front(configs, out, "correlation_vs_cost", "BPE configurations (100 DARTS cells, CIFAR-10)")
    if bench is not None:
        nb = nb201_tabular_bpe(bench, n_boot=n_boot)
        if len(nb):
            write_table(nb, out, "nb201_tabular_bpe", "NB201's 12-epoch run as a tabular BPE of its 200-epoch run",
                        "Validation split of each dataset, seed means, every cell; hours: NB201's recorded training "
                        "time per cell (their GPU), 12/200 of the 200-epoch time for the 12-epoch run.")
            plot_front(nb.assign(name=nb.dataset + " " + nb.epochs.astype(str) + "ep"), out, "nb201_tabular_bpe",
                       "NB201: 12- vs 200-epoch training as BPEs")
    return configs


def plot_importances(result: MIPResult, out, name: str = "importances"):
    """Importance of each free hyper-parameter per iteration (the pruned one marked)."""
    fig, ax = new_figure(figsize=(6.4, 4.0))
    imp = result.importances
    for param, g in imp.groupby("parameter", sort=False):
        line, = ax.plot(g.iteration, g.importance, marker="o", ms=3, lw=1, label=param)
        pruned = g[g.pruned_to.astype(str) != ""]
        ax.scatter(pruned.iteration, pruned.importance, marker="x", s=40, color=line.get_color(), zorder=4)
    ax.set_xlabel("MIP iteration")
    ax.set_ylabel("importance (x: pruned)")
    ax.set_title("MIP: hyper-parameter importance per iteration", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, out, name)


def write_mip(result: MIPResult, evaluator, out, context: str) -> dict:
    """``out/chosen.json``, ``out/evaluations.{csv,md}``, ``out/importances.{csv,md}``, the
    importance plot and the evaluations on a correlation-vs-cost plot. Returns the chosen record."""
    import json


    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    unit = getattr(evaluator, "cost_unit", "cost")
    chosen = {"evaluator": evaluator.name, "chosen": result.chosen, "spearman": result.spearman, "cost": result.cost,
              "cost_unit": unit, "objective": result.objective, "fixed_order": list(result.fixed),
              "evaluations": len(result.evaluations), "context": context}
    if hasattr(evaluator, "source"):
        chosen["source"] = evaluator.source(result.chosen)
    with replacing(out / "chosen.json") as tmp:
        tmp.write_text(json.dumps(chosen, indent=2, default=str) + "\n")
    write_table(result.evaluations.sort_values(["iteration", "cost"]).reset_index(drop=True), out, "evaluations",
                f"MIP evaluations ({evaluator.name})", f"{context} Cost: {unit}.")
    write_table(result.importances, out, "importances", "MIP importances per iteration",
                f"{context} `pruned_to`: the value the least important hyper-parameter was fixed to.")
    if len(result.importances):
        plot_importances(result, out)
    ev = result.evaluations.assign(gpu_hours=result.evaluations.cost,
                                   name=[f"it{r.iteration}" for r in result.evaluations.itertuples()])
    plot_front(ev, out, "evaluations_vs_cost", f"MIP evaluations ({evaluator.name})", xlabel=unit)
    return chosen


def write_darts_bpe(config: BPEConfig, out: Path, *, cells: int | None = None, cell_seed: int = 0, init_seed: int = 0,
                    device=None, n_boot: int = 1000, path=None, executor=None) -> dict:
    """Train (:func:`harness.bpe.darts_cells.darts_bpe`), then write ``out/cells.{csv,md}``,
    ``out/correlation.{csv,md}`` and a scatter plot; returns our correlation row."""
    from ..bpe.darts_cells import darts_bpe

    frame, table, note = darts_bpe(config, cells=cells, cell_seed=cell_seed, init_seed=init_seed, device=device,
                                   n_boot=n_boot, path=path, executor=executor)
    write_table(frame, out, "cells", "BPE on the sheet's DARTS cells: per cell", note)
    write_table(table, out, "correlation", "BPE on the sheet's DARTS cells: rank correlation", note)
    fig, ax = new_figure(figsize=(5.2, 4.0))
    ax.scatter(frame.score, frame.truth, s=14)
    ax.set_xlabel(f"validation accuracy after {config.label} (%)")
    ax.set_ylabel("full-training accuracy (sheet, %)")
    ax.set_title(f"Spearman {table.iloc[0]['spearman']:.3f}, {len(frame)} cells", fontsize=9)
    save_figure(fig, out, "scatter")
    return table.iloc[0].to_dict()
