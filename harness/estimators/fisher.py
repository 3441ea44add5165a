"""fisher (Theis et al. 2018; Turner et al., ICLR 2020; Abdelfattah et al., ICLR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, register


@register("fisher", version="1", needs=("images", "labels", "activation gradients"), reference="Turner et al., ICLR 2020")
def fisher(net: torch.nn.Module, batch: Batch) -> float:
    """Sum over Conv2d outputs and channels of 0.5 * mean over images of (sum_hw a * dL/da)^2."""
    net.train()
    activations = []

    def keep(module, inputs, output):
        output.retain_grad()
        activations.append(output)

    handles = [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(batch.x), batch.y).backward()
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for a in activations:
        if a.grad is not None:
            per_channel = (a.detach() * a.grad).sum(dim=(2, 3))  # images x channels
            total += float((0.5 * per_channel.pow(2).mean(dim=0)).sum())
    return total
