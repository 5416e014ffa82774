"""Build tiny stores directly with pyarrow, in the layout of ``notes/CONTRACTS.md``.

A plain module (not a fixture file) so any test can import it::

    from store_factory import random_logs, random_tracks, write_store

It does not use ``skipmodel.ingest``: loader tests stay independent of the ingest code, and stores
can be shaped in ways ingest would rarely produce (a session split over several part files,
duplicate positions, missing positions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skipmodel.store.hashing import session_bucket
from skipmodel.store.layout import StoreLayout
from skipmodel.store.schema import (
    CONTEXT_TYPES,
    LOG_COLUMNS,
    LOG_INT_FLAGS,
    LOG_SCHEMA,
    REASONS_END,
    REASONS_START,
    SCHEMA_VERSION,
    TRACK_COLUMNS,
    TRACK_SCHEMA,
)


def write_store(
    root: Path,
    logs: pa.Table,
    tracks: pa.Table | None = None,
    *,
    n_buckets: int = 8,
    n_parts: int = 1,
    rng: np.random.Generator | None = None,
    track_parts: int = 1,
) -> StoreLayout:
    """Write ``logs`` (LOG_SCHEMA) and ``tracks`` (TRACK_SCHEMA) as a store under ``root``.

    Each bucket's rows are spread at random over ``n_parts`` part files (so a session can be split
    across parts); every part is sorted by ``(session_id, session_position)`` as ingest writes
    them. Tracks are split over ``track_parts`` files in row order.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    layout = StoreLayout(Path(root))
    logs = logs.select(list(LOG_COLUMNS)).cast(LOG_SCHEMA)
    buckets = session_bucket(logs.column("session_id"), n_buckets)
    part_of_row = rng.integers(0, n_parts, size=logs.num_rows)
    for b in np.unique(buckets):
        for part in range(n_parts):
            rows = np.flatnonzero((buckets == b) & (part_of_row == part))
            if rows.size == 0:
                continue
            chunk = logs.take(pa.array(rows)).sort_by(
                [("session_id", "ascending"), ("session_position", "ascending")]
            )
            path = layout.bucket_dir(int(b)) / f"part-src{part:03d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(chunk, path, compression="zstd")
    n_tracks = 0
    if tracks is not None:
        tracks = tracks.select(list(TRACK_COLUMNS)).cast(TRACK_SCHEMA)
        n_tracks = tracks.num_rows
        layout.tracks.mkdir(parents=True, exist_ok=True)
        for part, rows in enumerate(np.array_split(np.arange(tracks.num_rows), track_parts)):
            pq.write_table(
                tracks.take(pa.array(rows, type=pa.int64())),
                layout.tracks / f"part-tf{part:03d}.parquet",
                compression="zstd",
            )
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "n_buckets": n_buckets,
        "sources": {},
        "totals": {
            "log_rows_read": logs.num_rows,
            "log_rows_written": logs.num_rows,
            "log_rows_rejected": 0,
            "track_rows_read": n_tracks,
            "track_rows_written": n_tracks,
            "track_rows_rejected": 0,
        },
        "integrity": {},
    }
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.manifest_path.write_text(json.dumps(manifest, indent=1))
    return layout


def random_logs(
    rng: np.random.Generator,
    n_sessions: int,
    *,
    n_tracks: int = 50,
    missing: float = 0.0,
    duplicate: float = 0.0,
    dates: Sequence[str] = ("2018-07-15", "2018-07-16", "2018-07-17"),
) -> pa.Table:
    """Random session logs in LOG_SCHEMA, with a share of positions dropped or duplicated.

    Duplicated rows carry independent random outcomes, so a lag taken from the wrong copy shows.
    Dates vary inside a session (each row draws its own), to exercise row-level date filters.
    """
    lengths = rng.integers(1, 21, size=n_sessions)
    session = np.repeat(np.arange(n_sessions), lengths)
    position = np.concatenate([np.arange(1, n + 1) for n in lengths])
    keep = rng.random(session.size) >= missing
    session, position = session[keep], position[keep]
    dup = rng.random(session.size) < duplicate
    session = np.concatenate([session, session[dup]])
    position = np.concatenate([position, position[dup]])
    n = session.size
    skip_2 = rng.random(n) < 0.5
    skip_1 = skip_2 & (rng.random(n) < 0.6)
    skip_3 = skip_2 | (rng.random(n) < 0.2)
    data = {
        "session_id": [f"{s % 3}_sess{s:06d}" for s in session],
        "session_position": position,
        "session_length": lengths[session],
        "track_id_clean": [f"t_{t:05d}" for t in rng.integers(0, n_tracks, size=n)],
        "skip_1": skip_1,
        "skip_2": skip_2,
        "skip_3": skip_3,
        "not_skipped": ~skip_3,
        **{c: rng.random(n) < 0.3 for c in LOG_INT_FLAGS},
        "hist_user_behavior_n_seekfwd": rng.integers(0, 3, size=n),
        "hist_user_behavior_n_seekback": rng.integers(0, 3, size=n),
        "hist_user_behavior_is_shuffle": rng.random(n) < 0.3,
        "hour_of_day": rng.integers(0, 24, size=n),
        "date": pd.to_datetime(rng.choice(list(dates), size=n)).date,
        "premium": rng.random(n) < 0.8,
        "context_type": rng.choice(CONTEXT_TYPES, size=n),
        "hist_user_behavior_reason_start": rng.choice(REASONS_START, size=n),
        "hist_user_behavior_reason_end": rng.choice(REASONS_END, size=n),
    }
    # Shuffle rows: the store writer, not the generator, is responsible for sorting.
    order = rng.permutation(n)
    frame = pd.DataFrame({k: np.asarray(v)[order] for k, v in data.items()})
    return logs_from_frame(frame)


