"""Search strategies, their clocks and budgets, and the search command (short versions of the tables)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.search import STRATEGIES, Budget, Evaluation, run_strategy
from harness.search.base import Tracker
from harness.search.evaluators import TabularEvaluator
from harness.search.runner import run_many, runs_frame, trajectories
from harness.spaces.nb201 import NB201Space


@pytest.fixture(scope="module")
def space(nb201):
    return NB201Space(nb201.arch_strs())


class Oracle:
    """Reward = a fixed array (NaN where given), cost = 1 simulated second per query."""

    name = "oracle"

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def evaluate(self, index, rng):
        v = float(self.values[index])
        return Evaluation(v, 1.0, 0.0, "" if math.isfinite(v) else "no value")


def test_budget_parse():
    assert Budget.parse("12000s") == Budget(seconds=12000.0, clock="simulated")
    assert Budget.parse("300s-wall") == Budget(seconds=300.0, clock="wall")
    assert Budget.parse("100") == Budget(cells=100) == Budget.parse("100cells")
    for bad in ("-5s", "0", "ten", "5h"):
        with pytest.raises(HarnessError, match="not understood"):
            Budget.parse(bad)


def test_registry_lists_the_strategies():
    assert {"random", "rea", "reinforce", "n_sample", "bohb"} <= set(STRATEGIES.list())


def test_bohb_promotes_through_hyperband_and_answers_at_the_top_budget(space, nb201):
    ev = TabularEvaluator(nb201, "cifar10", "valid", 12)
    res = run_strategy("bohb", space, ev, Budget(seconds=60000), seed=0)
    high = ev.at_epochs(200)
    assert ev.at_epochs(12) is ev and high.epochs == 200 and res.simulated_s <= 60000
    # every trial pays the 12-epoch run; some, not all, are promoted to (and pay) the 200-epoch run
    by_cell: dict[int, list] = {}
    top = []  # (reward, index) of the 200-epoch evaluations
    previous = 0.0
    for index, reward, simulated, _ in res.history:
        cost, previous = simulated - previous, simulated
        by_cell.setdefault(index, []).append(cost)
        if abs(cost - high.cost[index]) < 1e-3:
            top.append((reward, index))
    assert 0 < len({i for _, i in top}) < len(by_cell)
    assert res.chosen == max(top)[1]  # the best 200-epoch reward seen
    assert res.wall_s > 0
    with pytest.raises(HarnessError, match="needs an estimator with training budgets"):
        run_strategy("bohb", space, Oracle(np.zeros(15625)), Budget(cells=5), seed=0)
    with pytest.raises(HarnessError, match="no 50-epoch run"):
        ev.at_epochs(50)


@pytest.mark.parametrize("strategy", ["random", "rea", "reinforce"])
def test_budget_is_never_exceeded(strategy, space, nb201):
    acc = nb201.query(np.arange(len(nb201)), dataset="cifar10-valid", split="x-valid", epochs=200, seed="mean")
    res = run_strategy(strategy, space, Oracle(acc), Budget(seconds=37.5), seed=3)
    assert res.cells == 37 and res.simulated_s == 37.0
    res = run_strategy(strategy, space, Oracle(acc), Budget(cells=25), seed=3)
    assert res.cells == 25
    # the choice is one of the queried cells with the best reward (REINFORCE's default answer too)
    seen = [h[0] for h in res.history]
    assert res.chosen in seen and acc[res.chosen] == max(acc[i] for i in seen)


def test_failed_rewards_are_counted_and_never_chosen(space):
    values = np.full(15625, np.nan)
    values[::2] = np.arange(0, 15625, 2)
    res = run_strategy("random", space, Oracle(values), Budget(cells=200), seed=0)
    assert res.failures == sum(1 for h in res.history if h[0] % 2)
    assert res.chosen % 2 == 0 and res.failures > 50


def test_evolution_beats_random_search(space, nb201):
    """With the same 150-cell budget, REA's choices are better on average (a real property of NB201)."""
    acc = nb201.query(np.arange(len(nb201)), dataset="cifar10-valid", split="x-valid", epochs=200, seed="mean")
    oracle = Oracle(acc)
    rea = [acc[r.chosen] for r in run_many("rea", oracle, space, Budget(cells=150), 40, seed=1)]
    rs = [acc[r.chosen] for r in run_many("random", oracle, space, Budget(cells=150), 40, seed=1)]
    assert np.mean(rea) > np.mean(rs)


