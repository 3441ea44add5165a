"""The exact NAS-Bench-201 network (NB201's TinyNetwork with its inference cell).

Stem 3x3 conv + BN; three stages of ``N`` cells with ``C``, ``2C``, ``4C`` channels and a ResNet
basic block (stride 2) between stages; BN + ReLU; global average pooling; linear classifier.
Cell ops: ReLU-Conv-BN (1x1, 3x3), 3x3 average pooling (``count_include_pad=False``), identity,
zero. ``C``, ``N`` and the class count are arguments, so budgeted training can shrink them.

Parameter counts equal the benchmark's ``params`` / ``model_size`` (MB = 1e6 parameters) for
all 15,625 cells, and :func:`count_flops` equals its ``flop`` (MFLOPs): see the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import nn

from ..errors import HarnessError
from ..spaces.nb201 import EDGES, OPS, as_ops, arch_to_str, live_edges

NUM_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
INPUT_SIZE = {"cifar10-valid": 32, "cifar10": 32, "cifar100": 32, "ImageNet16-120": 16}  # pixels


def dataset_classes(dataset: str) -> int:
    if dataset not in NUM_CLASSES:
        raise HarnessError(f"unknown NB201 dataset {dataset!r}", f"use one of {', '.join(NUM_CLASSES)}")
    return NUM_CLASSES[dataset]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=True, track_running_stats=True))


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape (cells keep their channel count)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise HarnessError(f"unknown NB201 op {name!r}", f"use one of {', '.join(OPS)}")


class Cell(nn.Module):
    """Node j = sum over i < j of op_ij(node i); the output is node 3.

    ``prune=True`` drops edges that cannot carry a signal from the input to the output
    (``none`` edges and edges of dead nodes): the output is unchanged, and so are the
    parameters that matter, but the module then holds fewer parameters than the benchmark's.
    """

    def __init__(self, ops: Sequence[int], channels: int, prune: bool = False):
        super().__init__()
        keep = live_edges(ops) if prune else (True,) * len(EDGES)
        self.edges = [(e, src, dst) for e, (src, dst) in enumerate(EDGES) if keep[e]]
        self.ops = nn.ModuleDict({str(e): make_op(OPS[ops[e]], channels) for e, _, _ in self.edges})
        self.sum_in_place = prune

    sum_in_place = False  # set by prune_: node sums accumulate into the first edge's fresh output

    def prune_(self, ops: Sequence[int]) -> None:
        """Drop, in place, the edges that cannot carry a signal to the output (weights kept).

        The pruned cell also sums a node's inputs in place where the running sum is a fresh
        tensor no backward pass needs (a convolution branch's BatchNorm output, a pooling
        output): the same values bit for bit, one allocation less per extra edge. Forward hooks
        that keep those outputs would see them change, so only function-only scores prune.
        """
        keep = live_edges(ops)
        self.edges = [(e, src, dst) for e, src, dst in self.edges if keep[e]]
        for name in [n for n in self.ops if not keep[int(n)]]:
            del self.ops[name]
        self.sum_in_place = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        owned = [False, False, False, False]  # may nodes[i] be summed into in place?
        for e, src, dst in self.edges:
            if nodes[src] is None:
                continue
            op = self.ops[str(e)]
            y = op(nodes[src])
            if nodes[dst] is None:
                nodes[dst] = y
                owned[dst] = self.sum_in_place and isinstance(op, (ReLUConvBN, nn.AvgPool2d))
            elif owned[dst]:
                nodes[dst].add_(y)
            else:
                nodes[dst] = nodes[dst] + y
                owned[dst] = self.sum_in_place
        return nodes[3] if nodes[3] is not None else x.mul(0.0)


class ResNetBlock(nn.Module):
    """NB201's reduction block: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus an
    AvgPool2d(2)-Conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0),
                                        nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NB201 network for one cell; see the module docstring."""

    def __init__(self, arch: Union[str, Sequence[int]], C: int = 16, N: int = 5, num_classes: int = 10,
                 prune_unreachable: bool = False):
        super().__init__()
        if C < 1 or N < 1 or num_classes < 1:
            raise HarnessError(f"C={C}, N={N}, num_classes={num_classes} must all be >= 1", "pass positive sizes")
        self.ops = as_ops(arch)
        self.arch = arch_to_str(self.ops)
        self.C, self.N, self.num_classes = C, N, num_classes
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBlock(channels, channels * 2))
                channels *= 2
            layers += [Cell(self.ops, channels, prune_unreachable) for _ in range(N)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        self.feature_dim = channels

    def prune_unreachable_(self) -> "NB201Network":
        """Drop, in place, every cell edge that cannot reach the output (``none`` edges included).

        The remaining weights are untouched, so ``net(x)`` and its input gradient are exactly
        what they were (a dead edge's output is never used; an edge from a node fed only by
        ``none`` edges adds an exact zero at initialisation). Scores that depend only on the
        function ``x -> net(x)`` (EPE-NAS, jacob_cov) may prune; scores that hook every ReLU
        (NASWOT) or sum over all weights may not. Returns ``self``.
        """
        for cell in self.cells:
            if isinstance(cell, Cell):
                cell.prune_(self.ops)
        return self

    def forward_pre_pool(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling (after the last BN + ReLU), (batch, 4C, h, w)."""
        return self.lastact(self.cells(self.stem(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the classifier, (batch, 4C)."""
        return self.global_pooling(self.forward_pre_pool(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def build_network(arch, dataset: str = "cifar10", C: int = 16, N: int = 5, **kwargs) -> NB201Network:
    return NB201Network(arch, C=C, N=N, num_classes=dataset_classes(dataset), **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def params_mb(model: nn.Module) -> float:
    """Parameters in MB the benchmark's way: count / 1e6."""
    return count_parameters(model) / 1e6


def count_flops(model: nn.Module, input_size: int) -> float:
    """MFLOPs the benchmark's way, for one image of ``input_size`` x ``input_size`` pixels.

    Counted per module by forward hooks: a convolution costs out_h * out_w * out_channels *
    in_channels / groups * k_h * k_w (+ out elements with a bias); a linear layer
    in_features * out_features (+ out_features with a bias). Pooling, BatchNorm, ReLU,
    additions and zeros cost nothing: this reproduces the NATS ``flop`` values exactly.
    """
    total = [0.0]

    def conv(m: nn.Conv2d, inputs, out):
        kh, kw = m.kernel_size
        flops = out.shape[2] * out.shape[3] * m.out_channels * m.in_channels / m.groups * kh * kw
        total[0] += flops + (out[0].numel() if m.bias is not None else 0)

    def linear(m: nn.Linear, inputs, out):
        total[0] += m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)

    hooks = []
    for module in model.modules():
        fn = {nn.Conv2d: conv, nn.Linear: linear}.get(type(module))
        if fn is not None:
            hooks.append(module.register_forward_hook(fn))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return total[0] / 1e6


@dataclass(frozen=True)
class Summary:
    arch: str
    dataset: str
    C: int
    N: int
    num_classes: int
    params: int
    params_mb: float
    mflops: float
    layers: str


def summary(arch, dataset: str = "cifar10", C: int = 16, N: int = 5) -> dict:
    """Params, MFLOPs and a one-line-per-block layer structure with output shapes."""
    net = build_network(arch, dataset, C=C, N=N)
    size = INPUT_SIZE[dataset]
    lines, x = [], torch.zeros(1, 3, size, size)
    net.eval()
    with torch.no_grad():
        for name, block in [("stem", net.stem), *[(f"cells.{i}", m) for i, m in enumerate(net.cells)],
                            ("lastact", net.lastact), ("global_pooling", net.global_pooling)]:
            x = block(x)
            kind = type(block).__name__ if name.startswith("cells") else name
            lines.append(f"{name:<16} {kind:<12} out {tuple(x.shape)}  params {count_parameters(block):,}")
        x = net.classifier(x.flatten(1))
        lines.append(f"{'classifier':<16} {'Linear':<12} out {tuple(x.shape)}  params {count_parameters(net.classifier):,}")
    info = Summary(net.arch, dataset, C, N, net.num_classes, count_parameters(net), params_mb(net),
                   count_flops(net, size), "\n".join(lines))
    return vars(info).copy()
