"""A fast synthetic MSSD session log (real text format) for benchmarks, written with Arrow.

Used when the simulator's output is not available or too slow to make at benchmark scale. The
values are plausible, not modelled: what matters here is the text format, the row count and a
realistic compressibility (uuid ids, sessions of 10..20 plays, a track pool).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from skipmodel.store import schema


def _uuids(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return np.array([prefix + str(uuid.UUID(bytes=r.tobytes())) for r in raw], dtype=object)


def synthetic_log_table(n_rows: int, *, seed: int = 0, file_index: int = 0) -> pa.Table:
    """About ``n_rows`` log rows (whole sessions, sorted by session id) as a typed table."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(10, 21, size=n_rows // 15 + 10)
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), n_rows) + 1]
    n_sessions = len(lengths)
    sids = _uuids(rng, n_sessions, f"{file_index}_")
    sids.sort()
    n = int(lengths.sum())
    session = np.repeat(np.arange(n_sessions), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(n) - starts + 1
    tracks = _uuids(np.random.default_rng(12345), 50_000, "t_")
    skip2 = rng.random(n) < 0.52
    skip1 = skip2 & (rng.random(n) < 0.7)
    skip3 = skip2 | (rng.random(n) < 0.1)
    not_skipped = ~skip3 & (rng.random(n) < 0.95)
    pause = rng.integers(0, 3, size=n)
    hour = np.repeat(rng.integers(0, 24, size=n_sessions), lengths)
    old = np.repeat(rng.random(n_sessions) < 0.01, lengths)
    day = np.where(old, np.datetime64("2018-06-15"), np.datetime64("2018-07-15"))

    def pick(values: tuple[str, ...], p: float = 0.6) -> pa.Array:
        k = len(values)
        probs = np.full(k, (1 - p) / (k - 1))
        probs[0] = p
        return pa.array(np.asarray(values, dtype=object)[rng.choice(k, size=n, p=probs)])

    cols = {
        "session_id": pa.array(sids[session]),
        "session_position": pa.array(position.astype(np.int16)),
        "session_length": pa.array(lengths[session].astype(np.int16)),
        "track_id_clean": pa.array(tracks[rng.zipf(1.3, size=n) % len(tracks)]),
        "skip_1": pa.array(skip1),
        "skip_2": pa.array(skip2),
        "skip_3": pa.array(skip3),
        "not_skipped": pa.array(not_skipped),
        "context_switch": pa.array((rng.random(n) < 0.05).astype(np.int8)),
        "no_pause_before_play": pa.array((pause == 0).astype(np.int8)),
        "short_pause_before_play": pa.array((pause == 1).astype(np.int8)),
        "long_pause_before_play": pa.array((pause == 2).astype(np.int8)),
        "hist_user_behavior_n_seekfwd": pa.array(rng.poisson(0.1, size=n).astype(np.int16)),
        "hist_user_behavior_n_seekback": pa.array(rng.poisson(0.1, size=n).astype(np.int16)),
        "hist_user_behavior_is_shuffle": pa.array(np.repeat(rng.random(n_sessions) < 0.3, lengths)),
        "hour_of_day": pa.array(hour.astype(np.int8)),
        "date": pa.array(day).cast(pa.date32()),
        "premium": pa.array(np.repeat(rng.random(n_sessions) < 0.8, lengths)),
        "context_type": pick(schema.CONTEXT_TYPES),
        "hist_user_behavior_reason_start": pick(schema.REASONS_START),
        "hist_user_behavior_reason_end": pick(schema.REASONS_END),
    }
    return pa.table(cols)


def write_synthetic_log(
    path: Path, n_rows: int, *, seed: int = 0, chunk_rows: int = 1_000_000
) -> Path:
    """Write about ``n_rows`` log rows to ``path`` (``.csv.gz``), a million rows at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with pa.CompressedOutputStream(str(tmp), "gzip") as out:
        out.write((",".join(schema.LOG_COLUMNS) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        done, k = 0, 0
        while done < n_rows:
            table = synthetic_log_table(min(chunk_rows, n_rows - done), seed=seed + k, file_index=k)
            pacsv.write_csv(table, out, write_options=options)
            done += table.num_rows
            k += 1
    tmp.replace(path)
    return path
