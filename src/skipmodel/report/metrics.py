"""Held-out metrics for skip probabilities, including the WSDM Cup 2019 sequential metrics.

Everything here is plain NumPy/pandas on arrays of outcomes ``y`` (0/1) and predicted skip
probabilities ``p``; nothing knows about models or posteriors.

Conventions
-----------
- A play is *predicted skipped* when ``p >= 0.5`` (unless hard labels are passed).
- Log loss clips probabilities to ``[eps, 1 - eps]`` with ``eps = 1e-15`` so a confident miss
  is costly but finite.
- AUC is the Mann-Whitney statistic with mid-ranks: a tied (positive, negative) pair counts 1/2.
- Expected calibration error uses ``n_bins`` equal-width bins on [0, 1] (default 10; the last
  bin is closed, ``[0.9, 1.0]``), each weighted by its share of plays:
  ``ECE = sum_b (n_b / N) * |mean(y in b) - mean(p in b)|``. Empty bins contribute nothing.
- WSDM Cup 2019 (Spotify Sequential Skip Prediction Challenge): the *second half* of a session
  is the plays with ``2 * session_position > session_length``; for one session with ``T``
  predictions in position order, ``AA = (1/T) * sum_i A(i) * L(i)``, where ``L(i)`` is 1 when
  the i-th prediction is correct and ``A(i)`` is the accuracy among the first ``i``
  predictions. The reported *mean average accuracy* is the mean of AA over sessions, and the
  *first-prediction accuracy* the share of sessions whose first second-half prediction is
  correct — exactly as the challenge's published evaluation code computes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "ClassificationMetrics",
    "ReliabilityCurve",
    "SequentialMetrics",
    "accuracy",
    "average_accuracy",
    "brier_score",
    "classification_metrics",
    "expected_calibration_error",
    "log_loss",
    "reliability_curve",
    "roc_auc",
    "second_half_mask",
    "sequential_metrics",
]

LOG_LOSS_EPS = 1e-15
DEFAULT_BINS = 10


def _check(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(p, dtype=float).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y and p differ in length ({y_arr.size} vs {p_arr.size})")
    if y_arr.size == 0:
        raise ValueError("no plays to score")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0/1")
    if not np.isfinite(p_arr).all() or (p_arr < 0).any() or (p_arr > 1).any():
        raise ValueError("probabilities must be finite and within [0, 1]")
    return y_arr, p_arr


def log_loss(y: ArrayLike, p: ArrayLike, *, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative Bernoulli log-likelihood (natural log), probabilities clipped to ``eps``."""
    y_arr, p_arr = _check(y, p)
    p_arr = np.clip(p_arr, eps, 1 - eps)
    return float(-np.mean(y_arr * np.log(p_arr) + (1 - y_arr) * np.log1p(-p_arr)))


