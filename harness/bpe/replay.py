"""The BPE paper's own measurements replayed (Zheng et al., CVPR 2020).

``Search_Hyperparameters_Results.xlsx`` (authors' repository): sheet ``Hyperparameters Search``
holds 32 configurations ("Task1".."Task32": epochs, batch size, lr, layers, fp, channels, cutout,
image size), each with the CIFAR-10 accuracy of the same 100 random DARTS cells, the sheet's
"Correlation" (Spearman with the ground truth) and "MeanTime(GPU Hours)" per cell; sheet
``Ground_truth`` holds the cells' genotypes and fully trained accuracy. Nothing is typed in:
every correlation is recomputed from the accuracies.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import data_file
from ..errors import HarnessError
from ..metrics import rank_agreement
from ..paths import portable_path
from .config import BPEConfig

log = logging.getLogger(__name__)

SHEET_FILE = "bpe/Search_Hyperparameters_Results.xlsx"
ROWS = {"epoch": "epochs", "batchsize": "batch_size", "learning rate": "lr", "n_layers": "layers", "fp": "fp",
        "channels": "channels", "cutout_len": "cutout", "image_size": "image_size"}
CHOSEN = {"Task5": "BPE1", "Task32": "BPE2"}


@dataclass
class BPETable:
    """The sheet as data: ``configs`` (one row per task), ``acc`` (cells x tasks, %), ``truth`` (cells, %)."""

    configs: pd.DataFrame
    acc: pd.DataFrame
    truth: pd.Series
    source: str  # the spreadsheet, as the tables name it (``HARNESS_DATA/bpe/...``: no path of this machine)

    def config(self, task: str) -> BPEConfig:
        row = self.configs.set_index("name").loc[task]
        return BPEConfig(epochs=int(row.epochs), batch_size=int(row.batch_size), lr=float(row.lr),
                         layers=int(row.layers), channels=int(row.channels), image_size=int(row.image_size),
                         precision=f"fp{int(row.fp)}", cutout=int(row.cutout))


def load_table(path: str | Path | None = None) -> BPETable:
    """Parse the spreadsheet (``HARNESS_DATA/bpe/...`` unless ``path``); checks its layout."""
    path = Path(path) if path else data_file(SHEET_FILE, "the BPE paper's spreadsheet")
    try:
        sheets = pd.read_excel(path, sheet_name=["Hyperparameters Search", "Ground_truth"], header=None)
    except (ValueError, KeyError, OSError) as err:
        raise HarnessError(f"{path} is not the BPE spreadsheet ({err})",
                           "use Search_Hyperparameters_Results.xlsx from the authors' repository") from None
    grid, gt = sheets["Hyperparameters Search"], sheets["Ground_truth"]
    labels = grid.iloc[:, 0].astype(str).str.strip()
    tasks = [str(t).strip() for t in grid.iloc[0, 1:] if isinstance(t, str) and t.strip().startswith("Task")]
    if not tasks:
        raise HarnessError(f"{path}: no Task columns in sheet 'Hyperparameters Search'", "use the authors' file")

    def row(label: str) -> np.ndarray:
        hits = np.flatnonzero(labels.to_numpy() == label)
        if hits.size != 1:
            raise HarnessError(f"{path}: sheet 'Hyperparameters Search' has no single row {label!r}",
                               "use the authors' file")
        return grid.iloc[hits[0], 1:1 + len(tasks)].to_numpy()

    configs = pd.DataFrame({"name": tasks, **{name: pd.to_numeric(row(label)) for label, name in ROWS.items()}})
    configs["sheet_spearman"] = pd.to_numeric(row("Correlation"))
    configs["gpu_hours"] = pd.to_numeric(row("MeanTime(GPU Hours)"))
    configs["paper_name"] = configs.name.map(CHOSEN).fillna("")
    arch_rows = labels.str.fullmatch(r"arch_\d+")
    acc = grid.loc[arch_rows, 1:len(tasks)].apply(pd.to_numeric)
    acc.index = [int(s.split("_")[1]) for s in labels[arch_rows]]
    acc.columns = tasks
    gt = gt.iloc[1:]
    truth = pd.Series(pd.to_numeric(gt.iloc[:, 2]).to_numpy(),
                      index=[int(str(s).split("_")[1]) for s in gt.iloc[:, 0]], name="ground_truth")
    if set(truth.index) != set(acc.index):
        raise HarnessError(f"{path}: the cells of the two sheets differ", "use the authors' file")
    return BPETable(configs, acc.sort_index(), truth.sort_index(), portable_path(path))


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point beats (<= cost and >= quality, one strictly)."""
    cost, quality = np.asarray(cost, float), np.asarray(quality, float)
    front = np.ones(cost.size, dtype=bool)
    for i in range(cost.size):
        better = (cost <= cost[i]) & (quality >= quality[i]) & ((cost < cost[i]) | (quality > quality[i]))
        front[i] = not better.any()
    return front


