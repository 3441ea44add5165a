"""The run store: every computed score and training run, keyed by everything that determines it.

One SQLite file (``HARNESS_HOME/runs.sqlite``); each score is committed as soon as it is
computed, so a run killed at any point (``kill -9`` included) loses nothing already computed
and a re-run with the same arguments computes only what is missing. Failures are stored with
their reason, like scores.

Results that are not one score (a supernet search: its derived cell, alpha matrix, per-epoch log
and wall seconds) are *training runs*: table ``runs`` of the same file, one row per
``(kind, key)`` with the key and the result as JSON (:meth:`RunStore.get_run`,
:meth:`RunStore.put_run`). A key is a flat dict of everything that determines the run, the
code's version included (``version``, registered per kind with :func:`register_run_kind`);
rows of another ``schema`` (:data:`RUNS_SCHEMA`) or version are never read back, and are
listed and cleared as stale.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import platform
import re
import sqlite3
import time
import zlib
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import pandas as pd

from .config import harness_home
from .errors import HarnessError, reason

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
LOCK_WAIT_S = 120.0  # how long a write waits for another process holding the store's lock (SQLite busy timeout)
RUNS_SCHEMA = 1  # layout of a training run's key and result JSON (bump when it changes)
#: kind of training run -> the version of the code that trains it now (see register_run_kind)
RUN_KINDS: dict[str, str] = {}
HOME_FIX = "set HARNESS_HOME (or --home) to a folder you can write"
# SQLite's primary result codes (the low byte of sqlite3.Error.sqlite_errorcode, Python >= 3.11)
_CORRUPT, _NOTADB, _CANTOPEN, _READONLY, _PERM, _FULL, _IOERR, _BUSY, _LOCKED = 11, 26, 14, 8, 3, 13, 10, 5, 6
_BY_TEXT = (("malformed", _CORRUPT), ("not a database", _NOTADB), ("unable to open", _CANTOPEN),
            ("readonly", _READONLY), ("disk is full", _FULL), ("disk i/o", _IOERR), ("locked", _BUSY))


@dataclass(frozen=True)
class ScoreKey:
    """Everything that determines a score, down to the code and the arithmetic that computed it."""

    space: str  # e.g. "nb201"
    dataset: str  # the image dataset and class count: cifar10, cifar100, ImageNet16-120
    index: int  # cell index in the space
    estimator: str
    variant: str
    batch_size: int
    batch_seed: int  # seed of the batch sampler
    init_seed: int  # seed of the network's initialisation
    augment: bool  # crop + flip on the batch
    images: str  # where the images came from (path of the image set)
    version: str = ""  # the estimator's implementation version (bumped with its definition)
    device: str = "cpu"  # device type: cpu, cuda, mps
    torch: str = ""  # torch version
    dtype: str = "float32"  # dtype of the batch and network


_KEY_COLUMNS = ["space", "dataset", "idx", "estimator", "variant", "batch_size", "batch_seed", "init_seed", "augment",
                "images", "version", "device", "torch", "dtype"]
_WHERE = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)
KEY_COLUMNS = list(_KEY_COLUMNS)  # the columns of an exported row that make its key
EXPORT_COLUMNS = _KEY_COLUMNS + ["score", "seconds", "error", "host", "created"]


def _plain(value):
    """numpy scalars as Python ones (sqlite3 takes only these)."""
    return value.item() if hasattr(value, "item") else value


def read_export(path: Path) -> pd.DataFrame:
    """A file of :meth:`RunStore.export` (key columns read as text where they are text)."""
    text = {c: str for c in ("space", "dataset", "estimator", "variant", "images", "version", "device", "torch",
                             "dtype", "error", "host")}
    try:
        frame = pd.read_csv(path, dtype=text, keep_default_na=False, na_values={"score": [""], "seconds": [""]})
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise HarnessError(f"{path} is not a scores file ({type(err).__name__}: {err})".splitlines()[0],
                           "pass a file written by nas-harness runs export") from err
    return frame


def _open_text(path: Path, mode: str):
    """A text file, gzip-compressed when its name ends in ``.gz``."""
    import gzip

    return gzip.open(path, mode, encoding="utf-8") if path.name.endswith(".gz") else open(path, mode[0], encoding="utf-8")


def register_run_kind(kind: str, version: str) -> None:
    """Declare a kind of training run and its code version (its module calls this on import)."""
    RUN_KINDS[kind] = str(version)


def run_key_json(key: dict) -> str:
    """The canonical text of a training run's key: sorted, compact JSON (equal keys, equal text)."""
    try:
        return json.dumps({k: _plain(v) for k, v in key.items()}, sort_keys=True, separators=(",", ":"),
                          allow_nan=False)
    except (TypeError, ValueError) as err:
        raise HarnessError(f"a training run's key must be plain finite JSON values ({err})",
                           "key runs by strings, ints, finite floats and bools") from err