def brier_score(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared difference between outcome and probability."""
    y_arr, p_arr = _check(y, p)
    return float(np.mean((p_arr - y_arr) ** 2))


def accuracy(y: ArrayLike, p: ArrayLike, *, threshold: float = 0.5) -> float:
    """Share of plays where ``p >= threshold`` agrees with the outcome (hard 0/1 ``p`` works too)."""
    y_arr, p_arr = _check(y, p)
    return float(np.mean((p_arr >= threshold) == (y_arr == 1)))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    # start index of each run of equal values, and the run each sorted item belongs to
    new_run = np.r_[True, sorted_vals[1:] != sorted_vals[:-1]]
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], values.size]
    run_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(values.size)
    ranks[order] = run_rank[run_id]
    return ranks


def roc_auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve: P(p of a random skip > p of a random non-skip), ties count 1/2.

    Computed from mid-ranks in O(n log n). NaN when only one class is present.
    """
    y_arr, p_arr = _check(y, p)
    n_pos = int(y_arr.sum())
    n_neg = y_arr.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _midranks(p_arr)
    u = ranks[y_arr == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@dataclass(frozen=True)
class ReliabilityCurve:
    """Binned calibration data: per bin, the mean prediction, observed rate and count."""

    edges: np.ndarray
    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    count: np.ndarray

    @property
    def n(self) -> int:
        return int(self.count.sum())


def reliability_curve(
    y: ArrayLike, p: ArrayLike, *, n_bins: int = DEFAULT_BINS
) -> ReliabilityCurve:
    """Equal-width bins on [0, 1] (last bin closed); empty bins have NaN means and count 0."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    y_arr, p_arr = _check(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, p_arr, side="right") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p_arr, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y_arr, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / np.maximum(count, 1), np.nan)
        rate = np.where(count > 0, sum_y / np.maximum(count, 1), np.nan)
    return ReliabilityCurve(edges, mean_p, rate, count)


def expected_calibration_error(y: ArrayLike, p: ArrayLike, *, n_bins: int = DEFAULT_BINS) -> float:
    """Count-weighted mean |observed rate - mean prediction| over equal-width bins."""
    curve = reliability_curve(y, p, n_bins=n_bins)
    used = curve.count > 0
    gaps = np.abs(curve.observed_rate[used] - curve.mean_predicted[used])
    return float(np.sum(curve.count[used] * gaps) / curve.n)


@dataclass(frozen=True)
class ClassificationMetrics:
    """Row-wise held-out metrics on ``n`` plays."""

    n: int
    log_loss: float
    brier: float
    auc: float
    accuracy: float
    ece: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "log_loss": self.log_loss,
            "brier": self.brier,
            "auc": self.auc,
            "accuracy": self.accuracy,
            "ece": self.ece,
        }


def classification_metrics(
    y: ArrayLike,
    p: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    n_bins: int = DEFAULT_BINS,
) -> ClassificationMetrics:
    """All row-wise metrics at once; ``labels`` (0/1) overrides ``p >= 0.5`` for accuracy."""
    y_arr, p_arr = _check(y, p)
    acc = accuracy(y_arr, p_arr) if labels is None else accuracy(y_arr, np.asarray(labels, float))
    return ClassificationMetrics(
        n=int(y_arr.size),
        log_loss=log_loss(y_arr, p_arr),
        brier=brier_score(y_arr, p_arr),
        auc=roc_auc(y_arr, p_arr),
        accuracy=acc,
        ece=expected_calibration_error(y_arr, p_arr, n_bins=n_bins),
    )


# --- WSDM Cup 2019 sequential metrics -------------------------------------------------------


def second_half_mask(session_position: ArrayLike, session_length: ArrayLike) -> np.ndarray:
    """Plays the challenge asks to predict: ``2 * session_position > session_length``."""
    pos = np.asarray(session_position, dtype=np.int64)
    length = np.asarray(session_length, dtype=np.int64)
    return 2 * pos > length


def average_accuracy(correct: ArrayLike) -> float:
    """AA of one session's predictions in order: ``(1/T) sum_i A(i) L(i)``.

    Examples
    --------
    >>> round(average_accuracy([1, 1, 1, 0, 1]), 4)  # (1/1 + 2/2 + 3/3 + 0 + 4/5) / 5
    0.76
    """
    hits = np.asarray(correct, dtype=float).ravel()
    if hits.size == 0:
        raise ValueError("a session needs at least one prediction")
    running = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(np.sum(running * hits) / hits.size)


@dataclass(frozen=True)
class SequentialMetrics:
    """The challenge's two metrics over ``n_sessions`` second halves (``n_plays`` predictions)."""

    n_sessions: int
    n_plays: int
    mean_average_accuracy: float
    first_prediction_accuracy: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n_sessions": self.n_sessions,
            "n_plays": self.n_plays,
            "mean_average_accuracy": self.mean_average_accuracy,
            "first_prediction_accuracy": self.first_prediction_accuracy,
        }


def sequential_metrics(
    session_id: ArrayLike,
    session_position: ArrayLike,
    y: ArrayLike,
    predicted: ArrayLike,
) -> SequentialMetrics:
    """Mean average accuracy and first-prediction accuracy over sessions.

    Parameters
    ----------
    session_id, session_position
        Identify each prediction; rows are put in position order within each session.
    y
        Observed outcomes (0/1) of the predicted plays (normally the second halves only; see
        :func:`second_half_mask`).
    predicted
        Hard predictions (0/1), or probabilities thresholded at 0.5.
    """
    frame = pd.DataFrame(
        {
            "session_id": np.asarray(session_id),
            "position": np.asarray(session_position, dtype=np.int64),
            "y": np.asarray(y, dtype=float),
            "pred": np.asarray(predicted, dtype=float),
        }
    )
    if frame.empty:
        raise ValueError("no second-half plays to score")
    frame = frame.sort_values(["session_id", "position"], kind="mergesort")
    hit = ((frame["pred"].to_numpy() >= 0.5) == (frame["y"].to_numpy() == 1)).astype(float)
    groups = frame["session_id"].to_numpy()
    # i-th prediction within its session (1-based) and the running number of hits
    i = frame.groupby("session_id", sort=False).cumcount().to_numpy() + 1
    running_hits = pd.Series(hit).groupby(groups).cumsum().to_numpy()
    contrib = pd.Series(running_hits / i * hit)
    per_session_sum = contrib.groupby(groups, sort=False).sum()
    per_session_len = contrib.groupby(groups, sort=False).size()
    aa = per_session_sum / per_session_len
    first = pd.Series(hit[i == 1], index=groups[i == 1])
    return SequentialMetrics(
        n_sessions=int(aa.size),
        n_plays=int(hit.size),
        mean_average_accuracy=float(aa.mean()),
        first_prediction_accuracy=float(first.mean()),
    )
