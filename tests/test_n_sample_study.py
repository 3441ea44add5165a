"""N-sample search under the papers' batch protocols (harness.search.n_sample_study)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch

from harness.cli import main
from harness.errors import HarnessError
from harness.estimators.run import EstimatorSpec
from harness.report.search import combined_table, images_match, study_table, summary_table
from harness.runstore import RunStore
from harness.search.n_sample_study import BLOCK, BatchProtocol, derive, fraction_reaching, run_study, stream

CPU = torch.device("cpu")


def study(nb201, tmp_path, kind, ns=(2, 4), draws=8, **kw):
    store = RunStore(tmp_path / "runs.sqlite")
    protocol = BatchProtocol(kind, batch_size=8, augment=kind == "per-cell", batch_seed=3, init_seed=5)
    return run_study(nb201, "cifar10", EstimatorSpec.parse("naswot"), ns, draws, 11, protocol, device=CPU,
                     store=store, **kw), store


def test_stream_is_iid_uniform_and_extends_a_shorter_one():
    long = stream(2 * BLOCK + 300, 7, 15625)
    assert np.array_equal(stream(BLOCK + 5, 7, 15625), long[:BLOCK + 5])
    assert long.min() >= 0 and long.max() < 15625
    assert len(np.unique(long)) < len(long)  # with replacement: repeats happen (2,300 of 15,625)
    assert not np.array_equal(stream(100, 8, 15625), long[:100])


def test_protocol_seeds_per_cell_per_run_shared():
    cell, run, shared = (BatchProtocol(k, batch_seed=1, init_seed=2) for k in ("per-cell", "per-run", "shared"))
    # per-cell: one seed per stream position, whatever N and run the draw belongs to
    assert cell.seeds(0, 10, 0, 5) == cell.seeds(0, 100, 0, 5) == (derive(1, 1, 0, 5), derive(2, 2, 0, 5))
    assert cell.seeds(0, 10, 0, 5) != cell.seeds(0, 10, 0, 6)
    # per-run: every draw of a run shares the run's seeds; another run or N gets others
    assert run.seeds(0, 10, 3, 30) == run.seeds(0, 10, 3, 39)
    assert run.seeds(0, 10, 3, 30) != run.seeds(0, 10, 4, 40) != run.seeds(0, 20, 3, 60)
    assert shared.seeds(0, 10, 3, 30) == shared.seeds(9, 100, 0, 1) == (1, 2)
    same_roots = BatchProtocol("per-cell", batch_seed=0, init_seed=0).seeds(0, 10, 0, 0)
    assert same_roots[0] != same_roots[1]  # the batch and the init draw from different seeds
    with pytest.raises(HarnessError, match="per-cell, per-run, shared"):
        BatchProtocol("fresh")


def test_per_cell_rows_reuse_the_draws_and_resume_from_the_run_store(nb201, tmp_path):
    result, store = study(nb201, tmp_path, "per-cell")
    assert result.scored == 16 and result.computed == 8  # N=4 scores the 8 draws, N=2 reads them back
    cells = stream(8, 11, len(nb201))
    assert [len(result.runs[2]), len(result.runs[4])] == [4, 2]
    for n, runs in result.runs.items():
        for r, res in enumerate(runs):
            assert [h[0] for h in res.history] == list(cells[r * n:(r + 1) * n])  # run r = draws [rn, (r+1)n)
            scores = np.array([h[1] for h in res.history])
            assert res.chosen == res.history[int(np.nanargmax(scores))][0]
    # a draw of N=2 and of N=4 at the same position is one score
    assert result.runs[2][1].history[0][1] == result.runs[4][0].history[2][1]
    again = run_study(nb201, "cifar10", EstimatorSpec.parse("naswot"), (2, 4), 8, 11,
                      BatchProtocol("per-cell", 8, True, 3, 5), device=CPU, store=store)
    assert again.computed == 0
    assert [r.chosen for r in again.runs[2]] == [r.chosen for r in result.runs[2]]


def test_per_run_batches_differ_between_runs_and_rows(nb201, tmp_path):
    result, _ = study(nb201, tmp_path, "per-run")
    assert result.computed == 16  # no draw shares its batch with another row
    # the same cells in two rows of different N are scored on different batches
    a = [h[1] for h in result.runs[4][0].history[:2]]
    b = [h[1] for h in result.runs[2][0].history]
    assert a != b


def test_max_runs_and_bad_arguments(nb201, tmp_path):
    result, _ = study(nb201, tmp_path, "shared", ns=(2,), draws=8, max_runs=3)
    assert len(result.runs[2]) == 3
    with pytest.raises(HarnessError, match="fewer than the largest N"):
        study(nb201, tmp_path, "shared", ns=(2, 16), draws=8)
    with pytest.raises(HarnessError, match="does not fit"):
        run_study(nb201, "cifar10", EstimatorSpec.parse("naswot"), (2,), 4, 0, BatchProtocol("shared", 10 ** 6),
                  device=CPU, store=RunStore(tmp_path / "r.sqlite"))


def test_fraction_reaching_exact_and_sampled():
    rng = np.random.default_rng(0)
    values = rng.normal(90, 1, size=30)
    brute = np.mean([values[list(c)].mean() >= 90.3 for c in combinations(range(30), 3)])
    exact, how = fraction_reaching(values, 90.3, 3)
    assert how == "exact" and exact == pytest.approx(brute, abs=1e-15)
    sampled, how = fraction_reaching(values, 90.3, 3, exact_limit=0, samples=200_000)
    assert how == "sampled" and sampled == pytest.approx(brute, abs=0.005)
    assert fraction_reaching(values, -1.0)[0] == 1.0 and fraction_reaching(values, 1e9)[0] == 0.0
    assert math.isnan(fraction_reaching(values[:2], 90.0)[0])


def test_epe_nas_columns_searched_on_other_images_are_not_comparable():
    assert images_match("cifar10", "cifar10") and images_match("cifar10-valid", "cifar10")
    assert not images_match("cifar100", "cifar10") and not images_match("ImageNet16-120", "cifar10")
    frame = pd.DataFrame({"N": [10] * 4, "run": range(4), "strategy": "n_sample", "estimator": "epe_nas:paper",
                          "dataset": "cifar10", "budget": "10 cells", "simulated_s": 0.0, "wall_s": 1.0,
                          "cells": 10, "C10 test": [92.0, 93.0, 91.0, 93.5], "C100 test": [70.0, 69.0, 71.0, 70.5]})
    table = study_table({10: frame}, "epe_nas:paper", "cifar10").set_index("metric")
    assert bool(table.loc["C10 test", "comparable"]) and not bool(table.loc["C100 test", "comparable"])
    # 3-run subsets of (92, 93, 91, 93.5) with mean >= 92.63: only (92, 93, 93.5) of the four
    assert table.loc["C10 test", "frac_subsets_reaching"] == pytest.approx(0.25)
    assert math.isnan(table.loc["C100 test", "frac_subsets_reaching"])
    summary = summary_table(frame, 10).set_index("metric")
    assert not summary.loc["C100 test", "comparable"] and math.isnan(summary.loc["C100 test", "within_2se"])
    row = combined_table([summary.reset_index()]).iloc[0]
    assert "n/c: searched on cifar100" in row["C100 test published (Δ)"]
    assert "n/c" not in row["C10 test published (Δ)"]


def test_cli_n_sample_writes_the_study_and_refuses_bad_input(nb201, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["n-sample", "--estimator", "naswot", "--ns", "2,4", "--draws", "8", "--batch-size", "8",
                 "--out", str(out)]) == 0
    study_csv = pd.read_csv(out / "study.csv")
    assert set(study_csv.N) == {2, 4}
    assert (out / "N2" / "runs.csv").is_file() and len(pd.read_csv(out / "N2" / "runs.csv")) == 4
    assert "per-run: one batch and initialisation per run" in (out / "study.md").read_text()
    capsys.readouterr()
    for argv, message in ((["--ns", "a,b"], "not a comma list"), (["--ns", "0"], "positive"),
                          (["--draws", "3"], "fewer than the largest N"),
                          (["--estimator", "synflow"], "no paper protocol")):
        args = {"--estimator": "naswot", "--ns": "2,4", "--draws": "8", "--out": str(tmp_path / "bad")}
        args.update(dict(zip(argv[::2], argv[1::2])))
        assert main(["n-sample", *[v for kv in args.items() for v in kv]]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_cli_resumes_from_draws_file_on_a_fresh_store_and_never_shrinks_it(nb201, tmp_path, monkeypatch, caplog):
    import logging

    out = tmp_path / "study"
    argv = ["n-sample", "--estimator", "naswot", "--protocol", "per-cell", "--ns", "2", "--batch-size", "8",
            "--out", str(out)]
    assert main([*argv, "--draws", "6"]) == 0
    first = pd.read_csv(out / "draws.csv.gz")
    assert len(first) == 6
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "another-machine"))  # an empty run store
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--draws", "4"]) == 0
    assert "6 scores added to the run store" in caplog.text
    assert "0 computed now" in caplog.text  # every draw came from the file
    again = pd.read_csv(out / "draws.csv.gz")
    assert len(again) == 6  # the 2 draws this call did not ask for are kept
    assert sorted(again.score.round(9)) == sorted(first.score.round(9))


def test_consistent_decides_nothing_on_one_run_and_compares_few_published_runs_as_one_draw():
    from harness.report.search import consistent

    assert math.isnan(consistent(93.4, 0.0, 1, 91.3, 1.7, 3))
    # 100 runs of std 1.73 against a 3-run published mean 1.4 lower: se = s*sqrt(1/100 + 1/3) ~ 1.02
    assert consistent(88.5, 1.73, 100, 89.9, 0.21, 3) is True
    assert consistent(88.5, 1.73, 100, 92.0, 0.21, 3) is False
    # 500 published runs: both spreads, se = sqrt(1.0^2/500 + 0.73^2/500) ~ 0.055
    assert consistent(89.57, 1.0, 500, 89.69, 0.73, 500) is False
    assert consistent(89.65, 1.0, 500, 89.69, 0.73, 500) is True


def test_cli_refuses_negative_seeds_and_a_zero_batch(nb201, tmp_path, capsys):
    for argv, message in ((["--seed", "-1"], "--seed -1 is negative"), (["--batch-seed", "-3"], "negative"),
                          (["--batch-size", "0"], "not positive")):
        assert main(["n-sample", "--estimator", "naswot", "--draws", "4", "--ns", "2", *argv,
                     "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_ctrl_c_keeps_every_scored_draw_in_draws_csv(nb201, tmp_path, monkeypatch, capsys, caplog):
    """Interrupted in the middle of scoring, n-sample writes the draws scored so far to
    draws.csv.gz (not only the run store), exits 130, and a rerun resumes from them."""
    import harness.search.n_sample_study as study

    real, calls = study.compute_score, []

    def stop_at_the_fourth(task):
        calls.append(task)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(study, "compute_score", stop_at_the_fourth)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))  # nothing scored yet
    out = tmp_path / "study"
    argv = ["n-sample", "--estimator", "naswot", "--ns", "2", "--draws", "8", "--batch-size", "8", "--out", str(out)]
    assert main(argv) == 130
    assert "nas-harness: interrupted" in capsys.readouterr().err and "3 scored draws kept" in caplog.text
    assert len(pd.read_csv(out / "draws.csv.gz")) == 3
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "another-machine"))  # an empty run store: the file resumes
    monkeypatch.setattr(study, "compute_score", real)
    calls.clear()
    assert main(argv) == 0 and len(pd.read_csv(out / "draws.csv.gz")) == 8
