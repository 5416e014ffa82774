"""Transitions between consecutive plays, counted among the top tracks (known only after the pass)."""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

from skipmodel.explore.accumulators import TopTracks, TrackCounter
from skipmodel.explore.batches import PlayBatch


class TransitionSpill:
    """Consecutive plays ``p -> p+1`` among the tracks that will turn out to be the top N.

    A transition is a play whose ``prev_track_id_clean`` is not null: the loader leaves it null
    at position 1 and whenever position ``p-1`` is missing, so no transition crosses a session
    or a gap. The top N tracks are known only after the pass, so:

    1. the first :attr:`CANDIDATE_AFTER` transitions are spilled to a temporary file as
       (previous, current) track-hash pairs (16 bytes each);
    2. then the :attr:`candidates` most played tracks so far (``max(20 N, 1000)``) are fixed,
       and every later transition between two of them is counted in a dense candidates x
       candidates table (8 bytes a cell; transitions touching another track are dropped);
    3. :meth:`count` replays the spill and adds the table's cells of the final top N, provided
       every one of them was a candidate, and returns None otherwise (the caller counts again
       with the top N fixed from the start: :func:`~skipmodel.explore.passes.compute`).

    Counts are exact either way. Memory stays flat (the spill is read in fixed-size chunks; a
    table per merged participant), the log is read once unless the top N was not among the
    candidates, which would take a track played rarely in the first millions of transitions
    and among the N most played over all of them. Call :meth:`close` (or use ``with``) to
    delete the file.
    """

    CHUNK_PAIRS = 1 << 20
    #: Transitions spilled before the candidates are fixed.
    CANDIDATE_AFTER = 1 << 21
    #: Candidates per top track, at least :attr:`MIN_CANDIDATES`; with more than
    #: :attr:`MAX_CANDIDATES` (a top N in the hundreds) everything is spilled instead.
    CANDIDATE_FACTOR = 20
    MIN_CANDIDATES = 1000
    MAX_CANDIDATES = 4096

    def __init__(
        self,
        directory: str | None = None,
        *,
        top_n: int = 50,
        candidates: np.ndarray | None = None,
    ) -> None:
        """``candidates``: count among these track hashes from the first transition on."""
        fd, name = tempfile.mkstemp(prefix="skipmodel-transitions-", suffix=".u64", dir=directory)
        self._file = os.fdopen(fd, "w+b")
        self.path = name
        #: the spilled pairs, when moved out of the file by :meth:`carry`
        self._carried: bytes | None = None
        self.transitions = 0
        self.spilled = 0
        size = max(self.CANDIDATE_FACTOR * top_n, self.MIN_CANDIDATES)
        self.candidates = size if size <= self.MAX_CANDIDATES else 0
        #: (candidate hashes in rank order, their dense count table), one per fixing
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        #: the current table's candidates (None until fixed)
        self.lookup: TopTracks | None = None
        self._row_ranks: tuple[np.ndarray, np.ndarray] | None = None
        if candidates is not None:
            self._fix(np.asarray(candidates, dtype=np.uint64))

    def _fix(self, hashes: np.ndarray) -> None:
        self.tables.append((hashes, np.zeros(len(hashes) ** 2, dtype=np.int64)))
        self.lookup = TopTracks(hashes)
        self._row_ranks = None

    def row_ranks(self, row_hashes: np.ndarray) -> np.ndarray:
        """Candidate rank (int32, -1 for others) of each row of a track table whose ids hash
        to ``row_hashes``, for the current table; computed once."""
        assert self.lookup is not None
        if self._row_ranks is None or self._row_ranks[0] is not row_hashes:
            self._row_ranks = (row_hashes, self.lookup.ranks(row_hashes).astype(np.int32))
        return self._row_ranks[1]

    def update(
        self, b: PlayBatch, current: np.ndarray, counter: TrackCounter | None = None
    ) -> None:
        """Add this batch's transitions; ``current`` is the row hash of ``track_id_clean``, and
        ``counter`` the play counts so far (to fix the candidates from)."""
        previous, following = b.transition_pairs(current)
        if not len(previous):
            return
        self.transitions += len(previous)
        if self.lookup is not None:
            from skipmodel.explore import kernels  # Numba loads only where the log pass runs

            kernels.count_top_pairs(previous, following, self.lookup, self.tables[-1][1])
            return
        pairs = np.empty((len(previous), 2), dtype=np.uint64)
        pairs[:, 0] = previous
        pairs[:, 1] = following
        self._file.write(pairs.tobytes())
        self.spilled += len(pairs)
        if self.candidates and counter is not None and self.spilled >= self.CANDIDATE_AFTER:
            self._fix(counter.top(self.candidates)[0])

    def carry(self) -> TransitionSpill:
        """Move the spilled pairs into this object and delete the file, so that it pickles
        whole (a Spark task's result goes to a driver that may be on another host); the
        unpickled copy spills them to a temporary file of its own. Returns ``self``."""
        self._file.flush()
        self._file.seek(0)
        self._carried = self._file.read()
        self.close()
        return self

    def __getstate__(self) -> dict[str, object]:
        """Pickled (from a worker process) with its file's path: the file is flushed and kept;
        or, after :meth:`carry`, with the pairs themselves."""
        if not self._file.closed:
            self._file.flush()
        return {
            k: v for k, v in self.__dict__.items() if k not in ("_file", "lookup", "_row_ranks")
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.lookup = TopTracks(self.tables[-1][0]) if self.tables else None
        self._row_ranks = None
        carried = state.get("_carried")
        if carried is not None:
            fd, self.path = tempfile.mkstemp(prefix="skipmodel-transitions-", suffix=".u64")
            self._file = os.fdopen(fd, "w+b")
            self._file.write(carried)  # type: ignore[arg-type]
            self._carried = None
            return
        self._file = open(self.path, "r+b")  # noqa: SIM115 - closed by close()
        self._file.seek(0, os.SEEK_END)

    def merge(self, other: TransitionSpill) -> None:
        if other._carried is not None:
            self._file.write(other._carried)
        else:
            other._file.flush()
            other._file.seek(0)
            shutil.copyfileobj(other._file, self._file)
        self.transitions += other.transitions
        self.spilled += other.spilled
        self.tables = [*other.tables, *self.tables]  # this one's current table stays last
        other.close()

    def count(self, top: TopTracks) -> np.ndarray | None:
        """(N, N) counts of transitions from rank i to rank j among the top tracks; None when
        a top track was not among the candidates of a table (count again, see the class)."""
        n = top.n
        picks = []
        for hashes, _ in self.tables:
            where = TopTracks(hashes).ranks(top.hashes)  # each top track's place in the table
            if (where < 0).any():
                return None
            picks.append(where)
        flat = np.zeros(n * n, dtype=np.int64)
        from skipmodel.explore import kernels

        self._file.flush()
        self._file.seek(0)
        while True:
            raw = self._file.read(self.CHUNK_PAIRS * 16)
            if not raw:
                break
            pairs = np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)
            kernels.count_top_pairs(pairs[:, 0], pairs[:, 1], top, flat)
        self._file.seek(0, os.SEEK_END)
        counts = flat.reshape(n, n)
        for (hashes, table), where in zip(self.tables, picks, strict=True):
            counts += table.reshape(len(hashes), len(hashes))[np.ix_(where, where)]
        return counts

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> TransitionSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
