"""BPE as an estimator: the validation accuracy after budgeted training (Zheng et al., CVPR 2020).

``bpe:<config>`` where the config is a preset (``BPE1``, ``BPE2``) or the compact form of
:class:`harness.bpe.BPEConfig` (``bpe:e2-l1-c8-i16-f0.1-v2000``); the run store keys the score
by the full configuration. The network is the cell's NB201 network rebuilt with the BPE's
channels and cells per stage, initialised from the seed the runner set for the cell.
"""

from __future__ import annotations

import torch

from ..bpe.config import BPEConfig
from .base import Batch, register


def _canonical(variant: str) -> str:
    return BPEConfig.parse(variant or "BPE1").label


@register("bpe", version="3", needs=("training images", "labels", "training"), variants=("BPE1", "BPE2", "<config>"),
          default_variant="BPE1", canonical_variant=_canonical,
          reference="Zheng et al., Rethinking Performance Estimation in NAS, CVPR 2020")
def bpe(net: torch.nn.Module, batch: Batch, variant: str = "BPE1") -> float:
    """Validation accuracy (%) after training the cell under a BPE configuration (real training)."""
    from ..bpe.trainer import load_train_data, train_nb201

    config = BPEConfig.parse(variant)
    seed = torch.initial_seed()  # init_seed + index, set by the runner before building ``net``
    data = load_train_data(batch.dataset, config.fraction, config.valid_images or None, device=batch.device)
    return train_nb201(net.arch, config, data, seed=seed).valid_acc
