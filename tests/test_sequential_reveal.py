"""Sequential prediction sees of a second half only what the WSDM Cup 2019 revealed.

The challenge's ``log_input`` files give a second-half play's track, position and the session's
length; every other column (hour, date, premium, shuffle, context type, pauses) is hidden. The
default ``reveal="wsdm"`` integrates those over the session's first half; ``"context"`` reads
the second half's own columns (the optimistic protocol, kept for comparison).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import skipmodel.scale  # noqa: F401 - registers --method laplace
from skipmodel.model.fitting import FitResult, fit
from skipmodel.model.prediction import hidden_columns, imputed_second_halves, predict
from skipmodel.model.spec import Fixed, Markov, ModelSpec, Seasonal
from skipmodel.simulate.plays import toy_plays

SPEC = ModelSpec(
    terms=(
        Markov(),
        Seasonal(weekday=True, hour="cyclic_rw", position=False),
        Fixed(columns=("premium", "hist_user_behavior_is_shuffle")),
    )
)
#: Hidden columns the test scrambles in the second halves.
SCRAMBLED = ("hour_of_day", "weekday", "premium", "hist_user_behavior_is_shuffle", "date")


def _plays(seed: int) -> pd.DataFrame:
    plays = toy_plays(300, n_tracks=80, seed=seed)
    # the hour moves on within a session (toy sessions keep one hour), so it must be integrated
    hour = plays["hour_of_day"].astype(int) + plays["session_position"].astype(int) // 4
    plays["hour_of_day"] = (hour % 24).astype("int8")
    return plays


@pytest.fixture(scope="module")
def run() -> FitResult:
    return fit(SPEC, _plays(1), method="laplace", draws=200)


def _second_half(frame: pd.DataFrame) -> np.ndarray:
    return (2 * frame["session_position"] > frame["session_length"]).to_numpy()


def _scrambled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The second halves' hidden columns (and outcomes) replaced by other plays' values."""
    out = frame.copy()
    rows = np.flatnonzero(_second_half(frame))
    rng = np.random.default_rng(seed)
    for c in (*SCRAMBLED, "skip_2"):
        out.loc[rows, c] = frame[c].to_numpy()[rng.permutation(rows)]
    out.loc[rows, "premium"] = ~frame.loc[rows, "premium"]  # surely changed
    return out


def test_the_default_never_reads_a_second_halfs_own_context(run: FitResult) -> None:
    test = _plays(2)
    changed = _scrambled(test, seed=3)
    wsdm = predict(run, test, sequential=True)
    np.testing.assert_array_equal(wsdm["p_skip"], predict(run, changed, sequential=True)["p_skip"])
    # the revealed-context protocol reads them, so the same change moves its predictions
    context = predict(run, test, sequential=True, reveal="context")
    moved = predict(run, changed, sequential=True, reveal="context")
    assert np.abs(context["p_skip"] - moved["p_skip"]).max() > 0.01
    pd.testing.assert_frame_equal(wsdm[["session_id", "session_position"]], context.iloc[:, :2])


def test_hidden_columns_come_from_the_same_sessions_first_half() -> None:
    test = _plays(4)
    target = _second_half(test)
    hidden = hidden_columns(test)
    assert {"hour_of_day", "premium", "date", "context_type"} <= set(hidden)
    assert not {"track_id_clean", "session_position", "danceability", "prev_energy"} & set(hidden)
    assert not {"skip_2", "prev_skip_2"} & set(hidden)
    parts = imputed_second_halves(test, target, np.random.default_rng(0), 40)
    assert len(parts) == 40
    first = test.loc[~target]
    seen = {s: set(g["hour_of_day"]) for s, g in first.groupby("session_id")}
    premium = first.groupby("session_id")["premium"].first()
    drawn: dict[str, set[int]] = {s: set() for s in seen}
    for part in parts:
        np.testing.assert_array_equal(part.index, np.flatnonzero(target))
        for s, h, p in zip(part["session_id"], part["hour_of_day"], part["premium"], strict=True):
            assert h in seen[s]  # a first-half value of its own session
            assert p == premium[s]  # constant over the first half: carried forward
            drawn[s].add(int(h))
        assert (part["track_id_clean"] == test.loc[target, "track_id_clean"]).all()
    # integrated over the first half: every first-half hour of a session is drawn
    assert sum(drawn[s] == seen[s] for s in seen) >= 0.95 * len(seen)


def test_constant_first_halves_need_one_imputation_and_empty_ones_draw_from_all() -> None:
    test = toy_plays(60, n_tracks=30, seed=5)  # hours, premium... constant per session
    target = _second_half(test)
    read = ("hour_of_day", "premium", "weekday")
    assert len(imputed_second_halves(test, target, np.random.default_rng(0), 10, read=read)) == 1
    assert len(imputed_second_halves(test, target, np.random.default_rng(0), 10)) == 10
    # a one-play session has no first half: its play takes another session's columns
    lone = test[test["session_id"] == test["session_id"].iloc[0]].iloc[:1].copy()
    lone["session_id"], lone["session_length"], lone["hour_of_day"] = "lone", 1, 99
    frame = pd.concat([test, lone], ignore_index=True)
    target = _second_half(frame)
    parts = imputed_second_halves(frame, target, np.random.default_rng(1), 10)
    hours = {int(p["hour_of_day"].iloc[-1]) for p in parts}
    assert 99 not in hours and hours <= set(test.loc[~_second_half(test), "hour_of_day"])
