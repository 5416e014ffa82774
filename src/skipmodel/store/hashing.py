"""Stable, vectorised hashing of string ids: the same value on every process and machine.

Python's ``hash`` is salted per process, so it cannot decide partitions or samples. This module
computes FNV-1a over the UTF-8 bytes of each string straight from the Arrow buffers (one NumPy
pass per character position) and finishes with the splitmix64 mixer, so sessions spread evenly
over buckets and seeded draws are independent of the bucket.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def fnv1a64(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """FNV-1a 64-bit hash of each string (UTF-8 bytes); nulls hash as the empty string."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 0:
            return np.empty(0, dtype=np.uint64)
        return np.concatenate([fnv1a64(c) for c in values.chunks])
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not (pa.types.is_large_string(values.type) or pa.types.is_string(values.type)):
        values = values.cast(pa.string())
    values = values.cast(pa.large_string())
    n = len(values)
    out = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return out
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[values.offset : values.offset + n + 1]
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    if values.null_count:
        lengths = np.where(values.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    )
    max_len = int(lengths.max()) if n else 0
    with np.errstate(over="ignore"):
        for pos in range(max_len):
            live = lengths > pos
            if live.all():
                out ^= data[starts + pos].astype(np.uint64)
                out *= _FNV_PRIME
            else:
                idx = np.nonzero(live)[0]
                h = out[idx] ^ data[starts[idx] + pos].astype(np.uint64)
                out[idx] = h * _FNV_PRIME
    return out


def stable_hash(values: pa.Array | pa.ChunkedArray, *, seed: int = 0) -> np.ndarray:
    """Well-mixed 64-bit hash of each string, changed completely by ``seed``."""
    base = fnv1a64(values)
    with np.errstate(over="ignore"):
        salt = _splitmix64(np.array([seed], dtype=np.uint64))[0]
        return _splitmix64(base ^ salt)


def session_bucket(session_ids: pa.Array | pa.ChunkedArray, n_buckets: int) -> np.ndarray:
    """The store partition (0 .. n_buckets-1) of each session id; seed 0, fixed forever."""
    return (stable_hash(session_ids, seed=0) % np.uint64(n_buckets)).astype(np.int32)


def unit_uniform(values: pa.Array | pa.ChunkedArray, *, seed: int) -> np.ndarray:
    """A deterministic draw in [0, 1) per id, for seeded sampling and train/test splits."""
    return (stable_hash(values, seed=seed) >> np.uint64(11)).astype(np.float64) * 2.0**-53
