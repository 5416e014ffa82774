"""Simple baselines scored on the same held-out rows as the model.

Three reference predictors, each fitted on the training rows only:

- **overall rate**: every play gets the training skip rate.
- **per-track rate**: a track's training skip rate shrunk towards the overall rate by a
  Beta prior worth ``prior_plays`` pseudo-plays, ``(skips + prior_plays * rate) / (plays +
  prior_plays)``; a track never seen in training gets the overall rate.
- **repeat last skip**: predict that a play ends like the last observed one. Row-wise, the last
  observed play is the previous play of the session (its lag column, e.g. ``prev_skip_2``); for a
  session's second half (the WSDM setting) it is the last play of the first half, repeated for
  every prediction. Its probability is the training rate of skipping after a skip (after a
  non-skip, with no previous play), so log loss and Brier stay finite; its hard label is the
  repeated outcome itself (the overall-rate label when there is no previous play).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skipmodel.errors import SkipmodelError

__all__ = [
    "BaselinePrediction",
    "fit_baselines",
    "Baselines",
    "DEFAULT_PRIOR_PLAYS",
]

DEFAULT_PRIOR_PLAYS = 10.0
TRACK = "track_id_clean"


@dataclass(frozen=True)
class BaselinePrediction:
    """One baseline's predictions for a set of rows: probability and hard 0/1 label."""

    name: str
    p_skip: np.ndarray
    label: np.ndarray


def _outcome(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise SkipmodelError(f"column {column!r} is missing; cannot score baselines")
    values = frame[column]
    if values.isna().any():
        raise SkipmodelError(f"column {column!r} has missing outcomes")
    return values.to_numpy(dtype=float)


def _lag(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Previous outcome as float with NaN for 'no previous play'."""
    if column not in frame.columns:
        raise SkipmodelError(f"lag column {column!r} is missing; load the sample with lags=1")
    return pd.to_numeric(frame[column].astype("float64"), errors="coerce").to_numpy()


@dataclass(frozen=True)
class Baselines:
    """Baselines fitted on training rows; call :meth:`predict_rows` / :meth:`predict_second_half`."""

    outcome: str
    overall_rate: float
    track_rate: pd.Series
    prior_plays: float
    rate_after_skip: float
    rate_after_no_skip: float
    rate_first_play: float

    @property
    def names(self) -> tuple[str, ...]:
        return ("overall rate", "per-track rate", "repeat last skip")

    def _overall(self, n: int) -> BaselinePrediction:
        p = np.full(n, self.overall_rate)
        return BaselinePrediction("overall rate", p, (p >= 0.5).astype(float))

    def _per_track(self, tracks: pd.Series) -> BaselinePrediction:
        p = tracks.map(self.track_rate).astype(float).fillna(self.overall_rate).to_numpy()
        return BaselinePrediction("per-track rate", p, (p >= 0.5).astype(float))

    def _repeat(self, last: np.ndarray) -> BaselinePrediction:
        known = ~np.isnan(last)
        p = np.where(
            known,
            np.where(last == 1, self.rate_after_skip, self.rate_after_no_skip),
            self.rate_first_play,
        )
        fallback = float(self.rate_first_play >= 0.5)
        label = np.where(known, np.nan_to_num(last), fallback)
        return BaselinePrediction("repeat last skip", p, label.astype(float))

    def predict_rows(self, frame: pd.DataFrame) -> list[BaselinePrediction]:
        """Row-wise predictions; 'repeat last skip' uses the previous play's observed outcome."""
        last = _lag(frame, f"prev_{self.outcome}")
        return [self._overall(len(frame)), self._per_track(frame[TRACK]), self._repeat(last)]

    def predict_second_half(
        self, frame: pd.DataFrame, second_half: np.ndarray
    ) -> list[BaselinePrediction]:
        """Predictions for the rows where ``second_half`` is True, knowing only first halves.

        ``frame`` holds whole sessions sorted by ``(session_id, session_position)``; 'repeat last
        skip' repeats the outcome of each session's last first-half play (no first half: the
        first-play rate).
        """
        second_half = np.asarray(second_half, dtype=bool)
        y = _outcome(frame, self.outcome)
        first = frame.loc[~second_half, ["session_id", "session_position"]].assign(
            y=y[~second_half]
        )
        last_first = first.sort_values("session_position").groupby("session_id")["y"].last()
        rows = frame.loc[second_half]
        last = rows["session_id"].map(last_first).astype(float).to_numpy()
        return [self._overall(len(rows)), self._per_track(rows[TRACK]), self._repeat(last)]


def fit_baselines(
    train: pd.DataFrame, *, outcome: str = "skip_2", prior_plays: float = DEFAULT_PRIOR_PLAYS
) -> Baselines:
    """Fit the three baselines on training rows (needs the outcome, track id and its lag column).

    Examples
    --------
    >>> train = pd.DataFrame({"track_id_clean": ["a", "a", "b"], "skip_2": [1, 1, 0],
    ...                       "prev_skip_2": [None, 1, None]})
    >>> b = fit_baselines(train, prior_plays=1.0)
    >>> round(float(b.track_rate["a"]), 4)  # (2 + 1 * 2/3) / (2 + 1)
    0.8889
    """
    if prior_plays < 0:
        raise SkipmodelError("prior_plays must be >= 0")
    y = _outcome(train, outcome)
    if y.size == 0:
        raise SkipmodelError("no training rows to fit baselines on")
    overall = float(y.mean())
    by_track = pd.DataFrame({"track": train[TRACK].to_numpy(), "y": y}).groupby("track")["y"]
    skips, plays = by_track.sum(), by_track.size()
    track_rate = (skips + prior_plays * overall) / (plays + prior_plays)
    last = _lag(train, f"prev_{outcome}")

    def rate(mask: np.ndarray) -> float:
        # a transition never seen in training falls back to the overall rate
        return float(y[mask].mean()) if mask.any() else overall

    return Baselines(
        outcome=outcome,
        overall_rate=overall,
        track_rate=track_rate,
        prior_plays=float(prior_plays),
        rate_after_skip=rate(last == 1),
        rate_after_no_skip=rate(last == 0),
        rate_first_play=rate(np.isnan(last)),
    )
