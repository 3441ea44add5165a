"""The README's generated blocks: tables copied from ``results/`` between markers.

A block is ``<!-- NAME_START -->`` ... ``<!-- NAME_END -->``; :func:`render` computes each
block's text from the files under ``results/``, :func:`update` writes them into the README, and
:func:`stale` lists the blocks whose text differs from what ``results/`` gives (a test fails on
any). Nothing in a block is typed by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import HarnessError
from .tables import to_markdown

# The search headline: CIFAR-10 and the test columns of the other datasets; REINFORCE at its
# script's default and at the best of NB201's rates (all six are in results/search).
_SEARCH_COLUMNS = ["strategy", "options", "estimator", "budget", "runs", "wall_s", "C10 val", "C10 val published (Δ)",
                   "C10 test", "C10 test published (Δ)", "C100 test", "C100 test published (Δ)", "IN16 test",
                   "IN16 test published (Δ)"]
_SEARCH_OPTIONS = ("", "learning_rate=0.001", "learning_rate=0.02")


def _search(results: Path) -> str:
    path = results / "search" / "search_table.csv"
    if not path.is_file():
        raise HarnessError(f"{path} not found", "run ./reproduce.sh (and ./reproduce.sh long for the N-sample rows)")
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    table = table[table.options.fillna("").isin(_SEARCH_OPTIONS)]
    return to_markdown(table[[c for c in _SEARCH_COLUMNS if c in table.columns]], 1)


_LABELS = {"cifar10": ("C10", "CIFAR-10"), "cifar100": ("C100", "CIFAR-100"), "ImageNet16-120": ("IN16", "ImageNet16-120")}


def _read(results: Path, relative: str) -> pd.DataFrame:
    path = results / relative
    if not path.is_file():
        raise HarnessError(f"{path} not found", "run ./reproduce.sh with the data (nas-harness data check)")
    return pd.read_csv(path)


def _optimum(results: Path) -> str:
    table = _read(results, "nb201/nb201_optimum.csv")
    ours, published = {"": "ours (best index)"}, {"": "published (Dong & Yang 2020)"}
    for row in table.itertuples():
        column = f"{_LABELS[row.dataset][0]} {'val' if row.selected_by == 'valid' else 'test'}"
        value = row.valid_acc if row.selected_by == "valid" else row.test_acc
        ours[column] = f"{value:.4f} ({row.index})"
        published[column] = f"{row.published:.2f}"
    return to_markdown(pd.DataFrame([ours, published]))


def _fidelity(results: Path) -> str:
    table = _read(results, "nb201/nb201_fidelity.csv")
    rows = []
    for row in table.itertuples():
        split = f"{row.role} ({row.benchmark_dataset} {row.split})" if row.dataset == "cifar10" else row.split
        rows.append({"dataset": _LABELS[row.dataset][1], "split": split, "cells": row.n,
                     "Kendall tau-b": f"{row.kendall:.3f} [{row.kendall_lo:.3f}, {row.kendall_hi:.3f}]",
                     "Spearman": f"{row.spearman:.3f} [{row.spearman_lo:.3f}, {row.spearman_hi:.3f}]"})
    return to_markdown(pd.DataFrame(rows))


BLOCKS = {"NB201_OPTIMUM": _optimum, "NB201_FIDELITY": _fidelity, "SEARCH_TABLE": _search}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}_START -->\n)(.*?)(\n<!-- {name}_END -->)", re.S)


def render(results: Path) -> dict[str, str]:
    return {name: fn(Path(results)) for name, fn in BLOCKS.items()}


def stale(readme: Path, results: Path) -> list[str]:
    """Names of the blocks whose README text is not what ``results/`` gives."""
    text = Path(readme).read_text()
    out = []
    for name, body in render(results).items():
        m = _pattern(name).search(text)
        if m is None or m.group(2) != body:
            out.append(name)
    return out


def update(readme: Path, results: Path) -> list[str]:
    """Rewrite every block from ``results/``; returns the names of the blocks that changed."""
    readme = Path(readme)
    text = readme.read_text()
    changed = []
    for name, body in render(results).items():
        pattern = _pattern(name)
        if pattern.search(text) is None:
            raise HarnessError(f"{readme} has no {name} block", f"add <!-- {name}_START --> and <!-- {name}_END -->")
        new = pattern.sub(lambda m: m.group(1) + body + m.group(3), text)
        if new != text:
            changed.append(name)
        text = new
    readme.write_text(text)
    return changed
