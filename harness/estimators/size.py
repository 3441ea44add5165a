"""params and flops: the network's size, counted exactly as NAS-Bench-201 counts it."""

from __future__ import annotations

import torch

from ..models.nb201 import count_flops, count_parameters
from .base import Batch, register


@register("params", version="1", needs=(), reference="parameter count in MB (1e6), as NAS-Bench-201's params")
def params(net: torch.nn.Module, batch: Batch) -> float:
    """Parameters in MB (count / 1e6)."""
    return count_parameters(net) / 1e6


@register("flops", version="1", needs=("input shape",), reference="MFLOPs as NAS-Bench-201's flop")
def flops(net: torch.nn.Module, batch: Batch) -> float:
    """MFLOPs for one image of the batch's size, NB201's count (convolutions and linear layers)."""
    return count_flops(net, int(batch.x.shape[-1]))
