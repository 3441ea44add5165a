"""NAS-Bench-101 in the canonical store: cells x budgets x repeats, without TensorFlow.

Built from the official ``.tfrecord`` (:mod:`.nb101_tfrecord`) by :func:`import_tfrecord`,
atomically and under the store's lock (:meth:`harness.benchmarks.store.TabularStore.build`),
into ``HARNESS_HOME/nb101``. The configuration table holds, per cell (in the order the file
first names them): its official module hash (``S32``), its adjacency padded to 7 x 7 (``int8``)
and its operations (``int8``: -1 input, -2 output, 0 conv3x3-bn-relu, 1 conv1x1-bn-relu,
2 maxpool3x3, -3 padding). Columns, each (cells, 3 repeats), NaN where a cell lacks a run:

- ``cifar10/{train,valid,test}/acc@{E}``: accuracy (%, the stored fraction x 100) after ``E``
  epochs of the ``E``-epoch run, ``E`` in 4/12/36/108; ``...@{E}:halfway``: at ``E/2`` epochs of
  that same run (NB101 trains each budget from scratch);
- ``cifar10/train/time@{E}`` and ``...:halfway``: cumulative training seconds (TPU v2);
- ``-/params``: trainable parameters (one per cell).

Repeats are numbered in file order, as the official API numbers them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import harness_home
from ..errors import HarnessError
from .nb101_tfrecord import read_records
from .store import SourceInfo, StoreMissing, TabularStore

log = logging.getLogger(__name__)

BENCHMARK = "nb101"
OP_CODES = {"input": -1, "output": -2, "conv3x3-bn-relu": 0, "conv1x1-bn-relu": 1, "maxpool3x3": 2}
OP_NAMES = {v: k for k, v in OP_CODES.items()}
PAD = -3
REPEATS = 3
SPLITS = {"train": "train_accuracy", "valid": "validation_accuracy", "test": "test_accuracy"}
CONFIG_DTYPE = np.dtype([("hash", "S32"), ("matrix", "i1", (7, 7)), ("ops", "i1", (7,))])


def column_key(split: str, metric: str, epochs: int, halfway: bool = False) -> str:
    return f"cifar10/{split}/{metric}@{epochs}" + (":halfway" if halfway else "")


def records_to_columns(records) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """(configuration table, columns, counts) from an iterable of :class:`NB101Record`."""
    index: dict[str, int] = {}
    configs: list[tuple] = []
    runs: dict[tuple[int, int], list] = {}
    params: dict[int, int] = {}
    for r in records:
        i = index.get(r.module_hash)
        if i is None:
            if len(r.ops) > 7:
                raise HarnessError(f"cell {r.module_hash} has {len(r.ops)} vertices", "NB101 cells have at most 7")
            i = index[r.module_hash] = len(configs)
            matrix = np.zeros((7, 7), np.int8)
            v = len(r.ops)
            matrix[:v, :v] = r.matrix
            ops = np.full(7, PAD, np.int8)
            try:
                ops[:v] = [OP_CODES[o] for o in r.ops]
            except KeyError as err:
                raise HarnessError(f"cell {r.module_hash} has the unknown operation {err.args[0]!r}",
                                   f"NB101 operations are {', '.join(OP_CODES)}") from None
            configs.append((r.module_hash.encode(), matrix, ops))
            params[i] = r.trainable_parameters
        runs.setdefault((i, r.epochs), []).append(r)
    n = len(configs)
    table = np.array(configs, dtype=CONFIG_DTYPE)
    budgets = sorted({e for _, e in runs})
    columns: dict[str, np.ndarray] = {}
    for epochs in budgets:
        for halfway in (False, True):
            which = 1 if halfway else 2
            arrays = {(s, "acc"): np.full((n, REPEATS), np.nan) for s in SPLITS}
            arrays[("train", "time")] = np.full((n, REPEATS), np.nan)
            for (i, e), group in runs.items():
                if e != epochs:
                    continue
                if len(group) > REPEATS:
                    raise HarnessError(f"cell {configs[i][0].decode()} has {len(group)} runs at {e} epochs",
                                       f"NB101 has {REPEATS} repeats per budget: the file is not an official one")
                for k, r in enumerate(group):
                    ev = r.evaluations[which]
                    for split, field in SPLITS.items():
                        arrays[(split, "acc")][i, k] = 100.0 * ev.get(field, np.nan)
                    arrays[("train", "time")][i, k] = ev.get("training_time", np.nan)
            for (split, metric), array in arrays.items():
                columns[column_key(split, metric, epochs, halfway)] = array
    columns["-/params"] = np.array([params[i] for i in range(n)], dtype=np.float64)
    return table, columns, {"cells": n, "runs": sum(len(g) for g in runs.values()), "budgets": budgets}


@dataclass
class NB101:
    """The NB101 store: cells by official hash, accuracy, time and parameters per budget and repeat."""

    store: TabularStore

    @staticmethod
    def default_root() -> Path:
        return harness_home() / BENCHMARK

    @classmethod
    def open(cls, root: Path | None = None) -> "NB101":
        root = Path(root) if root else cls.default_root()
        try:
            return cls(TabularStore.open(root))
        except StoreMissing:
            raise HarnessError(f"no NB101 store at {root}",
                               "import the official file: nas-harness data import nb101 --from nasbench_only108.tfrecord"
                               ) from None

    @classmethod
    def import_tfrecord(cls, path: str | Path, root: Path | None = None) -> "NB101":
        """Read ``path`` (every CRC checked) and build the store atomically in ``root``."""
        path = Path(path)
        table, columns, counts = records_to_columns(read_records(path))
        if not counts["cells"]:
            raise HarnessError(f"{path} holds no record", "give nasbench_only108.tfrecord or nasbench_full.tfrecord")
        root = Path(root) if root else cls.default_root()
        source = SourceInfo.of("tfrecord", path, note=f"{counts['cells']} cells, {counts['runs']} runs, "
                                                     f"budgets {counts['budgets']}")

        def fill(folder: Path) -> None:
            store = TabularStore.create(folder, BENCHMARK, table, list(range(REPEATS)))
            store.write(source, columns)

        store = TabularStore.build(root, fill)
        log.info("NB101 store %s: %d cells, %d runs from %s", root, counts["cells"], counts["runs"], path)
        return cls(store)

    def __len__(self) -> int:
        return int(self.store.manifest.n_configs)

    @property
    def hashes(self) -> list[str]:
        return [h.decode() for h in np.asarray(self.store.configs["hash"])]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {h: i for i, h in enumerate(self.hashes)}

    def index(self, module_hash: str) -> int:
        """The row of a cell by its official hash (one line when the store has no such cell)."""
        try:
            return self._index[module_hash]
        except KeyError:
            raise HarnessError(f"no NB101 cell with hash {module_hash!r} in the store",
                               f"the store holds {len(self)} cells; import the full file for every cell") from None

    def spec(self, index: int) -> tuple[np.ndarray, list[str]]:
        """(adjacency V x V, operation names) of a stored cell, as the file stores it."""
        row = self.store.configs[index]
        v = int((row["ops"] != PAD).sum())
        return np.array(row["matrix"][:v, :v]), [OP_NAMES[int(o)] for o in row["ops"][:v]]

    def query(self, indices, *, split: str, epochs: int, repeat="mean", metric: str = "acc",
              halfway: bool = False) -> np.ndarray:
        """Values for ``indices`` (int or array): ``repeat`` "mean" (over the repeats the cell has),
        "all" (one more axis of 3), or 0..2."""
        if metric == "params":
            return np.asarray(self.store.column("-/params"))[np.asarray(indices)]
        key = column_key(split, metric, epochs, halfway)
        if not self.store.has(key):
            have = sorted({k.split("@")[1].split(":")[0] for k in self.store.keys() if "@" in k})
            raise HarnessError(f"the NB101 store has no {key}",
                               f"budgets here: {', '.join(have)} epochs; splits train, valid, test; "
                               "metric acc or time (train only)")
        values = np.asarray(self.store.column(key))[np.asarray(indices)]
        if repeat == "all":
            return values
        if repeat == "mean":
            with np.errstate(invalid="ignore"):
                counts = np.isfinite(values).sum(axis=-1)
                return np.where(counts > 0, np.nansum(values, axis=-1) / np.maximum(counts, 1), np.nan)
        if isinstance(repeat, int) and 0 <= repeat < REPEATS:
            return values[..., repeat]
        raise HarnessError(f"repeat {repeat!r} is not mean, all or 0..2", "e.g. repeat='mean'")
