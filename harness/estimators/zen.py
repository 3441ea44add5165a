"""zen (Lin et al., ICCV 2021, "Zen-NAS")."""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Batch, UndefinedScore, register


def gaussian_init_(net: nn.Module) -> None:
    """Zen-NAS's initialisation: every Conv2d/Linear weight ~ N(0, 1) (from torch's global
    generator, which the scorer seeds per cell) and bias 0; BatchNorm weight 1, bias 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


@register("zen", version="2", needs=("input shape",), reference="Lin et al., ICCV 2021",
          requires_method="forward_pre_pool")
def zen(net: torch.nn.Module, batch: Batch, alpha: float = 0.01, seed: int = 0) -> float:
    """Zen-score with the Zen-NAS protocol: the network re-initialised by :func:`gaussian_init_`,
    BatchNorm in train mode, Gaussian inputs x then e ~ N(0, 1) (a generator seeded with
    ``seed``), f the pre-pooling feature map (``net.forward_pre_pool``):

        log(mean over images of sum |f(x) - f(x + alpha e)|) + sum over BatchNorm layers of
        log sqrt(mean over channels of running_var),

    the running variances as they stand after the two forward passes (as the official code reads
    them). A network whose output ignores its input has no score (log 0)."""
    gaussian_init_(net)
    net.train()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = tuple(batch.x.shape)
    x = torch.randn(shape, generator=gen).to(batch.device)
    eps = torch.randn(shape, generator=gen).to(batch.device)
    with torch.no_grad():
        clean = net.forward_pre_pool(x)
        delta = (clean - net.forward_pre_pool(x + alpha * eps)).abs().flatten(1).sum(dim=1).mean()
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d) and m.running_var is not None]
    # one wait for the device for the perturbation and every layer's mean variance, not one per layer
    delta, *variances = torch.stack([delta, *(m.running_var.mean() for m in bns)]).tolist()
    if not delta > 0:
        raise UndefinedScore(f"the output does not respond to the input perturbation (|f(x) - f(x + a e)| = {delta}): "
                             "log 0 is undefined")
    if not all(v > 0 for v in variances):
        raise UndefinedScore("a BatchNorm layer's running variance is 0: log 0 is undefined")
    return math.log(delta) + sum(0.5 * math.log(v) for v in variances)
