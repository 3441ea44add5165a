"""Damaged files and unwritable folders (found by a fault probe): each is one line on stderr saying
what is wrong and what to do, exit code 2 (or a :class:`HarnessError` from the library), found
before any long work, and nothing already computed is lost.

1. image files: a truncated, random or empty ``.npz``; a CIFAR python folder with a damaged batch;
2. NATS / NAS-Bench-201 sources given to ``data import``: truncated or random ``.pbz2``, ``.tar``, ``.pth``;
3. a non-numeric value in a compact NB201 CSV;
4. a damaged ``runs.sqlite`` (random bytes, truncated): refused, never deleted;
5. ``HARNESS_HOME`` that is a file, under a file, or read-only;
6. ``--out`` that is a file, under a file, read-only or on a full disk: checked by every command
   before its work; a write that fails later names the file and keeps the scores in the run store.

We run as root in CI, where a chmod'ed folder stays writable, so a read-only folder is simulated:
the call that the kernel would refuse (``tempfile.mkstemp`` in ``--out``, ``sqlite3.connect`` for
the run store, the store's lock file) raises the error it raises there (``EACCES`` /
``unable to open database file``, as seen when running as an unprivileged user). A full disk is
``OSError(ENOSPC)`` from the writer. None of these tests trains a network; one scores three
cells with ``params`` (a parameter count).
"""

from __future__ import annotations

import bz2
import errno
import os
import pickle
import shutil
import sqlite3
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.data.images import load_cifar_python, load_images, load_npz
from harness.errors import HarnessError
from harness.runstore import RunStore

from .conftest import data_folder, one_line, refused, require_data

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
NATS = "nb201/nats_fixtures/NATS-tss-v1_0-3ffb9-simple"



def has(line: str, *words: str) -> None:
    for word in words:
        assert word in line, (word, line)


def never(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"{what} started")

    return refuse


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(path))
    return path


# -- 1. image files --------------------------------------------------------------------------
def _good_npz(path: Path) -> bytes:
    x = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez(path, x=x, y=np.arange(6) % 3, classes=np.array(["a", "b", "c"]))
    return path.read_bytes()


@pytest.mark.parametrize("damage, words", [
    ("empty", ["it is empty"]),
    ("random", ["not an .npz archive"]),
    ("truncated", ["BadZipFile"]),
    ("cut_in_the_middle", ["BadZipFile"]),
    ("npy", ["a single .npy array"]),
    ("text_labels", ["not one integer per image"]),
    ("no_images", ["N >= 1"]),
    ("label_past_classes", ["label 5 but only 3 classes"]),
])
def test_a_damaged_npz_is_one_line(tmp_path, damage, words):
    good = _good_npz(tmp_path / "good.npz")
    path = tmp_path / "cifar10_train.npz"
    x = np.zeros((4, 32, 32, 3), np.uint8)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(1).bytes(4096))
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "cut_in_the_middle":  # the zip directory is intact; a member's bytes are not
        middle = len(good) // 2
        path.write_bytes(good[:middle] + bytes(200) + good[middle + 200:])
    elif damage == "npy":
        with open(path, "wb") as handle:
            np.save(handle, x)
    elif damage == "text_labels":
        np.savez(path, x=x, y=np.array(["a"] * 4))
    elif damage == "no_images":
        np.savez(path, x=x[:0], y=np.arange(0))
    elif damage == "label_past_classes":
        np.savez(path, x=x, y=np.array([0, 1, 2, 5]), classes=np.array(["a", "b", "c"]))
    with pytest.raises(HarnessError) as info:
        load_npz(path)
    line = one_line(info.value)
    has(line, str(path), "is not a readable image .npz", "np.savez", *words)


