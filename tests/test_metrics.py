import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from harness.metrics import kendall_tau_b, rank_agreement, spearman, top_k_overlap


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # scipy's own reference
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=3, max_size=60))
def test_equal_scipy_on_tied_data(pairs):
    a, b = np.array(pairs, dtype=float).T
    ref_tau = stats.kendalltau(a, b, variant="b").statistic
    ref_rho = stats.spearmanr(a, b).statistic
    if np.isnan(ref_tau):
        assert math.isnan(kendall_tau_b(a, b)) and math.isnan(spearman(a, b))
    else:
        assert kendall_tau_b(a, b) == pytest.approx(ref_tau, abs=1e-12)
        assert spearman(a, b) == pytest.approx(ref_rho, abs=1e-12)


def test_signed_and_random():
    rng = np.random.default_rng(1)
    a = rng.normal(size=500)
    b = a + rng.normal(size=500)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert kendall_tau_b(a, -b) < 0 and spearman(a, -b) < 0


def test_nan_pairs_are_counted_not_hidden():
    a = np.array([1.0, 2.0, np.nan, 4.0, 5.0, np.inf])
    b = np.array([1.0, 3.0, 2.0, 4.0, np.nan, 6.0])
    r = rank_agreement(a, b, n_boot=20)
    assert r.n == 3 and r.n_nan == 3 and r.kendall == pytest.approx(1.0)


def test_degenerate_inputs_give_a_reason():
    r = rank_agreement([1, 1, 1, 1], [1, 2, 3, 4])
    assert math.isnan(r.kendall) and r.reason == "the scores are constant"
    r = rank_agreement([1, np.nan], [1, 2])
    assert "fewer than 3" in r.reason and r.n_nan == 1


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    b = a + rng.normal(size=2000)
    r1, r2 = rank_agreement(a, b, n_boot=200, seed=3), rank_agreement(a, b, n_boot=200, seed=3)
    assert r1 == r2
    assert r1.kendall_ci[0] < r1.kendall < r1.kendall_ci[1]
    assert r1.spearman_ci[0] < r1.spearman < r1.spearman_ci[1]
    assert r1.spearman_ci[1] - r1.spearman_ci[0] < 0.1
    assert rank_agreement(a, b, n_boot=200, seed=4).spearman_ci != r1.spearman_ci


def test_top_k_overlap():
    truth = np.arange(10.0)
    assert top_k_overlap(truth, truth, 3) == 1.0
    assert top_k_overlap(-truth, truth, 3) == 0.0
    score = np.array([0, 1, 2, 3, 4, 5, 6, 9, 8, 7.0])   # top-2 by score: idx 7, 8; truth: 9, 8
    assert top_k_overlap(score, truth, 2) == 0.5
    assert top_k_overlap(score, truth, 0.2) == 0.5
    with pytest.raises(ValueError):
        top_k_overlap(score, truth, 11)


def test_failed_scores_dropped_or_ranked_last():
    """Correlation tables give both: failures dropped, and failures ranked last (tied at the bottom)."""
    from harness.report.correlation import ranked_last

    score = np.array([3.0, np.nan, 1.0, -np.inf, 2.0, np.inf])
    last = ranked_last(score)
    assert last[[0, 2, 4]].tolist() == [3.0, 1.0, 2.0]
    assert (last[[1, 3, 5]] == last[1]).all() and last[1] < 1.0
    truth = np.array([30.0, 5.0, 10.0, 6.0, 20.0, 7.0])
    dropped = rank_agreement(score, truth, n_boot=0)
    kept = rank_agreement(last, truth, n_boot=0)
    assert dropped.n == 3 and dropped.spearman == pytest.approx(1.0)
    assert kept.n == 6 and kept.spearman == pytest.approx(stats.spearmanr(last, truth).statistic)
    assert kept.spearman < 1.0  # the failed cells tie, the truth orders them
    assert np.isnan(ranked_last(np.array([np.nan, np.inf]))).all()