def random_tracks(
    rng: np.random.Generator, n_tracks: int = 50, *, coverage: float = 0.8, duplicates: int = 0
) -> pa.Table:
    """Features for about ``coverage`` of the ids ``t_00000 ..``; ``duplicates`` ids twice."""
    ids = [f"t_{t:05d}" for t in range(n_tracks) if rng.random() < coverage]
    ids += list(rng.choice(ids, size=duplicates)) if duplicates and ids else []
    n = len(ids)
    frame = pd.DataFrame({"track_id": ids})
    for field in TRACK_SCHEMA:
        if field.name == "track_id":
            continue
        if field.name == "mode":
            frame[field.name] = rng.choice(["major", "minor"], size=n)
        elif pa.types.is_integer(field.type):
            frame[field.name] = rng.integers(0, 12, size=n)
        else:
            frame[field.name] = rng.normal(size=n)
    return tracks_from_frame(frame)


def _to_bool(series: pd.Series) -> np.ndarray:
    if series.dtype == bool:
        return series.to_numpy()
    text = series.astype(str).str.strip().str.lower()
    return text.isin(["true", "1"]).to_numpy()


def logs_from_frame(frame: pd.DataFrame) -> pa.Table:
    """A LOG_SCHEMA table from a DataFrame with the MSSD columns (text booleans allowed)."""
    arrays = []
    for field in LOG_SCHEMA:
        col = frame[field.name]
        if pa.types.is_boolean(field.type):
            arrays.append(pa.array(_to_bool(col), type=pa.bool_()))
        elif pa.types.is_date32(field.type):
            arrays.append(pa.array(pd.to_datetime(col).dt.date.tolist(), type=pa.date32()))
        elif pa.types.is_dictionary(field.type):
            arrays.append(pa.array(col.astype(str).tolist(), type=pa.string()).dictionary_encode())
        elif pa.types.is_string(field.type):
            arrays.append(pa.array(col.astype(str).tolist(), type=pa.string()))
        else:
            arrays.append(pa.array(col.to_numpy().astype(np.int64)).cast(field.type))
    return pa.Table.from_arrays(arrays, names=list(LOG_COLUMNS)).cast(LOG_SCHEMA)


def tracks_from_frame(frame: pd.DataFrame) -> pa.Table:
    """A TRACK_SCHEMA table from a DataFrame with the track-feature columns."""
    arrays = []
    for field in TRACK_SCHEMA:
        col = frame[field.name]
        if pa.types.is_dictionary(field.type):
            arrays.append(pa.array(col.astype(str).tolist(), type=pa.string()).dictionary_encode())
        elif pa.types.is_string(field.type):
            arrays.append(pa.array(col.astype(str).tolist(), type=pa.string()))
        elif pa.types.is_integer(field.type):
            arrays.append(pa.array(col.to_numpy().astype(np.int64)).cast(field.type))
        else:
            arrays.append(pa.array(col.to_numpy().astype(np.float64)))
    return pa.Table.from_arrays(arrays, names=list(TRACK_COLUMNS)).cast(TRACK_SCHEMA)


def logs_from_csv(path: Path) -> pa.Table:
    """Parse a real MSSD log CSV with pandas into LOG_SCHEMA (test-side, not the ingest code)."""
    return logs_from_frame(pd.read_csv(path, dtype={"session_id": str, "track_id_clean": str}))


def tracks_from_csv(path: Path) -> pa.Table:
    """Parse a real MSSD track-features CSV with pandas into TRACK_SCHEMA."""
    return tracks_from_frame(pd.read_csv(path, dtype={"track_id": str, "mode": str}))