def replay(table: BPETable, n_boot: int = 1000) -> pd.DataFrame:
    """One row per configuration: its settings, Spearman and Kendall tau-b (95 % CIs) against
    the ground truth, the sheet's Spearman and the difference, GPU-hours per cell, Pareto flag."""
    rows = []
    truth = table.truth.loc[table.acc.index].to_numpy()
    for _, cfg in table.configs.iterrows():
        r = rank_agreement(table.acc[cfg["name"]].to_numpy(), truth, n_boot=n_boot, seed=0,
                           kendall_boot=min(200, n_boot))
        rows.append({"name": cfg["name"], "paper_name": cfg.paper_name, "epochs": int(cfg.epochs),
                     "batch_size": int(cfg.batch_size), "lr": float(cfg.lr), "layers": int(cfg.layers),
                     "channels": int(cfg.channels), "image_size": int(cfg.image_size),
                     "precision": f"fp{int(cfg.fp)}", "cutout": int(cfg.cutout), "cells": r.n,
                     "spearman": r.spearman, "spearman_lo": r.spearman_ci[0], "spearman_hi": r.spearman_ci[1],
                     "kendall": r.kendall, "kendall_lo": r.kendall_ci[0], "kendall_hi": r.kendall_ci[1],
                     "sheet_spearman": float(cfg.sheet_spearman),
                     "delta_vs_sheet": r.spearman - float(cfg.sheet_spearman),
                     "gpu_hours": float(cfg.gpu_hours)})
    out = pd.DataFrame(rows)
    out["pareto"] = pareto_front(out.gpu_hours.to_numpy(), out.spearman.to_numpy())
    return out


def nb201_tabular_bpe(bench, n_boot: int = 1000) -> pd.DataFrame:
    """NB201's 12-epoch run as a tabular BPE of its 200-epoch run, per dataset (validation split,
    seed means, all 15,625 cells); cost = mean training hours per cell from the benchmark (NB201's
    GPU), with the 200-epoch run itself as the reference point."""
    from ..benchmarks.nb201 import PROTOCOLS

    rows = []
    cells = np.arange(len(bench))
    for p in PROTOCOLS:
        ds, split = p.valid
        try:
            full = bench.query(cells, dataset=ds, split=split, epochs=200, seed="mean")
            short = bench.query(cells, dataset=ds, split=split, epochs=12, seed="mean")
            hours200 = bench.query(cells, dataset=ds, split="train", epochs=200, seed="mean", metric="time") / 3600
        except HarnessError as err:
            log.info("NB201 tabular BPE: %s skipped (%s)", p.name, err)
            continue
        r = rank_agreement(short, full, n_boot=n_boot, seed=0, kendall_boot=min(50, n_boot))
        for epochs, res, hours in ((12, r, np.nanmean(hours200) * 12 / 200), (200, None, np.nanmean(hours200))):
            rows.append({"name": f"NB201 {epochs} epochs", "dataset": ds, "split": split, "epochs": epochs,
                         "cells": int(np.isfinite(full).sum()),
                         "spearman": res.spearman if res else 1.0, "spearman_lo": res.spearman_ci[0] if res else 1.0,
                         "spearman_hi": res.spearman_ci[1] if res else 1.0, "kendall": res.kendall if res else 1.0,
                         "gpu_hours": float(hours)})
    return pd.DataFrame(rows)


def published_check(configs: pd.DataFrame, tolerance: float = 5e-4) -> bool:
    """True when every recomputed Spearman equals the sheet's to ``tolerance`` (the sheet rounds to 4 places)."""
    return bool((configs.delta_vs_sheet.abs() <= tolerance).all()) and not math.isnan(configs.spearman.sum())
