"""jacob_cov (Abdelfattah et al., ICLR 2021; NASWOT arXiv v1's score)."""

from __future__ import annotations

import torch

from .base import Batch, UndefinedScore, register
from .jacobian import corrcoef_rows, input_jacobian

K = 1e-5


def jacob_cov_score(jacobian: torch.Tensor) -> float:
    """-sum_i (log(v_i + k) + 1 / (v_i + k)) over the eigenvalues v of corr(J)."""
    corr = corrcoef_rows(jacobian)
    if not torch.isfinite(corr).all():
        raise UndefinedScore("a Jacobian row has zero variance: the correlation is undefined")
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + K) + 1.0 / (v + K)).sum())


@register("jacob_cov", version="1", needs=("images", "input gradients"), function_only=True, reference="Abdelfattah et al., ICLR 2021")
def jacob_cov(net: torch.nn.Module, batch: Batch) -> float:
    """Correlation of input Jacobians across the batch (BatchNorm in train mode)."""
    net.train()
    return jacob_cov_score(input_jacobian(net, batch.x))
