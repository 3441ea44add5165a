"""NASWOT (Mellor et al., ICML 2021, "Neural Architecture Search without Training")."""

from __future__ import annotations

import torch

from .base import Batch, register
from .jacob_cov import jacob_cov_score
from .jacobian import input_jacobian


def hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    """K_ij = N_A - Hamming(c_i, c_j) for binary codes (rows): agreements, counted exactly.

    c c^T + (1-c)(1-c)^T = 2 c c^T - r_i - r_j + N_A with r the row sums (the diagonal of c c^T):
    one matrix product.
    On the CPU, boolean codes are multiplied as int8 with int32 sums (``torch._int_mm``: exact,
    and about 4x faster than float32 here); elsewhere in float32, whose integer counts below
    2**24 are exact too. The result is float64, the same either way.
    """
    if codes.dtype == torch.bool and codes.device.type == "cpu" and hasattr(torch, "_int_mm"):
        c = codes.contiguous().view(torch.int8)  # 0/1 bytes, no copy when contiguous
        gram = torch._int_mm(c, c.T).double()
    else:
        c = codes.float()
        gram = (c @ c.T).double()
    rows = torch.diagonal(gram)  # c_i . c_i: the row sums of binary codes
    return 2 * gram - rows[:, None] - rows[None, :] + c.shape[1]


@register("naswot", version="1", needs=("images",), variants=("hamming", "v1"), default_variant="hamming",
          reference="Mellor et al., ICML 2021")
def naswot(net: torch.nn.Module, batch: Batch, variant: str = "hamming") -> float:
    """The Hamming-kernel log-determinant of the binary ReLU codes (ICML 2021).

    ``variant="v1"``: the first arXiv version's score, the Jacobian covariance with the network
    in eval mode.
    """
    if variant == "v1":
        net.eval()
        return jacob_cov_score(input_jacobian(net, batch.x))
    if variant != "hamming":
        raise ValueError(f"unknown naswot variant {variant!r}")
    kernel = torch.zeros(len(batch.x), len(batch.x), dtype=torch.float64, device=batch.device)
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(input) -> (input, its kernel)

    def hook(module, inputs, output):
        # ReLUs on one node see the same tensor: count its kernel once per ReLU, compute it once.
        # The held reference keeps the id unique; integer counts make the sum order-exact.
        nonlocal kernel
        x = inputs[0]
        if id(x) not in seen:
            seen[id(x)] = (x, hamming_kernel((x.detach() > 0).flatten(1)))
        kernel = kernel + seen[id(x)][1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    net.train()
    try:
        with torch.no_grad():
            net(batch.x)
    finally:
        for h in handles:
            h.remove()
        seen.clear()
    return float(torch.linalg.slogdet(kernel)[1])
