"""NB101 through the workflows: correlate --space nb101 and REA / random search on the store's cells."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from harness.benchmarks.nb101 import NB101, cell_id
from harness.cli import main
from harness.errors import HarnessError
from harness.estimators.run import nested_sample
from harness.search.base import Budget, run_strategy
from harness.search.evaluators import make_nb101_evaluator
from harness.spaces.nb101 import NB101StoreSpace
from tests.conftest import require_data

SOURCES = ("nb101/nasbench_only108_sample30.tfrecord", "nb101/nasbench_vis_1k.json",
           "nb101/naslib_zc_nasbench101_500.json")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    for name in SOURCES:
        NB101.import_source(require_data(name))
    return tmp_path


def test_nested_samples_are_prefixes_of_one_permutation():
    big = nested_sample(100, 3, 1000)
    assert len(set(big.tolist())) == 100 and np.array_equal(nested_sample(10, 3, 1000), big[:10])
    with pytest.raises(HarnessError):
        nested_sample(1001, 3, 1000)


def test_correlate_nb101_scores_store_cells_by_id_and_compares_with_abdelfattah(home, capsys, monkeypatch):
    out = home / "c101"
    argv = ["correlate", "--space", "nb101", "--source", "vis", "--dataset", "cifar10", "--estimators",
            "synflow,params", "--archs", "5", "--batch-size", "8", "--n-boot", "20", "--out", str(out)]
    assert main(argv) == 0
    scores = pd.read_csv(out / "scores.csv")
    bench = NB101.open()
    ids = set(scores["index"])
    assert ids <= {cell_id(h) for h in bench.hashes} and len(ids) == 5
    assert scores.error.isna().all()  # no score failed (an empty error reads back as NaN)
    table = pd.read_csv(out / "correlation.csv")
    assert set(table.truth) >= {"valid@108:max", "params"}
    assert table.loc[(table.estimator == "params") & (table.truth == "params"), "spearman"].iloc[0] == pytest.approx(1)
    published = pd.read_csv(out / "published.csv")
    row = published[published.estimator == "synflow"].iloc[0]
    # the vis cells have no test accuracy: the best repeat's validation accuracy stands in, and says so
    assert row.published_truth == "test@108" and row.truth == "valid@108:max" and row.published_cells == 423624
    assert "423,624" in (out / "published.md").read_text()
    capsys.readouterr()
    # the same cells in a store built in another order (other rows): every score is read back by cell id
    import shutil

    import harness.estimators.run as run

    shutil.rmtree(bench.store.root)
    for name in reversed(SOURCES):
        NB101.import_source(require_data(name))
    assert NB101.open().hashes != bench.hashes

    def no_scoring(task):
        raise AssertionError(f"{task} was computed again: it is in the run store")

    monkeypatch.setattr(run, "compute_score", no_scoring)
    assert main(argv) == 0
    again = pd.read_csv(out / "scores.csv")
    assert set(again["index"]) == ids and np.array_equal(again.sort_values(["index", "estimator"]).score,
                                                         scores.sort_values(["index", "estimator"]).score)


@pytest.mark.parametrize("extra, words", [(["--archs", "5000", "--source", "vis"], "outside 1.."),
                                          (["--archs", "3", "--source", "nope"], "no such source"),
                                          (["--archs", "3", "--dedupe", "isomorphic"], "for nb201"),
                                          (["--archs", "3", "--estimators", "bpe"], "bpe trains NB201 cells")])
def test_correlate_nb101_bad_input_is_one_line(home, capsys, extra, words):
    argv = ["correlate", "--space", "nb101", "--dataset", "cifar10", "--estimators", "synflow",
            "--out", str(home / "bad")] + extra
    if "--estimators" in extra:
        argv.remove("--estimators")
        argv.remove("synflow")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err, err


def test_mutation_carries_the_raw_spec_and_survives_a_cell_without_mutations(home):
    from harness.spaces.nb101 import NB101Spec

    bench = NB101.open()
    space = NB101StoreSpace(bench)
    rng = np.random.default_rng(1)
    trivial = NB101Spec.from_arrays([[0, 1], [0, 0]], ["input", "output"]).hash()
    if trivial in set(bench.hashes):  # NASLib lists raw specs that prune to input -> output
        assert space.mutate(bench.index(trivial), rng) >= 0 and space.resampled == 1
    reached = {}
    for parent in space.sample(60, rng):
        child = space.mutate(int(parent), rng)
        if child in space._raw:
            reached[child] = space._raw[child]
    assert reached and all(raw.num_vertices == 7 for raw in reached.values())
    assert all(raw.hash() == bench.hashes[row] for row, raw in reached.items())


def test_restricted_mutation_stays_in_the_space_and_never_returns_the_parent(home):
    bench = NB101.open()
    evaluator = make_nb101_evaluator("tabular:valid@108", bench)
    rows = np.flatnonzero(evaluator.queryable)
    # NASLib's cells have no training time (nothing to charge): the space is the tfrecord's and vis's cells
    assert len(rows) == int((bench.sources_of()["tfrecord"] | bench.sources_of()["vis"]).sum())
    space = NB101StoreSpace(bench, rows)
    rng = np.random.default_rng(0)
    for parent in space.sample(40, rng):
        child = space.mutate(int(parent), rng)
        assert child != parent and child in set(rows.tolist())
    assert space.restricted and space.replaced > 0 and "restricted to" in space.describe()


def test_rea_and_random_search_run_on_the_nb101_store(home):
    bench = NB101.open()
    evaluator = make_nb101_evaluator("tabular:valid@108", bench)
    space = NB101StoreSpace(bench, np.flatnonzero(evaluator.queryable))
    budget = Budget.parse("100000s")
    for strategy, options in (("rea", {"population": 10, "sample_size": 3}), ("random", {})):
        result = run_strategy(strategy, space, evaluator, budget, seed=0, run=0, **options)
        assert 0 < result.simulated_s <= 100000 and result.failures == 0
        rewards = [h[1] for h in result.history]
        assert result.chosen == result.history[int(np.argmax(rewards))][0]
        assert {h[0] for h in result.history} <= set(space.rows.tolist())
    # runs are independent: each starts with the space's raw specs forgotten
    seen = []
    space._raw[int(space.rows[0])] = "left by an earlier run"
    space.reset = lambda: (seen.append(dict(space._raw)), NB101StoreSpace.reset(space))
    run_strategy("rea", space, evaluator, budget, seed=0, run=1)
    assert seen and "left by an earlier run" in seen[0].values()
    assert "left by an earlier run" not in space._raw.values()
    # a query of a tfrecord cell draws one of its three repeats and charges that run's time
    row = int(np.flatnonzero(bench.sources_of()["tfrecord"])[0])
    got = {evaluator.evaluate(row, np.random.default_rng(s)).reward for s in range(30)}
    assert got <= set(bench.query(row, split="valid", epochs=108, repeat="all").tolist()) and len(got) > 1


def test_search_nb101_cli_writes_the_tables_and_refuses_what_it_cannot_run(home, capsys):
    out = home / "s101"
    assert main(["search", "--space", "nb101", "--strategy", "rea", "--estimator", "tabular:valid@108",
                 "--budget", "50000s", "--runs", "3", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert "C10 val@108:max" in set(summary.metric) and (out / "trajectory.csv").is_file()
    assert "restricted to" in (out / "summary.md").read_text()
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs.hash) <= set(NB101.open().hashes)
    capsys.readouterr()
    for argv, words in ((["--strategy", "reinforce", "--estimator", "tabular:valid@108"], "does not run on nb101"),
                        (["--strategy", "rea", "--estimator", "tabular:valid@200"], "not an NB101 oracle"),
                        (["--strategy", "rea", "--estimator", "tabular:valid@108", "--dataset", "cifar100"],
                         "no cifar100 runs")):
        assert main(["search", "--space", "nb101", "--budget", "1000s", "--out", str(home / "x"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err


def test_model_summary_and_query_agree_on_a_vis_cell(home, capsys):
    data = json.loads(require_data("nb101/nasbench_vis_1k.json").read_text())
    bench = NB101.open()
    row = bench.index(data["key"][0])
    matrix, ops = bench.spec(row)
    spec = json.dumps({"matrix": matrix.tolist(), "ops": ops})
    assert main(["model", "summary", "--space", "nb101", "--spec", spec]) == 0
    out = capsys.readouterr().out
    assert data["key"][0] in out and f"{data['trainable_parameters'][0]:,}".replace(",", "") in out.replace(",", "")
