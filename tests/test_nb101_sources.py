"""NB101's further sources (nasbench-vis, NASLib, the API's pickled state) united in one store."""

from __future__ import annotations

import ast
import json
import os
import pickle

import numpy as np
import pytest

from harness.benchmarks.nb101 import NASLIB_OPS, NB101, cell_id, read_source
from harness.errors import HarnessError
from harness.models.nb101 import count_parameters
from harness.spaces.nb101 import NB101Spec
from tests.conftest import one_line, require_data

SAMPLE = "nb101/nasbench_only108_sample30.tfrecord"
DUMMY = "nb101/naslib_nb101_dummy_30.pkl"
VIS = "nb101/nasbench_vis_1k.json"
NASLIB = "nb101/naslib_zc_nasbench101_500.json"


@pytest.fixture
def united(tmp_path):
    root = tmp_path / "nb101"
    for name in (SAMPLE, VIS, NASLIB):
        bench = NB101.import_source(require_data(name), root)
    return bench, root


def test_vis_values_are_stored_as_the_max_over_repeats_by_hash(tmp_path):
    data = json.loads(require_data(VIS).read_text())
    bench = NB101.import_source(require_data(VIS), tmp_path / "nb101")
    assert bench.hashes == data["key"]  # every key is the official hash of its graph (checked on import)
    rows = np.arange(len(bench))
    for epochs in (4, 12, 36, 108):
        got = bench.query(rows, split="valid", epochs=epochs, repeat="max")
        assert np.array_equal(got, 100 * np.asarray(data[f"{epochs}_final_validation_accuracy"]))
    assert np.array_equal(bench.query(rows, split="train", epochs=108, metric="params"), data["trainable_parameters"])
    with pytest.raises(HarnessError) as err:  # a mean needs the per-repeat runs, which the file does not have
        bench.query(rows, split="valid", epochs=108, repeat="mean")
    assert "only the maximum" in one_line(err.value) and "repeat max" in one_line(err.value)


def test_naslib_keys_decode_to_cells_whose_parameters_match(tmp_path):
    """NASLib numbers the ops 0 input, 1 output, 2 maxpool, 3 conv1x1, 4 conv3x3: the decoded cells
    have the parameter count NASLib stored (in millions) for every key; isomorphic keys are one cell."""
    cells = json.loads(require_data(NASLIB).read_text())["nasbench101"]["cifar10"]
    hashes = []
    for key, entry in cells.items():
        code = ast.literal_eval(key)
        spec = NB101Spec.from_arrays(np.reshape(code[:49], (7, 7)), [NASLIB_OPS[c] for c in code[49:]]).pruned()
        assert count_parameters(np.asarray(spec.matrix), spec.ops) == pytest.approx(entry["params"] * 1e6, abs=1)
        hashes.append(spec.hash())
    bench = NB101.import_source(require_data(NASLIB), tmp_path / "nb101")
    first = list(dict.fromkeys(hashes))
    assert bench.hashes == first and len(first) < len(hashes)  # NASLib lists raw specs: some prune to one cell
    entries = list(cells.values())
    for row, h in enumerate(first):
        entry = entries[hashes.index(h)]
        assert bench.query(row, split="valid", epochs=108, repeat="one") == entry["val_accuracy"]
        assert np.asarray(bench.store.column("naslib/synflow"))[row] == entry["synflow"]


