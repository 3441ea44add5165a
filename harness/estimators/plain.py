"""plain (Mozer & Smolensky 1989; NASLib's zero-cost suite)."""

from __future__ import annotations

import torch

from .base import Batch, register, weight_layers
from .gradients import loss_gradients


@register("plain", version="1", needs=("images", "labels", "weight gradients"), reference="Mozer & Smolensky 1989; NASLib")
def plain(net: torch.nn.Module, batch: Batch) -> float:
    """sum w * dL/dw over Conv2d/Linear weights (signed)."""
    grads = loss_gradients(net, batch)
    return float(sum((m.weight.detach() * g).sum() for m, g in zip(weight_layers(net), grads)))
