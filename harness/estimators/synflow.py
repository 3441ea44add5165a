"""synflow (Tanaka et al., NeurIPS 2020; as a zero-cost proxy, Abdelfattah et al., ICLR 2021)."""

from __future__ import annotations

import copy

import torch

from .base import Batch, register, weight_layers


@register("synflow", version="1", needs=("input shape",), reference="Tanaka et al., NeurIPS 2020")
def synflow(net: torch.nn.Module, batch: Batch) -> float:
    """Synaptic flow: on a copy in float64 with BatchNorm removed and every parameter replaced by
    its absolute value, R = sum(net(ones)); the score is sum |w * dR/dw| over Conv2d/Linear
    weights. Data-independent: only the input shape of the batch is used."""
    probe = copy.deepcopy(net).double()
    for name, module in list(probe.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.BatchNorm2d):
                setattr(module, child_name, torch.nn.Identity())
    with torch.no_grad():
        for p in probe.parameters():
            p.abs_()
    probe.eval()
    x = torch.ones((1,) + tuple(batch.x.shape[1:]), dtype=torch.float64, device=batch.device)
    probe.zero_grad(set_to_none=True)
    probe(x).sum().backward()
    return float(sum((m.weight.detach() * m.weight.grad).abs().sum()
                     for m in weight_layers(probe) if m.weight.grad is not None))
