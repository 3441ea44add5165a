"""Differentiable search on NB201: the public wrappers (run_darts, run_gdas, run_differentiable) and
the ``supernet`` command (``harness.cli.cmd_supernet``) (tests/test_differentiable.py covers the supernet)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from harness.bpe import BPEConfig
from harness.errors import HarnessError
from harness.models.nb201_supernet import NB201SuperNet
from harness.cli import cmd_supernet
from harness.search import differentiable as diff
from harness.spaces.nb201 import OPS, NB201Space, arch_to_str, parse_arch

TINY = "e1-b64-l1-c4-i16-f0.01-v200"


def _parse(argv):
    from harness.cli import build_parser

    return build_parser().parse_args(argv)


def test_genotype_is_the_argmax_over_all_five_ops_none_included():
    sn = NB201SuperNet(C=4, N=1)
    chosen = (0, 1, 0, 3, 4, 2)  # none wins two edges: NB201's DARTS derivation keeps it
    with torch.no_grad():
        sn.alpha.zero_()
        for e, k in enumerate(chosen):
            sn.alpha[e, k] = 1.0
            sn.alpha[e, (k + 1) % len(OPS)] = 0.5
    assert sn.genotype() == chosen
    assert sn.arch() == arch_to_str(chosen) and parse_arch(sn.arch()) == chosen
    assert sn.arch().startswith("|none~0|+|skip_connect~0|none~1|+")


def test_wrappers_search_real_cifar10_and_give_benchmark_cells(nb201, full_data):  # supernet training
    cfg = BPEConfig.parse(TINY)
    space = NB201Space(nb201.arch_strs())
    v1 = diff.run_darts(cfg, order=1, seed=4)
    v2 = diff.run_darts(cfg, order=2, seed=4)
    gd = diff.run_gdas(cfg, seed=4, tau_max=5.0, tau_min=1.0)
    for r, method in ((v1, "darts-v1"), (v2, "darts-v2"), (gd, "gdas")):
        assert r.method == method and r.config == cfg.label and r.arch_data == "valid"
        assert r.arch == arch_to_str(r.ops) and 0 <= space.index(r.arch) < 15625
        assert r.steps == 4 and len(r.history) == 1 and r.wall_s > 0  # 250 training images / batch 64
        assert set(r.history[0]) >= {"train_loss", "train_acc", "alpha_entropy", "arch", "tau", "alpha"}
        p = np.asarray(r.alpha)
        assert p.shape == (6, 5) and np.allclose(p.sum(1), 1.0)
        assert not np.allclose(p, np.asarray(r.alpha_init), atol=1e-7)  # alpha moved
    assert gd.history[0]["tau"] == 5.0  # the first epoch is at tau_max
    # same seed, same initial alpha and batches: only the alpha gradient differs between the orders
    assert v1.alpha_init == v2.alpha_init
    assert not np.allclose(v1.alpha, v2.alpha, rtol=0, atol=1e-7)
    again = diff.run_differentiable("darts-v1", cfg, seed=4)
    assert again.alpha == v1.alpha and again.arch == v1.arch  # reproducible on the CPU
    split = diff.run_darts(cfg, order=1, seed=4, arch_data="train-split")
    assert split.arch_data == "train-split" and split.alpha != v1.alpha


def test_bad_input_is_a_harness_error():
    cfg = BPEConfig.parse(TINY)
    for call in (lambda: diff.run_darts(cfg, order=3), lambda: diff.run_gdas(cfg, tau_min=0.0),
                 lambda: diff.run_gdas(cfg, tau_max=0.5, tau_min=1.0), lambda: diff.run_differentiable("enas", cfg),
                 lambda: diff.run_darts(cfg, arch_data="test")):
        with pytest.raises(HarnessError):
            call()
    for argv, message in ((["--method", "enas"], "not a differentiable method"), (["--runs", "0"], "not positive"),
                          (["--method", "gdas,gdas"], "twice"), (["--threads", "0"], "not positive"),
                          (["--bpe", "e0-b64"], "epochs >= 1"), (["--tau-min", "-1"], "tau_min")):
        with pytest.raises(HarnessError, match=message):
            cmd_supernet(_parse(["supernet", "--out", "unused", *argv]))


def test_cmd_writes_runs_summary_alpha_and_plot(tmp_path, nb201, full_data):
    out = tmp_path / "gdas"
    args = _parse(["supernet", "--method", "gdas", "--bpe", TINY, "--seed", "7", "--runs", "2", "--out", str(out)])
    assert args.func is cmd_supernet and cmd_supernet(args) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert runs.strategy.tolist() == ["gdas", "gdas"] and runs.seed.tolist() == [7, 8]
    space = NB201Space(nb201.arch_strs())
    for _, row in runs.iterrows():
        assert row["index"] == space.index(row.arch)
        truth = nb201.query(np.array([row["index"]]), dataset="cifar10", split="ori-test", epochs=200, seed="mean")
        assert row["C10 test"] == pytest.approx(float(truth[0]))
        assert row.search_cost_s == row.wall_s > 0
    assert {"C10 val", "C100 val", "C100 test", "IN16 val", "IN16 test"} <= set(runs.columns)
    summary = pd.read_csv(out / "summary.csv").set_index("metric")
    assert summary.loc["C10 test", "published_mean"] == 93.51 and summary.loc["C10 test", "runs"] == 2
    assert "93.51" in (out / "summary.md").read_text()
    alpha = pd.read_csv(out / "alpha.csv")
    assert len(alpha) == 2 * 1 * 30 and np.allclose(alpha.groupby(["seed", "edge"]).weight.sum(), 1.0)
    assert (out / "alpha.png").stat().st_size > 0
    # several methods: one folder each, and the combined table beside the published rows
    both = tmp_path / "both"
    assert cmd_supernet(_parse(["supernet", "--method", "darts-v1,gdas", "--bpe", TINY, "--out", str(both)])) == 0
    combined = pd.read_csv(both / "combined.csv")
    assert combined.strategy.tolist() == ["darts-v1", "gdas"]
    assert combined["C10 test published (Δ)"].str.startswith("54.30").tolist() == [True, False]
    assert (both / "darts-v1" / "runs.csv").is_file() and (both / "gdas" / "alpha.png").is_file()
