"""Images in their real formats, NB201's normalisation and augmentation, seeded samplers."""

from .images import (ImageSet, cifar10_valid_split, download_cifar, load_cifar_python, load_imagenet16, load_images,
                     load_npz, load_split_file)
from .samplers import sample_balanced, sample_batch
from .transforms import draw_device, random_crop_flip, stats_for, to_tensor_batch

__all__ = ["ImageSet", "cifar10_valid_split", "download_cifar", "load_cifar_python", "load_imagenet16", "load_images",
           "draw_device", "load_npz", "load_split_file", "random_crop_flip", "sample_balanced", "sample_batch", "stats_for",
           "to_tensor_batch"]
