"""What the harness's jobs need, and whether this machine has it.

Each :class:`Requirement` names one input (a benchmark table at full coverage, the BPE sheet,
an image set), the tables that need it, the public file that provides it and the command that
fetches it. :func:`check` looks without loading anything large: the NB201 store's coverage, the
presence of files. ``./reproduce.sh`` asks it which parts of the main job can run here (the
embedded default otherwise), and ``nas-harness data check`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..benchmarks.nb201 import N_CONFIGS, NB201, column_key
from ..config import data_root, harness_home
from ..errors import HarnessError


@dataclass(frozen=True)
class Requirement:
    name: str
    what: str  # the input, in words
    tables: str  # what needs it
    files: str  # the file(s) under HARNESS_DATA that provide it
    fetch: str  # the command that gets it


@dataclass(frozen=True)
class Status:
    requirement: Requirement
    present: bool
    detail: str  # what was found


REQUIREMENTS = (
    Requirement("nb201-tables", "NB201 200-epoch test accuracy and the 12-epoch run, all 15,625 cells",
                "main job: NB201 optimum by test, 12- vs 200-epoch fidelity, the published-protocol search table "
                "(12-epoch reward)", "nb201/nats_tss_test_acc_200ep.csv, nb201/nb201_v1_1_12ep_val_test.csv",
                "nas-harness data fetch nb201-compact"),
    Requirement("bpe-sheet", "the BPE paper's spreadsheet (100 DARTS cells x 32 configurations)",
                "main job: BPE replay, MIP on the paper's table", "bpe/Search_Hyperparameters_Results.xlsx",
                "nas-harness data fetch bpe"),
    Requirement("cifar10-images", "CIFAR-10 training and test images",
                "long job: training-free correlations, N-sample searches, BPE with real training, supernets",
                "images/cifar-10-batches-py/ (torchvision's layout) or images/cifar10_{train,test}.npz",
                "nas-harness data fetch cifar10"),
    Requirement("naslib-scores", "NASLib's training-free scores on 725 NB201 cells",
                "long job: the NASLib agreement table", "nb201/naslib_zc_nasbench201_725.json",
                "nas-harness data fetch nb201-compact"),
    Requirement("nb101-cells", "NB101 cells with a 108-epoch accuracy and training time (at least nasbench-vis's "
                "1,000; the official tfrecord for all 423,624)",
                "main job: REA and random search on NB101; long job: the NB101 correlation table",
                "nb101/nasbench_vis_1k.json or nb101/nasbench_only108.tfrecord",
                "nas-harness data fetch nb101-samples (the official file: storage.googleapis.com/nasbench/)"),
)
_NB201_COLUMNS = [column_key(ds, split, "acc", epochs, "mean") for epochs in (12, 200)
                  for ds, split in (("cifar10", "ori-test"), ("cifar100", "x-test"), ("ImageNet16-120", "x-test"))] + \
                 [column_key(ds, "x-valid", "acc", 12, "mean") for ds in ("cifar10-valid", "cifar100", "ImageNet16-120")]


def requirement(name: str) -> Requirement:
    for r in REQUIREMENTS:
        if r.name == name:
            return r
    raise HarnessError(f"unknown input {name!r}", f"use one of {', '.join(r.name for r in REQUIREMENTS)}")


def _nb201_tables() -> tuple[bool, str]:
    bench = NB201.open()
    short = []
    for key in _NB201_COLUMNS:
        covered = int(np.isfinite(np.asarray(bench.store.column(key))).sum()) if bench.store.has(key) else 0
        if covered < N_CONFIGS:
            short.append(f"{key}: {covered} cells")
    if not short:
        return True, f"all {N_CONFIGS} cells in the store"
    return False, f"{len(short)} of {len(_NB201_COLUMNS)} columns short of {N_CONFIGS} cells, e.g. {short[0]}"


def _bpe_sheet() -> tuple[bool, str]:
    from ..bpe.replay import load_table

    try:
        table = load_table()
    except HarnessError as err:
        return False, err.problem
    n = len(table.truth)
    return n == 100, f"{n} cells in {table.source}"


def _cifar10_images() -> tuple[bool, str]:
    roots = [r / "images" for r in (data_root(), harness_home()) if r is not None]
    for root in roots:
        if (root / "cifar-10-batches-py" / "data_batch_5").is_file():
            return True, f"{root / 'cifar-10-batches-py'}"
        if all((root / f"cifar10_{s}.npz").is_file() for s in ("train", "test")):
            size = (root / "cifar10_train.npz").stat().st_size
            if size > 100e6:  # the full 50,000 images (a miniature holds a few)
                return True, f"{root}/cifar10_{{train,test}}.npz"
            return False, f"{root}/cifar10_train.npz holds only a few images"
    return False, "not in " + ", ".join(map(str, roots))


def _naslib_scores() -> tuple[bool, str]:
    root = data_root()
    path = Path(root) / "nb201" / "naslib_zc_nasbench201_725.json" if root else None
    if path is None or not path.is_file():
        return False, "no nb201/naslib_zc_nasbench201_725.json in the data folder"
    if path.stat().st_size < 1_000_000:  # the public file is 1.96 MB; a miniature is smaller
        return False, f"{path} is a miniature"
    return True, str(path)


def _nb101_cells() -> tuple[bool, str]:
    from ..benchmarks.nb101 import NB101

    try:
        bench = NB101.open()  # imports HARNESS_DATA/nb101 when there is no store yet
    except HarnessError as err:
        return False, err.problem
    covered = bench.sources_of()
    none = np.zeros(len(bench), bool)
    n = int((covered.get("vis", none) | covered.get("tfrecord", none) | covered.get("api", none)).sum())
    if n >= 1000:
        return True, f"{n} cells with an accuracy and a time in {bench.store.root}"
    return False, f"{n} cells with an accuracy and a time (a miniature: nasbench-vis has 1,000)"


_CHECKS = {"nb201-tables": _nb201_tables, "bpe-sheet": _bpe_sheet, "cifar10-images": _cifar10_images,
           "naslib-scores": _naslib_scores, "nb101-cells": _nb101_cells}


def check(names: list[str] | None = None) -> list[Status]:
    """The status of each named requirement (all when ``names`` is empty)."""
    chosen = [requirement(n) for n in names] if names else list(REQUIREMENTS)
    return [Status(r, *_CHECKS[r.name]()) for r in chosen]
