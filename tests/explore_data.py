"""Small random logs and loader-contract batches built by brute force in pandas (explore tests).

The batches follow the loader contract without using the loaders: joined track features,
``prev_*`` lags that are null at position 1 and across missing positions, rows sorted by
(session_id, session_position), sessions never split across batches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from skipmodel.store.schema import LOG_SCHEMA, SKIP_OUTCOMES, TRACK_NUMERIC_FEATURES, TRACK_SCHEMA

BASE_DAY = np.datetime64("2018-07-15")


def make_tracks(n: int, rng: np.random.Generator) -> pd.DataFrame:
    data: dict[str, object] = {"track_id": [f"t_{i:05d}" for i in range(n)]}
    for f in TRACK_NUMERIC_FEATURES:
        kind = TRACK_SCHEMA.field(f).type
        if pa.types.is_integer(kind):
            lo, hi = {"release_year": (1960, 2018), "key": (0, 11), "time_signature": (1, 5)}[f]
            data[f] = rng.integers(lo, hi + 1, n)
        elif f == "duration":
            data[f] = rng.lognormal(5.3, 0.4, n)
        elif f == "acousticness":
            data[f] = np.where(rng.random(n) < 0.05, 0.0, rng.beta(0.5, 2.0, n))
        else:
            data[f] = rng.random(n)
    data["mode"] = rng.choice(["major", "minor"], n)
    frame = pd.DataFrame(data)
    frame.loc[3, "danceability"] = np.nan  # a track with one feature unknown
    frame.loc[4, "duration"] = 3.0  # a jingle and a podcast: duration spans three decades
    frame.loc[5, "duration"] = 3600.0
    return frame


def make_log(
    rng: np.random.Generator, *, sessions: int = 80, tracks: int = 30, days: int = 20
) -> pd.DataFrame:
    """A log with missing positions, tracks absent from the features table and stray dates."""
    rows = []
    popularity = 1.0 / np.arange(1, tracks + 3) ** 1.1
    popularity /= popularity.sum()
    ids = [f"t_{i:05d}" for i in range(tracks + 2)]  # the last two have no features
    for s in range(sessions):
        length = int(rng.integers(10, 21))
        day = BASE_DAY + np.timedelta64(int(rng.integers(0, days)), "D")
        hour = int(rng.integers(0, 24))
        keep = rng.random(length) > 0.12
        for pos in range(1, length + 1):
            if not keep[pos - 1]:
                continue
            u = rng.random()
            skip_1, skip_2, skip_3 = u < 0.2, u < 0.5, u < 0.65
            date = day
            if rng.random() < 0.02:
                date = day - np.timedelta64(int(rng.integers(2, 60)), "D")
            elif pos > 15 and s % 7 == 0:
                date = day + np.timedelta64(1, "D")  # crosses midnight: plausible
            rows.append(
                {
                    "session_id": f"{s % 3}_{s:06d}",
                    "session_position": pos,
                    "session_length": length,
                    "track_id_clean": ids[int(rng.choice(len(ids), p=popularity))],
                    "skip_1": skip_1,
                    "skip_2": skip_2,
                    "skip_3": skip_3,
                    "not_skipped": (not skip_3) and rng.random() < 0.95,
                    "hour_of_day": (hour + pos // 6) % 24,
                    "date": date,
                }
            )
    # a short session dated weeks before everything else: a stray day (the busy-day rule)
    for pos in (3, 4):
        rows.append(
            {
                **rows[0],
                "session_id": "9_stray",
                "session_position": pos,
                "session_length": 12,
                "date": BASE_DAY - np.timedelta64(40, "D"),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values(["session_id", "session_position"], ignore_index=True)


def loader_frame(
    log: pd.DataFrame, tracks: pd.DataFrame, *, lag_features: list[str]
) -> pd.DataFrame:
    """The loader's output columns, by brute force (a per-row loop for the lags)."""
    out = log.merge(
        tracks.rename(columns={"track_id": "track_id_clean"}), on="track_id_clean", how="left"
    )
    out = out.sort_values(["session_id", "session_position"], ignore_index=True)
    out["weekday"] = pd.to_datetime(out["date"]).dt.day_of_week
    lag_cols = [*SKIP_OUTCOMES, "track_id_clean", *lag_features]
    prev = {c: [None] * len(out) for c in lag_cols}
    sid, pos = out["session_id"].to_numpy(), out["session_position"].to_numpy()
    for i in range(1, len(out)):
        if sid[i] == sid[i - 1] and pos[i] == pos[i - 1] + 1:
            for c in lag_cols:
                prev[c][i] = out.at[i - 1, c]
    for c in lag_cols:
        out[f"prev_{c}"] = prev[c]
    return out


def to_batches(frame: pd.DataFrame, *, sessions_per_batch: int) -> list[pa.RecordBatch]:
    """Arrow batches cut at session boundaries."""
    types = {f.name: f.type for f in LOG_SCHEMA}
    fields = []
    for c in frame.columns:
        base = c.removeprefix("prev_")
        if base in types and not pa.types.is_dictionary(types[base]):
            fields.append(pa.field(c, types[base]))
        elif base in TRACK_SCHEMA.names and base != "mode":
            fields.append(pa.field(c, TRACK_SCHEMA.field(base).type))
        elif c == "weekday":
            fields.append(pa.field(c, pa.int8()))
        else:
            fields.append(pa.field(c, pa.string()))
    table = pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)
    codes = pd.factorize(frame["session_id"])[0]
    group = codes // sessions_per_batch
    batches = []
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        batches.extend(table.slice(int(idx[0]), len(idx)).combine_chunks().to_batches())
    return batches


class FrameSources:
    """``Sources`` over prepared batches (projections ignored: the views pick their columns)."""

    def __init__(
        self, batches: list[pa.RecordBatch], tracks: pd.DataFrame, *, track_batch_rows: int = 7
    ) -> None:
        self.batches = batches
        self.tracks = pa.Table.from_pandas(tracks, schema=TRACK_SCHEMA, preserve_index=False)
        self.track_batch_rows = track_batch_rows
        self.log_reads = 0

    def log_batches(self, **_: object) -> list[pa.RecordBatch]:
        self.log_reads += 1
        return self.batches

    def track_batches(self, columns: list[str]) -> list[pa.RecordBatch]:
        return self.tracks.select(list(columns)).to_batches(max_chunksize=self.track_batch_rows)
