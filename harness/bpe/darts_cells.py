"""The BPE paper's 100 DARTS cells trained under any BPE configuration, on this machine.

Each cell of the spreadsheet's ``Ground_truth`` sheet is built as DARTS's evaluation network
(:class:`harness.models.darts.DartsNetwork`, ``layers`` cells in all, ``channels`` initial
channels, no auxiliary head, no drop-path), trained by the budgeted trainer on the
``cifar10-valid`` train half and measured on the valid half (the paper's own code measured on the
CIFAR-10 test set). Each result goes to the run store at once (space ``darts-bpe-sheet``, index =
the sheet's arch number, variant = the configuration's label, init seed), so an interrupted run
resumes. The table then holds the Spearman and Kendall tau-b of the trained accuracies against
the sheet's full-training accuracies, and, when the configuration is one the sheet measured, the
sheet's own accuracies of the same cells beside ours.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..errors import HarnessError
from ..executors import Executor, LocalExecutor
from ..estimators.base import ESTIMATORS, TRANSIENT_FAILURES, TransientScoreError
from ..metrics import rank_agreement
from ..runstore import RunStore, ScoreKey
from .config import BPEConfig
from .trainer import load_train_data, train

log = logging.getLogger(__name__)

SPACE = "darts-bpe-sheet"


def train_darts(genotype, config: BPEConfig, data, seed: int = 0):
    """One DARTS cell's evaluation network (``config.layers`` cells, ``config.channels``
    channels), initialised with ``torch.manual_seed(seed)``, trained under ``config``."""
    from ..models.darts import DartsNetwork

    torch.manual_seed(seed)
    model = DartsNetwork(genotype, C=config.channels, layers=config.layers, num_classes=data.num_classes)
    return train(model.to(data.device), data, config, seed=seed)


def _select(truth: pd.DataFrame, cells: int | None, cell_seed: int) -> pd.DataFrame:
    if cells is None:
        return truth
    if cells > len(truth):
        raise HarnessError(f"--cells {cells} is more than the sheet's {len(truth)} cells",
                           f"ask for 3..{len(truth)}, or leave --cells out to train all {len(truth)}")
    if cells < 3:
        raise HarnessError(f"--cells {cells} cannot give a rank correlation", "train at least 3 cells")
    if cells == len(truth):
        return truth
    pick = np.sort(np.random.default_rng(cell_seed).choice(len(truth), size=cells, replace=False))
    return truth.iloc[pick]


@dataclass(frozen=True)
class DartsTask:
    """One sheet cell to train under a BPE, in whichever process runs it."""

    arch_id: str
    genotype: object
    config: BPEConfig
    seed: int
    device: str

    def __repr__(self) -> str:
        return f"DARTS cell {self.arch_id} under {self.config.label}"


def train_darts_task(task: DartsTask) -> tuple[float, float, str]:
    """(validation accuracy %, wall seconds, error) of one cell; a refused size is a kept failure,
    out of memory raises (never cached)."""
    config, device = task.config, torch.device(task.device)
    data = load_train_data("cifar10", config.fraction, config.valid_images or None, device=device)
    start = time.perf_counter()
    try:
        score, error = train_darts(task.genotype, config, data, seed=task.seed).valid_acc, ""
    except HarnessError as err:  # a size the network refuses: the same every time, so it is kept
        score, error = math.nan, f"{type(err).__name__}: {err}"
    except TRANSIENT_FAILURES as err:  # out of memory: says nothing about the cell, never cached
        raise TransientScoreError(f"training {task.arch_id} under {config.label} ran out of memory",
                                  "nothing was cached for it: free memory or lower the batch size, then "
                                  "rerun (cells already trained are kept)") from err
    if not math.isfinite(score) and not error:
        error = f"non-finite accuracy ({score})"
    return float(score), time.perf_counter() - start, error


def train_sheet_cells(config: BPEConfig, *, cells: int | None = None, cell_seed: int = 0, init_seed: int = 0,
                      device: torch.device | str | None = None, store: RunStore | None = None,
                      path: str | Path | None = None, executor: Executor | None = None) -> pd.DataFrame:
    """Train the sheet's cells (all, or a seeded sample of ``cells``) under ``config``.

    Returns one row per cell: arch_id, arch_index, truth (full-training accuracy, %), score
    (our validation accuracy after the BPE, %), seconds (wall, training + validation), error,
    cached. A failed cell keeps NaN with its reason. ``executor``: where the cells not in the
    run store are trained (default: this process); each result is stored here as it arrives.
    """
    from ..spaces.darts import load_ground_truth

    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    store = store or RunStore()
    executor = executor or LocalExecutor()
    truth = _select(load_ground_truth(path), cells, cell_seed)
    note = load_train_data("cifar10", config.fraction, config.valid_images or None).note  # on the CPU: for the key only
    version = str(ESTIMATORS.get("bpe").meta.get("version", ""))
    rows, tasks, keys = [], [], []
    for r in truth.itertuples():
        key = ScoreKey(SPACE, "cifar10", int(r.arch_index), "bpe", config.label, config.batch_size, 0, init_seed,
                       True, note, version, device.type, torch.__version__, "float32")
        cached = store.get(key)
        row = {"arch_id": r.arch_id, "arch_index": int(r.arch_index), "truth": float(r.accuracy)}
        if cached is None:
            tasks.append(DartsTask(r.arch_id, r.genotype, config, init_seed + int(r.arch_index),
                                   executor.device_name(device)))
            keys.append((len(rows), key))
        else:
            score, seconds, error = cached
            row.update(score=float(score), seconds=float(seconds), error=error or "", cached=True)
        rows.append(row)
    bar = tqdm(total=len(tasks), desc=f"BPE {config.label}", unit="cell", disable=len(tasks) < 3)
    try:
        for i, (score, seconds, error) in executor.run(train_darts_task, tasks):
            position, key = keys[i]
            store.put(key, score, seconds, error)  # the driver alone writes the run store, as each cell ends
            rows[position].update(score=score, seconds=seconds, error=error, cached=False)
            bar.update()
    finally:
        bar.close()
    return pd.DataFrame(rows)


def sheet_accuracies(config: BPEConfig, path=None) -> pd.Series | None:
    """The sheet's own accuracies (by arch number) of a configuration it measured, else None."""
    from .replay import load_table

    table = load_table(path)
    same = [name for name in table.acc.columns
            if all(getattr(table.config(name), k) == getattr(config, k)
                   for k in ("epochs", "batch_size", "lr", "layers", "channels", "image_size", "precision", "cutout"))]
    if not same:
        return None
    return table.acc[same].mean(axis=1)


