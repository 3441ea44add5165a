"""grad_norm (Abdelfattah et al., ICLR 2021)."""

from __future__ import annotations

import torch

from .base import Batch, register
from .gradients import loss_gradients


@register("grad_norm", version="1", needs=("images", "labels", "weight gradients"), reference="Abdelfattah et al., ICLR 2021")
def grad_norm(net: torch.nn.Module, batch: Batch) -> float:
    """Sum over Conv2d/Linear layers of the L2 norm of the loss gradient of their weights."""
    return float(sum(g.norm(2) for g in loss_gradients(net, batch)))
