"""fisher (Theis et al. 2018; Turner et al., ICLR 2020; Abdelfattah et al., ICLR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, register, weight_layers


@register("fisher", version="2", needs=("images", "labels", "activation gradients"), reference="Turner et al., ICLR 2020")
def fisher(net: torch.nn.Module, batch: Batch) -> float:
    """Sum over the outputs a of every Conv2d and Linear layer (the classifier too, as Abdelfattah
    et al.) and their channels of 0.5 * mean over images of (sum over positions of a * dL/da)^2."""
    net.train()
    activations = []

    def keep(module, inputs, output):
        output.retain_grad()
        activations.append(output)

    handles = [m.register_forward_hook(keep) for m in weight_layers(net)]
    try:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(batch.x), batch.y).backward()
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for a in activations:
        if a.grad is not None:
            per_channel = a.detach() * a.grad
            if per_channel.dim() > 2:  # a Conv2d map: sum over its positions; a Linear output is images x units
                per_channel = per_channel.sum(dim=tuple(range(2, per_channel.dim())))
            total += float((0.5 * per_channel.pow(2).mean(dim=0)).sum())
    return total
