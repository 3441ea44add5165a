"""Differentiable search on NB201: the supernet, DARTS (first and second order) and GDAS."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from harness.bpe import BPEConfig
from harness.cli import main
from harness.models.nb201 import NB201Network, ResNetBlock
from harness.models.nb201_supernet import NB201SuperNet, _ReLUConvBN
from harness.spaces.nb201 import OPS, arch_to_str

TINY = "e1-b64-lr0.05-l1-c4-i16-f0.01-v200"
ARCH_OPS = (3, 1, 2, 0, 4, 3)  # conv3x3 | skip conv1x1 | none avgpool conv3x3


def _one_hot_supernet(ops, C=4, N=2):
    torch.manual_seed(0)
    sn = NB201SuperNet(C=C, N=N)
    with torch.no_grad():
        sn.alpha.copy_(1e4 * F.one_hot(torch.tensor(ops), len(OPS)).float())
    return sn


def test_supernet_shapes_and_parameters():
    sn = NB201SuperNet(C=4, N=1, num_classes=7)
    assert sn(torch.randn(3, 3, 16, 16)).shape == (3, 7)
    assert sn.arch_parameters() == [sn.alpha] and sn.alpha.shape == (6, 5)
    assert all(p is not sn.alpha for p in sn.weight_parameters())
    assert len(sn.weight_parameters()) + 1 == len(list(sn.parameters()))


def test_one_hot_supernet_is_the_benchmark_network():
    """With alpha one-hot, the supernet computes exactly NB201's network of that cell (same weights)."""
    sn = _one_hot_supernet(ARCH_OPS)
    assert sn.genotype() == ARCH_OPS and sn.arch() == arch_to_str(ARCH_OPS)
    net = NB201Network(ARCH_OPS, C=4, N=2)
    net.stem.load_state_dict(sn.stem.state_dict())
    with torch.no_grad():
        for dst, src in zip(net.cells, sn.layers):
            if isinstance(src, ResNetBlock):
                dst.load_state_dict(src.state_dict())
                continue
            for e, k in enumerate(ARCH_OPS):
                op = src.edges[e].ops[k]
                if isinstance(op, _ReLUConvBN):  # affine BN starts at weight 1, bias 0: the non-affine one
                    dst.ops[str(e)][1].weight.copy_(op[1].weight)
    net.lastact.load_state_dict(sn.lastact.state_dict())
    net.classifier.load_state_dict(sn.classifier.state_dict())
    x = torch.randn(8, 3, 16, 16)
    torch.testing.assert_close(sn(x), net(x), rtol=1e-5, atol=1e-5)  # train mode: batch statistics on both
    # GDAS's path (only the sampled op computed, straight-through weights) gives the same output
    weights = F.one_hot(torch.tensor(ARCH_OPS), len(OPS)).float()
    h = sn.stem(x)
    for layer in sn.layers:
        h = layer(h, weights, list(ARCH_OPS)) if not isinstance(layer, ResNetBlock) else layer(h)
    torch.testing.assert_close(sn.classifier(F.adaptive_avg_pool2d(sn.lastact(h), 1).flatten(1)), net(x),
                               rtol=1e-5, atol=1e-5)


def test_gumbel_mode_is_one_hot_with_gradient_to_every_alpha():
    torch.manual_seed(1)
    sn = NB201SuperNet(C=4, N=1)
    weights, indices = sn.edge_weights("gumbel", tau=5.0)
    assert torch.equal(weights.sum(-1), torch.ones(6)) and set(weights.unique().tolist()) <= {0.0, 1.0}
    assert indices == weights.argmax(-1).tolist()
    loss = F.cross_entropy(sn(torch.randn(4, 3, 16, 16), "gumbel", 5.0), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert sn.alpha.grad is not None and bool((sn.alpha.grad != 0).all())
    with pytest.raises(Exception, match="not known"):
        sn.edge_weights("hard")


def test_second_order_gradient_differs_from_first_order():
    from harness.search.differentiable import _second_order_alpha_grad

    torch.manual_seed(2)
    sn = NB201SuperNet(C=4, N=1)
    opt = torch.optim.SGD(sn.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    xw, xa = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    yw, ya = torch.randint(0, 10, (8,)), torch.randint(0, 10, (8,))
    before = [p.detach().clone() for p in sn.weight_parameters()]
    first = torch.autograd.grad(F.cross_entropy(sn(xa), ya), [sn.alpha])[0]
    second = _second_order_alpha_grad(sn, opt, xw, yw, xa, ya, xi=0.1)
    assert second.shape == first.shape and torch.isfinite(second).all()
    assert not torch.allclose(first, second)
    assert all(torch.equal(a, b) for a, b in zip(before, sn.weight_parameters()))  # weights restored
    # with xi = 0 the virtual step vanishes, and so does the correction: first order again
    torch.testing.assert_close(_second_order_alpha_grad(sn, opt, xw, yw, xa, ya, xi=0.0), first)


def test_searches_run_and_are_reproducible(full_data):  # supernet training on CIFAR-10
    from harness.search.differentiable import search

    cfg = BPEConfig.parse(TINY)
    for method in ("darts-v1", "darts-v2", "gdas"):
        a, b = search(method, cfg, seed=3), search(method, cfg, seed=3)
        assert a.arch == b.arch and a.alpha == b.alpha  # seeded on the CPU
        assert len(a.history) == 1 and a.wall_s > 0 and a.config == cfg.label
        assert a.history[0]["alpha_entropy"] <= 1.6095  # at most the uniform distribution's log 5


def test_supernet_command(tmp_path, full_data, capsys):
    out = tmp_path / "sn"
    assert main(["supernet", "--method", "darts-v1,gdas", "--bpe", TINY, "--out", str(out)]) == 0
    for method in ("darts-v1", "gdas"):
        runs = pd.read_csv(out / method / "runs.csv")
        assert len(runs) == 1 and 0 <= runs["index"].iloc[0] < 15625 and runs["C10 test"].between(0, 100).all()
        summary = pd.read_csv(out / method / "summary.csv")
        assert (out / method / "alpha.png").is_file() and len(pd.read_csv(out / method / "alpha.csv")) == 30
    published = summary.set_index("metric").loc["C10 test", "published_mean"]
    assert published == 93.51  # GDAS's NB201 row beside ours
    assert main(["supernet", "--method", "enas", "--bpe", TINY, "--out", str(out)]) == 2
    assert "not a differentiable method" in capsys.readouterr().err
