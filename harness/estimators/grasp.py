"""grasp (Wang et al., ICLR 2020; as a zero-cost proxy, Abdelfattah et al., ICLR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, register, weight_layers


@register("grasp", version="1", needs=("images", "labels", "Hessian-gradient product"), reference="Wang et al., ICLR 2020")
def grasp(net: torch.nn.Module, batch: Batch) -> float:
    """-sum w * (H g) over Conv2d/Linear weights, with g the loss gradient and H the Hessian."""
    net.train()
    weights = [m.weight for m in weight_layers(net)]
    # allow_unused: a layer the forward pass does not use (a user's model) has no gradient and
    # contributes nothing; every layer of the harness's own networks is used, so nothing changes there
    used = [g is not None for g in torch.autograd.grad(F.cross_entropy(net(batch.x), batch.y), weights,
                                                       allow_unused=True)]
    weights = [w for w, u in zip(weights, used) if u]
    g = [t.detach() for t in torch.autograd.grad(F.cross_entropy(net(batch.x), batch.y), weights)]
    grads = torch.autograd.grad(F.cross_entropy(net(batch.x), batch.y), weights, create_graph=True)
    z = sum((gi * g0).sum() for gi, g0 in zip(grads, g))
    hg = torch.autograd.grad(z, weights)
    return float(sum((-w.detach() * h).sum() for w, h in zip(weights, hg)))
