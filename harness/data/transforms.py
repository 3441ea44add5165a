"""NB201's normalisation and training augmentation, as batched torch operations.

Augmentation (random crop with zero padding, then horizontal flip) works on [0, 1] images
before normalisation, as torchvision's pipeline does, so padding is black.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import HarnessError
from .images import ImageSet

# Per-channel mean and std in [0, 1] units (NB201's values, given there in 0..255).
NORMALIZATION = {
    "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
    "ImageNet16": ((122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
}
PADDING = {32: 4, 16: 2}  # crop padding (pixels) by image size


# Which statistics each dataset name uses: exact names, never a prefix ("cifar100" starts with
# "cifar10", and a prefix match once gave CIFAR-100 the CIFAR-10 statistics).
_STATS_OF = {"cifar10": "cifar10", "cifar10-valid": "cifar10", "cifar100": "cifar100",
             "ImageNet16": "ImageNet16", "ImageNet16-120": "ImageNet16"}


def stats_for(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) per channel in [0, 1] units for a dataset name (NB201's values)."""
    key = _STATS_OF.get(dataset) or ("ImageNet16" if re.fullmatch(r"ImageNet16-\d+", dataset) else None)
    if key is None:
        raise HarnessError(f"no normalisation for dataset {dataset!r}", f"use one of {', '.join(_STATS_OF)}")
    mean, std = NORMALIZATION[key]
    return torch.tensor(mean) / 255.0, torch.tensor(std) / 255.0


def draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where random numbers are drawn: on the generator's device (a CUDA generator draws on the
    GPU, no host-to-device copy per step); without a generator, on the data's device."""
    return torch.device(generator.device) if generator is not None else torch.device(device)


def random_crop_flip(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop of the original size from the zero-padded batch, then a random horizontal
    flip (p = 0.5), per image, without a Python loop over images. ``x``: N x C x H x W."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dev = x.device
    at = draw_device(generator, dev)
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=at).to(dev)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=at).to(dev)
    flip = (torch.rand(n, generator=generator, device=at) < 0.5).to(dev)
    rows = oy[:, None] + torch.arange(h, device=dev)[None, :]  # n x h
    cols = ox[:, None] + torch.arange(w, device=dev)[None, :]  # n x w
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # n x h x w x c
    return out.permute(0, 3, 1, 2).contiguous()


def to_tensor_batch(images: ImageSet, indices, device: str | torch.device = "cpu", augment: bool = False,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised float32 N x 3 x H x W images and int64 labels for ``indices``.

    Build it once and reuse it across cells: scoring many networks on one batch needs no
    further preprocessing.
    """
    idx = np.asarray(indices)
    x = torch.from_numpy(np.ascontiguousarray(images.x[idx])).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if augment:
        x = random_crop_flip(x, PADDING.get(x.shape[-1], 4), generator)
    mean, std = stats_for(images.name)
    x = (x - mean.to(x.device)[None, :, None, None]) / std.to(x.device)[None, :, None, None]
    return x, torch.from_numpy(images.y[idx]).to(device)
