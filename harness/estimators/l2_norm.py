"""l2_norm (NASLib's zero-cost suite, White et al. 2022)."""

from __future__ import annotations

import torch

from .base import Batch, register, weight_layers


@register("l2_norm", version="1", needs=(), reference="NASLib zero-cost suite (White et al. 2022)")
def l2_norm(net: torch.nn.Module, batch: Batch) -> float:
    """Sum over Conv2d/Linear layers of the L2 norm of their (initial) weights."""
    return float(sum(m.weight.detach().norm(2) for m in weight_layers(net)))
