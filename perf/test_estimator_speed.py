"""Cells per second of EPE-NAS and NASWOT against loops written like the official code.

Both sides score the same cells with the same network weights (same init seed) on the same
preprocessed batch of 256 real CIFAR-10 training images, and must give the same scores.
The cells are a seeded random sample. Baselines: build the network, forward and backward with weight gradients, then numpy work
(per-class ``vstack`` + ``corrcoef`` for EPE-NAS; kernel accumulation in numpy for NASWOT).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from harness.estimators import score
from harness.estimators.run import make_batch, sample_indices
from harness.models.nb201 import build_network

from .conftest import record

CELLS = tuple(int(i) for i in sample_indices(8, seed=0, total=15625))  # a seeded sample, not hand-picked


@pytest.fixture(scope="module")
def setup(bench_home):
    if not os.environ.get("HARNESS_DATA"):
        pytest.fail("HARNESS_DATA is not set: export HARNESS_DATA=../shared/data")
    from harness.benchmarks import NB201

    bench = NB201.open()
    batch, _ = make_batch("cifar10", 256, batch_seed=0, augment=False, device=torch.device("cpu"))
    return [bench.arch(i) for i in CELLS], batch


def _net(arch, i):
    torch.manual_seed(i)
    return build_network(arch, "cifar10")


def official_epe(archs, batch):
    scores = []
    labels = batch.y.numpy()
    for i, arch in enumerate(archs):
        net = _net(arch, i)
        net.train()
        x = batch.x.clone().requires_grad_(True)
        y = net(x)
        y.backward(torch.ones_like(y))
        jac = x.grad.reshape(len(x), -1).numpy()
        per_class = {}
        for row, label in zip(jac, labels):
            per_class[label] = np.vstack((per_class[label], row)) if label in per_class else row
        total = 0.0
        for rows in per_class.values():
            corr = np.corrcoef(rows)
            total += abs(np.sum(np.log(np.abs(corr) + 1e-5)))
        scores.append(total)
    return scores


def official_naswot(archs, batch):
    scores = []
    for i, arch in enumerate(archs):
        net = _net(arch, i)
        net.train()
        kernel = np.zeros((len(batch.x), len(batch.x)))

        def hook(module, inputs, output):
            nonlocal kernel
            c = (inputs[0].detach() > 0).flatten(1).float()
            kernel = kernel + (c @ c.t()).numpy() + ((1.0 - c) @ (1.0 - c).t()).numpy()

        handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.ReLU)]
        x = batch.x.clone().requires_grad_(True)
        y = net(x)
        y.backward(torch.ones_like(y))  # the official loop also takes the Jacobian
        for h in handles:
            h.remove()
        scores.append(np.linalg.slogdet(kernel)[1])
    return scores


def ours(name):
    def run(archs, batch):
        return [score(name, _net(arch, i), batch).score for i, arch in enumerate(archs)]
    return run


@pytest.mark.parametrize("name, baseline", [("epe_nas", official_epe), ("naswot", official_naswot)])
def test_official_style(benchmark, setup, name, baseline):
    archs, batch = setup
    result = benchmark.pedantic(baseline, args=(archs, batch), rounds=3, iterations=1, warmup_rounds=1)
    record(f"{name}_cells_per_s", "baseline", benchmark, cells=len(archs))
    np.testing.assert_allclose(ours(name)(archs, batch), result, rtol=1e-9)


@pytest.mark.parametrize("name", ["epe_nas", "naswot"])
def test_harness(benchmark, setup, name):
    archs, batch = setup
    benchmark.pedantic(ours(name), args=(archs, batch), rounds=3, iterations=1, warmup_rounds=1)
    record(f"{name}_cells_per_s", "ours", benchmark, cells=len(archs))
