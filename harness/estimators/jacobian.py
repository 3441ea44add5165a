"""Input Jacobians, shared by EPE-NAS and jacob_cov: gradients for the input only."""

from __future__ import annotations

import torch


def input_jacobian(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """d(sum of outputs)/d(input) per image, flattened: N x (3*H*W), float64.

    Equal to ``y = net(x); y.backward(ones_like(y)); x.grad`` (the papers' definition) but
    without weight gradients: parameters are frozen for the call.
    """
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        x = x.detach().clone().requires_grad_(True)
        out = net(x)
        (grad,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out))
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)
    return grad.reshape(len(x), -1).double()


def corrcoef_rows(j: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between rows (numpy.corrcoef semantics; zero-variance rows give NaN)."""
    centred = j - j.mean(dim=1, keepdim=True)
    cov = centred @ centred.T
    std = torch.sqrt(torch.diagonal(cov))
    return cov / std[:, None] / std[None, :]
