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

Further sources (:func:`read_source` tells them apart), each adding its cells and columns:

- the official API's in-memory state pickled (``{hash: (fixed, computed)}``, as NASLib's
  ``nb101_dummy.pkl``): the same columns as the tfrecord;
- ``nasbench_vis_1k.json`` (nasbench-vis): one value per cell, the maximum over the 3 repeats,
  so its columns are ``cifar10/valid/acc@{E}:max`` and ``cifar10/train/time@108:max``;
- NASLib's ``zc_nasbench101.json``: ``cifar10/valid/acc@108:one`` (one repeat, which one is not
  recorded) and NASLib's precomputed training-free scores as ``naslib/<name>``.

Sources are united (:meth:`NB101.import_source`): cells by official hash, the ones a store
already has keep their rows (and their spec) and new cells are appended, so a row never moves.
``-/source:<id>`` (1.0 or NaN) marks the cells each source covers. Where two sources give the
same column for a cell the newer wins and the largest difference is logged.
"""

from __future__ import annotations

import ast
import json
import logging
import pickle
import time
from dataclasses import dataclass, field, replace
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
FULL_CELLS = 423_624  # cells in the official files
BUDGETS = (4, 12, 36, 108)
# what NB101.open imports from HARNESS_DATA/nb101 when there is no store yet, in this order
DATA_FILES = ("nasbench_full.tfrecord", "nasbench_only108.tfrecord", "nasbench_only108_sample30.tfrecord",
              "nasbench_vis_1k.json", "naslib_zc_nasbench101_500.json")
SPLITS = {"train": "train_accuracy", "valid": "validation_accuracy", "test": "test_accuracy"}
CONFIG_DTYPE = np.dtype([("hash", "S32"), ("matrix", "i1", (7, 7)), ("ops", "i1", (7,))])


def column_key(split: str, metric: str, epochs: int, halfway: bool = False) -> str:
    return f"cifar10/{split}/{metric}@{epochs}" + (":halfway" if halfway else "")


def _padded(matrix, ops) -> tuple[np.ndarray, np.ndarray]:
    """A V x V adjacency and V op names as the store keeps them: 7 x 7 int8, 7 codes padded with PAD."""
    v = len(ops)
    padded = np.zeros((7, 7), np.int8)
    padded[:v, :v] = np.asarray(matrix, np.int8)
    codes = np.full(7, PAD, np.int8)
    codes[:v] = [OP_CODES[o] for o in ops]
    return padded, codes


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
            try:
                configs.append((r.module_hash.encode(), *_padded(r.matrix, r.ops)))
            except KeyError as err:
                raise HarnessError(f"cell {r.module_hash} has the unknown operation {err.args[0]!r}",
                                   f"NB101 operations are {', '.join(OP_CODES)}") from None
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
                    for split, name in SPLITS.items():
                        arrays[(split, "acc")][i, k] = 100.0 * ev.get(name, np.nan)
                    arrays[("train", "time")][i, k] = ev.get("training_time", np.nan)
            for (split, metric), array in arrays.items():
                columns[column_key(split, metric, epochs, halfway)] = array
    columns["-/params"] = np.array([params[i] for i in range(n)], dtype=np.float64)
    return table, columns, {"cells": n, "runs": sum(len(g) for g in runs.values()), "budgets": budgets}


def cell_id(module_hash: str) -> int:
    """A cell's stable integer id: the first 15 hex digits (60 bits) of its official hash. The run
    store keys NB101 scores by it (and the init seed derives from it), so a score belongs to the
    cell, not to its row in whichever store was imported."""
    return int(module_hash[:15], 16)


@dataclass
class Imported:
    """One source's cells (configuration table rows) and columns (rows aligned with them)."""

    source_id: str
    source: SourceInfo
    table: np.ndarray
    columns: dict[str, np.ndarray]
    descriptions: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)


def _config_row(spec) -> tuple:
    """(hash, 7 x 7 adjacency, 7 op codes) of a pruned :class:`~harness.spaces.nb101.NB101Spec`."""
    return (spec.hash().encode(), *_padded(spec.matrix, spec.ops))


