"""Budgeted performance estimation: configurations and the paper's own table replayed."""

from __future__ import annotations

import pandas as pd
import pytest

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


def test_replay_reproduces_the_papers_correlations(table):
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
