"""The NB101 store built from the official tfrecord: every value of the 30 real cells, faults."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from harness.benchmarks.nb101 import NB101
from harness.benchmarks.nb101_tfrecord import CorruptRecord
from harness.errors import HarnessError
from tests.conftest import one_line, require_data

SAMPLE = "nb101/nasbench_only108_sample30.tfrecord"
DUMMY = "nb101/naslib_nb101_dummy_30.pkl"
FIELDS = {("train", "acc"): "train_accuracy", ("valid", "acc"): "validation_accuracy",
          ("test", "acc"): "test_accuracy", ("train", "time"): "training_time"}


@pytest.fixture
def built(tmp_path):
    return NB101.import_tfrecord(require_data(SAMPLE), tmp_path / "nb101"), tmp_path / "nb101"


def test_every_value_of_the_30_cells_is_in_the_store(built):
    bench, root = built
    with open(require_data(DUMMY), "rb") as f:
        dummy = pickle.load(f)
    assert len(bench) == 30 and set(bench.hashes) == set(dummy)
    reopened = NB101.open(root)
    for module_hash, (fixed, computed) in dummy.items():
        i = reopened.index(module_hash)
        matrix, ops = reopened.spec(i)
        assert np.array_equal(matrix, fixed["module_adjacency"]) and ops == list(fixed["module_operations"])
        assert reopened.query(i, split="train", epochs=108, metric="params") == fixed["trainable_parameters"]
        for (split, metric), field in FIELDS.items():
            for halfway, prefix in ((False, "final_"), (True, "halfway_")):
                got = reopened.query(i, split=split, epochs=108, metric=metric, halfway=halfway, repeat="all")
                want = np.array([run[prefix + field] for run in computed[108]])
                scale = 100.0 if metric == "acc" else 1.0  # accuracies in %, as NB201's
                assert np.allclose(got, scale * want, rtol=0, atol=1e-12), (module_hash, split, metric, halfway)
                if metric == "acc":  # every accuracy is k / 9984 (39 batches of 256): the same k
                    assert np.array_equal(np.rint(got / 100 * 9984), np.rint(want * 9984))
        mean = reopened.query(i, split="test", epochs=108)
        assert mean == pytest.approx(100 * np.mean([run["final_test_accuracy"] for run in computed[108]]))


def test_bad_queries_and_a_missing_store_are_one_line(built, tmp_path):
    bench, _ = built
    with pytest.raises(HarnessError) as err:
        bench.index("0" * 32)
    assert "no NB101 cell with hash" in one_line(err.value)
    with pytest.raises(HarnessError) as err:
        bench.query(0, split="test", epochs=4)
    assert "budgets here: 108 epochs" in one_line(err.value)
    with pytest.raises(HarnessError) as err:
        bench.query(0, split="test", epochs=108, repeat=5)
    assert "repeat 5" in one_line(err.value)
    with pytest.raises(HarnessError) as err:
        NB101.open(tmp_path / "nowhere")
    assert "nas-harness data import nb101" in one_line(err.value)


def test_a_corrupt_file_leaves_the_store_as_it_was(built, tmp_path):
    bench, root = built
    raw = require_data(SAMPLE).read_bytes()
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptRecord) as err:
        NB101.import_tfrecord(cut, root)
    assert "at byte" in one_line(err.value)
    assert len(NB101.open(root)) == 30  # the store built before is untouched


def test_data_import_nb101_from_the_official_format_and_its_one_line_errors(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    assert main(["data", "import", "nb101", "--from", str(require_data(SAMPLE))]) == 0
    assert "30 cells" in capsys.readouterr().out and len(NB101.open()) == 30
    assert main(["data", "import", "nb101", "--from", str(tmp_path / "missing.tfrecord")]) == 2
    assert "no such file" in one_line(capsys.readouterr().err.strip())
    flipped = bytearray(require_data(SAMPLE).read_bytes())
    flipped[500] ^= 1
    (tmp_path / "flipped.tfrecord").write_bytes(bytes(flipped))
    assert main(["data", "import", "nb101", "--from", str(tmp_path / "flipped.tfrecord")]) == 2
    err = one_line(capsys.readouterr().err.strip())
    assert "the record at byte " in err and "fail their CRC32C" in err
    assert len(NB101.open()) == 30  # what was imported before is kept


def test_data_query_nb101_by_hash_or_by_any_isomorph_of_the_spec(tmp_path, monkeypatch, capsys):
    import json

    from harness.cli import main
    from harness.spaces.nb101 import NB101Spec

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    bench = NB101.import_tfrecord(require_data(SAMPLE))
    module_hash = bench.hashes[3]
    matrix, ops = bench.spec(3)
    assert main(["data", "query", "nb101", "--hash", module_hash, "--split", "valid", "--epochs", "108",
                 "--repeat", "all"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["values"] == bench.query(3, split="valid", epochs=108, repeat="all").tolist()
    # the same cell given as its spec (stored canonical form) finds the same row by its hash
    spec = NB101Spec.from_arrays(matrix, ops).to_json()
    assert main(["data", "query", "nb101", "--spec", spec, "--split", "test", "--epochs", "108", "--halfway"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["hash"] == module_hash and record["value"] == pytest.approx(
        float(bench.query(3, split="test", epochs=108, halfway=True)))
    for argv, words in ((["--hash", module_hash, "--split", "test"], "needs --split"),
                        (["--hash", module_hash, "--split", "test", "--epochs", "108", "--repeat", "7"], "--repeat '7'"),
                        (["--hash", "0" * 32, "--split", "test", "--epochs", "108"], "no NB101 cell with hash"),
                        (["--index", "3"], "--arch and --index are for nb201")):
        assert main(["data", "query", "nb101", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err