def read_tfrecord(path: Path) -> Imported:
    table, columns, counts = records_to_columns(read_records(path))
    if not counts["cells"]:
        raise HarnessError(f"{path} holds no record", "give nasbench_only108.tfrecord or nasbench_full.tfrecord")
    note = f"{counts['cells']} cells, {counts['runs']} runs, budgets {counts['budgets']}"
    return Imported("tfrecord", SourceInfo.of("tfrecord", path, note=note), table, columns)


def read_api_pickle(path: Path) -> Imported:
    """The official API's ``fixed_statistics``/``computed_statistics`` pickled as ``{hash: (fixed, computed)}``."""
    with open(path, "rb") as handle:
        try:
            state = pickle.load(handle)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
            raise HarnessError(f"{path} is not a pickle ({type(err).__name__}: {err})",
                               "give the official API's state pickled as {hash: (fixed, computed)}") from None
    if not isinstance(state, dict) or not all(isinstance(v, (tuple, list)) and len(v) == 2 for v in state.values()):
        raise HarnessError(f"{path} does not hold {{hash: (fixed_statistics, computed_statistics)}}",
                           "give the official API's state, as NASLib's nb101_dummy.pkl holds it")
    return _from_api_state(state, "api", SourceInfo.of("api-pickle", path))


def read_api(nasbench) -> Imported:
    """An official ``nasbench.api.NASBench`` object (or anything with its ``fixed_statistics`` and
    ``computed_statistics`` dicts): for a user who has the TensorFlow-1 API installed and loaded."""
    try:
        fixed, computed = nasbench.fixed_statistics, nasbench.computed_statistics
    except AttributeError:
        raise HarnessError(f"{type(nasbench).__name__} is not a nasbench.api.NASBench",
                           "give the object api.NASBench(path) returns") from None
    missing = [h for h in fixed if h not in computed]
    if missing:
        raise HarnessError(f"the nasbench API object has no computed statistics for {len(missing)} cells "
                           f"(e.g. {missing[0]})", "give the object api.NASBench(path) returns, fully loaded")
    state = {h: (fixed[h], computed[h]) for h in fixed}
    return _from_api_state(state, "api", SourceInfo("nasbench-api", "", "", 0, 0.0, version=getattr(nasbench, "__module__", ""),
                                                    imported_at=time.strftime("%Y-%m-%dT%H:%M:%S")))


def _from_api_state(state: dict, source_id: str, source: SourceInfo) -> Imported:
    from .nb101_tfrecord import NB101Record

    records = []
    for module_hash, (fixed, computed) in state.items():
        try:
            for epochs, runs in sorted(computed.items()):
                for run in runs:
                    halfway = {k.removeprefix("halfway_"): v for k, v in run.items() if k.startswith("halfway_")}
                    final = {k.removeprefix("final_"): v for k, v in run.items() if k.startswith("final_")}
                    records.append(NB101Record(str(module_hash), int(epochs), np.asarray(fixed["module_adjacency"]),
                                               list(fixed["module_operations"]), int(fixed["trainable_parameters"]),
                                               float("nan"), [{}, halfway, final]))
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise HarnessError(f"{source.kind}: cell {module_hash} is not in the official API's format "
                               f"({type(err).__name__}: {err})", "fixed_statistics need module_adjacency, "
                               "module_operations, trainable_parameters; computed_statistics {epochs: [runs]}") from None
    table, columns, counts = records_to_columns(records)
    source = replace(source, note=f"{counts['cells']} cells, {counts['runs']} runs, budgets {counts['budgets']}")
    return Imported(source_id, source, table, columns)


VIS_EPOCHS = (4, 12, 36, 108)
OFFICIAL_SOURCES = ("tfrecord", "api")  # their cell layout is the official file's


