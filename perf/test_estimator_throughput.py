"""Every estimator's scoring time against one training step of the same networks.

No official code exists for most of the zero-cost proxies on their own, so each estimator is set
against the cheapest thing a gradient-based score could be: one forward and backward pass with
weight gradients (cross-entropy, the same network, the same batch), timed in the same run. A ratio
above 1: the score costs less than that step (forward-only scores such as NASWOT); below 1: more
(synflow's double pass, grasp's Hessian-vector product). 4 seeded cells, a batch of 64 CIFAR-10
training images (the zero-cost papers' batch), network build included on both sides.
"""

from __future__ import annotations

import time

import pytest
import torch.nn.functional as F

from harness.estimators import ESTIMATORS, score

from .conftest import cells_and_batch, record, record_times
from .conftest import seeded_net as _net

LABELS = [f"{n}:{v}" if v else n for n in ESTIMATORS.list() if n != "bpe"
          for v in (ESTIMATORS.get(n).meta.get("variants") or ("",))]


@pytest.fixture(scope="module")
def setup(bench_home):
    archs, batch = cells_and_batch(4, seed=2, batch_size=64)
    return archs, batch, _training_step_times(archs, batch)


def _training_step(archs, batch):
    for i, arch in enumerate(archs):
        net = _net(arch, i).train()
        F.cross_entropy(net(batch.x), batch.y).backward()


def _training_step_times(archs, batch, rounds: int = 3) -> list[float]:
    _training_step(archs, batch)  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        _training_step(archs, batch)
        times.append(time.perf_counter() - start)
    return times


@pytest.mark.parametrize("label", LABELS)
def test_estimator_against_one_training_step(benchmark, setup, label):
    archs, batch, step_times = setup
    name, _, variant = label.partition(":")
    options = {"variant": variant} if variant else {}

    def run():
        return [score(name, _net(arch, i), batch, **options) for i, arch in enumerate(archs)]

    results = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    group = f"score_{label.replace(':', '_')}"
    record(group, "ours", benchmark, cells=len(archs), estimator=label)
    record_times(group, "baseline", step_times)
    assert all(r.ok or r.error for r in results)
