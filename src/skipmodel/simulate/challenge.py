"""The WSDM Cup 2019 test set's layout for simulated sessions (``simulate --challenge-fraction``).

A challenge session is split at ``floor(session_length / 2)``, as the real ``test_set/`` is:

- its *prehistory* (``session_position <= session_length // 2``) keeps every log column, with
  sessions in ascending ``session_id`` order (as every log file of the release is sorted);
- its *input* (the second half, ``2 * session_position > session_length``, the plays the
  challenge asks to predict) keeps only :data:`INPUT_COLUMNS`, with sessions in a seeded
  shuffled order that is never the prehistory's (a submission follows the input order, so code
  that assumes sorted ids must fail on simulated data too);
- its *truth* (:data:`TRUTH_COLUMNS`: the outcomes the real release never published) lists
  the input plays in the input's order, positions ascending within a session.

:class:`ChallengeWriter` writes one prehistory/input file pair per day into ``test_set.tar.gz``
and appends the day's truth to ``challenge_truth.csv``; the layout is described in
:mod:`skipmodel.simulate.mssd`.

Simulated sessions have 10..20 plays (the release's range), so every prehistory and every input
has at least 5 plays; a session of one play would have an empty prehistory, which the real test
set never has, and :func:`split_challenge_day` refuses it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.simulate.files import csv_bytes, csv_header, tar_gz_writer
from skipmodel.store.layout import atomic_path

__all__ = [
    "INPUT_COLUMNS",
    "TRUTH_COLUMNS",
    "ChallengeDay",
    "ChallengeWriter",
    "challenge_count",
    "choose_challenge_sessions",
    "input_order",
    "split_challenge_day",
]

#: Columns of ``log_input_*.csv``, in the order written.
INPUT_COLUMNS = ("session_id", "track_id_clean", "session_position", "session_length")
#: Columns of ``challenge_truth.csv``, in the order written.
TRUTH_COLUMNS = ("session_id", "session_position", "skip_2")


def challenge_count(fraction: float, sessions: int) -> int:
    """How many of ``sessions`` go to the test set: ``round(fraction * sessions)``, clamped.

    A positive fraction gives at least one challenge session and always leaves at least one
    training session; raises a one-line :class:`SkipmodelError` for a fraction outside [0, 1)
    or a positive fraction of a single session.
    """
    if not 0.0 <= fraction < 1.0:  # also rejects NaN
        raise SkipmodelError(f"--challenge-fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return 0
    if sessions < 2:
        raise SkipmodelError(
            "--challenge-fraction needs at least 2 sessions (one to train on, one to predict)"
        )
    return min(max(round(fraction * sessions), 1), sessions - 1)


def choose_challenge_sessions(rng: np.random.Generator, sessions: int, count: int) -> np.ndarray:
    """Boolean mask of the ``count`` challenge sessions among ``sessions`` (in file order).

    Each session draws one uniform number and the ``count`` smallest are chosen, so for one seed
    a larger fraction's challenge sessions include a smaller fraction's.
    """
    draw = rng.random(sessions)
    mask = np.zeros(sessions, dtype=bool)
    mask[np.argsort(draw, kind="stable")[:count]] = True
    return mask


def input_order(rng: np.random.Generator, n: int) -> np.ndarray:
    """A seeded permutation of ``0..n-1`` that is never the identity when ``n >= 2``."""
    order = rng.permutation(n)
    if n >= 2 and np.array_equal(order, np.arange(n)):
        order = np.roll(order, 1)  # the 1-in-n! case: still deterministic, no longer sorted
    return order


@dataclass(frozen=True)
class ChallengeDay:
    """One day's test-set tables, ready to be written as CSV."""

    prehistory: pa.Table  # every log column; sessions by id, positions ascending
    log_input: pa.Table  # INPUT_COLUMNS; sessions in input order, positions ascending
    truth: pa.Table  # TRUTH_COLUMNS; the same rows and order as log_input
    n_sessions: int


def split_challenge_day(log: pa.Table, rng: np.random.Generator) -> ChallengeDay:
    """Split one day's complete challenge sessions (full log rows) into the test-set tables.

    ``log`` holds every play of its sessions in any row order; ``rng`` draws the input order.
    """
    log = log.sort_by([("session_id", "ascending"), ("session_position", "ascending")])
    position = log.column("session_position").to_numpy()
    length = log.column("session_length").to_numpy()
    if log.num_rows and length.min() < 2:
        raise SkipmodelError("a challenge session needs at least 2 plays to have a prehistory")
    first_half = position <= length // 2
    # Sorted ids: dictionary codes follow first appearance, so session k is the k-th by id.
    codes = log.column("session_id").combine_chunks().dictionary_encode().indices.to_numpy()
    n_sessions = int(codes.max()) + 1 if log.num_rows else 0
    rank = np.empty(n_sessions, dtype=np.int64)
    rank[input_order(rng, n_sessions)] = np.arange(n_sessions)
    # Stable: within a session, rows keep their ascending positions.
    second = np.flatnonzero(~first_half)
    second = second[np.argsort(rank[codes[second]], kind="stable")]
    second_half = log.take(pa.array(second))
    return ChallengeDay(
        prehistory=log.filter(pa.array(first_half)),
        log_input=second_half.select(list(INPUT_COLUMNS)),
        truth=second_half.select(list(TRUTH_COLUMNS)),
        n_sessions=n_sessions,
    )


class ChallengeWriter:
    """Writes ``test_set.tar.gz`` and ``challenge_truth.csv`` one day at a time.

    Use as a context manager; both files appear under their names only when the block ends
    without an error. Days must be added in date order (the truth follows the input files in
    name order).
    """

    def __init__(self, test_set: Path, truth: Path, rng: np.random.Generator) -> None:
        self.test_set = test_set
        self.truth = truth
        self.rng = rng
        self.n_sessions = self.n_prehistory_plays = self.n_input_plays = self.n_files = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ChallengeWriter:
        with self._stack as stack:
            self._add = stack.enter_context(tar_gz_writer(self.test_set, "test_set"))
            truth_tmp = stack.enter_context(atomic_path(self.truth))
            self._truth_csv = stack.enter_context(open(truth_tmp, "wb"))
            self._truth_csv.write(csv_header(TRUTH_COLUMNS))
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return self._stack.__exit__(exc_type, exc, tb)

    def add_day(self, date: dt.date, log: pa.Table) -> None:
        """Split one day's challenge sessions (full log rows) and write the day's file pair."""
        day = split_challenge_day(log, self.rng)
        self._add(f"log_prehistory_{date:%Y%m%d}_000000000000.csv", csv_bytes(day.prehistory))
        self._add(f"log_input_{date:%Y%m%d}_000000000000.csv", csv_bytes(day.log_input))
        self._truth_csv.write(csv_bytes(day.truth, header=False))
        self.n_sessions += day.n_sessions
        self.n_prehistory_plays += day.prehistory.num_rows
        self.n_input_plays += day.log_input.num_rows
        self.n_files += 2
