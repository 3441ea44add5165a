"""The run store: keyed by the code, device, torch and dtype that computed a score; inspected and
pruned by ``nas-harness runs``."""

from __future__ import annotations

import dataclasses
import math
import sqlite3

import pytest
import torch

from harness.cli import main
from harness.estimators import ESTIMATORS
from harness.estimators.run import CellScorer, EstimatorSpec, make_batch
from harness.runstore import RunStore, ScoreKey, read_export

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def batch(harness_data):
    return make_batch("cifar10", 8, batch_seed=0, augment=False, device=torch.device("cpu"))


def _scorer(store, batch, name="params"):
    b, source = batch
    return CellScorer(lambda i: ARCH, "cifar10", EstimatorSpec.parse(name), batch=b, images=source, batch_size=8,
                      batch_seed=0, store=store, device=torch.device("cpu"))


def test_the_key_holds_version_device_torch_and_dtype(tmp_path, batch):
    store = RunStore(tmp_path / "runs.sqlite")
    scorer = _scorer(store, batch)
    key = scorer.key(3)
    assert (key.version, key.device, key.torch, key.dtype) == ("1", "cpu", torch.__version__, "float32")
    value, _, _, cached = scorer.score(3)
    assert not cached and scorer.score(3)[3]
    for change in ({"version": "2"}, {"device": "cuda"}, {"torch": "1.13.1"}, {"dtype": "float16"}):
        assert store.get(dataclasses.replace(key, **change)) is None, change  # never served to other code/devices
    assert store.get(key)[0] == value


def test_a_new_estimator_version_recomputes_and_the_old_scores_are_stale(tmp_path, batch, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    store = RunStore()
    _scorer(store, batch).score(3)
    _scorer(store, batch, "l2_norm").score(3)
    monkeypatch.setitem(ESTIMATORS.get("params").meta, "version", "2")  # its definition changed
    assert not _scorer(store, batch).score(3)[3]  # computed again, not read back
    stale = store.stale()
    assert stale[["estimator", "version"]].values.tolist() == [["params", "1"]]
    assert main(["runs", "list", "--stale"]) == 0
    assert "params" in capsys.readouterr().out
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "| params |  | 1 |" in out and "| params |  | 2 |" in out and "l2_norm" in out
    assert main(["runs", "show", "--estimator", "params", "--index", "3"]) == 0
    assert "float32" in capsys.readouterr().out
    assert main(["runs", "clear", "--stale"]) == 0 and "removed 1 stored scores" in capsys.readouterr().out
    assert store.stale().empty and len(store.frame()) == 2
    assert main(["runs", "clear", "--estimator", "l2_norm"]) == 0
    assert store.frame().estimator.tolist() == ["params"]
    assert main(["runs", "clear"]) == 2 and "needs --estimator E, --stale or --all" in capsys.readouterr().err
    assert main(["runs", "list", "--estimator", "nope"]) == 2


def test_a_store_of_the_older_schema_is_never_read_back(tmp_path):
    """Schema 1 keyed scores without version, device, torch or dtype: kept aside as stale."""
    path = tmp_path / "runs.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE scores (space TEXT, dataset TEXT, idx INTEGER, estimator TEXT, variant TEXT,"
               " batch_size INTEGER, batch_seed INTEGER, init_seed INTEGER, augment INTEGER, images TEXT,"
               " score REAL, seconds REAL, error TEXT, device TEXT, torch TEXT, host TEXT, created REAL,"
               " PRIMARY KEY (space, dataset, idx, estimator, variant, batch_size, batch_seed, init_seed, augment,"
               " images))")
    db.execute("INSERT INTO scores VALUES ('nb201','cifar10',3,'zen','',8,0,0,0,'x',-1.5,0.1,'','cpu','2.1',"
               "'host',0)")
    db.commit()
    db.close()
    store = RunStore(path)
    key = ScoreKey("nb201", "cifar10", 3, "zen", "", 8, 0, 0, False, "x", "1", "cpu", torch.__version__, "float32")
    assert store.get(key) is None and store.frame().empty
    stale = store.stale()
    assert len(stale) == 1 and stale.schema.iloc[0] == 1 and stale.score.iloc[0] == -1.5
    assert store.clear(stale_only=True) == 1 and store.stale().empty
    store.put(key, math.nan, 0.2, "UndefinedScore: log 0")
    assert store.get(key)[2] == "UndefinedScore: log 0" and math.isnan(store.get(key)[0])