def test_reinforce_policy_learns(space):
    """Reward = number of conv3x3 edges: the argmax policy converges to the all-conv3x3 cell."""
    ops = space.ops_array().astype(int)
    reward = (ops == 2).sum(axis=1).astype(float)  # OPS index 2 = nor_conv_3x3
    res = run_strategy("reinforce", space, Oracle(reward), Budget(cells=300), seed=0, learning_rate=0.1,
                       answer="argmax")
    assert reward[res.chosen] == 6
    with pytest.raises(HarnessError, match="answer"):
        run_strategy("reinforce", space, Oracle(reward), Budget(cells=3), seed=0, answer="last")


def test_tabular_evaluator_costs_and_rewards(nb201):
    ev = TabularEvaluator(nb201, "cifar10", "valid", 12)
    full = nb201.query(np.arange(len(nb201)), dataset="cifar10-valid", split="train", epochs=200, seed="mean",
                       metric="time")
    np.testing.assert_allclose(ev.cost, full * 12 / 200)
    r = ev.evaluate(11, np.random.default_rng(0))
    assert r.reward == nb201.query(11, dataset="cifar10-valid", split="x-valid", epochs=12, seed="mean")
    # 200 epochs: a seed drawn among those present, as NB201's is_random
    ev200 = TabularEvaluator(nb201, "cifar10", "valid", 200)
    per_seed = nb201.query(11, dataset="cifar10-valid", split="x-valid", epochs=200, seed="all")
    draws = {ev200.evaluate(11, np.random.default_rng(s)).reward for s in range(40)}
    assert draws == set(per_seed[np.isfinite(per_seed)].tolist())
    # ... and the drawn seed's own training time is charged (NB201's is_random lookup of train-all-time)
    times = nb201.query(11, dataset="cifar10-valid", split="train", epochs=200, seed="all", metric="time")
    pairs = {(r.reward, r.simulated_s) for r in (ev200.evaluate(11, np.random.default_rng(s)) for s in range(40))}
    assert pairs == {(a, t) for a, t in zip(per_seed, times) if np.isfinite(a)}
    assert "drawn seed" in ev200.cost_note


def test_trajectory_tracks_the_incumbent():
    from harness.search import SearchResult
    hist = [(0, 1.0, 10.0, 0.1), (1, 3.0, 20.0, 0.2), (2, 2.0, 30.0, 0.3), (3, 3.0, 40.0, 0.4)]
    res = SearchResult("x", "y", 0, 0, 1, 4, 4, 40.0, 0.4, 0, hist)
    truth = np.array([50.0, 70.0, 90.0, 60.0])
    curve = trajectories([res], truth, np.array([5.0, 10.0, 25.0, 45.0]))
    np.testing.assert_array_equal(curve[0], [np.nan, 50.0, 70.0, 70.0])  # ties keep the first best


