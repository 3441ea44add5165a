"""snip (Lee et al., ICLR 2019; as a zero-cost proxy, Abdelfattah et al., ICLR 2021)."""

from __future__ import annotations

import torch

from .base import Batch, register, weight_layers
from .gradients import loss_gradients


@register("snip", version="1", needs=("images", "labels", "weight gradients"), reference="Lee et al., ICLR 2019")
def snip(net: torch.nn.Module, batch: Batch) -> float:
    """Connection sensitivity: sum |w * dL/dw| over Conv2d/Linear weights."""
    grads = loss_gradients(net, batch)
    return float(sum((m.weight.detach() * g).abs().sum() for m, g in zip(weight_layers(net), grads)))
