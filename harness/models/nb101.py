"""NAS-Bench-101's network (Ying et al., ICML 2019), as the official ``model_builder.py`` builds it.

Stem: 3x3 conv-BN-ReLU to 128 channels; 3 stacks of 3 cells, a 2x2 stride-2 max-pool before
stacks 2 and 3 with the cells' output channels doubling (128 -> 256 -> 512); global average
pooling; a dense layer to 10 classes. conv-bn-relu: a convolution without bias, BatchNorm
(momentum 0.997, eps 1e-5 in TensorFlow's convention), ReLU.

A cell is a DAG of at most 7 vertices (``matrix``: upper-triangular adjacency of the *pruned*
spec; ``ops``: ``input``, interior ops, ``output``). :func:`vertex_channels` gives every vertex's
channel count; each interior vertex sums its interior predecessors' outputs (each truncated to
its own channel count) and, with an edge from the input, a 1x1 conv-BN-ReLU projection of the
cell input, then applies its op; the output concatenates the interior vertices that feed it and
adds a projection of the input when the input feeds it directly (a 2-vertex cell is only that
projection).

Initialisation as TensorFlow's defaults in the official code: convolutions by
``variance_scaling_initializer`` (scale 1, fan-in, truncated normal), BatchNorm weight 1 and bias
0, the dense layer Glorot-uniform with zero bias; draws come from torch's global generator (the
scorer seeds it per cell).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import HarnessError

OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
STEM_CHANNELS, STACKS, CELLS_PER_STACK, NUM_CLASSES = 128, 3, 3, 10
BN_MOMENTUM, BN_EPS = 0.997, 1e-5  # TensorFlow's momentum: torch's is 1 - 0.997
_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def vertex_channels(in_channels: int, out_channels: int, matrix: np.ndarray) -> list[int]:
    """Channels of every vertex (``compute_vertex_channels`` of the official code)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    v = len(matrix)
    channels = [0] * v
    channels[0], channels[-1] = in_channels, out_channels
    if v == 2:
        return channels
    feeding = [t for t in range(1, v - 1) if matrix[t, v - 1]]
    if not feeding:
        raise HarnessError("no interior vertex feeds the output", "prune the spec first (harness.spaces.nb101)")
    share, extra = divmod(out_channels, len(feeding))
    for k, t in enumerate(feeding):
        channels[t] = share + (1 if k < extra else 0)
    for t in range(v - 3, 0, -1):
        if not matrix[t, v - 1]:
            for dst in range(t + 1, v - 1):
                if matrix[t, dst]:
                    channels[t] = max(channels[t], channels[dst])
        if channels[t] <= 0:
            raise HarnessError(f"vertex {t} gets no channels", "prune the spec first (harness.spaces.nb101)")
    return channels


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=1 - BN_MOMENTUM), nn.ReLU())


def _op(name: str, channels: int) -> nn.Module:
    if name == "conv3x3-bn-relu":
        return ConvBNReLU(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBNReLU(channels, channels, 1)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise HarnessError(f"NB101 has no operation {name!r}", f"use one of {', '.join(OPS)}")


class NB101Cell(nn.Module):
    def __init__(self, matrix: np.ndarray, ops: Sequence[str], c_in: int, c_out: int):
        super().__init__()
        self.matrix = np.asarray(matrix, dtype=np.int64)
        v = len(self.matrix)
        self.channels = vertex_channels(c_in, c_out, self.matrix)
        self.projections = nn.ModuleDict()
        self.ops = nn.ModuleDict()
        for t in range(1, v):
            if self.matrix[0, t]:
                self.projections[str(t)] = ConvBNReLU(c_in, self.channels[t], 1)
        for t in range(1, v - 1):
            self.ops[str(t)] = _op(ops[t], self.channels[t])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, v = self.matrix, len(self.matrix)
        if v == 2:
            return self.projections["1"](x)
        values: list[torch.Tensor | None] = [x] + [None] * (v - 1)
        for t in range(1, v - 1):
            c = self.channels[t]
            inputs = [values[s][:, :c] for s in range(1, t) if m[s, t]]
            if m[0, t]:
                inputs.append(self.projections[str(t)](x))
            values[t] = self.ops[str(t)](sum(inputs[1:], inputs[0]))
        out = torch.cat([values[t] for t in range(1, v - 1) if m[t, v - 1]], dim=1)
        if m[0, v - 1]:
            out = out + self.projections[str(v - 1)](x)
        return out


class NB101Network(nn.Module):
    """The NB101 network of one cell spec (the pruned ``matrix`` and ``ops``)."""

    def __init__(self, matrix, ops: Sequence[str], num_classes: int = NUM_CLASSES, stem_channels: int = STEM_CHANNELS,
                 stacks: int = STACKS, cells_per_stack: int = CELLS_PER_STACK):
        super().__init__()
        matrix = np.asarray(matrix, dtype=np.int64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or len(ops) != len(matrix):
            raise HarnessError(f"a {matrix.shape} matrix with {len(ops)} operations is not a cell spec",
                               "give a V x V adjacency and V operations")
        self.stem = ConvBNReLU(3, stem_channels, 3)
        layers: list[nn.Module] = []
        c_in = c_out = stem_channels
        for stack in range(stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                c_out *= 2
            for _ in range(cells_per_stack):
                layers.append(NB101Cell(matrix, ops, c_in, c_out))
                c_in = c_out
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_out, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                nn.init.trunc_normal_(mod.weight, std=math.sqrt(1.0 / fan_in) / _TRUNC_STD,
                                      a=-2 * math.sqrt(1.0 / fan_in) / _TRUNC_STD, b=2 * math.sqrt(1.0 / fan_in) / _TRUNC_STD)
            elif isinstance(mod, nn.BatchNorm2d):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward_pre_pool(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's feature map, before global pooling."""
        return self.cells(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_pre_pool(x).mean(dim=(2, 3)))


def count_parameters(matrix, ops: Sequence[str]) -> int:
    """Trainable parameters of the network of a spec, without allocating it (meta device)."""
    with torch.device("meta"):
        net = NB101Network(matrix, ops)
    return sum(p.numel() for p in net.parameters())
