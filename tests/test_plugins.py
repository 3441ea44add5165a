"""A new method from outside the harness: any nn.Module, batches as tensors or loaders, entry points."""

from __future__ import annotations

import copy
import importlib.metadata as md
import math
import os
import sys

import pytest
import torch
from torch import nn

from harness.cli import main
from harness.errors import HarnessError
from harness.estimators import ESTIMATORS, Batch, score, score_module
from harness.models.nb201 import build_network
from harness.registry import Registry
from tests.conftest import IN_CI, one_line

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# every estimator that reads the network's function or gradients (l2_norm, params, flops count every parameter held)
# (zen needs the model's forward_pre_pool: tested on its own below)
FUNCTIONAL = ("epe_nas", "fisher", "grad_norm", "grasp", "jacob_cov", "naswot", "plain", "snip", "synflow")


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return Batch.from_tensors(torch.randn(16, 3, 32, 32, generator=g), torch.arange(16) % 10, num_classes=10)


class FeaturesAndLogits(nn.Module):
    """As NB201's official TinyNetwork: forward returns (features, logits)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        logits = self.net(x)
        return logits.detach() * 0, logits


class WithUnusedLayer(nn.Module):
    """The network plus a classifier head that forward never calls."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.unused = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Linear(4, 10))

    def forward(self, x):
        return self.net(x)

    def forward_pre_pool(self, x):  # what zen reads
        return self.net.forward_pre_pool(x)


def _net():
    torch.manual_seed(0)
    return build_network(ARCH, "cifar10")


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_a_user_model_scores_as_the_network_it_wraps(batch, name):
    net = _net()
    torch.manual_seed(1)  # zen draws its inputs and init: the same generator state for all three
    plain = score(name, copy.deepcopy(net), batch)
    tupled = score_module(name, FeaturesAndLogits(copy.deepcopy(net)), batch, seed=1)
    unused = score_module(name, WithUnusedLayer(copy.deepcopy(net)), batch, seed=1)
    assert plain.ok, plain.error
    assert tupled.score == plain.score, "(features, logits) output changes the score"
    assert unused.ok, unused.error
    assert unused.score == plain.score, "an unused layer changes the score"


def test_zen_scores_a_model_with_its_method_and_names_the_method_otherwise(batch):
    net = _net()
    torch.manual_seed(1)
    plain = score("zen", copy.deepcopy(net), batch)
    unused = score_module("zen", WithUnusedLayer(copy.deepcopy(net)), batch, seed=1)
    assert unused.ok and unused.score == plain.score  # the wrapper reaches the model's forward_pre_pool
    with pytest.raises(HarnessError) as err:
        score_module("zen", FeaturesAndLogits(net), batch)
    assert "needs the model's forward_pre_pool(x)" in one_line(err.value)


def test_batches_from_tensors_and_loaders_and_their_one_line_errors():
    x, y = torch.randn(8, 3, 16, 16), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    b = Batch.from_tensors(x, y)
    assert b.num_classes == 4 and b.x.dtype == torch.float32 and b.y.dtype == torch.int64
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    first = Batch.from_loader(loader, num_classes=10)
    assert len(first.y) == 4 and first.num_classes == 10 and torch.equal(first.x, x[:4])
    assert score_module("synflow", nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(784, 4)), (x, y)).ok
    for bad, expected in [((x[0], y), "not N x C x H x W"), ((x.to(torch.uint8), y), "not floating point"),
                          ((x, y[:3]), "do not match 8 images"), ((x, y - 1), "non-negative")]:
        with pytest.raises(HarnessError) as err:
            Batch.from_tensors(*bad)
        assert expected in one_line(err.value)
    with pytest.raises(HarnessError, match="yields no batch"):
        Batch.from_loader([])
    with pytest.raises(HarnessError, match="not logits"):
        score_module("synflow", _Strange(), (x, y))


class _Strange(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return "logits"


def test_entry_points_register_other_packages_methods_with_their_origin(tmp_path, monkeypatch, caplog):
    (tmp_path / "lab_method.py").write_text(
        "from harness.registry import Registry\n"
        "def lab_score(net, batch):\n    '''a lab's score'''\n    return 1.0\n")
    (tmp_path / "broken_method.py").write_text("raise ImportError('needs a package that is not installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [md.EntryPoint("lab_score", "lab_method:lab_score", "nas_harness.test"),
           md.EntryPoint("broken", "broken_method", "nas_harness.test")]
    monkeypatch.setattr(md, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    reg = Registry("estimator")
    with caplog.at_level("WARNING"):
        assert reg.load_entry_points("nas_harness.test") == ["lab_score"]
    assert reg.get("lab_score").fn(None, None) == 1.0
    assert reg.origin("lab_score") == "lab_method:lab_score"  # no distribution: the entry point's value
    assert "broken" in caplog.text and "not loaded" in caplog.text
    sys.modules.pop("lab_method", None)


def _example_installed() -> bool:
    return "jacobian_norm" in ESTIMATORS


@pytest.fixture
def example():
    if not _example_installed():
        message = ("the example package is not installed: pip install --no-deps --no-build-isolation "
                   "-e examples/my-estimator (./reproduce.sh does)")
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def test_the_example_package_is_listed_with_its_origin(example, capsys):
    assert ESTIMATORS.origin("jacobian_norm") == "nas-harness-my-estimator"
    assert ESTIMATORS.origin("synflow") == "nas-harness"
    assert main(["estimators", "jacob*"]) == 0
    out = capsys.readouterr().out
    assert "jacobian_norm" in out and "nas-harness-my-estimator" in out


def test_compare_scores_the_example_and_puts_it_in_the_report(example, tmp_path, capsys):
    root = tmp_path / "results"
    root.mkdir()
    assert main(["compare", "jacobian_norm", "--results", str(root), "--archs", "12", "--batch-size", "16"]) == 0
    folder = root / "correlate-cifar10-jacobian_norm"
    assert (folder / "correlation.csv").is_file() and (folder / "manifest.json").is_file()
    assert "verdicts on" in capsys.readouterr().out
    assert (root / "REPORT.md").is_file()
    result = score_module("jacobian_norm", _net(), Batch.from_tensors(torch.randn(4, 3, 32, 32), torch.arange(4)))
    assert result.ok and math.isfinite(result.score)


def test_the_report_ranks_every_estimator_on_the_baselines_sample():
    from pathlib import Path

    from harness.report.full import estimator_table

    table = estimator_table(Path(__file__).resolve().parents[1] / "results")
    assert {"synflow", "naswot:hamming", "epe_nas:paper", "params"} <= set(table.estimator)
    assert (table["published abs. spearman (valid@200)"] != "–").sum() >= 6
    assert os.path.sep not in "".join(table.folder.str.replace("/", ""))
