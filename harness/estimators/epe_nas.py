"""EPE-NAS (Lopes, Alirezazadeh, Alexandre, ICANN 2021, arXiv 2102.08099)."""

from __future__ import annotations

import math

import torch

from .base import Batch, register
from .jacobian import corrcoef_rows, input_jacobian

K = 1e-5


def epe_score(jacobian: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Per-class Jacobian correlation score.

    For each class c in the batch: s_c = sum_ij log(|corr(J_c)|_ij + k), divided by the number
    of correlation entries when num_classes > 100. With <= 100 classes the score is
    sum_c |s_c|; otherwise (1/C) sum_c sum_c' |s_c - s_c'| over the C classes present. A class
    with one image contributes log(1 + k); a zero-variance row makes the score NaN.
    """
    per_class = []
    for c in torch.unique(labels):
        rows = jacobian[labels == c]
        if len(rows) == 1:
            s = math.log(1.0 + K)
        else:
            corr = corrcoef_rows(rows)
            s = float(torch.log(corr.abs() + K).sum())
            if num_classes > 100:
                s /= corr.numel()
        per_class.append(s)
    scores = torch.tensor(per_class, dtype=torch.float64)
    if num_classes <= 100:
        return float(scores.abs().sum())
    return float((scores[:, None] - scores[None, :]).abs().sum() / len(scores))


@register("epe_nas", version="1", needs=("images", "labels", "input gradients"), variants=("paper", "official10"),
          default_variant="paper", function_only=True, reference="Lopes et al., ICANN 2021 (arXiv 2102.08099)")
def epe_nas(net: torch.nn.Module, batch: Batch, variant: str = "paper") -> float:
    """EPE-NAS: per-class correlation of input Jacobians (BatchNorm in train mode).

    ``variant="paper"`` uses the dataset's class count; ``"official10"`` reproduces the
    official search code, which always passes 10 classes, so ImageNet16-120 also takes the
    <= 100 branch.
    """
    if variant not in ("paper", "official10"):
        raise ValueError(f"unknown epe_nas variant {variant!r}")
    net.train()
    jac = input_jacobian(net, batch.x)
    return epe_score(jac, batch.y, batch.num_classes if variant == "paper" else 10)
