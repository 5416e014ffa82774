"""Small in-memory plays with known effects, shaped like the loaders' output.

For model tests and quick experiments without a store; ``skipmodel simulate`` is the full
MSSD-format simulator. Sessions are generated play by play so the previous outcome really
drives the next one (the Markov effect), and lag columns follow the loaders' contract (null at
position 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skipmodel.store.schema import CONTEXT_TYPES, REASONS_START


@dataclass(frozen=True)
class ToyEffects:
    """True effects on the logit scale."""

    intercept: float = 0.1
    weekday_sd: float = 0.15
    hour_amplitude: float = 0.3  # effect = amplitude * cos(2 pi (hour - 3) / 24)
    position_slope: float = -0.02  # per position, centred
    prev_skip: float = 1.0  # previous play skipped vs not
    first_play: float = -0.3  # position 1 vs the average
    track_sd: float = 0.5
    danceability: float = -0.4
    memory: float = 0.3  # danceability before x danceability now (standardised)
    shuffle: float = 0.3
    context_sd: float = 0.2


def toy_plays(
    n_sessions: int = 200,
    *,
    n_tracks: int = 150,
    seed: int = 0,
    effects: ToyEffects = ToyEffects(),
    session_sd: float = 0.0,
) -> pd.DataFrame:
    """Plays of ``n_sessions`` sessions (10..20 plays) with the loaders' columns.

    ``session_sd`` > 0 adds a per-session propensity, a logit-scale intercept drawn
    normal(0, session_sd²) per session (``session_sd`` times one standard normal each, from a
    stream of its own so that every other draw is as at 0), to every play of the session; the
    default 0 gives the same frame as before it existed.
    """
    if not (np.isfinite(session_sd) and session_sd >= 0):
        raise ValueError(f"session_sd must be finite and >= 0, got {session_sd}")
    rng = np.random.default_rng(seed)
    propensity = session_sd * np.random.default_rng(
        np.random.SeedSequence(seed).spawn(1)[0]
    ).standard_normal(n_sessions)
    tracks = pd.DataFrame(
        {
            "track_id": [f"t_{i:05d}" for i in range(n_tracks)],
            "duration": rng.lognormal(np.log(220), 0.3, n_tracks),
            "us_popularity_estimate": 90 + 10 * rng.beta(5, 1, n_tracks),
            "danceability": rng.uniform(0, 1, n_tracks),
            "energy": rng.uniform(0, 1, n_tracks),
        }
    )
    track_effect = rng.normal(0, effects.track_sd, n_tracks)
    weekday_effect = rng.normal(0, effects.weekday_sd, 7)
    weekday_effect -= weekday_effect.mean()
    context_effect = rng.normal(0, effects.context_sd, len(CONTEXT_TYPES))
    dance_z = (tracks["danceability"] - 0.5) / np.sqrt(1 / 12)
    rows = []
    for s in range(n_sessions):
        length = int(rng.integers(10, 21))
        weekday = int(rng.integers(0, 7))
        hour = int(rng.integers(0, 24))
        context = int(rng.integers(0, len(CONTEXT_TYPES)))
        premium = bool(rng.random() < 0.7)
        shuffle = bool(rng.random() < 0.3)
        picks = rng.integers(0, n_tracks, length)
        prev = None
        for pos in range(1, length + 1):
            t = picks[pos - 1]
            eta = (
                effects.intercept
                + weekday_effect[weekday]
                + effects.hour_amplitude * np.cos(2 * np.pi * (hour - 3) / 24)
                + effects.position_slope * (pos - 10)
                + track_effect[t]
                + effects.danceability * dance_z[t]
                + effects.shuffle * (shuffle - 0.3)
                + context_effect[context]
                + propensity[s]
            )
            if prev is None:
                eta += effects.first_play
            else:
                eta += effects.prev_skip * (prev - 0.5)
                eta += effects.memory * dance_z[t] * dance_z[picks[pos - 2]]
            skip = bool(rng.random() < 1 / (1 + np.exp(-eta)))
            rows.append(
                (
                    f"{s}_sess{s:05d}",
                    pos,
                    length,
                    f"t_{t:05d}",
                    skip,
                    weekday,
                    hour,
                    premium,
                    CONTEXT_TYPES[context],
                    shuffle,
                )
            )
            prev = skip
    frame = pd.DataFrame(
        rows,
        columns=[
            "session_id",
            "session_position",
            "session_length",
            "track_id_clean",
            "skip_2",
            "weekday",
            "hour_of_day",
            "premium",
            "context_type",
            "hist_user_behavior_is_shuffle",
        ],
    )
    frame["skip_1"] = frame["skip_2"] & (rng.random(len(frame)) < 0.6)
    frame["skip_3"] = frame["skip_2"] | (rng.random(len(frame)) < 0.2)
    frame["not_skipped"] = ~frame["skip_3"]
    frame["context_switch"] = rng.random(len(frame)) < 0.05
    frame["no_pause_before_play"] = rng.random(len(frame)) < 0.8
    frame["long_pause_before_play"] = rng.random(len(frame)) < 0.05
    frame["hist_user_behavior_reason_start"] = rng.choice(REASONS_START[:4], len(frame))
    frame["hist_user_behavior_reason_end"] = np.where(frame["skip_2"], "fwdbtn", "trackdone")
    frame["date"] = pd.Timestamp("2018-07-02") + pd.to_timedelta(frame["weekday"], unit="D")
    frame = frame.merge(
        tracks.rename(columns={"track_id": "track_id_clean"}), on="track_id_clean", how="left"
    ).sort_values(["session_id", "session_position"], ignore_index=True)
    first = frame["session_position"] == 1
    lagged = [
        "skip_1",
        "skip_2",
        "skip_3",
        "not_skipped",
        "hist_user_behavior_reason_end",
        "track_id_clean",
        "duration",
        "us_popularity_estimate",
        "danceability",
        "energy",
    ]
    for col in lagged:
        prev = frame.groupby("session_id", sort=False)[col].shift(1)
        if frame[col].dtype == bool:
            prev = prev.astype("boolean")
        frame[f"prev_{col}"] = prev.where(~first)
    for col in ["skip_1", "skip_2", "skip_3", "not_skipped"]:
        frame[f"prev2_{col}"] = (
            frame.groupby("session_id", sort=False)[col].shift(2).astype("boolean")
        )
    frame["weekday"] = frame["weekday"].astype(np.int8)
    frame["session_position"] = frame["session_position"].astype(np.int8)
    frame["hour_of_day"] = frame["hour_of_day"].astype(np.int8)
    return frame