def read_vis(path: Path, data: dict | None = None) -> Imported:
    """nasbench-vis's ``data-1k.json``: graph, official hash, max-over-repeats validation accuracy."""
    from ..spaces.nb101 import NB101Spec

    data = data if data is not None else json.loads(Path(path).read_text())
    missing = [k for k in ("key", "adjacency", "operations", "trainable_parameters", "final_training_time",
                           *(f"{e}_final_validation_accuracy" for e in VIS_EPOCHS)) if k not in data]
    if missing:
        raise HarnessError(f"{path} has no {', '.join(missing)}", "give nasbench-vis's data-1k.json unchanged")
    n = len(data["key"])
    if any(len(v) != n for v in data.values() if isinstance(v, list)):
        raise HarnessError(f"{path}: its lists have different lengths", "give nasbench-vis's data-1k.json unchanged")
    rows = []
    for i in range(n):
        try:
            ops = [OP_NAMES[int(o)] for o in data["operations"][i] if int(o) != PAD]
        except (KeyError, TypeError, ValueError):
            raise HarnessError(f"{path}: cell {i} has an unknown op code in {data['operations'][i]!r:.60}",
                               "nasbench-vis codes ops -1 input, -2 output, 0 conv3x3, 1 conv1x1, 2 maxpool, -3 "
                               "padding") from None
        matrix = np.asarray(data["adjacency"][i], dtype=float)[: len(ops), : len(ops)]
        spec = NB101Spec.from_arrays(matrix, ops).pruned()
        if spec.hash() != data["key"][i]:
            raise HarnessError(f"{path}: cell {i}'s key {data['key'][i]} is not the official hash of its graph "
                               f"({spec.hash()})", "give nasbench-vis's data-1k.json unchanged")
        rows.append(_config_row(spec))
    columns = {column_key("valid", "acc", e) + ":max": 100.0 * np.asarray(data[f"{e}_final_validation_accuracy"], float)
               for e in VIS_EPOCHS}
    columns["cifar10/train/time@108:max"] = np.asarray(data["final_training_time"], float)
    columns["-/params"] = np.asarray(data["trainable_parameters"], float)
    descriptions = {k: "max over the 3 repeats (nasbench-vis)" for k in columns if k.endswith(":max")}
    return Imported("vis", SourceInfo.of("nasbench-vis", path, note=f"{n} cells"), np.array(rows, CONFIG_DTYPE),
                    columns, descriptions)


# NASLib's NB101 key: the 7 x 7 adjacency row-major, then 7 op codes (its own numbering)
NASLIB_OPS = {0: "input", 1: "output", 2: "maxpool3x3", 3: "conv1x1-bn-relu", 4: "conv3x3-bn-relu"}


def _naslib_value(value) -> float:
    """A NASLib entry's number: a float, or ``{"score": x, ...}`` as NASLib's newer files hold it."""
    if isinstance(value, dict):
        value = value.get("score", float("nan"))
    return float(value)


def read_naslib_zc(path: Path, data: dict | None = None) -> Imported:
    """NASLib's ``zc_nasbench101.json``: its training-free scores and a 108-epoch validation accuracy."""
    from ..spaces.nb101 import NB101Spec

    fix = "give NASLib's zc_nasbench101.json unchanged"
    data = data if data is not None else json.loads(Path(path).read_text())
    cells = data["nasbench101"]["cifar10"]
    if not isinstance(cells, dict) or not cells:
        raise HarnessError(f"{path}: nasbench101/cifar10 holds no cell", fix)
    rows, entries, seen, twins = [], [], set(), 0
    for key, entry in cells.items():
        try:
            code = ast.literal_eval(key)
            if not isinstance(code, tuple) or len(code) != 56:
                raise ValueError(f"{len(code) if isinstance(code, tuple) else 'no'} numbers, not 49 + 7")
            ops = [NASLIB_OPS[int(o)] for o in code[49:]]
        except (ValueError, SyntaxError, KeyError, TypeError) as err:
            raise HarnessError(f"{path}: the key {key[:40]!r} is not a NASLib NB101 cell ({err})", fix) from None
        spec = NB101Spec.from_arrays(np.reshape(code[:49], (7, 7)), ops).pruned()
        if spec.hash() in seen:  # an isomorph of a cell listed before: the first one's values are kept
            twins += 1
            continue
        seen.add(spec.hash())
        rows.append(_config_row(spec))
        entries.append(entry if isinstance(entry, dict) else {})
    names = list(dict.fromkeys(name for entry in entries for name in entry))
    if "val_accuracy" not in names:
        raise HarnessError(f"{path}: no entry has a val_accuracy", fix)
    values = {}
    for name in names:
        try:
            values[name] = np.array([_naslib_value(e.get(name, float("nan"))) for e in entries])
        except (TypeError, ValueError) as err:
            raise HarnessError(f"{path}: NASLib's {name} is not a number in every entry ({err})", fix) from None
    columns = {"cifar10/valid/acc@108:one": values.pop("val_accuracy")}
    descriptions = {"cifar10/valid/acc@108:one": "one repeat, which one NASLib does not record"}
    for name, vals in values.items():
        columns[f"naslib/{name}"] = vals
        descriptions[f"naslib/{name}"] = f"NASLib's precomputed {name} score"
    if "params" in values:  # NASLib's count in millions, 6 decimals: the exact count (a test checks it)
        columns["-/params"] = np.rint(values["params"] * 1e6)
    note = f"{len(rows)} cells" + (f" ({twins} further keys are isomorphs of listed cells: the first kept)"
                                   if twins else "")
    return Imported("naslib_zc", SourceInfo.of("naslib-zc", path, note=note), np.array(rows, CONFIG_DTYPE),
                    columns, descriptions)