def test_rea_reproduces_nb201_short(tmp_path, nb201, full_data):
    """CI's short version of the NB201 table: 100 REA runs at 12,000 s, C10 within 3 standard errors
    (the 12-epoch reward of every cell: the full data)."""
    assert main(["search", "--strategy", "rea", "--estimator", "tabular:valid@12", "--budget", "12000s",
                 "--runs", "100", "--seed", "0", "--out", str(tmp_path)]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("metric")
    for label in ("C10 val", "C10 test"):
        row = summary.loc[label]
        se = math.sqrt(row["std"] ** 2 / row.runs + row.published_std ** 2 / row.published_runs)
        assert abs(row.delta) <= 3 * se, (label, row.delta, se)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 100 and (runs.simulated_s <= 12000).all() and (runs.cells > 50).all()
    assert {"index", "arch", "C10 test", "C100 val", "IN16 test", "simulated_s"} <= set(runs.columns)
    assert (tmp_path / "trajectory.png").is_file()
    # a tabular search's wall seconds differ between calls: they are in timing.csv, not in the tables
    assert "wall_s" not in runs and "wall_s" not in summary
    timing = pd.read_csv(tmp_path / "timing.csv")
    assert timing.run.tolist() == runs.run.tolist() and (timing.wall_s > 0).all()


def test_n_sample_training_free_shares_the_cache(tmp_path, nb201, capsys):
    argv = ["search", "--strategy", "n_sample", "--estimator", "naswot", "--budget", "6", "--runs", "3",
            "--batch-size", "16", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = capsys.readouterr().out
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert (runs.cells == 6).all() and (runs.simulated_s == 0).all() and (runs.wall_s > 0).all()
    assert main(argv) == 0
    assert "0 scores computed in this call" in capsys.readouterr().out
    assert "scores computed in this call" in first
    again = pd.read_csv(tmp_path / "runs.csv")
    # same seeds, same cached scores: same choices and the same scoring seconds; the wall clock adds the
    # strategy's own time between evaluations, which differs between calls (microseconds, a few ms when
    # the machine is busy: an absolute allowance, so a busy machine does not fail the test)
    pd.testing.assert_frame_equal(runs.drop(columns="wall_s"), again.drop(columns="wall_s"))
    np.testing.assert_allclose(runs.wall_s, again.wall_s, rtol=1e-2, atol=0.05)


@pytest.mark.parametrize("argv, message", [
    (["--strategy", "rea", "--estimator", "tabular:valid@12", "--budget", "soon"], "not understood"),
    (["--strategy", "rea", "--estimator", "tabular:valid@12", "--budget", "10", "--option", "pop=3"], "no option"),
    (["--strategy", "n_sample", "--estimator", "tabular:valid@12", "--budget", "100s"], "budget of N cells"),
    (["--strategy", "rea", "--estimator", "tabular:valid@7", "--budget", "10"], "not understood"),
    (["--strategy", "rea", "--estimator", "tabular:valid@12", "--budget", "10", "--dataset", "mnist"], "mnist"),
    (["--strategy", "nope", "--estimator", "tabular:valid@12", "--budget", "10"], "unknown strategy"),
])
def test_search_bad_input(argv, message, tmp_path, capsys, nb201):
    assert main(["search", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and err.startswith("nas-harness: error:")


def test_runs_frame_has_every_accuracy(space, nb201):
    acc = nb201.query(np.arange(len(nb201)), dataset="cifar10-valid", split="x-valid", epochs=200, seed="mean")
    res = run_many("rea", Oracle(acc), space, Budget(cells=30), 2, seed=0)
    frame = runs_frame(res, nb201, "cifar10", Budget(cells=30))
    assert {"C10 val", "C10 test", "C100 val", "C100 test", "IN16 val", "IN16 test", "C10 val@12"} <= set(frame)
    assert frame["C10 val"].tolist() == [acc[r.chosen] for r in res]


def test_search_table_combines_folders_with_and_without_wall_seconds(tmp_path, capsys):
    """The long job's committed summaries hold measured wall seconds; the main job's tabular ones
    leave them to timing.csv: one table of both shows the first and a dash for the second."""
    def summary(strategy, estimator, budget, wall=None):
        row = {"strategy": strategy, "estimator": estimator, "options": "", "dataset": "cifar10", "budget": budget,
               "metric": "C10 test", "mean": 91.0, "std": 0.5, "runs": 10, "simulated_s": 0.0, "cells": 10.0}
        if wall is not None:
            row["wall_s"] = wall
        return pd.DataFrame([row])

    folders = {"n_sample-naswot-N10": summary("n_sample", "naswot:hamming", "10 cells", 3.846),
               "rea": summary("rea", "tabular:valid@12:mean", "12000 s simulated")}
    for name, table in folders.items():
        (tmp_path / name).mkdir()
        table.to_csv(tmp_path / name / "summary.csv", index=False)
    pd.DataFrame({"run": [0, 1], "seed": [0, 0], "wall_s": [0.001, 0.002]}).to_csv(tmp_path / "rea" / "timing.csv",
                                                                                 index=False)
    out = tmp_path / "table"
    assert main(["report", "search", *(str(tmp_path / n) for n in folders), "--out", str(out)]) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "search_table.csv")
    assert table.wall_s.iloc[0] == 3.85 and pd.isna(table.wall_s.iloc[1])
    assert "| 3.85 |" in (out / "search_table.md").read_text()
    assert pd.read_csv(out / "timing.csv").wall_s.tolist() == [0.0015]
    # only tabular searches: no wall_s column at all
    assert main(["report", "search", str(tmp_path / "rea"), "--out", str(out)]) == 0
    assert "wall_s" not in pd.read_csv(out / "search_table.csv")


def test_a_cell_without_a_cost_stops_the_search_with_a_clear_error(space):
    """NaN + anything never reaches a budget: the tracker refuses it instead of running forever."""
    class NoCost:
        name = "tabular:nocost"

        def evaluate(self, index, rng):
            return Evaluation(90.0, math.nan, 0.0)

    with pytest.raises(HarnessError, match="cell 3 has no cost"):
        Tracker(Budget(seconds=12000), NoCost()).evaluate(3, np.random.default_rng(0))


def test_missing_evaluation_times_are_counted_in_the_cost_note(nb201, monkeypatch):
    from harness.search import evaluators

    real = nb201.query

    def query(indices, **kw):
        if kw.get("metric") == "time" and kw.get("split") != "train":
            return np.where(np.arange(len(indices)) < 5, np.nan, 1.0)  # an evaluation time, missing for 5 cells
        return real(indices, **kw)

    monkeypatch.setattr(nb201, "query", query)
    cost, note = evaluators._training_cost(nb201, "cifar10-valid", "x-valid", 200)
    assert "5 cells lack the evaluation time" in note
    assert np.isfinite(cost).all()
