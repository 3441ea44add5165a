"""The NB201 supernet for differentiable search (DARTS, GDAS on NAS-Bench-201).

The macro skeleton is the benchmark network's (:class:`harness.models.nb201.NB201Network`): stem
conv 3x3 + BN, three stages of ``N`` cells with ``C``, ``2C``, ``4C`` channels and NB201's ResNet
block between stages, BN + ReLU, global pooling, linear. Every cell edge is a *mixed* edge holding
all five NB201 ops; the architecture parameters ``alpha`` (6 edges x 5 ops, shared by all cells)
are kept apart from the weights (:meth:`arch_parameters`, :meth:`weight_parameters`).

Forward modes:
- ``softmax`` (DARTS): each edge outputs sum_k softmax(alpha_e)_k * op_k(x).
- ``gumbel`` (GDAS): one op per edge is sampled by hard Gumbel-softmax with temperature ``tau``;
  only that op is computed, and the straight-through one-hot weights keep a gradient to every
  entry of ``alpha_e`` (the edge outputs w_k * op_k(x) + sum_{j != k} w_j, whose value is
  op_k(x) because the one-hot w_j are 0 for j != k).

Search ops use BatchNorm without affine parameters, as DARTS's search cells do; the derived cell
is then looked up in the benchmark (never trained here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HarnessError
from ..spaces.nb201 import EDGES, OPS, arch_to_str
from .nb201 import ResNetBlock, Zero


class _ReLUConvBN(nn.Sequential):
    def __init__(self, c: int, kernel: int, affine: bool):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c, c, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c, affine=affine))


def _search_op(name: str, c: int, affine: bool) -> nn.Module:
    return {"none": lambda: Zero(), "skip_connect": lambda: nn.Identity(),
            "nor_conv_1x1": lambda: _ReLUConvBN(c, 1, affine), "nor_conv_3x3": lambda: _ReLUConvBN(c, 3, affine),
            "avg_pool_3x3": lambda: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)}[name]()


class MixedEdge(nn.Module):
    def __init__(self, c: int, affine: bool = False):
        super().__init__()
        self.ops = nn.ModuleList(_search_op(name, c, affine) for name in OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: int | None = None) -> torch.Tensor:
        if index is None:
            return sum(w * op(x) for w, op in zip(weights, self.ops))
        return sum(weights[k] * op(x) if k == index else weights[k] for k, op in enumerate(self.ops))


class SearchCell(nn.Module):
    """Node j = sum over i < j of mixed_edge_ij(node i); the output is node 3."""

    def __init__(self, c: int, affine: bool = False):
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(c, affine) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, indices: list[int] | None = None) -> torch.Tensor:
        nodes: list[torch.Tensor | int] = [x, 0, 0, 0]
        for e, (src, dst) in enumerate(EDGES):
            nodes[dst] = nodes[dst] + self.edges[e](nodes[src], weights[e], None if indices is None else indices[e])
        return nodes[3]


class NB201SuperNet(nn.Module):
    """See the module docstring. ``C`` initial channels, ``N`` cells per stage."""

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, affine: bool = False):
        super().__init__()
        if C < 1 or N < 1 or num_classes < 1:
            raise HarnessError(f"C={C}, N={N}, num_classes={num_classes} must all be >= 1", "pass positive sizes")
        self.C, self.N = C, N
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBlock(channels, channels * 2))
                channels *= 2
            layers += [SearchCell(channels, affine) for _ in range(N)]
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(channels, num_classes)
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(OPS)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def edge_weights(self, mode: str = "softmax", tau: float = 1.0) -> tuple[torch.Tensor, list[int] | None]:
        """(weights per edge and op, sampled op per edge or None)."""
        if mode == "softmax":
            return F.softmax(self.alpha, dim=-1), None
        if mode == "gumbel":
            while True:  # GDAS resamples when the Gumbel noise gives inf/nan
                hard = F.gumbel_softmax(self.alpha, tau=tau, hard=True, dim=-1)
                if torch.isfinite(hard).all():
                    return hard, hard.argmax(-1).tolist()
        raise HarnessError(f"supernet mode {mode!r} is not known", "use softmax (DARTS) or gumbel (GDAS)")

    def forward(self, x: torch.Tensor, mode: str = "softmax", tau: float = 1.0) -> torch.Tensor:
        weights, indices = self.edge_weights(mode, tau)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights, indices) if isinstance(layer, SearchCell) else layer(x)
        x = self.lastact(x)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def genotype(self) -> tuple[int, ...]:
        """The op with the largest alpha on each edge (``none`` included, as NB201's DARTS derives)."""
        return tuple(int(i) for i in self.alpha.detach().argmax(-1).tolist())

    def arch(self) -> str:
        return arch_to_str(self.genotype())