SOURCE_KINDS = "the official .tfrecord, the API's pickled state, nasbench-vis's data-1k.json or NASLib's zc_nasbench101.json"


def read_source(path: str | Path) -> Imported:
    """Any NB101 source, told apart by its suffix and, for JSON, its keys."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"--from {path}: no such file", f"give {SOURCE_KINDS}")
    if path.suffix == ".tfrecord":
        return read_tfrecord(path)
    if path.suffix in (".pkl", ".pickle"):
        return read_api_pickle(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except ValueError as err:
            raise HarnessError(f"{path} is not valid JSON ({err})", f"give {SOURCE_KINDS}") from None
        if isinstance(data, dict) and "108_final_validation_accuracy" in data and "key" in data:
            return read_vis(path, data)
        if isinstance(data, dict) and "cifar10" in data.get("nasbench101", {}):
            return read_naslib_zc(path, data)
        raise HarnessError(f"{path} is JSON but neither nasbench-vis's nor NASLib's NB101 file",
                           f"give {SOURCE_KINDS}")
    raise HarnessError(f"{path}: no NB101 reader for {path.suffix or 'a file without a suffix'}", f"give {SOURCE_KINDS}")


def unite(old: "TabularStore | None", new: Imported) -> tuple[np.ndarray, dict, dict, dict, dict]:
    """``old`` plus ``new``: (table, kept, columns, origins, counts). Old rows come first and
    unmoved, new cells are appended. ``kept``: key -> (values, origin, description) of the old
    columns the new source does not give; ``columns``: key -> values of the ones it gives (its
    values over the old ones where it has them), all padded with NaN to the united rows;
    ``origins``: key -> the sources of a given column that keeps other sources' values."""
    old_table = np.asarray(old.configs) if old is not None else np.zeros(0, CONFIG_DTYPE)
    position = {h: i for i, h in enumerate(old_table["hash"].tolist())}
    fresh = [i for i, h in enumerate(new.table["hash"].tolist()) if h not in position]
    table = np.concatenate([old_table, new.table[fresh]])
    for k, i in enumerate(fresh):
        position[new.table["hash"][i].tolist()] = len(old_table) + k
    rows = np.array([position[h] for h in new.table["hash"].tolist()], dtype=np.int64)
    n = len(table)

    def pad(values: np.ndarray) -> np.ndarray:
        out = np.full((n,) + values.shape[1:], np.nan)
        out[: len(values)] = values
        return out

    if new.source_id in OFFICIAL_SOURCES and len(fresh) < len(new):
        # a cell another source gave first takes the official file's layout (vertex order), so its
        # network, and so its scores, are the same whichever order the sources were imported in
        table["matrix"][rows], table["ops"][rows] = new.table["matrix"], new.table["ops"]
    kept: dict[str, tuple] = {}
    if old is not None:
        for key in old.keys():
            info = old.manifest.columns[key]
            kept[key] = (pad(np.asarray(old.column(key))), info.source, info.description)
    columns, origins = {}, {}
    mine = np.zeros(n, bool)
    mine[rows] = True
    for key, values in {**new.columns, f"-/source:{new.source_id}": np.ones(len(new))}.items():
        values = np.asarray(values, float)
        before = kept.pop(key) if key in kept else None
        united = before[0] if before is not None else np.full((n,) + values.shape[1:], np.nan)
        if before is not None and before[1] != new.source_id:
            finite = np.isfinite(united) if united.ndim == 1 else np.isfinite(united).any(axis=-1)
            if (finite & ~mine).any():  # the old source's values for other cells stay
                origins[key] = "+".join(dict.fromkeys(before[1].split("+") + [new.source_id]))
        both = np.isfinite(united[rows]) & np.isfinite(values)
        if both.any():
            delta = float(np.max(np.abs(united[rows][both] - values[both])))
            log.log(logging.WARNING if delta > 1e-6 else logging.DEBUG,
                    "column %s: %s replaces the store's values on %d cells (max |difference| %.3g)",
                    key, new.source_id, int(both.sum()), delta)
        given = np.isfinite(values)
        target = united[rows]
        target[given] = values[given]
        united[rows] = target
        columns[key] = united
    return table, kept, columns, origins, {"new_cells": len(fresh), "cells": n}


