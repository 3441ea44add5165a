"""EPE-NAS (Lopes, Alirezazadeh, Alexandre, ICANN 2021, arXiv 2102.08099)."""

from __future__ import annotations

import math

import torch

from .base import Batch, register
from .jacobian import corrcoef_rows, input_jacobian

K = 1e-5


def epe_score(jacobian: torch.Tensor, labels: torch.Tensor, num_classes: int, divisor: str = "entries") -> float:
    """Per-class Jacobian correlation score.

    For each class c in the batch: s_c = sum_ij log(|corr(J_c)|_ij + k). With <= 100 classes the
    score is sum_c |s_c|, a class with one image contributing log(1 + k). With more than 100:
    (1/C) sum_c sum_c' |s_c - s_c'|, where ``divisor`` says how s_c is normalised:

    - ``"entries"``: by the n_c^2 entries of the class's correlation matrix, every class kept
      (C = the classes present);
    - ``"rows"``: as the official code: by ``len(corrs)`` = n_c, the matrix's rows; a class with a
      single image is skipped (numpy's 0-d corrcoef has no ``len``) and C is the classes kept.

    A zero-variance row makes the score NaN.
    """
    # One host transfer of the labels, then contiguous slices of the label-sorted Jacobian: no
    # per-class .item() or boolean mask (each would wait for the GPU). A stable sort keeps every
    # class's rows in batch order, so each slice equals jacobian[labels == c] row for row.
    counts: dict[int, int] = {}
    for c in labels.tolist():
        counts[c] = counts.get(c, 0) + 1
    ordered = jacobian[torch.argsort(labels, stable=True)]
    per_class = []
    start = 0
    for c in sorted(counts):
        n, rows, start = counts[c], ordered[start:start + counts[c]], start + counts[c]
        if n == 1:
            if num_classes > 100 and divisor == "rows":
                continue
            s = jacobian.new_tensor(math.log(1.0 + K))
        else:
            corr = corrcoef_rows(rows)
            s = torch.log(corr.abs() + K).sum()
            if num_classes > 100:
                s = s / (corr.numel() if divisor == "entries" else len(corr))
        per_class.append(s)
    scores = torch.stack(per_class).to("cpu", torch.float64)  # the one wait for the device
    if num_classes <= 100:
        return float(scores.abs().sum())
    return float((scores[:, None] - scores[None, :]).abs().sum() / len(scores))


VARIANTS = ("paper", "official", "official10")


@register("epe_nas", version="2", needs=("images", "labels", "input gradients"), variants=VARIANTS,
          default_variant="paper", function_only=True, reference="Lopes et al., ICANN 2021 (arXiv 2102.08099)")
def epe_nas(net: torch.nn.Module, batch: Batch, variant: str = "paper") -> float:
    """EPE-NAS: per-class correlation of input Jacobians (BatchNorm in train mode). The variants
    differ only above 100 classes (ImageNet16-120):

    - ``paper``: the dataset's class count, s_c normalised by its n_c^2 correlation entries (our
      reading of the paper's normalisation; its equation could not be checked here);
    - ``official``: the dataset's class count and the official code's >100 branch (s_c / n_c rows,
      single-image classes skipped);
    - ``official10``: what the official search runs: it always passes 10 classes, so
      ImageNet16-120 takes the <= 100 branch too.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown epe_nas variant {variant!r}")
    net.train()
    jac = input_jacobian(net, batch.x)
    if variant == "official10":
        return epe_score(jac, batch.y, 10)
    return epe_score(jac, batch.y, batch.num_classes, "rows" if variant == "official" else "entries")
