"""fisher (Theis et al. 2018; Turner et al., ICLR 2020; Abdelfattah et al., ICLR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, register, weight_layers


VARIANTS = ("paper", "official")


@register("fisher", version="3", needs=("images", "labels", "activation gradients"), variants=VARIANTS,
          default_variant="paper", reference="Turner et al., ICLR 2020; Abdelfattah et al., ICLR 2021")
def fisher(net: torch.nn.Module, batch: Batch, variant: str = "paper") -> float:
    """Sum over the outputs a of every Conv2d and Linear layer (the classifier too, as Abdelfattah
    et al.) and their channels k of F_k = 0.5 * mean over images of (sum over positions of a * dL/da)^2.

    - ``paper``: sum_k F_k, the formula of Turner et al. and of Abdelfattah et al.'s paper;
    - ``official``: sum_k fan_in * F_k, what Abdelfattah et al.'s released code (and NASLib's
      copy of it) computes: it copies each channel's F_k to every weight of that channel
      (``reshape_elements``) and sums over weights, so a layer counts C_in*k*k times (64 times for
      NB201's classifier).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown fisher variant {variant!r}")
    net.train()
    activations = []

    def keep(module, inputs, output):
        output.retain_grad()
        activations.append((module, output))

    handles = [m.register_forward_hook(keep) for m in weight_layers(net)]
    try:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(batch.x), batch.y).backward()
    finally:
        for h in handles:
            h.remove()
    # Summed on the device in float64 (each layer's float32 sum widened exactly, then added in
    # layer order, as Python floats would be): one wait for the device, not one per layer.
    total = torch.zeros((), dtype=torch.float64, device=batch.device)
    for module, a in activations:
        if a.grad is not None:
            per_channel = a.detach() * a.grad
            if per_channel.dim() > 2:  # a Conv2d map: sum over its positions; a Linear output is images x units
                per_channel = per_channel.sum(dim=tuple(range(2, per_channel.dim())))
            value = (0.5 * per_channel.pow(2).mean(dim=0)).sum().double()
            total = total + value * (module.weight[0].numel() if variant == "official" else 1)
    return float(total)