@dataclass
class NB101:
    """The NB101 store: cells by official hash, accuracy, time and parameters per budget and repeat."""

    store: TabularStore

    @staticmethod
    def default_root() -> Path:
        return harness_home() / BENCHMARK

    @classmethod
    def open(cls, root: Path | None = None) -> "NB101":
        """The store at ``root`` (default: ``HARNESS_HOME/nb101``). When the default store is
        missing and the data folder (``HARNESS_DATA``) has NB101 files under ``nb101/``, they are
        imported first (:data:`DATA_FILES`, the official files before the samples)."""
        default = root is None
        root = Path(root) if root else cls.default_root()
        try:
            return cls(TabularStore.open(root))
        except StoreMissing:
            found = cls.data_files() if default else []
            if not found:
                raise HarnessError(f"no NB101 store at {root}",
                                   "import the official file: nas-harness data import nb101 --from "
                                   "nasbench_only108.tfrecord (or set HARNESS_DATA to a folder with nb101/)") from None
        log.info("no NB101 store at %s: importing %s from the data folder", root, ", ".join(f.name for f in found))
        for path in found:
            bench = cls.import_source(path, root)
        return bench

    @staticmethod
    def data_files() -> list[Path]:
        """The NB101 files of the data folder, in import order (empty without one)."""
        from ..config import data_root

        folder = data_root()
        if folder is None:
            return []
        found = [folder / "nb101" / name for name in DATA_FILES if (folder / "nb101" / name).is_file()]
        tfrecords = [f for f in found if f.suffix == ".tfrecord"]
        # the first tfrecord (the largest: full, only108, then the sample) holds the others' cells
        return tfrecords[:1] + [f for f in found if f.suffix != ".tfrecord"]

    @classmethod
    def import_tfrecord(cls, path: str | Path, root: Path | None = None) -> "NB101":
        """Read the official ``path`` (every CRC checked) into the store (:meth:`import_source`)."""
        return cls.import_source(path, root)

    @classmethod
    def import_api(cls, nasbench, root: Path | None = None) -> "NB101":
        """Unite the cells of a loaded official ``nasbench.api.NASBench`` with the store (:func:`read_api`)."""
        return cls._import(read_api(nasbench), "the nasbench API", root)

    @classmethod
    def import_source(cls, path: str | Path, root: Path | None = None) -> "NB101":
        """Read ``path`` (any of :func:`read_source`'s kinds) and unite it with the store in ``root``.

        The whole source is read and checked before the store is touched; the united store is
        then built atomically beside the old one (:meth:`TabularStore.build`), so a corrupt file
        or a crash loses nothing already imported."""
        return cls._import(read_source(path), path, root)

    @classmethod
    def _import(cls, new: Imported, path, root: Path | None) -> "NB101":
        root = Path(root) if root else cls.default_root()
        counts: dict = {}

        def fill(folder: Path) -> None:  # runs under the store's lock: the old store is read there
            old = TabularStore.open(root) if TabularStore.exists(root) else None
            if old is not None and old.manifest.benchmark != BENCHMARK:
                raise HarnessError(f"{root} holds a {old.manifest.benchmark} store", "give an NB101 store folder")
            table, kept, columns, origins, counted = unite(old, new)
            counts.update(counted)
            ids = [cell_id(h.decode()) for h in table["hash"]]
            if len(set(ids)) != len(ids):
                raise HarnessError(f"two NB101 cells in {root} share the first 15 hex digits of their hash",
                                   "report this: the run store's cell ids would collide")
            sources = dict(old.manifest.sources) if old is not None else {}
            sources[new.source_id] = new.source
            store = TabularStore.create(folder, BENCHMARK, table, list(range(REPEATS)))
            by_origin: dict[str, dict] = {}
            for key, (values, origin, description) in kept.items():
                by_origin.setdefault(origin, {})[key] = (values, description)
            for origin, group in by_origin.items():
                first = sources.get(origin.split("+")[0], new.source)
                store.write(first, {k: v for k, (v, _) in group.items()}, {k: d for k, (_, d) in group.items()},
                            source_id=origin)
            store.write(new.source, columns, new.descriptions, source_id=new.source_id)
            for key, origin in origins.items():  # a column another source gave for other cells: both made it
                store.manifest.columns[key] = replace(store.manifest.columns[key], source=origin)
            store.manifest.sources = sources
            store._commit()

        store = TabularStore.build(root, fill)
        log.info("NB101 store %s: %d cells (%d new) after %s", root, counts["cells"], counts["new_cells"], path)
        return cls(store)

    def sources_of(self) -> dict[str, np.ndarray]:
        """source id -> the rows (bool) of the cells that source covers. A store written before the
        ``-/source:`` markers existed: the rows where a column that source wrote has a value."""
        cover = {k.removeprefix("-/source:"): np.isfinite(np.asarray(self.store.column(k)))
                 for k in self.store.keys() if k.startswith("-/source:")}
        for sid in self.store.manifest.sources:
            if sid in cover:
                continue
            rows = np.zeros(len(self), bool)
            for key, info in self.store.manifest.columns.items():
                if sid in info.source.split("+") and key != "-/params":
                    values = np.asarray(self.store.column(key))
                    rows |= np.isfinite(values) if values.ndim == 1 else np.isfinite(values).any(axis=-1)
            cover[sid] = rows
        return cover

    def __len__(self) -> int:
        return int(self.store.manifest.n_configs)

    @property
    def hashes(self) -> list[str]:
        return [h.decode() for h in np.asarray(self.store.configs["hash"])]

    @cached_property
    def cell_ids(self) -> np.ndarray:
        """Every row's :func:`cell_id` (int64)."""
        return np.array([cell_id(h) for h in self.hashes], dtype=np.int64)

    @cached_property
    def _row_of_id(self) -> dict[int, int]:
        return {int(c): i for i, c in enumerate(self.cell_ids)}

    def row_of(self, cid: int) -> int:
        """The row of a cell id (one line when the store has no such cell)."""
        try:
            return self._row_of_id[int(cid)]
        except KeyError:
            raise HarnessError(f"no NB101 cell with id {cid} in the store",
                               f"the store holds {len(self)} cells; ids come from nas-harness correlate's scores") from None

    def arch(self, cid: int) -> str:
        """The spec of the cell with id ``cid``, as JSON (what :func:`harness.models.network_for` reads)."""
        from ..spaces.nb101 import NB101Spec

        return NB101Spec.from_arrays(*self.spec(self.row_of(cid))).to_json()

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
        """Values for ``indices`` (int or array), NaN where the store has none for a cell.

        ``repeat``: "mean" (over the repeats the cell has), "all" (one more axis of 3), 0..2,
        "max" (the best repeat: from the per-repeat runs where the store has them, else from a
        source that gives only the maximum, nasbench-vis) or "one" (any single repeat: the first
        run, else NASLib's one)."""
        if metric == "params":
            if not self.store.has("-/params"):
                return np.full(np.shape(indices), np.nan)
            return np.asarray(self.store.column("-/params"))[np.asarray(indices)]
        key = column_key(split, metric, epochs, halfway)
        derived = {"max": key + ":max", "one": key + ":one"}.get(repeat) if isinstance(repeat, str) else None
        if not self.store.has(key) and not derived and (self.store.has(key + ":max") or self.store.has(key + ":one")):
            raise HarnessError(f"the NB101 store has only {'the maximum' if self.store.has(key + ':max') else 'one'}"
                               f" over the repeats of {key} (no per-repeat runs: {self._sources_text()})",
                               "use repeat max or one, or import the official tfrecord")
        if not self.store.has(key) and not (derived and self.store.has(derived)):
            raise HarnessError(f"the NB101 store has no {key}" + (f" (nor {derived})" if derived else ""),
                               self._what_there_is())
        rows = np.asarray(indices)
        values = np.asarray(self.store.column(key))[rows] if self.store.has(key) else None
        if repeat == "all" and values is not None:
            return values
        if repeat == "mean" and values is not None:
            with np.errstate(invalid="ignore"):
                counts = np.isfinite(values).sum(axis=-1)
                return np.where(counts > 0, np.nansum(values, axis=-1) / np.maximum(counts, 1), np.nan)
        if isinstance(repeat, int) and not isinstance(repeat, bool) and 0 <= repeat < REPEATS and values is not None:
            return values[..., repeat]
        if derived is not None:
            if values is None:
                own = np.full(np.shape(rows), np.nan)
            elif repeat == "max":
                finite = np.isfinite(values).any(axis=-1)
                own = np.where(finite, np.max(np.where(np.isfinite(values), values, -np.inf), axis=-1), np.nan)
            else:
                own = values[..., 0]
            if self.store.has(derived):
                other = np.asarray(self.store.column(derived))[rows]
                own = np.where(np.isfinite(own), own, other)
            return own
        raise HarnessError(f"repeat {repeat!r} is not mean, all, max, one or 0..2", "e.g. repeat='mean'")

    def _sources_text(self) -> str:
        return ", ".join(sorted(self.store.manifest.sources)) or "none"

    def _what_there_is(self) -> str:
        have = sorted({int(k.split("@")[1].split(":")[0]) for k in self.store.keys() if "@" in k})
        return (f"budgets here: {', '.join(map(str, have))} epochs; splits train, valid, test; metric acc or time "
                f"(train only); sources: {self._sources_text()}")

    def missing(self) -> list[str]:
        """The budgets (``E epochs``) for which the store has no per-repeat test accuracy."""
        return [f"{e} epochs" for e in BUDGETS if not self.store.has(column_key("test", "acc", e))]

    def coverage(self) -> list[dict]:
        """What the store has: one row per (split, metric, budget, kind) with the cells it covers."""
        rows = []
        for key in self.store.keys():
            if not key.startswith("cifar10/"):
                continue
            _, split, rest = key.split("/")
            metric, _, budget = rest.partition("@")
            epochs, _, kind = budget.partition(":")
            values = np.asarray(self.store.column(key))
            covered = np.isfinite(values).any(axis=-1) if values.ndim > 1 else np.isfinite(values)
            kind = {"": "per repeat", "halfway": "per repeat, halfway", "max": "max over repeats",
                    "one": "one repeat"}.get(kind, kind)
            rows.append({"split": split, "metric": metric, "epochs": int(epochs), "kind": kind,
                         "cells": int(covered.sum()), "source": self.store.manifest.columns[key].source})
        return sorted(rows, key=lambda r: (r["epochs"], r["split"], r["metric"], r["kind"]))
