"""Small statistics used by the views: binomial intervals, autocorrelation, periodogram."""

from __future__ import annotations

import numpy as np

#: Two-sided 95 % normal quantile.
Z95 = 1.959963984540054


def wilson_interval(
    successes: np.ndarray, trials: np.ndarray, *, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (NaN where ``trials`` is 0).

    Parameters
    ----------
    successes, trials : array_like
        Counts of successes and of trials per cell.
    z : float, default 1.96
        Normal quantile of the interval (1.96 for 95 %).

    Returns
    -------
    lower, upper : numpy.ndarray

    Examples
    --------
    >>> lo, hi = wilson_interval(np.array([5]), np.array([10]))
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.2366, 0.7634)
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    bad = n <= 0
    # the interval contains p exactly (rounding can put a bound a hair past it at k = 0 or n)
    lower = np.clip(np.minimum(centre - half, p), 0.0, 1.0)
    upper = np.clip(np.maximum(centre + half, p), 0.0, 1.0)
    return np.where(bad, np.nan, lower), np.where(bad, np.nan, upper)


def autocorrelation(series: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation at lags ``0..max_lag`` (the biased estimator, as in ``acf``)."""
    x = np.asarray(series, dtype=np.float64)
    x = x - x.mean()
    denom = float(np.dot(x, x))
    max_lag = min(max_lag, len(x) - 1)
    if denom == 0.0 or max_lag < 0:
        return np.full(max(max_lag, 0) + 1, np.nan)
    return np.array([np.dot(x[: len(x) - k], x[k:]) / denom for k in range(max_lag + 1)])


def periodogram(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (cycles per step, excluding 0) and power ``|FFT|^2 / n`` of the demeaned series."""
    x = np.asarray(series, dtype=np.float64)
    x = x - x.mean()
    power = np.abs(np.fft.rfft(x)) ** 2 / max(len(x), 1)
    freq = np.fft.rfftfreq(len(x), d=1.0)
    return freq[1:], power[1:]