def test_a_truncated_image_file_in_the_data_folder_stops_correlate_before_scoring(tmp_path, monkeypatch, capsys, nb201):
    """The images of HARNESS_DATA/images/cifar10_train.npz, truncated: one line before any cell is scored."""
    import harness.estimators.run as run

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    good = (data_folder() / "images" / "cifar10_train.npz").read_bytes()
    (data / "images" / "cifar10_train.npz").write_bytes(good[: len(good) // 3])
    monkeypatch.setenv("HARNESS_DATA", str(data))  # no nb201/ here: the NB201 store keeps its sources
    monkeypatch.setattr(run, "network_for", never("scoring"))
    line = refused(capsys, "correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", "params",
                   "--device", "cpu", "--out", tmp_path / "o")
    has(line, "cifar10_train.npz is not a readable image .npz", "np.savez")


def _cifar10_folder(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = np.zeros((2, 3072), np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rows, b"labels": [0, 1]}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, handle)
    return folder


@pytest.mark.parametrize("file, damage, words", [
    ("data_batch_3", "truncated", ["data_batch_3 is not a readable cifar10 batch file", "UnpicklingError"]),
    ("data_batch_3", "random", ["data_batch_3 is not a readable cifar10 batch file"]),
    ("data_batch_3", "empty", ["data_batch_3 is not a readable cifar10 batch file", "EOFError"]),
    ("data_batch_3", "a_list", ["it holds a list, not a dict"]),
    ("data_batch_3", "no_data", ["it has no 'data' entry"]),
    ("data_batch_3", "short_rows", ["its data has shape (2, 100), not N x 3072"]),
    ("data_batch_3", "labels_short", ["2 images but 1 labels"]),
    ("batches.meta", "truncated", ["batches.meta is not a readable cifar10 meta file"]),
])
def test_a_damaged_cifar_batch_file_is_one_line(tmp_path, file, damage, words):
    folder = _cifar10_folder(tmp_path)
    load_cifar_python(tmp_path, "cifar10", train=True)  # sound before the damage
    path = folder / file
    good = path.read_bytes()
    path.write_bytes({
        "truncated": good[: len(good) // 2],
        "random": np.random.default_rng(2).bytes(3000),
        "empty": b"",
        "a_list": pickle.dumps([1, 2]),
        "no_data": pickle.dumps({b"labels": [0, 1]}),
        "short_rows": pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
        "labels_short": pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
    }[damage])
    with pytest.raises(HarnessError) as info:
        load_images("cifar10", "train", source=tmp_path)
    line = one_line(info.value)
    has(line, "download cifar-10-python.tar.gz again", *words)


# -- 2. NATS / NAS-Bench-201 sources -------------------------------------------------------------
@pytest.fixture
def nats_copy(tmp_path) -> Path:
    """A writable copy of the NATS-tss fixture release (the original is read-only)."""
    target = tmp_path / "copy" / "NATS-tss-v1_0-3ffb9-simple"
    shutil.copytree(require_data(NATS), target)
    target.chmod(0o755)
    for f in target.iterdir():
        f.chmod(0o644)
    return target


@contextmanager
def store_untouched():
    """The session's NB201 store (manifest and columns) is the same after the block."""
    from harness.benchmarks.nb201 import NB201

    root = NB201.default_root()
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.exists() else {}
    yield
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.exists() else {}
    assert before == after


@pytest.mark.parametrize("file, damage, words", [
    ("meta.pickle.pbz2", "truncated", ["meta.pickle.pbz2 is not a readable bz2 file", "end-of-stream"]),
    ("meta.pickle.pbz2", "random", ["meta.pickle.pbz2 is not a readable bz2 file", "Invalid data stream"]),
    ("meta.pickle.pbz2", "empty", ["meta.pickle.pbz2 is not a readable bz2 file (it is empty)"]),
    ("meta.pickle.pbz2", "not_a_pickle", ["meta.pickle.pbz2 does not hold a readable pickle"]),
    ("meta.pickle.pbz2", "no_archs", ["meta.pickle.pbz2 is not in the NATS-tss format", "meta_archs"]),
    ("000011.pickle.pbz2", "truncated", ["000011.pickle.pbz2 is not a readable bz2 file"]),
    ("000011.pickle.pbz2", "a_list", ["cell 11 of", "is not in the NATS-tss format"]),
])
def test_a_damaged_nats_file_is_one_line(capsys, nats_copy, file, damage, words):
    path = nats_copy / file
    good = path.read_bytes()
    path.write_bytes({
        "truncated": good[: len(good) // 2],
        "random": np.random.default_rng(3).bytes(5000),
        "empty": b"",
        "not_a_pickle": bz2.compress(b"not a pickle"),
        "no_archs": bz2.compress(pickle.dumps({"x": 1})),
        "a_list": bz2.compress(pickle.dumps([1, 2])),
    }[damage])
    with store_untouched():
        line = refused(capsys, "data", "import", "nb201", "--from", nats_copy)
    has(line, "download NATS-tss-v1_0-3ffb9-simple again", *words)


def _tar_of(folder: Path, path: Path, mode: str = "w") -> bytes:
    with tarfile.open(path, mode) as archive:
        archive.add(folder, arcname=folder.name)
    return path.read_bytes()


@pytest.mark.parametrize("name, damage, words", [
    ("NATS-tss-v1_0-3ffb9-simple.tar", "truncated", ["is not a readable NATS archive", "unexpected end of data"]),
    ("NATS-tss-v1_0-3ffb9-simple.tar", "header_only", ["is not a readable NATS archive"]),
    ("NATS-tss-v1_0-3ffb9-simple.tar", "random", ["not a tar archive, or a damaged one"]),
    ("NATS-tss-v1_0-3ffb9-simple.tar", "empty", ["is not a readable NATS archive (it is empty)"]),
    ("NATS-tss-v1_0-3ffb9-simple.tar.bz2", "truncated", ["is not a readable NATS archive"]),
])
def test_a_damaged_nats_archive_is_one_line(tmp_path, capsys, nats_copy, name, damage, words):
    path = tmp_path / name
    good = _tar_of(nats_copy, path, "w:bz2" if name.endswith(".bz2") else "w")
    path.write_bytes({"truncated": good[: len(good) // 2], "header_only": good[:100],
                      "random": np.random.default_rng(4).bytes(20000), "empty": b""}[damage])
    with store_untouched():
        line = refused(capsys, "data", "import", "nb201", "--from", path)
    has(line, name, "download NATS-tss-v1_0-3ffb9-simple again", *words)


@pytest.mark.parametrize("damage, words", [
    ("random", ["is not a readable NAS-Bench-201 .pth"]),
    ("empty", ["is not a readable NAS-Bench-201 .pth", "EOFError"]),
    ("truncated_pickle", ["is not a readable NAS-Bench-201 .pth", "truncated"]),
    ("wrong_cells", ["cell 0 of", "is not in the NAS-Bench-201 format"]),
])
def test_a_damaged_nb201_pth_is_one_line(tmp_path, capsys, monkeypatch, damage, words):
    import harness.benchmarks.nb201_import as nb201_import

    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    if damage == "wrong_cells":  # the right keys, the wrong insides (meta_archs checked separately)
        import torch

        monkeypatch.setattr(nb201_import, "_ops_from_archs", lambda archs, where: np.zeros((15625, 6), np.uint8))
        torch.save({"meta_archs": [ARCH], "arch2infos": {0: {"full": [1, 2]}}}, path)
    else:
        path.write_bytes({"random": np.random.default_rng(5).bytes(5000), "empty": b"",
                          "truncated_pickle": pickle.dumps({"meta_archs": [ARCH] * 50})[:-40]}[damage])
    with store_untouched():
        line = refused(capsys, "data", "import", "nb201", "--from", path)
    has(line, str(path), "download NAS-Bench-201-v1_1-096897.pth (or v1_0) again", *words)


def test_one_file_of_a_nats_release_names_the_folder(capsys, nats_copy):
    line = refused(capsys, "data", "import", "nb201", "--from", nats_copy / "meta.pickle.pbz2")
    has(line, "is one file of a NATS release", f"--from {nats_copy}")


# -- 3. a non-numeric value in a compact CSV -------------------------------------------------------
def _corrupt_csv(tmp_path: Path, name: str, column: str, value: str = "abc", row: int = 4) -> Path:
    table = pd.read_csv(require_data(f"nb201/{name}"), dtype=str, keep_default_na=False)
    table.loc[row, column] = value
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name, column", [
    ("nats_tss_test_acc_200ep.csv", "CIFAR100TestAccuracy200Epochs"),
    ("nb201_200ep_xvalid_cost.csv", "cifar100_xvalid_seed1"),
    ("nb201_200ep_xvalid_cost.csv", "ImageNet16-120_train_time"),
    ("nb201_200ep_xvalid_cost.csv", "cifar10-valid_n_seeds"),
    ("nb201_v1_1_12ep_val_test.csv", "imagenet-val"),
])
def test_a_non_numeric_value_in_a_compact_table_names_file_line_and_value(tmp_path, capsys, name, column):
    path = _corrupt_csv(tmp_path, name, column)
    with store_untouched():
        line = refused(capsys, "data", "import", "nb201", "--from", path)
    has(line, f"{path}, line 6: column {column} holds 'abc', not a number", "restore the table as published")


def test_a_malformed_arch_string_in_a_compact_table_names_the_line(tmp_path, capsys):
    path = _corrupt_csv(tmp_path, "nb201_v1_1_12ep_val_test.csv", "arch", "|nor_conv_3x3~0|+|avg_pool")
    with store_untouched():
        line = refused(capsys, "data", "import", "nb201", "--from", path)
    has(line, f"{path}, line 6:", "an NB201 cell has 3 joined by 2 '+'", "restore the table as published")


def test_an_n_seeds_outside_0_to_3_is_refused(tmp_path, capsys):
    path = _corrupt_csv(tmp_path, "nb201_200ep_xvalid_cost.csv", "cifar100_n_seeds", "7")
    line = refused(capsys, "data", "import", "nb201", "--from", path)
    has(line, "line 6: cifar100_n_seeds is 7, not 0, 1, 2 or 3")


def test_a_binary_file_under_a_table_name_is_one_line(tmp_path, capsys):
    path = tmp_path / "nats_tss_test_acc_200ep.csv"
    path.write_bytes(bytes(range(256)) * 10)
    line = refused(capsys, "data", "import", "nb201", "--from", path)
    has(line, f"cannot read {path} as CSV", "pass one of")


def test_a_damaged_table_in_the_data_folder_is_one_line_when_the_store_is_built(tmp_path, monkeypatch, capsys,
                                                                              fresh_home):
    """A default source (HARNESS_DATA/nb201/...) with a bad value: the first command that builds the store says so."""
    data = tmp_path / "data"
    (data / "nb201").mkdir(parents=True)
    _corrupt_csv(data / "nb201", "nats_tss_test_acc_200ep.csv", "CIFAR10TestAccuracy200Epochs", "93.1x")
    monkeypatch.setenv("HARNESS_DATA", str(data))
    line = refused(capsys, "data", "query", "nb201", "--index", "0", "--dataset", "cifar10", "--split", "ori-test",
                   "--epochs", "200")
    has(line, "nats_tss_test_acc_200ep.csv, line 6: column CIFAR10TestAccuracy200Epochs holds '93.1x'")
    assert not (fresh_home / "nb201").exists()  # nothing half-built left in place


# -- 4. a damaged run store ---------------------------------------------------------------------
def _store_with_rows(path: Path, n: int = 2000) -> bytes:
    store = RunStore(path)
    store.db.executemany("INSERT INTO scores (space, dataset, idx, estimator, score) VALUES (?,?,?,?,?)",
                         [("nb201", "cifar10", i, "params", 1.0) for i in range(n)])
    store.db.commit()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["random", "truncated", "header_only", "pages_overwritten"])
def test_a_damaged_run_store_is_refused_and_kept(capsys, fresh_home, damage):
    path = fresh_home / "runs.sqlite"
    fresh_home.mkdir()
    good = _store_with_rows(path)
    damaged = {"random": np.random.default_rng(6).bytes(8192), "truncated": good[: len(good) // 2],
               "header_only": good[:50],
               "pages_overwritten": good[:4096 * 3] + np.random.default_rng(7).bytes(len(good) - 4096 * 3)}[damage]
    path.write_bytes(damaged)
    for argv in (["runs", "list"], ["runs", "show"], ["runs", "clear", "--all"]):
        line = refused(capsys, *argv)
        has(line, f"the run store {path} is unreadable", "move it aside", f"mv {path} {path}.broken",
            "starts a fresh one", "never deletes it")
    assert path.read_bytes() == damaged  # never deleted, never repaired in place
    with pytest.raises(HarnessError, match="is unreadable") as info:
        RunStore(path)
    one_line(info.value)
    path.rename(path.with_name("runs.sqlite.broken"))  # what the message says to do: a fresh store
    assert main(["runs", "list"]) == 0
    assert "no scores in" in capsys.readouterr().out


def test_a_damaged_run_store_stops_correlate_before_scoring(tmp_path, capsys, monkeypatch, nb201):
    import harness.estimators.run as run
    import harness.runstore as runstore

    (tmp_path / "runs.sqlite").write_bytes(np.random.default_rng(8).bytes(8192))
    monkeypatch.setattr(runstore, "harness_home", lambda: tmp_path)  # the run store's folder only
    monkeypatch.setattr(run, "make_batch", never("the batch"))
    line = refused(capsys, "correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", "params",
                   "--device", "cpu", "--out", tmp_path / "o")
    has(line, "runs.sqlite is unreadable", "move it aside")


def test_a_run_store_that_is_a_folder_is_one_line(capsys, fresh_home):
    (fresh_home / "runs.sqlite").mkdir(parents=True)
    line = refused(capsys, "runs", "list")
    has(line, "runs.sqlite is unreadable (it is a folder, not a file)", "move it aside")


@pytest.mark.parametrize("message, words", [
    ("database or disk is full", ["cannot write the run store", "free disk space", "already stored are kept"]),
    ("disk I/O error", ["cannot write the run store", "free disk space"]),
    ("attempt to write a readonly database", ["cannot write the run store", "writable", "HARNESS_HOME"]),
    ("database is locked", ["is locked by another process", "run again"]),
])
def test_sqlite_failures_after_open_are_one_line(tmp_path, message, words):
    store = RunStore(tmp_path / "runs.sqlite")
    err = store.error(sqlite3.OperationalError(message))
    assert err is not None
    has(one_line(err), str(tmp_path / "runs.sqlite"), *words)
    assert store.error(sqlite3.ProgrammingError("Cannot operate on a closed database.")) is None  # a bug: raised


# -- 5. HARNESS_HOME ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["runs", "list"], ["data", "info"],
                                  ["data", "query", "nb201", "--index", "0", "--dataset", "cifar10", "--split",
                                   "ori-test", "--epochs", "200"]])
@pytest.mark.parametrize("where, words", [("a_file", ["is a file, not a folder"]),
                                          ("under_a_file", ["cannot be created", "a_file is a file"])])
def test_a_harness_home_that_cannot_be_a_folder_is_one_line(tmp_path, capsys, monkeypatch, argv, where, words):
    (tmp_path / "a_file").write_text("not a folder\n")
    home = tmp_path / "a_file" if where == "a_file" else tmp_path / "a_file" / "home"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    line = refused(capsys, *argv)
    has(line, f"HARNESS_HOME={home}", "set HARNESS_HOME (or --home) to a folder you can write", *words)
    assert (tmp_path / "a_file").read_text() == "not a folder\n"


def test_home_flag_is_checked_too(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", os.environ["HARNESS_HOME"])  # --home sets it: restored after the test
    (tmp_path / "a_file").write_text("x")
    line = refused(capsys, "--home", tmp_path / "a_file", "runs", "list")
    has(line, "is a file, not a folder")


def test_a_read_only_harness_home_is_one_line_for_the_run_store(capsys, fresh_home, monkeypatch):
    """Simulated: in a folder it may not write, sqlite3.connect of a new file fails like this."""
    fresh_home.mkdir()
    real = sqlite3.connect

    def read_only(path, *args, **kwargs):
        if Path(path).parent == fresh_home:
            raise sqlite3.OperationalError("unable to open database file")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    line = refused(capsys, "runs", "list")
    has(line, f"cannot write the run store {fresh_home / 'runs.sqlite'}", f"make {fresh_home} writable",
        "HARNESS_HOME")


def test_a_read_only_harness_home_is_one_line_when_the_store_must_be_built(capsys, fresh_home, monkeypatch):
    """Simulated: the lock file beside the store cannot be created (what FileLock raises there)."""
    import harness.benchmarks.nb201_import as nb201_import

    fresh_home.mkdir()

    @contextmanager
    def read_only(root):
        raise PermissionError(errno.EACCES, "Permission denied", str(fresh_home / "nb201.lock"))
        yield

    monkeypatch.setattr(nb201_import, "store_lock", read_only)
    monkeypatch.setattr(nb201_import, "read_source", never("reading the sources"))
    line = refused(capsys, "data", "info")
    has(line, f"cannot write the NB201 store at {fresh_home / 'nb201'}", "Permission denied", "nb201.lock",
        f"make {fresh_home} writable")


# -- 6. --out --------------------------------------------------------------------------------------
# each command, and the function that starts its work: it must not run when --out is bad
OUT_COMMANDS = {
    "data info": (["data", "info"], "harness.benchmarks.nb201.NB201.open"),
    "data query": (["data", "query", "nb201", "--index", "0", "--dataset", "cifar10", "--split", "ori-test",
                    "--epochs", "200"], "harness.benchmarks.nb201.NB201.open"),
    "model summary": (["model", "summary", "--arch", ARCH], "harness.models.nb201.summary"),
    "estimators": (["estimators"], None),
    "correlate": (["correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", "params", "--device", "cpu"],
                  "harness.estimators.run.score_cells"),
    "search": (["search", "--strategy", "random", "--estimator", "params", "--budget", "3", "--device", "cpu"],
               "harness.search.runner.run_many"),
    "n-sample": (["n-sample", "--estimator", "naswot", "--draws", "10", "--ns", "10", "--device", "cpu"],
                 "harness.search.n_sample_study.run_study"),
    "agree naslib": (["agree", "naslib", "--cells", "3", "--device", "cpu"], "harness.estimators.run.score_cells"),
    "bpe replay": (["bpe", "replay"], "harness.report.bpe.write_replay"),
    "bpe darts": (["bpe", "darts", "--config", "BPE1", "--cells", "3", "--device", "cpu"],
                  "harness.report.bpe.write_darts_bpe"),
    "mip": (["mip", "--evaluator", "tabular:bpe-paper"], "harness.bpe.mip.mip"),
    "mip train": (["mip", "--evaluator", "train:nb201", "--cells", "3", "--device", "cpu"], "harness.bpe.mip.mip"),
    "supernet": (["supernet", "--method", "darts-v1", "--bpe", "e1-b64-l1-c4-i16-f0.01-v100", "--device", "cpu"],
                 "harness.search.differentiable.search"),
    "report nb201": (["report", "nb201"], "harness.report.nb201_truth.write_ground_truth_report"),
    "report search": (["report", "search", "FOLDER"], "harness.report.search.combined_table"),
}


def _patch_work(monkeypatch, target: str | None):
    """Make the function that starts the command's work fail the test if it is called."""
    if target is not None:
        monkeypatch.setattr(target, never(target))


def _argv(name: str, tmp_path: Path) -> list[str]:
    argv, _ = OUT_COMMANDS[name]
    return [str(tmp_path / "runs") if a == "FOLDER" else a for a in argv]


@pytest.mark.parametrize("command", sorted(OUT_COMMANDS))
def test_an_out_under_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    (tmp_path / "a_file").write_text("x")
    _patch_work(monkeypatch, OUT_COMMANDS[command][1])
    out = tmp_path / "a_file" / "out"
    line = refused(capsys, *_argv(command, tmp_path), "--out", out)
    has(line, f"--out {out} cannot be created", "a_file is a file", "pass a folder you can write")


@pytest.mark.parametrize("command", ["correlate", "supernet", "mip", "report nb201", "data info"])
def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    (tmp_path / "a_file").write_text("x")
    _patch_work(monkeypatch, OUT_COMMANDS[command][1])
    line = refused(capsys, *_argv(command, tmp_path), "--out", tmp_path / "a_file")
    has(line, f"--out {tmp_path / 'a_file'} is a file, not a folder")


@pytest.mark.parametrize("command", ["correlate", "supernet", "mip train", "search", "n-sample", "bpe darts"])
@pytest.mark.parametrize("refusal, words", [
    (PermissionError(errno.EACCES, "Permission denied"), ["is not writable (Permission denied)",
                                                          "pass a folder you can write"]),
    (OSError(errno.ENOSPC, "No space left on device"), ["is not writable (No space left on device)",
                                                        "free disk space"]),
])
def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command, refusal,
                                                                  words):
    """Read-only (as root: simulated) or full: the probe file cannot be created in --out."""
    out = tmp_path / "out"
    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == out:
            raise refusal
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    _patch_work(monkeypatch, OUT_COMMANDS[command][1])
    line = refused(capsys, *_argv(command, tmp_path), "--out", out)
    has(line, f"--out {out}", *words)


def test_the_out_probe_leaves_nothing_behind(tmp_path):
    from harness.report.tables import out_folder

    assert out_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list((tmp_path / "a" / "b").iterdir()) == []


def _full_disk_for(folder: Path, monkeypatch):
    """Every DataFrame.to_csv into ``folder`` fails as on a full disk (after writing a little)."""
    real = pd.DataFrame.to_csv

    def full(self, path=None, *args, **kwargs):
        if path is not None and Path(path).parent == folder:
            Path(path).write_text("index,arch\n0,")  # what a full disk leaves: a partial file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)


CELLS = ["--indices", "CELLS", "--estimators", "params", "--batch-size", "8", "--n-boot", "0", "--device", "cpu",
         "--init-seed", "777001"]  # an init seed of its own: these scores are new to the session's run store


def _correlate(tmp_path: Path, out: Path) -> list[str]:
    (tmp_path / "cells.txt").write_text("0\n1\n2\n")
    return ["correlate", "--dataset", "cifar10", *[str(tmp_path / "cells.txt") if a == "CELLS" else a for a in CELLS],
            "--out", str(out)]


def test_a_full_disk_after_scoring_names_the_file_and_keeps_the_scores(tmp_path, capsys, monkeypatch, nb201):
    import harness.estimators.run as run

    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.csv").write_text("an earlier run's table\n")
    _full_disk_for(out, monkeypatch)
    line = refused(capsys, *_correlate(tmp_path, out))
    has(line, f"cannot write {out / 'scores.csv'} (No space left on device)", "free disk space",
        "the scores already computed are kept in the run store")
    assert (out / "scores.csv").read_text() == "an earlier run's table\n"  # the earlier table, not a partial one
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    monkeypatch.undo()
    monkeypatch.setattr(run, "network_for", never("scoring"))  # the rerun reads every score from the run store
    assert main(_correlate(tmp_path, out)) == 0
    assert len(pd.read_csv(out / "scores.csv")) == 3


def test_a_full_disk_in_the_table_writer_is_one_line(tmp_path, capsys, monkeypatch, nb201):
    """The table writer itself raising ENOSPC (it is monkeypatched): main() still gives one line."""
    import harness.report.correlation as correlation

    def full(table, out, name, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(out) / f"{name}.csv"))

    monkeypatch.setattr(correlation, "write_table", full)
    out = tmp_path / "out"
    line = refused(capsys, *_correlate(tmp_path, out))
    has(line, "No space left on device", str(out / "scores.csv"), "kept in the run store")


def test_save_figure_on_a_full_disk_keeps_the_earlier_plot(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from harness.report.tables import new_figure, save_figure

    (tmp_path / "plot.png").write_bytes(b"earlier")
    fig, _ = new_figure()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    with pytest.raises(HarnessError) as info:
        save_figure(fig, tmp_path, "plot")
    has(one_line(info.value), f"cannot write {tmp_path / 'plot.png'} (No space left on device)", "run store")
    assert (tmp_path / "plot.png").read_bytes() == b"earlier"
    assert sorted(os.listdir(tmp_path)) == ["plot.png"]
