"""``log``, ``exp`` and ``log10`` that give the same bits on every CPU.

numpy's float64 ``np.exp``/``np.log`` dispatch on the CPU (AVX512F code paths where the CPU has
them, the C library elsewhere), and the C library's own ``exp``/``log`` pick FMA variants where
the CPU has FMA; the variants differ in the last bit of a few per cent of their results. A table
built from such values (the MIP surrogate's predicted costs) then changes its last digits with
the machine. These functions compute in :mod:`decimal` (integer arithmetic, correctly rounded
at 28 significant digits) and round once to the nearest float64: the same bits everywhere.

They are slow (~10 microseconds a value; arrays are computed once per distinct value), meant
for the few values that end up in a table, not for inner loops.
"""

from __future__ import annotations

import decimal
from typing import Callable

import numpy as np

_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN, Emin=-999999, Emax=999999)


def _apply(fn: Callable[[decimal.Decimal], decimal.Decimal], x):
    values = np.asarray(x, dtype=np.float64)
    unique, inverse = np.unique(values, return_inverse=True)

    # Decimal(float) is exact; float(Decimal) rounds to the nearest float64
    out = np.array([float(fn(decimal.Decimal(float(v)))) for v in unique], dtype=np.float64)
    out = out[inverse].reshape(values.shape)
    return float(out) if out.ndim == 0 else out


def exp(x):
    """e**x, correctly rounded at 28 digits, then to float64 (a float for a scalar, else an array)."""
    return _apply(lambda d: d.exp(_CONTEXT), x)


def log(x):
    """Natural logarithm (x > 0), correctly rounded at 28 digits, then to float64."""
    return _apply(lambda d: d.ln(_CONTEXT), x)


def log10(x):
    """Base-10 logarithm (x > 0), correctly rounded at 28 digits, then to float64."""
    return _apply(lambda d: d.log10(_CONTEXT), x)
