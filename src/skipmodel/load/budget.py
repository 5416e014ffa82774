"""A sample by its size in plays: ``--plays N``.

The loaders' sample (:mod:`skipmodel.load.sampling`) takes whole buckets in their seeded ranking
and, in the next bucket, the sessions whose seeded uniform is below the remainder. Walking that
same order — buckets by rank, then sessions of the partial bucket by their uniform — and counting
the plays of the split until N gives the smallest ``fraction`` whose sample holds at least N
plays (or every play when the store has fewer). The result is an ordinary fraction: as
deterministic as ``--fraction``, recorded in the run like it, and read by every loader.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.load.sampling import _BUCKET_DECIMALS, bucket_ranking, check_seed, is_test_session
from skipmodel.store.fspath import parquet_file
from skipmodel.store.hashing import unit_uniform
from skipmodel.store.layout import StoreLayout, open_store

__all__ = ["fraction_for_plays"]


def _bucket_sessions(layout: StoreLayout, directory: Path) -> tuple[pa.Array, np.ndarray]:
    """The distinct session ids of a bucket and the plays of each."""
    files = layout.parts(directory)
    if not files:
        return pa.array([], type=pa.string()), np.array([], dtype=np.int64)
    ids = pa.concat_tables([parquet_file(f).read(columns=["session_id"]) for f in files])
    counts = ids.group_by("session_id").aggregate([("session_id", "count")])
    return (
        counts["session_id"].combine_chunks(),
        counts["session_id_count"].to_numpy().astype(np.int64),
    )


def fraction_for_plays(
    store: str | Path,
    n_plays: int,
    *,
    seed: int = 0,
    split: str | None = "train",
    test_fraction: float = 0.2,
) -> tuple[float, int]:
    """The smallest sample fraction holding at least ``n_plays`` plays of ``split``, and the
    plays it holds (1.0 and every play when the store has fewer)."""
    if isinstance(n_plays, bool) or not isinstance(n_plays, int) or n_plays < 1:
        raise SkipmodelError(f"--plays must be a positive integer, got {n_plays!r}")
    seed = check_seed(seed)
    layout = open_store(store)
    n_buckets = int(layout.read_manifest()["n_buckets"])
    total = 0
    for k, bucket in enumerate(bucket_ranking(n_buckets, seed=seed)):
        ids, plays = _bucket_sessions(layout, layout.bucket_dir(int(bucket)))
        if split is not None and len(ids):
            test = is_test_session(ids, test_fraction=test_fraction)
            keep = test if split == "test" else ~test
            ids, plays = ids.filter(pa.array(keep)), plays[keep]
        if total + int(plays.sum()) < n_plays:
            total += int(plays.sum())
            continue
        u = unit_uniform(ids, seed=seed)
        order = np.argsort(u, kind="stable")
        reached = np.searchsorted(np.cumsum(plays[order]), n_plays - total)
        # just above the last session needed, rounded up to the sampler's resolution
        step = 10.0**-_BUCKET_DECIMALS
        remainder = min(1.0, math.ceil((float(u[order][reached]) + step) / step) * step)
        fraction = min(1.0, (k + remainder) / n_buckets)
        held = total + int(plays[u < remainder].sum())
        return fraction, held
    return 1.0, total
