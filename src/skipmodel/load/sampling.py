"""Which sessions a sample holds: seeded bucket ranking, in-bucket thinning and the train/test split.

The rules are part of the store contract (``DESIGN.md``, "Sampled loaders"), so a sample is the
same on every machine and a k % sample reads only about k % of the store's bytes:

* buckets are ranked by ``stable_hash(str(bucket), seed=seed)``; the first
  ``floor(fraction * n_buckets)`` buckets are taken whole, and in the next one the sessions with
  ``unit_uniform(session_id, seed=seed) < remainder`` are kept;
* a session is a test session when ``unit_uniform(session_id, seed=SPLIT_SEED) < test_fraction``.
  ``SPLIT_SEED`` is fixed forever and independent of the sample seed, so ``fit`` and ``predict``
  agree on the split whatever fraction or seed each of them samples with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.store.hashing import stable_hash, unit_uniform

#: Seed of the train/test split. Never change it: fitted runs and predictions rely on it.
SPLIT_SEED = 20190218

#: ``fraction * n_buckets`` is rounded to this many decimals before taking its floor, so that
#: e.g. ``0.07 * 100 == 7.000000000000001`` means seven whole buckets and no partial one.
_BUCKET_DECIMALS = 9


@dataclass(frozen=True)
class BucketSelection:
    """The buckets a sample reads.

    Attributes
    ----------
    whole : tuple of int
        Buckets taken whole, in ascending order.
    partial : int or None
        The one bucket thinned by session, if any.
    remainder : float
        Sessions of ``partial`` with ``unit_uniform(session_id, seed) < remainder`` are kept.
    seed : int
        The sample seed (also used for the in-bucket draw).
    """

    whole: tuple[int, ...]
    partial: int | None
    remainder: float
    seed: int

    @property
    def buckets(self) -> tuple[int, ...]:
        """Every bucket to read, ascending."""
        extra = () if self.partial is None else (self.partial,)
        return tuple(sorted((*self.whole, *extra)))


def check_fraction(fraction: float, *, name: str = "fraction") -> float:
    """``fraction`` as a float in (0, 1], or a one-line error."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise SkipmodelError(f"{name} must be a number in (0, 1], got {fraction!r}") from None
    if not (0.0 < value <= 1.0):
        raise SkipmodelError(f"{name} must be in (0, 1], got {fraction!r}")
    return value


def check_seed(seed: int) -> int:
    """``seed`` as a non-negative integer below 2**64, or a one-line error."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise SkipmodelError(f"seed must be a non-negative integer, got {seed!r}")
    if not (0 <= int(seed) < 2**64):
        raise SkipmodelError(f"seed must be a non-negative integer below 2**64, got {seed!r}")
    return int(seed)


def bucket_ranking(n_buckets: int, *, seed: int) -> np.ndarray:
    """Bucket ids ordered by ``stable_hash(str(bucket), seed=seed)`` (ties by bucket id)."""
    ids = np.arange(n_buckets)
    keys = stable_hash(pa.array([str(b) for b in ids], type=pa.string()), seed=seed)
    return ids[np.lexsort((ids, keys))]


def select_buckets(n_buckets: int, *, fraction: float, seed: int) -> BucketSelection:
    """The buckets (whole and partial) holding a ``fraction`` sample of sessions.

    Examples
    --------
    >>> sel = select_buckets(100, fraction=0.025, seed=0)
    >>> len(sel.whole), sel.partial is not None, round(sel.remainder, 3)
    (2, True, 0.5)
    """
    fraction = check_fraction(fraction)
    seed = check_seed(seed)
    if n_buckets < 1:
        raise SkipmodelError(f"the store's manifest has n_buckets={n_buckets}; expected >= 1")
    scaled = round(fraction * n_buckets, _BUCKET_DECIMALS)
    n_whole = min(math.floor(scaled), n_buckets)
    remainder = scaled - n_whole
    ranked = bucket_ranking(n_buckets, seed=seed)
    partial = int(ranked[n_whole]) if remainder > 0 and n_whole < n_buckets else None
    return BucketSelection(
        whole=tuple(sorted(int(b) for b in ranked[:n_whole])),
        partial=partial,
        remainder=float(remainder) if partial is not None else 0.0,
        seed=seed,
    )


def _as_string_array(
    session_ids: pa.Array | pa.ChunkedArray | Sequence[str] | np.ndarray,
) -> pa.Array | pa.ChunkedArray:
    if isinstance(session_ids, pa.Array | pa.ChunkedArray):
        return session_ids
    # pa.array takes lists, NumPy arrays and pandas Series of str alike
    return pa.array(session_ids, type=pa.string())


def keep_in_partial_bucket(
    session_ids: pa.Array | pa.ChunkedArray, selection: BucketSelection
) -> np.ndarray:
    """Mask of the rows of the partial bucket whose session is in the sample."""
    return unit_uniform(session_ids, seed=selection.seed) < selection.remainder


def is_test_session(
    session_ids: pa.Array | pa.ChunkedArray | Sequence[str] | np.ndarray,
    *,
    test_fraction: float = 0.2,
) -> np.ndarray:
    """Whether each session id belongs to the held-out test split.

    Parameters
    ----------
    session_ids : Arrow string array, sequence of str or NumPy array of str
        One id per row (repeats allowed: every row of a session gets the same answer).
    test_fraction : float, default 0.2
        Expected share of sessions in the test split, in (0, 1).

    Returns
    -------
    numpy.ndarray of bool
        ``unit_uniform(session_id, seed=SPLIT_SEED) < test_fraction``.

    Examples
    --------
    >>> flags = is_test_session(["1_a", "1_b", "1_a"], test_fraction=0.5)
    >>> bool(flags[0] == flags[2])
    True
    """
    check_test_fraction(test_fraction)
    return unit_uniform(_as_string_array(session_ids), seed=SPLIT_SEED) < float(test_fraction)


def check_test_fraction(test_fraction: float) -> float:
    """``test_fraction`` as a float in (0, 1), or a one-line error."""
    try:
        value = float(test_fraction)
    except (TypeError, ValueError):
        raise SkipmodelError(
            f"test_fraction must be a number in (0, 1), got {test_fraction!r}"
        ) from None
    if not (0.0 < value < 1.0):
        raise SkipmodelError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    return value
