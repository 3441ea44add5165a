"""Seeded batch samplers: the same seed gives the same indices, on any machine."""

from __future__ import annotations

import numpy as np

from ..errors import HarnessError


def sample_batch(y: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """``batch_size`` distinct indices drawn uniformly."""
    if not 1 <= batch_size <= len(y):
        raise HarnessError(f"batch size {batch_size} does not fit {len(y)} images", f"use 1..{len(y)}")
    return np.random.default_rng(seed).choice(len(y), size=batch_size, replace=False)


def sample_balanced(y: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """``batch_size`` distinct indices with an equal count per class; the remainder
    (``batch_size mod classes``) goes to a seeded random choice of classes, one each."""
    y = np.asarray(y)
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    per, extra = divmod(batch_size, len(classes))
    counts = np.full(len(classes), per)
    counts[rng.choice(len(classes), size=extra, replace=False)] += 1
    picks = []
    for c, k in zip(classes, counts):
        members = np.flatnonzero(y == c)
        if k > len(members):
            raise HarnessError(f"class {c} has {len(members)} images, the batch needs {k}", "use a smaller batch")
        picks.append(rng.choice(members, size=k, replace=False))
    return rng.permutation(np.concatenate(picks))
