"""Derived seeds: one 32-bit seed from a tuple of integers, the same on every machine."""

from __future__ import annotations

import numpy as np

BATCH, INIT = 1, 2  # the first part of every derived batch / init seed: the two never coincide


def derive(*parts: int) -> int:
    """A 32-bit seed from integers (numpy's SeedSequence): the same parts give the same seed."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])
