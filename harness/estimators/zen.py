"""zen (Lin et al., ICCV 2021, "Zen-NAS")."""

from __future__ import annotations

import math

import torch

from .base import Batch, UndefinedScore, register


@register("zen", version="1", needs=("input shape",), reference="Lin et al., ICCV 2021")
def zen(net: torch.nn.Module, batch: Batch, alpha: float = 0.01, seed: int = 0) -> float:
    """Zen-score: log E||f(x) - f(x + alpha * eps)||_F + sum over BatchNorm layers of
    log sqrt(mean over channels of the batch variance), with x, eps ~ N(0, 1) Gaussian inputs
    and f the pre-pooling feature map (``net.forward_pre_pool``), BatchNorm in train mode."""
    net.train()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = tuple(batch.x.shape)
    x = torch.randn(shape, generator=gen).to(batch.device)
    eps = torch.randn(shape, generator=gen).to(batch.device)
    variances: list[float] = []

    def record(module, inputs, output):
        variances.append(float(inputs[0].var(dim=(0, 2, 3), unbiased=False).mean()))

    handles = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            clean = net.forward_pre_pool(x)
            delta = (clean - net.forward_pre_pool(x + alpha * eps)).flatten(1).norm(dim=1).mean()
            del variances[len(variances) // 2:]  # keep the BN statistics of the clean pass only
    finally:
        for h in handles:
            h.remove()
    bn_term = sum(0.5 * math.log(v) for v in variances if v > 0)
    if not float(delta) > 0:
        raise UndefinedScore(f"the output does not respond to the input perturbation (|f(x) - f(x + a e)| = {float(delta)}): "
                             "log 0 is undefined")
    return float(math.log(float(delta))) + bn_term