def test_export_and_import_carry_scores_to_another_machine(tmp_path, batch, monkeypatch, capsys):
    here = RunStore(tmp_path / "here.sqlite")
    scorer = _scorer(here, batch, "naswot")
    for index in (3, 4, 5):
        scorer.score(index)
    assert scorer.key(3).images.startswith("HARNESS_DATA/")  # no folder of this machine in the key
    failed = dataclasses.replace(scorer.key(6), estimator="naswot")
    here.put(failed, math.nan, 0.5, "LinAlgError: singular")
    path = tmp_path / "scores.csv.gz"
    assert here.export(path) == 4
    there = RunStore(tmp_path / "there.sqlite")
    assert there.put_many(read_export(path)) == 4
    for index in (3, 4, 5):
        assert there.get(scorer.key(index)) == here.get(scorer.key(index))
    score, seconds, error = there.get(failed)
    assert math.isnan(score) and error == "LinAlgError: singular"  # a failure stays a failure, with its reason
    assert there.put_many(read_export(path)) == 0  # nothing twice
    # through the CLI, into HARNESS_HOME's store
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    assert main(["runs", "import", str(path)]) == 0 and "added 4 scores" in capsys.readouterr().out
    assert main(["runs", "export", str(tmp_path / "again.csv")]) == 0
    assert "wrote 4 stored scores" in capsys.readouterr().out
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01binary\xff")
    assert main(["runs", "import", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "lacks the columns" in err or "not a scores file" in err
    assert main(["runs", "export", str(tmp_path / "no" / "such" / "x.csv")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_scores_keyed_by_an_absolute_image_path_are_found_again(tmp_path, monkeypatch):
    """Scores stored before image sets were keyed portably (the absolute path of the file) are
    renamed to the portable key when the store opens, if that path is a file of this machine's
    HARNESS_DATA; another absolute path is left alone."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "cifar10_train.npz").write_bytes(b"x")
    monkeypatch.setenv("HARNESS_DATA", str(data))
    store = RunStore(tmp_path / "runs.sqlite")
    old = ScoreKey("nb201", "cifar10", 4, "synflow", "", 64, 42, 0, False, str(data / "images" / "cifar10_train.npz"),
                   "1", "cpu", "2.13.0+cpu", "float32")
    elsewhere = dataclasses.replace(old, index=5, images="/nowhere/cifar10_train.npz")
    store.put(old, 1.5, 0.1, None)
    store.put(elsewhere, 2.5, 0.1, None)
    store.db.close()
    again = RunStore(tmp_path / "runs.sqlite")
    portable = dataclasses.replace(old, images="HARNESS_DATA/images/cifar10_train.npz")
    assert again.get(portable)[0] == 1.5 and again.get(old) is None
    assert again.get(elsewhere)[0] == 2.5


def test_a_darts_cell_keyed_by_a_training_note_with_an_absolute_path_is_found_on_another_machine(
        tmp_path, monkeypatch):
    """The DARTS cells' BPE runs are keyed by the training data's note, which named the image file
    by its absolute path: moved to another machine (another HARNESS_DATA), no stored cell was found.
    The note is now portable, and a store written before is renamed when it opens."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "cifar10_train.npz").write_bytes(b"x")
    monkeypatch.setenv("HARNESS_DATA", str(data))
    tail = "): 250 training images (fraction 0.01 of the train half), 200 validation images from the valid half"
    old_note = f"CIFAR-10 training set ({data / 'images' / 'cifar10_train.npz'}{tail}"
    old = ScoreKey("darts", "cifar10", 7, "bpe", "e1-b64", 64, 0, 0, True, old_note, "3", "cpu", "2.13.0+cpu",
                   "float32")
    store = RunStore(tmp_path / "runs.sqlite")
    store.put(old, 61.5, 30.0, None)
    store.db.close()
    again = RunStore(tmp_path / "runs.sqlite")
    portable = dataclasses.replace(old, images=f"CIFAR-10 training set (HARNESS_DATA/images/cifar10_train.npz{tail}")
    assert again.get(portable)[0] == 61.5 and again.get(old) is None


def test_the_training_note_names_no_folder_of_this_machine(harness_data):
    from harness.bpe.trainer import load_train_data

    note = load_train_data("cifar10", 1.0).note
    assert "HARNESS_DATA/" in note and str(harness_data) not in note


def test_a_write_waits_for_another_writer_instead_of_failing(tmp_path):
    """Two commands side by side on one store: a write waits while the other holds the lock
    (a `database is locked` after SQLite's default 5 s stopped a long study)."""
    import sqlite3
    import threading
    import time

    path = tmp_path / "runs.sqlite"
    RunStore(path)
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the other process's write lock
    release = threading.Timer(6.0, other.commit)
    release.start()
    key = ScoreKey("nb201", "cifar10", 1, "synflow", "", 8, 0, 0, False, "HARNESS_DATA/images/x.npz", "1", "cpu",
                   "2.13.0+cpu", "float32")
    start = time.perf_counter()
    RunStore(path).put(key, 1.0, 0.1, None)
    assert time.perf_counter() - start >= 5.0  # it waited past SQLite's default timeout, and then wrote
    assert RunStore(path).get(key)[0] == 1.0
    release.join()


def test_a_training_score_is_keyed_without_the_batch_it_does_not_use(tmp_path):
    """BPE trains on its own data: the training-free batch's size, seed and augmentation are not
    part of what it computed, so a BPE score is found again under any --batch-size. A store
    written before keeps its rows, re-keyed when it opens."""
    import sqlite3

    key = ScoreKey("nb201", "cifar10", 3, "bpe", "e2-b128", 64, 0, 0, False, "HARNESS_DATA/images/x.npz", "3", "cpu",
                   "2.13.0+cpu", "float32")
    store = RunStore(tmp_path / "runs.sqlite")
    store.put(key, 55.0, 100.0, None)
    assert store.get(dataclasses.replace(key, batch_size=256, batch_seed=9, augment=True))[0] == 55.0
    synflow = dataclasses.replace(key, estimator="synflow", variant="", version="1")
    store.put(synflow, 1.0, 0.1, None)
    assert store.get(dataclasses.replace(synflow, batch_size=256)) is None  # a training-free score keeps its batch
    store.db.close()
    old = sqlite3.connect(tmp_path / "runs.sqlite")  # a row as an older harness wrote it
    old.execute("UPDATE scores SET batch_size=64, batch_seed=42, augment=1 WHERE estimator='bpe'")
    old.commit()
    old.close()
    assert RunStore(tmp_path / "runs.sqlite").get(key)[0] == 55.0
