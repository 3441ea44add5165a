"""Budgeted performance estimation: configurations and the paper's own table replayed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from harness.bpe import PRESETS, BPEConfig
from harness.bpe.replay import load_table, pareto_front, replay
from harness.cli import main
from harness.errors import HarnessError


def test_config_parse_and_presets():
    assert BPEConfig.parse("BPE1") == PRESETS["BPE1"] == BPEConfig.parse("bpe1")
    cfg = BPEConfig.parse("epochs=2,batch=64,layers=1,channels=4,image=16,fp=16,fraction=0.1")
    assert (cfg.epochs, cfg.batch_size, cfg.layers, cfg.channels, cfg.precision, cfg.fraction) == (2, 64, 1, 4, "fp16",
                                                                                                  0.1)
    assert cfg.label != BPEConfig().label and "f0.1" in cfg.label
    for bad, message in [("epochs=two", "whole number"), ("speed=3", "not understood"), ("fraction=2", "fraction"),
                         ("precision=fp8", "precision"), ("lr=fast", "not a number")]:
        with pytest.raises(HarnessError, match=message):
            BPEConfig.parse(bad)


def test_pareto_front():
    cost = [1.0, 2.0, 3.0, 2.0, 0.5]
    quality = [0.5, 0.6, 0.55, 0.4, 0.3]
    assert pareto_front(cost, quality).tolist() == [True, True, False, False, True]


@pytest.fixture(scope="module")
def table(harness_data):
    return load_table()


def test_replay_reproduces_the_papers_correlations(table, full_data):  # the sheet's 100 cells
    assert table.acc.shape == (100, 32) and len(table.truth) == 100
    assert table.truth.mean() == pytest.approx(96.9892, abs=1e-4)
    configs = replay(table, n_boot=50).set_index("name")
    # every configuration's recomputed Spearman equals the sheet's to its 4 printed places (+ rounding)
    assert (configs.delta_vs_sheet.abs() < 5e-4).all()
    bpe1, bpe2 = configs.loc["Task5"], configs.loc["Task32"]
    assert (bpe1.paper_name, bpe2.paper_name) == ("BPE1", "BPE2")
    assert round(bpe1.spearman, 4) == 0.4968 and round(bpe2.spearman, 4) == 0.6245
    assert round(bpe1.kendall, 4) == 0.3462 and round(bpe2.kendall, 4) == 0.4486
    assert bpe1.gpu_hours == 0.0852 and bpe2.gpu_hours == 0.5494
    assert table.config("Task32") == PRESETS["BPE2"] and table.config("Task5") == PRESETS["BPE1"]
    assert bpe2.pareto and configs.loc["Task11"].pareto  # the cheapest one is always on the front
    assert not configs.loc["Task6"].pareto


def test_bpe_replay_command(tmp_path, table, capsys):
    assert main(["bpe", "replay", "--out", str(tmp_path), "--n-boot", "20"]) == 0
    configs = pd.read_csv(tmp_path / "configs.csv")
    assert {"name", "epochs", "batch_size", "lr", "layers", "channels", "image_size", "precision", "cutout",
            "spearman", "kendall", "gpu_hours"} <= set(configs.columns)
    assert (tmp_path / "correlation_vs_cost.png").is_file() and (tmp_path / "nb201_tabular_bpe.png").is_file()
    nb = pd.read_csv(tmp_path / "nb201_tabular_bpe.csv")
    assert (nb[nb.epochs == 12].spearman.between(0.75, 0.9)).all()
    bad = tmp_path / "not.xlsx"
    bad.write_text("nope")
    assert main(["bpe", "replay", "--out", str(tmp_path), "--file", str(bad), "--no-nb201"]) == 2
    assert "is not the BPE spreadsheet" in capsys.readouterr().err


def test_compact_label_round_trips():
    cfg = BPEConfig(epochs=2, batch_size=64, layers=1, channels=4, image_size=16, precision="bf16", fraction=0.05,
                    valid_images=500, cutout=8)
    assert BPEConfig.parse(cfg.label) == cfg
    short = BPEConfig.parse("e2-l1-c8-i16-f0.05-v1000")
    assert (short.epochs, short.layers, short.channels, short.image_size, short.fraction, short.valid_images) == (
        2, 1, 8, 16, 0.05, 1000)
    assert short.batch_size == BPEConfig().batch_size  # unspecified fields keep their defaults


# -- MIP ------------------------------------------------------------------------------------------
def test_mip_on_the_measured_table_prunes_to_a_measured_cheap_config(table):
    from harness.bpe.evaluators import PARAMS, TableEvaluator
    from harness.bpe.mip import mip

    ev = TableEvaluator(table, "measured")
    result = mip(ev, samples=4, importance="permutation", seed=0)
    # every evaluation is one of the sheet's configurations, with the sheet's Spearman
    configs = replay(table, n_boot=0)
    assert (result.evaluations.source == "measured").all()
    for row in result.evaluations.itertuples():
        match = configs[np.logical_and.reduce([configs[k] == getattr(row, k) for k in PARAMS])]
        assert len(match) and row.spearman == pytest.approx(match.spearman.mean())
    # one hyper-parameter pruned per iteration until one is left free; the pruned ones never come back
    pruned = result.importances[result.importances.pruned_to.astype(str) != ""]
    assert pruned.parameter.is_unique and len(result.fixed) == len(pruned)
    assert all(result.chosen[k] == v for k, v in result.fixed.items())
    assert result.spearman == max(r.spearman for r in result.evaluations.itertuples()
                                  if all(getattr(r, k) == v for k, v in result.fixed.items()))
    # the cheapest measured configuration is evaluated first
    first = result.evaluations.iloc[0]
    assert first.cost == pytest.approx(min(ev.estimated_cost(c) for c in ev.candidates(ev.space)))


def test_mip_surrogate_and_objectives(table):
    from harness.bpe.evaluators import TableEvaluator
    from harness.bpe.mip import mip, objective_value

    ev = TableEvaluator(table, "surrogate")
    assert len(ev.candidates(ev.space)) == len(ev._predicted) > 32  # every combination is predicted
    assert ev.source(PRESETS["BPE1"].as_dict()) == "measured"
    r1 = mip(ev, samples=3, importance="marginal", objective="tradeoff", weight=0.2, seed=1)
    assert r1.objective == pytest.approx(objective_value(r1.spearman, r1.cost, "tradeoff", 0.2))
    capped = mip(ev, samples=3, seed=1, cost_limit=0.05)
    assert capped.cost <= 0.05
    with pytest.raises(HarnessError, match="cost limit"):
        mip(ev, samples=3, seed=1, cost_limit=1e-9)
    with pytest.raises(HarnessError, match="objective"):
        mip(ev, samples=3, objective="accuracy")


def test_mip_command_writes_its_outputs(tmp_path, harness_data, capsys):
    out = tmp_path / "mip"
    assert main(["mip", "--evaluator", "tabular:bpe-paper", "--out", str(out), "--max-iterations", "3"]) == 0
    for name in ("chosen.json", "evaluations.csv", "evaluations.md", "importances.csv", "importances.png",
                 "evaluations_vs_cost.png"):
        assert (out / name).is_file(), name
    imp = pd.read_csv(out / "importances.csv")
    assert imp.iteration.max() == 2 and imp.pruned_to.notna().sum() == 2
    assert main(["mip", "--evaluator", "tabular:nope", "--out", str(out)]) == 2
    assert "is not known" in capsys.readouterr().err
    assert main(["mip", "--evaluator", "train:nb201", "--space", "speed=1|2", "--out", str(out)]) == 2


# -- real training -------------------------------------------------------------------------------
TINY = "e1-b64-lr0.05-l1-c4-i16-f0.01-v200"


def test_trainer_trains_on_train_and_measures_on_valid(full_data):  # real training on CIFAR-10
    import torch

    from harness.bpe.trainer import cutout, load_train_data, train_nb201

    cfg = BPEConfig.parse(TINY)
    data = load_train_data("cifar10", cfg.fraction, cfg.valid_images)
    assert len(data.train_y) == 250 and len(data.valid_y) == 200  # 1 % of the 25k train half; 200 valid
    assert torch.bincount(data.valid_y).tolist() == [20] * 10  # class-stratified
    assert "test set unused" in data.note
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|"
    a = train_nb201(arch, cfg, data, seed=3)
    b = train_nb201(arch, cfg, data, seed=3)
    assert a.valid_acc == b.valid_acc and a.train_loss == b.train_loss  # seeded and reproducible on the CPU
    assert 0 <= a.valid_acc <= 100 and a.images == 250 and a.seconds > 0 and a.hardware.startswith("cpu")
    assert a.config == cfg.label and a.params > 0
    for precision in ("bf16", "fp16"):  # autocast runs on the CPU too (slowly); the loss stays finite
        half = train_nb201(arch, BPEConfig(**{**cfg.as_dict(), "precision": precision}), data, seed=3)
        assert np.isfinite(half.train_loss) and 0 <= half.valid_acc <= 100 and half.config.split("-")[6] == precision
    x = torch.ones(4, 3, 32, 32)
    y = cutout(x, 8, torch.Generator().manual_seed(0))
    zeros = (y == 0).flatten(1).sum(1)
    assert ((zeros > 0) & (zeros <= 3 * 64)).all()
    with pytest.raises(HarnessError, match="no protocol"):
        load_train_data("cifar100", 0.01)


def test_bpe_estimator_and_train_evaluator(full_data, nb201):
    from harness.bpe.evaluators import TrainEvaluator, space_from_text
    from harness.bpe.mip import mip
    from harness.estimators.run import EstimatorSpec, score_cells

    spec = EstimatorSpec.parse(f"bpe:{TINY}")
    assert spec.variant == BPEConfig.parse(TINY).label  # canonical: one key per configuration
    cells = [0, 1, 2]
    first = score_cells(nb201.arch, cells, "cifar10", [spec], batch_size=1, batch_seed=0)
    again = score_cells(nb201.arch, cells, "cifar10", [spec], batch_size=1, batch_seed=0)
    assert first.error.eq("").all() and first.score.between(0, 100).all()
    assert again.cached.all() and again.score.tolist() == first.score.tolist()  # the run store resumes

    assert space_from_text("epochs=1|2;channels=4") == {"epochs": [1, 2], "channels": [4]}
    with pytest.raises(HarnessError, match="not understood"):
        space_from_text("speed=1")
    ev = TrainEvaluator(nb201, [0, 1, 2, 3], space_from_text("channels=4|2;image_size=16"), BPEConfig.parse(TINY))
    result = mip(ev, samples=2, seed=0)
    assert len(result.evaluations) == 2 and set(result.evaluations.channels) == {2, 4}
    assert result.evaluations.iloc[0].channels == 2  # the cheapest first
    assert (result.evaluations.source == "trained").all() and (result.evaluations.cost > 0).all()
    with pytest.raises(HarnessError, match="rank correlation"):
        TrainEvaluator(nb201, [0, 1], {"epochs": [1]})


def test_search_with_a_bpe_reward(tmp_path, full_data):
    out = tmp_path / "rea-bpe"
    assert main(["search", "--strategy", "rea", "--estimator", f"bpe:{TINY}", "--budget", "4", "--runs", "1",
                 "--option", "population=3", "--option", "sample_size=2", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 1 and runs.cells.iloc[0] == 4 and runs.wall_s.iloc[0] > 0 and runs.simulated_s.iloc[0] == 0
    assert "budgeted training on this machine" in (out / "summary.md").read_text()


def test_darts_sheet_cells_trained_under_a_bpe(tmp_path, table, capsys, full_data):
    from harness.bpe.darts_cells import sheet_accuracies

    assert sheet_accuracies(PRESETS["BPE1"]).equals(table.acc["Task5"].astype(float))
    assert sheet_accuracies(BPEConfig.parse(TINY)) is None
    out = tmp_path / "darts"
    argv = ["bpe", "darts", "--config", "e1-b64-l3-c4-i16-f0.01-v200", "--cells", "3", "--n-boot", "0",
            "--out", str(out)]
    assert main(argv) == 0
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 3 and cells.score.between(0, 100).all() and cells.truth.between(96, 98).all()
    assert not cells.cached.any() and (out / "scatter.png").is_file()
    assert main(argv) == 0 and pd.read_csv(out / "cells.csv").cached.all()  # resumed from the run store
    assert main(["bpe", "darts", "--config", "e1-l3", "--cells", "2", "--out", str(out)]) == 2
    assert "rank correlation" in capsys.readouterr().err


def test_correlate_says_how_bpe_and_batch_scores_were_measured(tmp_path, full_data, capsys):
    assert main(["correlate", "--dataset", "cifar10", "--estimators", f"params,bpe:{TINY}", "--archs", "4",
                 "--seed", "0", "--batch-size", "8", "--n-boot", "20", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "correlation.md").read_text()
    assert "params scored on a batch of 8 cifar10 training images" in report
    assert f"bpe:{BPEConfig.parse(TINY).label} trained on the cifar10-valid train half" in report
    scores = pd.read_csv(tmp_path / "scores.csv")
    bpe = scores[scores.estimator.str.startswith("bpe:")]
    assert len(bpe) == 4 and bpe.score.between(0, 100).all() and (bpe.seconds > 0).all()


def test_darts_cells_cache_refusals_but_not_out_of_memory(tmp_path, monkeypatch):
    """A configuration the network refuses is kept as a failure; running out of memory is not cached."""
    from harness.bpe import darts_cells
    from harness.estimators.base import TransientScoreError
    from harness.runstore import RunStore
    from harness.spaces import darts as darts_space

    truth = darts_space.load_ground_truth().iloc[:3]  # the sheet's cells (the miniature has its first 12)
    monkeypatch.setattr(darts_space, "load_ground_truth", lambda path=None: truth)
    monkeypatch.setattr(darts_cells, "load_train_data", lambda *a, **k: type("Data", (), {"note": "stub"})())
    store = RunStore(tmp_path / "runs.sqlite")
    raised = {}

    def train_darts(genotype, config, data, seed):
        raise raised["error"]

    monkeypatch.setattr(darts_cells, "train_darts", train_darts)
    cfg = BPEConfig.parse(TINY)
    raised["error"] = HarnessError("image size 16 is too small for 20 layers")
    first = darts_cells.train_sheet_cells(cfg, store=store, device="cpu")
    assert first.score.isna().all() and first.error.str.contains("too small").all()
    assert darts_cells.train_sheet_cells(cfg, store=store, device="cpu").cached.all()
    raised["error"] = torch.OutOfMemoryError("CUDA out of memory")
    fresh = RunStore(tmp_path / "fresh.sqlite")
    with pytest.raises(TransientScoreError, match="ran out of memory"):
        darts_cells.train_sheet_cells(cfg, store=fresh, device="cpu")
    assert fresh.frame().empty
