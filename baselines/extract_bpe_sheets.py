"""How ``bpe_configs.csv`` and ``bpe_search.csv`` were made: the BPE authors' two spreadsheets, cell by cell.

    python baselines/extract_bpe_sheets.py ../shared/data/bpe

Each row names the sheet and the cell its value was read from (``cell``), so that
``tests/test_baselines.py`` can check every value against the file itself. Values are copied
unchanged (no rounding); nothing here is computed.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import openpyxl

GRID = "Search_Hyperparameters_Results.xlsx"
STATS = "experimantal_stastics.xlsx"
PAPER_NAMES = {"Task5": "BPE1", "Task32": "BPE2"}  # papers.md section 1 and sheet 'BPE1 and BPE2'
HYPER = {"epoch": "epochs", "batchsize": "batch_size", "learning rate": "lr", "n_layers": "layers",
         "fp": "precision", "channels": "channels", "cutout_len": "cutout", "image_size": "image_size"}
PROTOCOL = "DARTS space, CIFAR-10, 100 random cells, Spearman vs the sheet 'Ground_truth' accuracies"
SOURCE = ("Zheng, Ji et al., Rethinking Performance Estimation in NAS (CVPR 2020): authors' spreadsheet "
          "{file}, sheet '{sheet}' (papers.md section 1)")


def configs(folder: Path) -> list[dict]:
    ws = openpyxl.load_workbook(folder / GRID, data_only=True)["Hyperparameters Search"]
    labels = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value}
    rows = []
    for col in range(2, ws.max_column + 1):
        task = ws.cell(1, col).value
        if not (isinstance(task, str) and task.startswith("Task")):
            continue
        row = {"task": task, "paper_name": PAPER_NAMES.get(task, "")}
        row.update({name: ws.cell(labels[label], col).value for label, name in HYPER.items()})
        for metric, label in (("spearman", "Correlation"), ("gpu_hours_per_cell", "MeanTime(GPU Hours)")):
            cell = ws.cell(labels[label], col)
            rows.append({**row, "metric": metric, "value": cell.value, "cells": 100, "runs": 1,
                         "protocol": PROTOCOL, "cell": f"Hyperparameters Search!{cell.coordinate}",
                         "source": SOURCE.format(file=GRID, sheet="Hyperparameters Search")})
    return rows


def search(folder: Path) -> list[dict]:
    wb = openpyxl.load_workbook(folder / STATS, data_only=True)
    rows = []

    def add(method, setting, run, net, metric, cell, sheet, protocol):
        value = wb[sheet][cell].value
        if value is None:
            return
        rows.append({"method": method, "setting": setting, "paper_name": PAPER_NAMES.get(
            setting.replace("test", "Task"), ""), "run": run, "net": net, "metric": metric, "value": value,
            "runs": 1, "protocol": protocol, "cell": f"{sheet}!{cell}", "source": SOURCE.format(file=STATS, sheet=sheet)})

    sheet = "search_with_BPEs"
    darts = ("DARTS search (first order, 50/50 train split) with the setting's BPE as the supernet training "
             "budget; accuracy: the searched cell retrained with DARTS's full augment protocol, CIFAR-10 test")
    ws = wb[sheet]
    for r in range(2, ws.max_row + 1):
        test = ws.cell(r, 1).value
        if not (isinstance(test, str) and test.startswith("test")) or ws.cell(r, 3).value is None:
            continue
        for col, metric in (("C", "trained_best_acc"), ("D", "searched_best_acc"), ("E", "search_gpu_hours")):
            add("darts", test, "", "", metric, f"{col}{r}", sheet, darts)

    sheet = "RL   EV  correlation"
    ws = wb[sheet]
    method = run = setting = None
    evo = ("{m} over the DARTS space with the setting's BPE as the reward's training (official code: "
           "{how}); net: one of the best cells found, retrained with DARTS's augment protocol, CIFAR-10 test")
    how = {"EA": "regularized evolution, population 50, sample 10, 100 cycles",
           "RL": "REINFORCE, lr 0.1, EMA baseline 0.9, 100 iterations"}
    for r in range(2, ws.max_row + 1):
        method = ws.cell(r, 1).value or method
        run = ws.cell(r, 2).value or run
        setting = ws.cell(r, 3).value or setting
        net = ws.cell(r, 4).value
        if net is None or ws.cell(r, 5).value is None:
            continue
        add(method.lower(), setting, run, net, "acc", f"E{r}", sheet, evo.format(m=method, how=how[method]))

    sheet = "实验概览"  # overview: 'random sampling of 100 networks, augment with test32/test5's hyper-parameters'
    rs = ("random search: 100 random DARTS cells trained with the setting's BPE, the best retrained with DARTS's "
          "augment protocol; the sheet's text cell holds accuracy (%) and parameter count")
    for r, setting in ((2, "test32"), (3, "test5")):
        text = wb[sheet][f"D{r}"].value
        acc = float(text.split()[0])
        rows.append({"method": "random", "setting": setting, "paper_name": PAPER_NAMES.get(setting.replace("test", "Task"), ""),
                     "run": "", "net": "", "metric": "acc", "value": acc, "runs": 1, "protocol": rs,
                     "cell": f"{sheet}!D{r}", "source": SOURCE.format(file=STATS, sheet=sheet)})
    return rows


def write(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/bpe")
    here = Path(__file__).resolve().parent
    write(configs(folder), here / "bpe_configs.csv")
    write(search(folder), here / "bpe_search.csv")
