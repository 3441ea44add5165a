"""Rank agreement between an estimator's scores and the ground truth.

All correlations are signed (``abs()`` hides sign errors). Pairs where the score or the truth
is NaN or infinite are excluded from the correlation and *counted* (``n_nan``), never dropped
silently. Ties are handled as scipy does: Kendall tau-b, Spearman on average ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


def _pairs(a, b) -> tuple[np.ndarray, np.ndarray, int]:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"scores and truth differ in length: {a.size} vs {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok], int((~ok).sum())


def _degenerate(a: np.ndarray, b: np.ndarray) -> str:
    if a.size < 3:
        return f"fewer than 3 finite pairs ({a.size})"
    if np.all(a == a[0]):
        return "the scores are constant"
    if np.all(b == b[0]):
        return "the ground truth is constant"
    return ""


def kendall_tau_b(a, b) -> float:
    """Kendall tau-b over the finite pairs (NaN when fewer than 3 or a side is constant)."""
    a, b, _ = _pairs(a, b)
    if _degenerate(a, b):
        return math.nan
    return float(stats.kendalltau(a, b, variant="b").statistic)


def _spearman_rows(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Pearson correlation of rank rows (..., n): Spearman per row."""
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    den = np.sqrt((ra * ra).sum(axis=-1) * (rb * rb).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=-1) / den


def spearman(a, b) -> float:
    """Spearman rho (Pearson on average ranks) over the finite pairs."""
    a, b, _ = _pairs(a, b)
    if _degenerate(a, b):
        return math.nan
    return float(_spearman_rows(stats.rankdata(a), stats.rankdata(b)))


def top_k_overlap(score, truth, k: float) -> float:
    """Fraction of the true top-k cells that are also in the score's top-k (finite pairs only).

    ``k``: a count (int >= 1) or a fraction of the cells (0 < k < 1, rounded up). Higher is
    better on both sides; ties are broken by position (stable sort).
    """
    s, t, _ = _pairs(score, truth)
    if s.size == 0:
        return math.nan
    count = int(math.ceil(k * s.size)) if 0 < k < 1 else int(k)
    if not 1 <= count <= s.size:
        raise ValueError(f"k={k} selects {count} of {s.size} cells")
    top_s = np.argsort(-s, kind="stable")[:count]
    top_t = np.argsort(-t, kind="stable")[:count]
    return len(np.intersect1d(top_s, top_t)) / count


@dataclass(frozen=True)
class RankResult:
    """Rank agreement of a score with the truth; CIs are bootstrap percentile intervals."""

    n: int  # finite pairs used
    n_nan: int  # pairs excluded because the score or the truth was NaN/inf
    kendall: float
    spearman: float
    kendall_ci: tuple[float, float]
    spearman_ci: tuple[float, float]
    top10_overlap: float  # fraction of the true top 10 % found in the score's top 10 %
    reason: str = ""  # why the correlations are NaN, when they are


def rank_agreement(score, truth, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                   kendall_boot: int | None = None) -> RankResult:
    """Kendall tau-b, Spearman, their bootstrap CIs and the top-10 % overlap.

    ``n_boot`` resamples of the finite pairs with replacement (seeded); Spearman's bootstrap is
    vectorised, Kendall's runs scipy per resample (``kendall_boot`` resamples, default
    ``n_boot``). NaN/inf pairs are counted in ``n_nan``; a degenerate input gives NaN with
    its ``reason`` rather than an exception.
    """
    a, b, n_nan = _pairs(score, truth)
    reason = _degenerate(a, b)
    nan_ci = (math.nan, math.nan)
    if reason:
        return RankResult(int(a.size), n_nan, math.nan, math.nan, nan_ci, nan_ci, math.nan, reason)
    tau = float(stats.kendalltau(a, b, variant="b").statistic)
    rho = float(_spearman_rows(stats.rankdata(a), stats.rankdata(b)))
    top = top_k_overlap(a, b, 0.1)
    if n_boot <= 0:
        return RankResult(int(a.size), n_nan, tau, rho, nan_ci, nan_ci, top)
    rng = np.random.default_rng(seed)
    lo_q, hi_q = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    rhos = []
    chunk = max(1, 2_000_000 // a.size)
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, a.size, size=(min(chunk, n_boot - start), a.size))
        rhos.append(_spearman_rows(stats.rankdata(a[idx], axis=1), stats.rankdata(b[idx], axis=1)))
    rhos = np.concatenate(rhos)
    taus = np.array([stats.kendalltau(a[i], b[i], variant="b").statistic
                     for i in rng.integers(0, a.size, size=(kendall_boot or n_boot, a.size))])
    return RankResult(int(a.size), n_nan, tau, rho,
                      (float(np.nanpercentile(taus, lo_q)), float(np.nanpercentile(taus, hi_q))),
                      (float(np.nanpercentile(rhos, lo_q)), float(np.nanpercentile(rhos, hi_q))), top)
