"""Helpers for the weight-gradient scores: one cross-entropy backward over the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, weight_layers


def loss_gradients(net: torch.nn.Module, batch: Batch, create_graph: bool = False) -> list[torch.Tensor]:
    """d(cross-entropy)/d(weight) for every Conv2d/Linear weight (BatchNorm in train mode)."""
    net.train()
    net.zero_grad(set_to_none=True)
    weights = [m.weight for m in weight_layers(net)]
    loss = F.cross_entropy(net(batch.x), batch.y)
    grads = torch.autograd.grad(loss, weights, create_graph=create_graph, allow_unused=True)
    # a layer the forward pass does not use (a user's model) has no gradient: zero, not an error
    return [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]
