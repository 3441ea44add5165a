"""The DARTS evaluation network for CIFAR (Liu et al., ICLR 2019: ``NetworkCIFAR``).

Stem: conv 3x3 (3 -> 3C) + BN. Then ``layers`` cells; the cells at ``layers // 3`` and
``2 * layers // 3`` are reduction cells (stride 2, channels doubled). Each cell preprocesses its
two inputs to C channels (input 0 through FactorizedReduce when the previous cell reduced,
otherwise ReLU-Conv1x1-BN; input 1 through ReLU-Conv1x1-BN), each intermediate node sums its two
ops, and the cell outputs the channel concat of its ``concat`` nodes. Global average pooling and
a linear classifier close it. All BN layers are affine, as in the DARTS evaluation network.

Ops (stride 2 on a reduction cell's edges from its two inputs): ``sep_conv_kxk`` = twice
(ReLU, depthwise kxk, pointwise 1x1, BN), the first block carrying the stride; ``dil_conv_kxk`` =
ReLU, depthwise kxk dilation 2, pointwise, BN; 3x3 max / average pooling (average with
``count_include_pad=False``), nothing after them; ``skip_connect`` = identity, or FactorizedReduce
(ReLU, two 1x1 stride-2 convs to C/2, the second on the input shifted by one pixel, concat, BN)
at stride 2; ``none`` = zeros. Drop-path (``drop_path_prob``, a plain attribute that training
schedules may change) zeroes whole samples of every non-identity op's output in training mode.

Optional auxiliary head after cell ``2 * layers // 3`` (training mode only, as in DARTS): ReLU,
average pool 5 stride 3, conv 1x1 to 128, BN, ReLU, conv 2x2 to 768, BN, ReLU, linear. On the
8x8 maps of 32x32 images this is exactly DARTS's ``AuxiliaryHeadCIFAR``; for other image sizes
(BPE trains on 16x16) maps smaller than 5 are average-pooled to 2x2 instead and a conv output
larger than 1x1 is averaged to 1x1, so any image size >= 8 works (parameters are unchanged).

Odd feature-map sizes: DARTS's FactorizedReduce fails on them (its two halves differ by a pixel);
here the shifted half is zero-padded back to the input size, which changes nothing for even
sizes (the padding is never sampled) and matches the ``ceil(H / 2)`` of the other stride-2 ops.

:func:`count_parameters_mb` counts as DARTS's ``count_parameters_in_MB`` (parameters / 1e6,
auxiliary head excluded): the published DARTS-V2 cell at C=36, 20 layers gives 3.349342.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HarnessError
from ..spaces.darts import PRIMITIVES, Genotype, parse_genotype

STEM_MULTIPLIER = 3


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=True))


class DilConv(nn.Sequential):
    """ReLU, depthwise conv (dilated), pointwise conv, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation,
                                   groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out, affine=True))


class SepConv(nn.Sequential):
    """Two stacked (ReLU, depthwise conv, pointwise conv, BN) blocks; the first carries the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(DilConv(c_in, c_in, kernel, stride, padding, 1),
                         DilConv(c_in, c_out, kernel, 1, padding, 1))


class Zero(nn.Module):
    """The ``none`` op: zeros (subsampled at stride 2)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU; two 1x1 stride-2 convs to ``c_out / 2`` (the second on the input shifted by one pixel); concat; BN."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        if c_out % 2:
            raise HarnessError(f"FactorizedReduce needs an even channel count, got {c_out}", "use an even C")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # same size as x: equal halves for odd sizes too
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def make_op(name: str, channels: int, stride: int) -> nn.Module:
    """One DARTS op on ``channels`` channels (``stride`` 1 or 2)."""
    c = channels
    if name == "none":
        return Zero(stride)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2)
    raise HarnessError(f"unknown DARTS op {name!r}", f"use one of {', '.join(PRIMITIVES)}")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero each sample with probability ``drop_prob`` and scale the kept ones by ``1 / (1 - p)``."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        pairs = genotype.reduce if reduction else genotype.normal
        self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.indices = tuple(index for _, index in pairs)
        self.steps = len(pairs) // 2
        self.multiplier = len(self.concat)
        self._ops = nn.ModuleList(make_op(name, c, 2 if reduction and index < 2 else 1) for name, index in pairs)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            total = None
            for k in (2 * i, 2 * i + 1):
                op = self._ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's ``AuxiliaryHeadCIFAR`` (exact on 8x8 maps), tolerant of other map sizes."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.features = nn.Sequential(nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=False),
                                      nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, stride=3, padding=0, count_include_pad=False)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        x = self.features(x)
        if x.shape[-1] != 1 or x.shape[-2] != 1:
            x = F.adaptive_avg_pool2d(x, 1)
        return self.classifier(x.flatten(1))


class DartsNetwork(nn.Module):
    """DARTS's ``NetworkCIFAR``; ``forward`` returns ``(logits, aux_logits)`` (aux only when
    ``auxiliary`` and training, else None). ``genotype`` may be a :class:`Genotype` or its text."""

    def __init__(self, genotype: Genotype | str, C: int, layers: int, num_classes: int = 10,
                 auxiliary: bool = False, drop_path_prob: float = 0.0):
        super().__init__()
        genotype = parse_genotype(genotype) if isinstance(genotype, str) else genotype
        if not isinstance(genotype, Genotype):
            raise HarnessError(f"expected a DARTS Genotype, got {type(genotype).__name__}",
                               "parse it with harness.spaces.darts.parse_genotype")
        if int(C) < 1 or int(layers) < 1 or int(num_classes) < 1:
            raise HarnessError(f"DARTS network needs C, layers and num_classes >= 1, got {C}, {layers}, {num_classes}",
                               "pass positive sizes")
        if not 0.0 <= float(drop_path_prob) < 1.0:
            raise HarnessError(f"drop_path_prob {drop_path_prob} is not in [0, 1)", "use e.g. 0.2")
        self.genotype = genotype
        self.C, self.layers, self.num_classes = int(C), int(layers), int(num_classes)
        self.drop_path_prob = float(drop_path_prob)
        self.auxiliary = bool(auxiliary)
        self.aux_position = 2 * self.layers // 3
        self.reduction_layers = (self.layers // 3, 2 * self.layers // 3)

        c_curr = STEM_MULTIPLIER * self.C
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, self.C
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = None
        for i in range(self.layers):
            reduction = i in self.reduction_layers
            if reduction:
                c_curr *= 2
            cell = Cell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_position:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHead(c_aux, self.num_classes) if self.auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, self.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.dim() != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < 8:
            raise HarnessError(f"DARTS network input must be (N, 3, H, W) with H, W >= 8, got {tuple(x.shape)}",
                               "pass a batch of RGB images")
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1)), aux


NetworkCIFAR = DartsNetwork


def count_parameters_mb(model: nn.Module, exclude_auxiliary: bool = True) -> float:
    """Parameters / 1e6, without the auxiliary head's (DARTS's "param size" in MB)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not (exclude_auxiliary and name.startswith("auxiliary"))) / 1e6
