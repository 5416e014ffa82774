"""Sampled loaders: everything downstream reads the store through here.

- :mod:`.loaders` — :func:`iter_batches`, :func:`load_table`, :func:`load_pandas`: a
  deterministic session sample with track features joined and lag columns.
- :mod:`.frames` — :func:`as_pandas`: loaded plays as pandas, dtypes following the schema
  (nulls kept in pandas' nullable dtypes), as ``load_pandas`` and ``load_challenge`` give them.
- :mod:`.spec` — :class:`SampleSpec`, what a loader reads, validated before any file opens.
- :mod:`.sampling` — which sessions a sample holds; the train/test split.
- :mod:`.lags` — within-session lag columns.
- :mod:`.tracks` — the one reader of the tracks table (one row per track id).
- :mod:`.challenge` — :func:`load_challenge`: the WSDM Cup test set's sessions, both halves
  joined, and their submission order (never part of a training sample).

Examples
--------
>>> from skipmodel.load import SampleSpec, load_table
>>> table = load_table("data/store", SampleSpec(fraction=0.02, seed=1))  # doctest: +SKIP
"""

from skipmodel.load.challenge import ChallengeSet, iter_challenge, load_challenge
from skipmodel.load.frames import as_pandas
from skipmodel.load.loaders import (
    SPLIT_SEED,
    BucketRows,
    SampleSpec,
    is_test_session,
    iter_batches,
    iter_buckets,
    load_pandas,
    load_table,
    output_schema,
)

__all__ = [
    "SPLIT_SEED",
    "BucketRows",
    "ChallengeSet",
    "SampleSpec",
    "as_pandas",
    "is_test_session",
    "iter_batches",
    "iter_buckets",
    "iter_challenge",
    "load_challenge",
    "load_pandas",
    "load_table",
    "output_schema",
]