def current_versions() -> dict[str, str]:
    """Estimator name -> the implementation version registered now."""
    from .estimators import ESTIMATORS

    return {name: str(ESTIMATORS.get(name).meta.get("version", "")) for name in ESTIMATORS.list()}


def _sqlite_code(err: BaseException) -> int | None:
    """SQLite's primary result code of ``err`` (from its text on Python < 3.11)."""
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(err).lower()
    return next((c for words, c in _BY_TEXT if words in text), None)


def _guarded(method):
    """A run-store method whose SQLite errors (a damaged file, a full disk, a folder it may not
    write) are one line naming the store and what to do (see :meth:`RunStore.error`)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, pd.errors.DatabaseError) as err:  # pandas wraps the sqlite3 error
            cause = err.__cause__ if isinstance(err, pd.errors.DatabaseError) and err.__cause__ else err
            problem = self.error(cause)
            if problem is None:
                raise
            raise problem from err

    return wrapper


def _training_estimators() -> tuple[str, ...]:
    """Estimators that train the cell on their own data (``bpe``): the batch fields of the key
    (size, seed, augmentation) are not theirs, so they are stored as 0, 0, False."""
    from .estimators import ESTIMATORS

    return tuple(n for n in ESTIMATORS.list() if "training" in ESTIMATORS.get(n).meta.get("needs", ()))


def _normal(key: "ScoreKey") -> "ScoreKey":
    """``key`` as it is stored: a training estimator's without the batch fields it does not use
    (a BPE score asked for under another --batch-size is the same training, found again)."""
    if (key.batch_size, key.batch_seed, bool(key.augment)) == (0, 0, False):
        return key
    from .estimators import ESTIMATORS

    if key.estimator in ESTIMATORS and "training" in ESTIMATORS.get(key.estimator).meta.get("needs", ()):
        return replace(key, batch_size=0, batch_seed=0, augment=False)
    return key  # one registry lookup per key: this runs for every get and put


def _score_row(row) -> tuple[float, float, str] | None:
    """A ``(score, seconds, error)`` row as read back: a stored NULL score is NaN."""
    if row is None:
        return None
    score, seconds, error = row
    return (math.nan if score is None else score), seconds, error


#: an absolute path in an ``images`` key: the whole key, or inside parentheses (a training note)
_PATH_IN_NOTE = re.compile(r"(?:(?<=^)|(?<=\())(/[^()]*?)(\)|$)")


def _portable_if_here(path: str, portable_path) -> str:
    """``path`` in its portable form when it is a file (or folder) of this machine's data or home."""
    new = portable_path(path)
    return new if new.startswith(("HARNESS_DATA/", "HARNESS_HOME/")) and Path(path).exists() else path


