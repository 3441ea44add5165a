"""jacobian_norm: an example estimator, written against nas-harness's public API only.

Score: log of the mean, over the batch's images, of the L2 norm of d(sum of logits)/d(image) on
the untrained network (BatchNorm in train mode). A smooth, small input Jacobian is the guess
here; the point of the file is the shape of a plug-in, not the method.
"""

from __future__ import annotations

import math

import torch

from harness.estimators import Batch, register
from harness.estimators.base import UndefinedScore


@register("jacobian_norm", version="1", needs=("images",), function_only=True,
          reference="nas-harness example package (examples/my-estimator)")
def jacobian_norm(net: torch.nn.Module, batch: Batch) -> float:
    """log mean_i ||d sum(logits_i) / d x_i||_2 over the batch (untrained network)."""
    net.train()
    x = batch.x.detach().clone().requires_grad_(True)
    out = net(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    norms = grad.flatten(1).norm(dim=1)
    mean = float(norms.mean())
    if not mean > 0:
        raise UndefinedScore("the input Jacobian is zero for every image")
    return math.log(mean)