def correlation_row(frame: pd.DataFrame, config: BPEConfig, n_boot: int = 1000) -> dict:
    ok = np.isfinite(frame.score.to_numpy())
    row = {"config": config.label, "cells": len(frame), "failed": int((~ok).sum()),
           "median_seconds": float(np.median(frame.seconds)), "total_hours": float(frame.seconds.sum() / 3600)}
    if ok.sum() >= 3:
        res = rank_agreement(frame.score.to_numpy()[ok], frame.truth.to_numpy()[ok], n_boot=n_boot, seed=0)
        row.update(spearman=res.spearman, spearman_lo=res.spearman_ci[0], spearman_hi=res.spearman_ci[1],
                   kendall=res.kendall)
    else:
        row.update(spearman=math.nan, spearman_lo=math.nan, spearman_hi=math.nan, kendall=math.nan)
    return row


def darts_bpe(config: BPEConfig, *, cells: int | None = None, cell_seed: int = 0, init_seed: int = 0,
                    device=None, n_boot: int = 1000, path=None, executor: Executor | None = None) -> dict:
    """Train the sheet's cells under ``config``; returns (per cell, the correlation rows, the note
    that describes them): the tables ``nas-harness bpe darts`` writes (:func:`harness.report.bpe.write_darts_bpe`)."""
    frame = train_sheet_cells(config, cells=cells, cell_seed=cell_seed, init_seed=init_seed, device=device, path=path,
                              executor=executor)
    theirs = sheet_accuracies(config, path)
    rows = [correlation_row(frame, config, n_boot)]
    rows[0]["source"] = "this machine"
    if theirs is not None:
        frame["sheet_score"] = frame.arch_index.map(theirs)
        sheet = frame.assign(score=frame.sheet_score, seconds=math.nan)
        rows.append({**correlation_row(sheet, config, n_boot), "source": "the sheet (same configuration, same cells)"})
        ok = np.isfinite(frame.score) & np.isfinite(frame.sheet_score)
        if ok.sum() >= 3:
            rows[0]["agreement_with_sheet"] = rank_agreement(frame.score[ok], frame.sheet_score[ok], n_boot=0).spearman
    table = pd.DataFrame(rows)
    device_note = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    note = (f"{len(frame)} of the BPE sheet's DARTS cells (cell seed {cell_seed}), trained under {config.label} on "
            f"{device_note} (init seed {init_seed} + arch number), measured on the cifar10-valid valid half; truth: "
            "the sheet's full-training CIFAR-10 accuracy. 95 % bootstrap CIs. `agreement_with_sheet`: Spearman "
            "between our accuracies and the sheet's for the same configuration, when the sheet measured it.")
    return frame, table, note
