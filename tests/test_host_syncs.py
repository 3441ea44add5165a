"""Scorers that wait for the GPU a fixed number of times, not once per class or layer.

Each ``float()``, ``.item()`` or boolean mask copies a value to the host and so waits for every
queued kernel. ``HostSyncCounter`` counts them on any device, so these CPU tests pin the number
(issue 14, part 3). The rewrites kept every score bit for bit: each test also compares the new
code with the earlier per-class / per-layer formulation, written out here, with ``==``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.devices import HostSyncCounter
from harness.estimators import score
from harness.estimators.base import weight_layers
from harness.estimators.epe_nas import K, epe_score
from harness.estimators.jacobian import corrcoef_rows, input_jacobian
from harness.estimators.run import make_batch
from harness.models.nb201 import build_network

CELLS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
         "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|")


@pytest.fixture(scope="module")
def batch(harness_data):
    b, _ = make_batch("cifar10", 16, batch_seed=3, augment=False, device=torch.device("cpu"))  # the miniature has 20
    return b


def _net(arch, seed=0):
    torch.manual_seed(seed)
    return build_network(arch, "cifar10")


def test_the_counter_sees_host_reads_and_not_slices():
    t, mask = torch.arange(6.0), torch.tensor([True, False] * 3)
    with HostSyncCounter() as syncs:
        t[1:3], t[torch.tensor([0, 2])], t * 2  # views, gathers, arithmetic: no wait
        assert syncs.count == 0
        float(t.sum()), t.max().item(), t.tolist(), t[mask], torch.unique(t), bool(t[0] > 0)
    assert syncs.names == ["__float__", "item", "tolist", "__getitem__", "unique", "__bool__"]


def _epe_per_class(jacobian, labels, num_classes, divisor="entries"):
    """EPE-NAS version 2 as it was written: one boolean mask and one float per class."""
    per_class = []
    for c in torch.unique(labels):
        rows = jacobian[labels == c]
        if len(rows) == 1:
            if num_classes > 100 and divisor == "rows":
                continue
            s = math.log(1.0 + K)
        else:
            corr = corrcoef_rows(rows)
            s = float(torch.log(corr.abs() + K).sum())
            if num_classes > 100:
                s /= corr.numel() if divisor == "entries" else len(corr)
        per_class.append(s)
    scores = torch.tensor(per_class, dtype=torch.float64)
    if num_classes <= 100:
        return float(scores.abs().sum())
    return float((scores[:, None] - scores[None, :]).abs().sum() / len(scores))


@pytest.mark.parametrize("arch", CELLS)
def test_epe_nas_waits_three_times_and_scores_as_before(arch, batch):
    jac = input_jacobian(_net(arch).train(), batch.x)
    for classes, divisor in ((10, "entries"), (120, "entries"), (120, "rows")):
        assert epe_score(jac, batch.y, classes, divisor) == _epe_per_class(jac, batch.y, classes, divisor)
    with HostSyncCounter() as syncs:
        epe_score(jac, batch.y, 10)
    assert len(batch.y.unique()) >= 4 and syncs.count <= 3, syncs.names  # labels in, scores out, float


def test_epe_nas_single_image_classes_score_as_before():
    rng = np.random.default_rng(0)
    jac = torch.from_numpy(rng.normal(size=(41, 30)))
    labels = torch.from_numpy(np.concatenate([rng.integers(0, 5, 39), [7, 9]]))  # classes 7 and 9: one image each
    for classes, divisor in ((10, "entries"), (120, "entries"), (120, "rows")):
        assert epe_score(jac, labels, classes, divisor) == _epe_per_class(jac, labels, classes, divisor)


def _fisher_per_layer(net, batch, variant):
    """fisher version 3 as it was written: one float per layer."""
    net.train()
    activations = []

    def keep(module, inputs, output):
        output.retain_grad()
        activations.append((module, output))

    handles = [m.register_forward_hook(keep) for m in weight_layers(net)]
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(batch.x), batch.y).backward()
    for h in handles:
        h.remove()
    total = 0.0
    for module, a in activations:
        if a.grad is not None:
            per_channel = a.detach() * a.grad
            if per_channel.dim() > 2:
                per_channel = per_channel.sum(dim=tuple(range(2, per_channel.dim())))
            total += float((0.5 * per_channel.pow(2).mean(dim=0)).sum()) * (
                module.weight[0].numel() if variant == "official" else 1)
    return total


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_fisher_waits_once_and_scores_as_before(variant, batch):
    for arch in CELLS:
        assert score("fisher", _net(arch), batch, variant=variant).score == _fisher_per_layer(_net(arch), batch, variant)
    net = _net(CELLS[0])
    with HostSyncCounter() as syncs:
        score("fisher", net, batch, variant=variant)
    assert len(weight_layers(net)) > 50 and syncs.count <= 2, syncs.names


def test_zen_waits_once_for_every_layer(batch):
    net = _net(CELLS[0])
    with HostSyncCounter() as syncs:
        result = score("zen", net, batch)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert result.ok and len(bns) > 30 and syncs.count <= 2, syncs.names


# -- nas-harness selftest: the same checks, on the device, in one call -----------------------

def test_selftest_runs_every_check_on_this_machine_and_writes_them(tmp_path, capsys, full_data):
    """The whole selftest, as a GPU machine would run it (here: on the CPU, in CI)."""
    import json

    from harness.cli import main
    from harness.selftest import CHECKS

    assert main(["selftest", "--out", str(tmp_path)]) == 0
    checks = {c["name"]: c for c in json.loads((tmp_path / "selftest.json").read_text())}
    assert list(checks) == [name for name, _ in CHECKS]
    gpu = torch.cuda.is_available()
    assert all(c["status"] == "pass" for n, c in checks.items() if n != "out of memory")
    assert checks["out of memory"]["status"] == ("pass" if gpu else "untested")
    assert checks["host syncs"]["values"]["epe_nas"]["host_reads"] <= 3
    from harness.estimators import ESTIMATORS

    plugins = sum(ESTIMATORS.origin(n) != "nas-harness" for n in ESTIMATORS.list())  # the example package's
    assert len(checks["estimators"]["values"]) == (17 + plugins) * 3  # every estimator and variant on three cells
    assert checks["speed"]["values"]["naswot"]["cpu_cells_per_s"] > 0
    assert set(checks["nb101"]["values"]) == {"synflow", "grad_norm", "naswot", "jacob_cov", "snip"}
    assert "supernet" in capsys.readouterr().out and (tmp_path / "selftest.md").exists()


def test_selftest_fails_when_a_scorer_waits_too_often(tmp_path, capsys, monkeypatch, full_data):
    from harness import selftest
    from harness.cli import main

    monkeypatch.setattr(selftest, "SYNC_BOUNDS", {"fisher": 0})
    assert main(["selftest", "--only", "host syncs"]) == 1
    assert "selftest failed: host syncs" in capsys.readouterr().err


def test_selftest_refuses_an_unknown_check(capsys):
    from tests.conftest import refused

    assert "no check named 'gpu'" in refused(capsys, "selftest", "--only", "gpu")


def test_selftest_agreement_judges_by_the_estimators_scale():
    """GPU against CPU: a score near 0 is judged against the estimator's largest score, not its own."""
    from harness.selftest import agreement

    nan = float("nan")
    close = {0: {"score": 100.0, "cpu_score": 100.01}, 1: {"score": 2e-7, "cpu_score": 1e-7}}
    assert agreement("grasp", close) == [] and close[1]["rel_diff"] == pytest.approx(1e-9)
    assert agreement("x", {0: {"score": 100.0, "cpu_score": 101.0}}) == ["x on cell 0 (diff 0.0099 of its scale)"]
    assert agreement("x", {0: {"score": nan, "cpu_score": nan}}) == []  # both failed: the same failure
    assert len(agreement("x", {0: {"score": nan, "cpu_score": 5.0}})) == 1  # one side failed
