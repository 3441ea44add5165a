"""The NB201 network equals the official one, output for output.

``xautodl`` (PyPI, the NB201 authors' own package) builds the official ``TinyNetwork``. For cells
covering every op on every edge, at NB201's C=16 N=5 and at a reduced C=8 N=1, the weights of our
network are copied into it position by position (the state dicts list the same tensors in the
same order: checked) and both see the same real CIFAR-10 batch: the logits, the pre-pooling
features and the BatchNorm running statistics after a train-mode pass are bit-identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.benchmarks.nb201_import import official_ops
from harness.estimators.run import make_batch
from harness.models.nb201 import NB201Network
from harness.spaces.nb201 import OPS, arch_to_str, parse_arch

from .conftest import official_network_classes

TinyNetwork, Structure = official_network_classes()

UNIFORM = [arch_to_str([k] * 6) for k in range(len(OPS))]  # every op on every edge
NAMED = [0, 11, 284, 6111, 9930]


def _cells() -> list[str]:
    ops = official_ops()
    sampled = np.random.default_rng(201).choice(len(ops), 6, replace=False)
    return UNIFORM + [arch_to_str(ops[i]) for i in NAMED + sampled.tolist()]


@pytest.fixture(scope="module")
def images(harness_data):
    batch, _ = make_batch("cifar10", 16, batch_seed=3, augment=False, device=torch.device("cpu"))
    return batch.x


def _pair(arch: str, C: int, N: int, seed: int):
    torch.manual_seed(seed)
    ours = NB201Network(arch, C=C, N=N, num_classes=10)
    theirs = TinyNetwork(C, N, Structure.str2structure(arch), 10)
    mine, official = ours.state_dict(), theirs.state_dict()
    assert [tuple(v.shape) for v in mine.values()] == [tuple(v.shape) for v in official.values()]
    theirs.load_state_dict(dict(zip(official, mine.values())))
    return ours, theirs


def test_the_cells_cover_every_op_on_every_edge():
    ops = np.array([parse_arch(arch) for arch in _cells()])
    assert all(set(ops[:, e]) == set(range(len(OPS))) for e in range(6))


@pytest.mark.parametrize("C, N", [(16, 5), (8, 1)])
@pytest.mark.parametrize("arch", _cells())
def test_logits_and_features_equal_the_official_network(arch, C, N, images):
    ours, theirs = _pair(arch, C, N, seed=len(arch) + C)
    features = {}
    hooks = [net.lastact.register_forward_hook(lambda module, inputs, output, key=key: features.__setitem__(key, output))
             for key, net in (("ours", ours), ("official", theirs))]
    try:
        for mode in ("eval", "train"):
            ours.train(mode == "train")
            theirs.train(mode == "train")
            with torch.no_grad():
                logits = ours(images)  # one forward pass each: train mode moves the BatchNorm statistics
                pooled, official_logits = theirs(images)
            assert torch.equal(logits, official_logits), (mode, float((logits - official_logits).abs().max()))
            assert torch.equal(features["ours"], features["official"]), mode
            assert torch.equal(features["ours"].mean(dim=(2, 3)), pooled), mode
        ours.eval()
        with torch.no_grad():
            assert torch.equal(ours.forward_pre_pool(images), ours.lastact(ours.cells(ours.stem(images))))
    finally:
        for hook in hooks:
            hook.remove()
    # the train-mode pass moved both networks' BatchNorm statistics identically
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name
