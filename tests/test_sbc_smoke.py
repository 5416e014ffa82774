"""The SBC benchmark's rank and uniformity helpers on synthetic ranks (no fitting).

Uniform ranks must pass both tests, and ranks from a miscalibrated posterior — biased (prior
draws too often above the posterior), over-dispersed (posterior too narrow: U-shape) or
under-dispersed (too wide: a hump) — must fail them, as a wrong model fails a recovery check.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a top-level package beside src/
    sys.path.insert(0, str(REPO))
sbc = importlib.import_module("benchmarks.sbc")

L = 99  # ranks on 0..99
N = 200  # replications
BINS = 10


@pytest.fixture(scope="module")
def null() -> np.ndarray:
    return sbc.ecdf_null(N, L, 2000, np.random.default_rng(1))


def _ranks(prior: np.ndarray, sd_post: float, shift: float, seed: int) -> np.ndarray:
    """Ranks of ``prior`` draws among L "posterior" draws N(x + shift, sd_post), x the prior
    draw plus N(0, 1) noise: theta - x ~ N(0, 1) whatever theta, so the calibrated posterior is
    N(x, 1) (shift 0, sd 1) and any other shift or sd miscalibrates it."""
    rng = np.random.default_rng(seed)
    centre = prior + rng.normal(0, 1, prior.shape)  # the data's noise: posterior mean x
    post = centre[:, None] + shift + sd_post * rng.normal(0, 1, (len(prior), L))
    return np.array([sbc.rank_of(p, d, rng) for p, d in zip(prior, post, strict=True)])


def test_rank_and_thin() -> None:
    rng = np.random.default_rng(0)
    assert sbc.rank_of(0.5, np.array([0.1, 0.7, 0.3]), rng) == 2
    assert sbc.rank_of(-1.0, np.array([0.1, 0.7]), rng) == 0
    assert sbc.rank_of(2.0, np.array([0.1, 0.7]), rng) == 2
    ties = {sbc.rank_of(1.0, np.ones(3), rng) for _ in range(200)}
    assert ties == {0, 1, 2, 3}  # ties split at random over every position
    draws = np.arange(2 * 1000).reshape(2, 1000)
    kept = sbc.thin(draws, 199)
    assert len(kept) == 199 and len(set(kept)) == 199
    assert (kept < 1000).sum() == 100 and (kept >= 1000).sum() == 99  # both chains used
    assert np.all(np.diff(kept[:100]) == 10)  # evenly spaced within a chain
    with pytest.raises(ValueError):
        sbc.thin(draws, 2001)


def test_histogram_and_band() -> None:
    ranks = np.arange(L + 1).repeat(2)
    assert sbc.rank_histogram(ranks, L, BINS).tolist() == [20] * BINS
    with pytest.raises(ValueError):
        sbc.rank_histogram(ranks, L, 7)  # 100 ranks do not split into 7 equal bins
    low, high = sbc.histogram_band(N, BINS)
    assert low < N / BINS < high


def test_uniform_ranks_pass(null: np.ndarray) -> None:
    prior = np.random.default_rng(2).normal(0, 1, N)
    for ranks in (
        np.random.default_rng(3).integers(0, L + 1, N),
        _ranks(prior, sd_post=1.0, shift=0.0, seed=4),
    ):
        _, p_chi2 = sbc.chi_square_test(ranks, L, BINS)
        p_ecdf = sbc.ecdf_test(ranks, L, null)
        assert p_chi2 > 0.01 and p_ecdf > 0.01
        assert sbc.verdict(p_chi2, p_ecdf, 18) == "ok"
    p, lower, upper = sbc.ecdf_band(N, L, null)
    assert len(p) == L and np.all(lower < 0) and np.all(upper > 0)


@pytest.mark.parametrize(
    ("sd_post", "shift"),
    [(1.0, 0.6), (0.5, 0.0), (2.0, 0.0)],
    ids=["biased", "overconfident", "underconfident"],
)
def test_miscalibrated_ranks_fail(null: np.ndarray, sd_post: float, shift: float) -> None:
    prior = np.random.default_rng(5).normal(0, 1, N)
    ranks = _ranks(prior, sd_post, shift, seed=6)
    _, p_chi2 = sbc.chi_square_test(ranks, L, BINS)
    p_ecdf = sbc.ecdf_test(ranks, L, null)
    assert p_ecdf < 0.001
    assert sbc.verdict(p_chi2, p_ecdf, 18) == "fail"


def test_ecdf_statistic_is_vectorised() -> None:
    ranks = np.random.default_rng(7).integers(0, L + 1, (3, N))
    together = sbc.ecdf_statistic(ranks, L)
    apart = [float(sbc.ecdf_statistic(r, L)) for r in ranks]
    np.testing.assert_allclose(together, apart)