def test_an_overlapping_source_keeps_every_row_and_value_and_appends_its_new_cells(tmp_path):
    data = json.loads(require_data(VIS).read_text())
    n = len(data["key"])
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({k: v[: 2 * n // 3] for k, v in data.items()}))
    second.write_text(json.dumps({k: v[n // 3:] for k, v in data.items()}))  # a third overlaps
    root = tmp_path / "nb101"
    a = NB101.import_source(first, root)
    hashes_a = list(a.hashes)
    rows_a = np.arange(len(hashes_a))
    values_a = a.query(rows_a, split="valid", epochs=108, repeat="max")
    b = NB101.import_source(second, root)
    assert b.hashes[: len(hashes_a)] == hashes_a and len(b) == n  # old rows unmoved, new cells appended
    assert np.array_equal(b.query(rows_a, split="valid", epochs=108, repeat="max"), values_a)
    assert b.hashes == data["key"]
    hashes_b = list(b.hashes)
    c = NB101.import_source(require_data(SAMPLE), root)
    assert c.hashes[:n] == hashes_b and c.sources_of()["tfrecord"][n:].all()


def test_sources_unite_by_hash_and_rows_never_move(united):
    bench, root = united
    before = NB101.open(root)
    cover = bench.sources_of()
    assert cover["tfrecord"][:30].all() and not cover["tfrecord"][30:].any()
    n_vis = len(json.loads(require_data(VIS).read_text())["key"])
    assert cover["vis"][30:30 + n_vis].all()
    # the API's pickled state of the same 30 cells: no new cell, the same values, rows unmoved
    again = NB101.import_source(require_data(DUMMY), root)
    assert again.hashes == before.hashes and cover["tfrecord"].sum() == again.sources_of()["api"].sum()
    rows = np.flatnonzero(cover["tfrecord"])
    assert np.array_equal(again.query(rows, split="test", epochs=108, repeat="all"),
                          before.query(rows, split="test", epochs=108, repeat="all"))
    with open(require_data(DUMMY), "rb") as f:
        dummy = pickle.load(f)
    h = next(iter(dummy))
    want = [100 * run["final_validation_accuracy"] for run in dummy[h][1][108]]
    assert again.query(again.index(h), split="valid", epochs=108, repeat="max") == pytest.approx(max(want))
    assert len({cell_id(h) for h in again.hashes}) == len(again)


def test_a_bad_source_is_one_line_and_leaves_the_store_as_it_was(united, tmp_path):
    bench, root = united
    data = json.loads(require_data(VIS).read_text())
    data["key"][3] = "0" * 32
    bad = tmp_path / "vis.json"
    bad.write_text(json.dumps(data))
    (tmp_path / "notes.md").write_text("not a benchmark")
    for path, words in ((bad, "is not the official hash of its graph"),
                        (tmp_path / "missing.json", "no such file"),
                        (require_data("nb201/naslib_zc_nasbench201_725.json"), "neither nasbench-vis's nor NASLib's"),
                        (tmp_path / "notes.md", "no NB101 reader for .md")):
        with pytest.raises(HarnessError) as err:
            read_source(path)
        assert words in one_line(err.value)
    with pytest.raises(HarnessError):
        NB101.import_source(bad, root)
    assert NB101.open(root).hashes == bench.hashes


def test_data_info_nb101_says_what_is_present_and_missing(tmp_path, monkeypatch, capsys):
    from harness.cli import main

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    data = os.environ.get("HARNESS_DATA")
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    assert main(["data", "info", "nb101"]) == 2  # no store and no data folder to import from
    assert "nas-harness data import nb101" in capsys.readouterr().err
    if data:
        monkeypatch.setenv("HARNESS_DATA", data)
    for name in (SAMPLE, VIS):
        assert main(["data", "import", "nb101", "--from", str(require_data(name))]) == 0
    assert "tfrecord 30, vis" in capsys.readouterr().out
    assert main(["data", "info", "nb101", "--out", str(tmp_path / "info")]) == 0
    out = capsys.readouterr().out
    assert "of the 423,624 cells" in out and "max over repeats" in out
    assert "per-repeat runs at 4 epochs, 12 epochs, 36 epochs" in out
    table = (tmp_path / "info" / "nb101_columns.csv").read_text()
    assert "valid,acc,108,max over repeats" in table
    h = json.loads(require_data(VIS).read_text())["key"][0]
    assert main(["data", "query", "nb101", "--hash", h, "--split", "valid", "--epochs", "108"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["value"] is None and "--repeat max" in record["note"]
    assert main(["data", "query", "nb101", "--hash", h, "--split", "valid", "--epochs", "108", "--repeat", "max"]) == 0
    assert json.loads(capsys.readouterr().out)["value"] > 0


def test_the_default_store_is_imported_from_the_data_folder_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    require_data(VIS)
    bench = NB101.open()
    assert {"tfrecord", "vis", "naslib_zc"} <= set(bench.sources_of())

    def no_import(*args, **kwargs):
        raise AssertionError("the store exists: NB101.open must not import again")

    monkeypatch.setattr(NB101, "import_source", no_import)
    assert NB101.open().hashes == bench.hashes


def test_a_loaded_official_api_object_is_a_source(tmp_path):
    """The TF-1 API cannot be installed here: an object with its two dicts stands in (the same
    in-memory format, NASLib's dump of it); its cells and values equal the tfrecord's."""
    with open(require_data(DUMMY), "rb") as f:
        dummy = pickle.load(f)

    class FakeNASBench:  # what nasbench.api.NASBench holds after loading a file
        fixed_statistics = {h: fixed for h, (fixed, _) in dummy.items()}
        computed_statistics = {h: computed for h, (_, computed) in dummy.items()}

    root = tmp_path / "nb101"
    bench = NB101.import_api(FakeNASBench(), root)
    reference = NB101.import_source(require_data(SAMPLE), tmp_path / "ref")
    rows = [bench.index(h) for h in reference.hashes]
    for split in ("train", "valid", "test"):
        assert np.array_equal(bench.query(rows, split=split, epochs=108, repeat="all"),
                              reference.query(np.arange(len(reference)), split=split, epochs=108, repeat="all"))
    assert "api" in bench.sources_of()
    with pytest.raises(HarnessError) as err:
        NB101.import_api(object(), root)
    assert "is not a nasbench.api.NASBench" in one_line(err.value)


def test_a_store_written_before_the_source_markers_still_says_what_each_source_covers(tmp_path):
    """The first NB101 importer wrote no -/source: columns: coverage comes from the source's columns."""
    from harness.benchmarks.nb101 import BENCHMARK, REPEATS, records_to_columns
    from harness.benchmarks.nb101_tfrecord import read_records
    from harness.benchmarks.store import SourceInfo, TabularStore

    path = require_data(SAMPLE)
    table, columns, _ = records_to_columns(read_records(path))

    def fill(folder):
        store = TabularStore.create(folder, BENCHMARK, table, list(range(REPEATS)))
        store.write(SourceInfo.of("tfrecord", path), columns, source_id="tfrecord")

    root = tmp_path / "nb101"
    TabularStore.build(root, fill)
    old = NB101.open(root)
    assert not any(k.startswith("-/source:") for k in old.store.keys())
    assert old.sources_of()["tfrecord"].all()
    united = NB101.import_source(require_data(VIS), root)  # a later import keeps the old cells' coverage
    assert united.sources_of()["tfrecord"][: len(table)].all() and united.sources_of()["vis"][len(table):].all()
