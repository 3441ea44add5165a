"""The exact NB201 network: parameters equal the benchmark's for every cell, FLOPs equal NATS's."""

from __future__ import annotations

import bz2
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from harness.errors import HarnessError
from harness.models.nb201 import (INPUT_SIZE, Cell, NB201Network, build_network, count_flops, count_parameters,
                                  make_op, params_mb, summary)
from harness.spaces.nb201 import EDGES, OPS, parse_arch

from .conftest import require_data, require_full_data

DATASETS = {"cifar10-valid": 10, "cifar100": 100, "ImageNet16-120": 120}


@pytest.fixture(scope="module")
def table():
    return pd.read_csv(require_data("nb201/nb201_200ep_xvalid_cost.csv"))


def _fixture_results():
    folder = require_data("nb201/nats_fixtures/NATS-tss-v1_0-3ffb9-simple")
    for index in (0, 11, 284):
        with bz2.open(folder / f"{index:06d}.pickle.pbz2", "rb") as handle:
            raw = pickle.load(handle)
        for (dataset, seed), r in raw["200"]["all_results"].items():
            if seed == 777:
                yield index, dataset, r


def test_params_and_flops_equal_the_nats_fixtures():
    n = 0
    for index, dataset, r in _fixture_results():
        net = build_network(r["arch_config"]["arch_str"], dataset)
        assert params_mb(net) == pytest.approx(r["params"], abs=5e-7), (index, dataset)
        assert round(count_flops(net, INPUT_SIZE[dataset]), 5) == r["flop"], (index, dataset)
        n += 1
    assert n == 12


def _per_op_params(channels: int) -> dict[str, int]:
    return {name: count_parameters(make_op(name, channels)) for name in OPS}


def _seed_sizes(table, ds):
    """The benchmark's parameter counts (MB) per seed: NB201 disagrees with itself on 204 cells."""
    return [np.array([float(v) for v in cell.split(";")]) for cell in table[f"{ds}_model_size_seeds"]]


def _check_against_benchmark(counts, table, ds, rows=None):
    rows = np.arange(len(table)) if rows is None else rows
    seeds = _seed_sizes(table, ds)
    consistent = np.array([np.ptp(seeds[i]) == 0 for i in rows])
    mb = np.asarray(counts) / 1e6
    # where NB201's seeds agree, our count is its value exactly
    np.testing.assert_allclose(mb[consistent], table[f"{ds}_model_size"].to_numpy()[rows][consistent], rtol=0,
                               atol=5e-7, err_msg=ds)
    # where they disagree, our count is one of the values NB201 recorded
    for k in np.flatnonzero(~consistent):
        assert np.isclose(seeds[rows[k]], mb[k], rtol=0, atol=5e-7).any(), (ds, rows[k], mb[k], seeds[rows[k]])
    return int((~consistent).sum())


def test_params_equal_model_size_for_all_cells(table):
    """Every cell, from real modules: the network without its cells, plus N real cells per stage.

    The cells' parameters are summed over real op modules at each stage width;
    ``test_full_networks_on_a_sample`` and the slow test check that this equals whole networks
    built end to end.
    """
    with torch.device("meta"):
        skeleton = {ds: count_parameters(NB201Network("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                                      num_classes=k)) for ds, k in DATASETS.items()}
        per_op = {c: _per_op_params(c) for c in (16, 32, 64)}
    assert all(v == 0 for v in (per_op[16]["none"], per_op[16]["skip_connect"], per_op[16]["avg_pool_3x3"]))
    ops = np.array([parse_arch(a) for a in table.arch_str])
    lookup = np.array([[per_op[c][name] for name in OPS] for c in (16, 32, 64)])  # width x op
    cell_params = lookup[:, ops].sum(axis=(0, 2))
    inconsistent = {ds: _check_against_benchmark(skeleton[ds] + 5 * cell_params, table, ds) for ds in DATASETS}
    disagreeing = {ds: sum(np.ptp(s) > 0 for s in _seed_sizes(table, ds)) for ds in DATASETS}
    assert inconsistent == disagreeing and all(disagreeing.values())
    if len(table) == 15625:
        assert inconsistent == {ds: 204 for ds in DATASETS}


def test_full_networks_on_a_sample(table):
    rng = np.random.default_rng(0)
    special = np.flatnonzero(table["index"].isin([327, 768, 3113, 8447]))  # NB201's seeds record other sizes
    assert len(special) == 4
    sample = np.concatenate([rng.choice(len(table), size=40, replace=False), special])
    with torch.device("meta"):
        for ds, k in DATASETS.items():
            counts = [count_parameters(NB201Network(table.arch_str[i], num_classes=k)) for i in sample]
            _check_against_benchmark(counts, table, ds, sample)


@pytest.mark.slow
def test_full_networks_for_all_cells(table):
    """Builds all 15,625 whole networks (about 4-5 minutes on 2 CPU cores)."""
    require_full_data("nb201/nb201_200ep_xvalid_cost.csv")
    with torch.device("meta"):
        counts = np.array([count_parameters(NB201Network(a)) for a in table.arch_str])
    assert _check_against_benchmark(counts, table, "cifar10-valid") == 204


def test_cell_structure():
    cell = Cell(parse_arch("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"), 8)
    assert [(src, dst) for _, src, dst in cell.edges] == list(EDGES)
    x = torch.randn(2, 8, 6, 6)
    out = cell(x)
    n1 = cell.ops["0"](x)
    expected = x + cell.ops["4"](n1)  # skip(x) + conv1x1(node1); node2 does not reach the output
    torch.testing.assert_close(out, expected)


def test_pruning_keeps_the_output():
    torch.manual_seed(0)
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|none~2|"
    full = NB201Network(arch, C=8, N=1)
    pruned = NB201Network(arch, C=8, N=1, prune_unreachable=True)
    pruned.load_state_dict(full.state_dict(), strict=False)
    assert count_parameters(pruned) < count_parameters(full)
    x = torch.randn(4, 3, 32, 32)
    full.eval(), pruned.eval()
    torch.testing.assert_close(pruned(x), full(x))


@pytest.mark.parametrize("C, N, classes, size", [(16, 5, 10, 32), (8, 1, 100, 32), (16, 5, 120, 16)])
def test_forward_on_real_images(C, N, classes, size):
    data = np.load(require_data("images/cifar10_test.npz"))
    x = torch.from_numpy(data["x"][:8]).permute(0, 3, 1, 2).float().div(255)[:, :, :size, :size]
    net = NB201Network("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                       C=C, N=N, num_classes=classes)
    logits = net(x)
    assert logits.shape == (8, classes) and torch.isfinite(logits).all()
    assert net.forward_features(x).shape == (8, 4 * C)


def test_all_none_cell_runs():
    net = NB201Network("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", C=8, N=2)
    assert torch.isfinite(net(torch.randn(2, 3, 32, 32))).all()


def test_errors_and_summary():
    with pytest.raises(HarnessError, match="unknown NB201 dataset 'mnist'"):
        build_network("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "mnist")
    with pytest.raises(HarnessError, match="must all be >= 1"):
        NB201Network("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", C=0)
    info = summary("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
                   "cifar100")
    assert info["params"] == 808276 and round(info["mflops"], 5) == 113.95722
    assert len(info["layers"].splitlines()) == 1 + 17 + 3