class RunStore:
    """Scores keyed by :class:`ScoreKey`. A store written by an older harness (schema 1, whose
    keys had no estimator version, device, torch or dtype) is kept as table ``scores_v1``:
    never read back as a score, listed and cleared as stale.

    A file that is not a readable SQLite database (random bytes, truncated, damaged pages) is
    found on open (SQLite's ``quick_check``, ~0.1 s for 50 MB) and refused in one line saying
    to move it aside; it is never deleted or replaced automatically (its scores may be
    recoverable). A full disk or a folder the harness may not write is one line too."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else harness_home() / "runs.sqlite"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise HarnessError(f"cannot create the folder {self.path.parent} of the run store ({err.strerror})",
                               HOME_FIX) from err
        # the journal files that were there before this open (opening creates them)
        self._beside = [f"{self.path.name}{s}" for s in ("-wal", "-shm")
                        if self.path.with_name(self.path.name + s).exists()]
        if self.path.is_dir():
            raise self.unreadable("it is a folder, not a file")
        self.db = None
        self._open()

    @_guarded
    def _open(self) -> None:
        self.db = sqlite3.connect(self.path, timeout=LOCK_WAIT_S)  # another writer: wait for it, not fail
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            check = [row[0] for row in self.db.execute("PRAGMA quick_check(1)").fetchall()]
        except sqlite3.Error:
            self.db.close()
            raise
        if check != ["ok"]:
            self.db.close()
            raise self.unreadable(f"SQLite's check says: {(check or ['no answer'])[0]}".splitlines()[0][:160])
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(scores)")}
        if columns and "version" not in columns:  # schema 1: keep its rows aside, never serve them
            self.db.execute("ALTER TABLE scores RENAME TO scores_v1")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS scores (space TEXT, dataset TEXT, idx INTEGER, estimator TEXT, variant TEXT,"
            " batch_size INTEGER, batch_seed INTEGER, init_seed INTEGER, augment INTEGER, images TEXT,"
            " version TEXT, device TEXT, torch TEXT, dtype TEXT,"
            " score REAL, seconds REAL, error TEXT, host TEXT, created REAL,"
            f" PRIMARY KEY ({', '.join(_KEY_COLUMNS)}))")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS runs (kind TEXT, key_json TEXT, result_json TEXT, schema INTEGER,"
            " version TEXT, seconds REAL, host TEXT, created REAL, PRIMARY KEY (kind, key_json))")
        self.db.commit()
        self._portable_images()
        self._normal_training_keys()

    def _portable_images(self) -> None:
        """Scores stored before image sets were keyed portably name their file by its absolute path,
        alone (training-free scores) or inside the training data's note (the DARTS cells' BPE
        runs: ``CIFAR-10 training set (/abs/path): ...``). Where that path is a file of this
        machine's HARNESS_DATA (or HARNESS_HOME), the key is renamed to the portable form
        (``HARNESS_DATA/images/...``): the same file, so the same score, read back again instead
        of recomputed. A score already stored under the portable key is kept; a path that is no
        file here is left as it is."""
        from .paths import portable_path

        olds = [row[0] for row in self.db.execute(
            "SELECT DISTINCT images FROM scores WHERE images LIKE '/%' OR images LIKE '%(/%'")]
        renamed = 0
        for old in olds:
            new = _PATH_IN_NOTE.sub(lambda m: _portable_if_here(m.group(1), portable_path) + m.group(2), old)
            if new != old:
                try:
                    renamed += self.db.execute("UPDATE OR IGNORE scores SET images=? WHERE images=?",
                                               (new, old)).rowcount
                except sqlite3.OperationalError:  # a store this process may only read: served as it is
                    self.db.rollback()
                    return
        if renamed:
            self.db.commit()
            log.info("run store %s: %d scores keyed by an absolute image path now keyed portably", self.path, renamed)

    def _normal_training_keys(self) -> None:
        """Training estimators' scores stored with the batch fields of the command that asked for
        them are keyed without them (:func:`_normal`); where two such rows meet, the first is kept."""
        names = _training_estimators()
        where = (f"estimator IN ({','.join('?' * len(names))}) AND (batch_size<>0 OR batch_seed<>0 OR augment<>0)")
        if not names or not self.db.execute(f"SELECT COUNT(*) FROM scores WHERE {where}", names).fetchone()[0]:
            return  # nothing to re-key: no write (a write would hold the lock until a commit)
        try:
            changed = self.db.execute(f"UPDATE OR IGNORE scores SET batch_size=0, batch_seed=0, augment=0 WHERE {where}",
                                      names).rowcount
            self.db.commit()
        except sqlite3.OperationalError:  # a store this process may only read: served as it is
            self.db.rollback()
            return
        log.info("run store %s: %d training scores keyed without the unused batch fields", self.path, changed)

    def unreadable(self, why: str) -> HarnessError:
        """The one-line refusal of a damaged store file: where it is and how to start afresh."""
        also = f" (with {' and '.join(self._beside)} beside it)" if self._beside else ""
        return HarnessError(f"the run store {self.path} is unreadable ({why})",
                            f"move it aside{also}, e.g. mv {self.path} {self.path}.broken, and the next run starts a "
                            "fresh one (the harness never deletes it: its scores may be recoverable)")

    def error(self, err: BaseException) -> HarnessError | None:
        """The one-line error of an SQLite failure, or None when it is not the user's to fix."""
        code = _sqlite_code(err)
        why = reason(err)
        if code in (_CORRUPT, _NOTADB):
            return self.unreadable(why)
        if code in (_CANTOPEN, _READONLY, _PERM):
            return HarnessError(f"cannot write the run store {self.path} ({why})",
                                f"make {self.path.parent} writable, or {HOME_FIX}")
        if code in (_FULL, _IOERR):
            return HarnessError(f"cannot write the run store {self.path} ({why})",
                                "free disk space and run again: the scores already stored are kept and not recomputed")
        if code in (_BUSY, _LOCKED):
            return HarnessError(f"the run store {self.path} is locked by another process ({why})",
                                "run again when that process has finished writing")
        return None

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    @_guarded
    def get(self, key: ScoreKey) -> tuple[float, float, str] | None:
        return _score_row(self.db.execute(f"SELECT score, seconds, error FROM scores WHERE {_WHERE}",
                                          astuple(_normal(key))).fetchone())

    @_guarded
    def put(self, key: ScoreKey, score: float, seconds: float, error: str) -> None:
        self.db.execute(f"INSERT OR REPLACE INTO scores VALUES ({','.join('?' * (len(_KEY_COLUMNS) + 5))})",
                        (*astuple(_normal(key)), None if math.isnan(score) else score, seconds, error, platform.node(),
                         time.time()))
        self.db.commit()

    @_guarded
    def put_many(self, rows: pd.DataFrame, replace: bool = False) -> int:
        """Add exported rows (:meth:`export`'s columns); rows already here are kept unless
        ``replace``. Returns how many rows were added or replaced."""
        missing = [c for c in EXPORT_COLUMNS if c not in rows]
        if missing:
            raise HarnessError(f"the scores file lacks the columns {', '.join(missing)}",
                               "pass a file written by nas-harness runs export (or a study's draws.csv.gz)")
        rows = rows[EXPORT_COLUMNS].astype(object).where(rows[EXPORT_COLUMNS].notna(), None)
        before = self.db.total_changes
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.db.executemany(f"{verb} INTO scores ({', '.join(EXPORT_COLUMNS)}) "
                            f"VALUES ({','.join('?' * len(EXPORT_COLUMNS))})",
                            [tuple(_plain(v) for v in r) for r in rows.itertuples(index=False)])
        self.db.commit()
        added = self.db.total_changes - before
        self._normal_training_keys()
        return added

    @_guarded
    def rows(self, keys) -> pd.DataFrame:
        """The stored rows of ``keys`` (:meth:`export`'s columns; keys not stored are left out)."""
        rows, seen = [], set()
        for key in keys:
            values = astuple(_normal(key))
            if values in seen:
                continue
            seen.add(values)
            row = self.db.execute(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM scores WHERE {_WHERE}", values).fetchone()
            if row is not None:
                rows.append(row)
        return pd.DataFrame(rows, columns=EXPORT_COLUMNS)

    def export(self, path: Path, estimator: str | None = None) -> int:
        """Write the current-schema rows (one estimator's with ``estimator``) to ``path`` (CSV;
        ``.csv.gz`` compressed), for :meth:`put_many` on another machine. Returns the row count."""
        frame = self.frame(estimator)[EXPORT_COLUMNS]
        try:
            frame.to_csv(path, index=False)
        except OSError as err:
            raise HarnessError(f"cannot write {path} ({err.strerror or reason(err)})",
                               "free disk space or pass a file in a folder you can write; the run store is "
                               "unchanged") from err
        return len(frame)

    @_guarded
    def frame(self, estimator: str | None = None) -> pd.DataFrame:
        """Every current-schema row (one estimator's with ``estimator``)."""
        if estimator is None:
            return pd.read_sql_query("SELECT * FROM scores", self.db)
        return pd.read_sql_query("SELECT * FROM scores WHERE estimator=?", self.db, params=(estimator,))

    @_guarded
    def _has_v1(self) -> bool:
        return self.db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='scores_v1'").fetchone() \
            is not None

    @_guarded
    def stale(self, estimator: str | None = None) -> pd.DataFrame:
        """Rows no current run can read back: an estimator version that is not the registered one
        (or an estimator no longer registered), and every row of an older schema (``schema`` 1)."""
        frame = self.frame(estimator)
        versions = current_versions()
        stale = frame[[versions.get(e) != v for e, v in zip(frame.estimator, frame.version)]].assign(schema=SCHEMA_VERSION)
        if self._has_v1():
            old = pd.read_sql_query("SELECT * FROM scores_v1", self.db).assign(schema=1)
            if estimator is not None:
                old = old[old.estimator == estimator]
            stale = pd.concat([stale, old], ignore_index=True)
        return stale

    @_guarded
    def clear(self, estimator: str | None = None, stale_only: bool = False) -> int:
        """Delete rows (of one estimator, and/or only the stale ones); returns how many."""
        removed = 0
        if stale_only:
            versions = current_versions()
            for (name, version), in_use in ((k, versions.get(k[0]) == k[1]) for k in self.db.execute(
                    "SELECT DISTINCT estimator, version FROM scores").fetchall()):
                if not in_use and estimator in (None, name):
                    removed += self.db.execute("DELETE FROM scores WHERE estimator=? AND version=?",
                                               (name, version)).rowcount
        else:
            sql, params = ("DELETE FROM scores", ()) if estimator is None else \
                ("DELETE FROM scores WHERE estimator=?", (estimator,))
            removed += self.db.execute(sql, params).rowcount
        if self._has_v1():
            sql, params = ("DELETE FROM scores_v1", ()) if estimator is None else \
                ("DELETE FROM scores_v1 WHERE estimator=?", (estimator,))
            removed += self.db.execute(sql, params).rowcount
        self.db.commit()
        return removed

    # -- training runs: results that are not one score ---------------------------------------
    @_guarded
    def get_run(self, kind: str, key: dict) -> dict | None:
        """The stored result of the training run ``key`` of ``kind`` (this schema), else None."""
        row = self.db.execute("SELECT result_json FROM runs WHERE kind=? AND key_json=? AND schema=?",
                              (kind, run_key_json(key), RUNS_SCHEMA)).fetchone()
        return None if row is None else json.loads(row[0])

    @_guarded
    def put_run(self, kind: str, key: dict, result: dict, seconds: float = math.nan) -> None:
        """Commit one training run's result (JSON-able; NaN allowed) at once, replacing any under the same key."""
        self.db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?)",
                        (kind, run_key_json(key), json.dumps(result), RUNS_SCHEMA, str(key.get("version", "")),
                         None if math.isnan(seconds) else float(seconds), platform.node(), time.time()))
        self.db.commit()

    @_guarded
    def runs(self, kind: str | None = None) -> pd.DataFrame:
        """Every stored training run (one kind's with ``kind``): kind, key_json, schema, version,
        seconds, host, created, and ``current`` (readable by the code registered now)."""
        sql = "SELECT kind, key_json, schema, version, seconds, host, created FROM runs"
        frame = (pd.read_sql_query(sql + " ORDER BY created", self.db) if kind is None else
                 pd.read_sql_query(sql + " WHERE kind=? ORDER BY created", self.db, params=(kind,)))
        frame["current"] = pd.Series([s == RUNS_SCHEMA and RUN_KINDS.get(k) == v
                                      for k, s, v in zip(frame.kind, frame.schema, frame.version)],
                                     index=frame.index, dtype=bool)
        return frame

    @_guarded
    def export_runs(self, path: Path, kind: str | None = None) -> int:
        """Write the training runs (one kind's with ``kind``) as JSON Lines (``.gz``: compressed),
        for :meth:`import_runs` on another machine. Returns how many."""
        sql = "SELECT kind, key_json, result_json, schema, version, seconds, host, created FROM runs"
        rows = self.db.execute(sql + (" WHERE kind=?" if kind else "") + " ORDER BY created",
                               (kind,) if kind else ()).fetchall()
        names = ("kind", "key_json", "result_json", "schema", "version", "seconds", "host", "created")
        try:
            with _open_text(Path(path), "wt") as f:
                for row in rows:
                    f.write(json.dumps(dict(zip(names, row))) + "\n")
        except OSError as err:
            raise HarnessError(f"cannot write {path} ({err.strerror or err})", "pass a writable file") from err
        return len(rows)

    @_guarded
    def import_runs(self, path: Path, replace: bool = False) -> int:
        """Add the training runs of a file of :meth:`export_runs` (kept where one is stored under the
        same kind and key, unless ``replace``). Returns how many were added or replaced."""
        names = ("kind", "key_json", "result_json", "schema", "version", "seconds", "host", "created")
        types = (str, str, str, int, str, (int, float, type(None)), (str, type(None)), (int, float, type(None)))
        try:
            with _open_text(Path(path), "rt") as f:
                records = [json.loads(line) for line in f if line.strip()]
            rows = [tuple(r[n] for n in names) for r in records]
            for number, row in enumerate(rows, 1):
                for name, value, kind in zip(names, row, types):
                    if not isinstance(value, kind):
                        raise TypeError(f"record {number}: {name} is {type(value).__name__}")
        except (OSError, EOFError, ValueError, KeyError, TypeError, zlib.error) as err:
            raise HarnessError(f"{path} is not a training-runs file ({type(err).__name__}: {err})".splitlines()[0],
                               "pass a .jsonl(.gz) file written by nas-harness runs export") from err
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        before = self.db.total_changes
        self.db.executemany(f"{verb} INTO runs VALUES (?,?,?,?,?,?,?,?)", rows)
        self.db.commit()
        return self.db.total_changes - before

    @_guarded
    def clear_runs(self, kind: str | None = None, stale_only: bool = False) -> int:
        """Delete training runs (of one kind, and/or only those no current code reads back); returns how many."""
        frame = self.runs(kind)
        if stale_only:
            frame = frame.loc[~frame.current]
        removed = 0
        for k, key in zip(frame.kind, frame.key_json):
            removed += self.db.execute("DELETE FROM runs WHERE kind=? AND key_json=?", (k, key)).rowcount
        self.db.commit()
        return removed


class StoreReader:
    """Another process's run store, read only (``mode=ro``): a worker of the same machine looks
    scores up in the driver's store without ever writing it. Any SQLite error while reading
    (a busy or vanished file) reads as "not stored": the worker computes the score instead."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=LOCK_WAIT_S)

    def get(self, key: ScoreKey) -> tuple[float, float, str] | None:
        try:
            row = self.db.execute(f"SELECT score, seconds, error FROM scores WHERE {_WHERE}",
                                  astuple(_normal(key))).fetchone()
        except sqlite3.Error:
            return None
        return _score_row(row)


class LayeredStore:
    """A private run store in front of a read-only one: ``get`` looks in ``store``, then in
    ``fallback``; ``put`` and ``rows`` are ``store``'s alone (what this process computed)."""

    def __init__(self, store: RunStore, fallback: StoreReader | None):
        self.store, self.fallback = store, fallback

    def get(self, key: ScoreKey):
        found = self.store.get(key)
        if found is None and self.fallback is not None:
            found = self.fallback.get(key)
        return found

    def put(self, key: ScoreKey, score: float, seconds: float, error: str) -> None:
        self.store.put(key, score, seconds, error)

    def rows(self, keys) -> pd.DataFrame:
        return self.store.rows(keys)

