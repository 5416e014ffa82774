"""Writing one source into the store: bucketed buffers, sorted Parquet parts, atomic commit.

A source is staged whole in ``STORE/.staging/<random>/`` and only then committed:

1. valid rows are buffered (as Arrow, never as Python objects) and flushed every
   :data:`FLUSH_ROWS` rows into one staged part per bucket, each sorted by
   ``(session_id, session_position)``; the last session of the buffer is carried over to the next
   flush, so a session that is contiguous in its file lands in one part;
2. rejected rows stream into a staged Parquet file (source, line, raw text, reason and the
   line's original bytes: :data:`skipmodel.store.schema.REJECTED_SCHEMA`);
3. once the source is read to the end its fingerprint is known; a journal ``COMMIT.json``
   listing every rename and the manifest entry is written atomically, then the renames are done
   (``sessions/session_bucket=<b>/part-<fp>[-<k>].parquet``; a challenge source's under
   ``challenge/<kind>/`` instead, :data:`PART_FOLDERS`), stale parts of the same fingerprint are
   removed, the manifest is rewritten atomically and the staging folder deleted.

A kill before step 3 leaves only a staging folder, deleted by the next ingest; a kill during
step 3 is rolled forward by the next ingest from the journal. Either way the re-run ends with the
same store.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skipmodel.store import schema
from skipmodel.store.arrays import bool_np, int_np, np_array, str_array
from skipmodel.store.fspath import parquet_writer, rmtree, write_table
from skipmodel.store.hashing import session_bucket
from skipmodel.store.journal import STAGING_DIR, write_commit_journal
from skipmodel.store.layout import (
    BUCKET_KEY,
    CHALLENGE_DIR,
    SESSIONS_DIR,
    StoreLayout,
)
from skipmodel.store.schema import REJECTED_SCHEMA
from skipmodel.store.user_columns import StoredColumn, log_schema

#: Valid rows buffered before a flush into parts (~150 MB of Arrow for MSSD logs).
FLUSH_ROWS = 1_000_000
#: Where the parts of each session kind go, relative to the store (then ``session_bucket=<b>``):
#: training sessions, and the challenge's halves apart from them.
PART_FOLDERS = {
    "log": SESSIONS_DIR,
    "prehistory": f"{CHALLENGE_DIR}/prehistory",
    "input": f"{CHALLENGE_DIR}/input",
}
#: The schema each kind's parts are written with.
TARGET_SCHEMAS = {
    "log": schema.LOG_SCHEMA,
    "prehistory": schema.LOG_SCHEMA,
    "input": schema.INPUT_SCHEMA,
    "tracks": schema.TRACK_SCHEMA,
}
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}


def bucket_of_rows(session_ids: pa.Array, n_buckets: int) -> np.ndarray:
    """Bucket of every row, hashing each run of equal consecutive ids once."""
    n = len(session_ids)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    change = np.ones(n, dtype=bool)
    if n > 1:
        change[1:] = bool_np(pc.not_equal(session_ids.slice(1), session_ids.slice(0, n - 1)))
    starts = np.flatnonzero(change)
    run_buckets = session_bucket(session_ids.take(np_array(starts)), n_buckets)
    return np.repeat(run_buckets, np.diff(np.append(starts, n)))


def _decode_categories(
    table: pa.Table, categories: dict[str, list[str]], target: pa.Schema
) -> pa.Table:
    """Turn int8 category codes into the store's dictionary columns (chunk by chunk, no copy)."""
    arrays = []
    for f in target:
        col = table.column(f.name)
        if f.name in categories:
            dictionary = str_array(categories[f.name])
            col = pa.chunked_array(
                [pa.DictionaryArray.from_arrays(c, dictionary) for c in col.chunks], type=f.type
            )
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=target)


def _sorted_part(table: pa.Table) -> tuple[pa.Table, int, int]:
    """The part sorted by (session_id, session_position), its duplicate (session, position) rows
    and its sessions with fewer distinct positions than their length (one vectorised pass)."""
    n = table.num_rows
    if n == 0:
        return table, 0, 0
    for attempt in range(2):
        sid = table.column("session_id").combine_chunks()
        pos = _np(table.column("session_position"))
        if n == 1:
            same = np.zeros(0, dtype=bool)
            break
        a, b = sid.slice(0, n - 1), sid.slice(1)
        same = bool_np(pc.equal(a, b))
        in_order = same & (pos[:-1] <= pos[1:])
        if attempt == 0 and not in_order.all() and not bool_np(pc.less(a, b))[~in_order].all():
            table = table.sort_by([("session_id", "ascending"), ("session_position", "ascending")])
            continue
        break
    dup = same & (pos[:-1] == pos[1:]) if n > 1 else same
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    rows = np.diff(np.append(starts, n))
    dup_per_session = np.add.reduceat(np.concatenate([[False], dup]).astype(np.int64), starts)
    length = _np(table.column("session_length"))[starts]
    incomplete = int(np.count_nonzero(rows - dup_per_session < length))
    return table, int(dup.sum()), incomplete


def _np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return int_np(col)


@dataclass
class SourceWriter:
    """Buffers, partitions and stages the rows of one source of a kind of
    :data:`skipmodel.store.schema.SOURCE_KINDS` (every kind but tracks is bucketed by session).
    A training log's parts also hold the store's ``user_columns``, after MSSD's."""

    layout: StoreLayout
    kind: str
    n_buckets: int
    categories: dict[str, list[str]]
    flush_rows: int = FLUSH_ROWS
    user_columns: tuple[StoredColumn, ...] = ()
    staging: Path = field(init=False)
    rows_written: int = 0
    rows_rejected: int = 0
    integrity: Counter = field(default_factory=Counter)
    dates: Counter = field(default_factory=Counter)
    _by_bucket: dict[int, list[pa.Table]] = field(default_factory=dict)
    _buffered: int = 0
    _flushes: int = 0
    _staged: list[tuple[str, str]] = field(default_factory=list)
    _rejected_writer: pq.ParquetWriter | None = None
    _pool: ThreadPoolExecutor | None = None
    _writes: list[Future[None]] = field(default_factory=list)
    #: under manifest commits: the run id naming the parts, and the parts written
    run: str | None = field(init=False, default=None)
    _written: list[Path] = field(default_factory=list)
    _folders: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.layout.view() is not None:  # manifest commits: parts go straight into place
            self.run = uuid.uuid4().hex
            self.staging = self.layout.root
        else:
            self.staging = self.layout.root / STAGING_DIR / uuid.uuid4().hex
            self.staging.mkdir(parents=True)
        self.target = TARGET_SCHEMAS[self.kind]
        if self.kind == "log" and self.user_columns:
            self.target = log_schema(self.user_columns)
        self.by_session = self.kind in schema.SESSION_KINDS

    def add(self, valid: pa.Table) -> None:
        """Buffer typed valid rows by bucket, flushing to staged parts when the buffer is full."""
        n = valid.num_rows
        if n == 0:
            return
        if self.kind in ("log", "prehistory"):
            self._log_findings(valid)
        if self.kind in schema.CHALLENGE_KINDS:
            self._half_findings(valid)
        if self.by_session:
            buckets = bucket_of_rows(valid.column("session_id").combine_chunks(), self.n_buckets)
        else:
            buckets = np.zeros(n, dtype=np.int32)
        if self._buffered + n < self.flush_rows:
            self._partition(valid, buckets)
            return
        # keep the batch's last session (it may continue in the next batch) for the next part
        cut = n
        if self.by_session:
            sid = valid.column("session_id").combine_chunks()
            same = bool_np(pc.equal(sid, sid[n - 1]))
            head = np.flatnonzero(~same)
            cut = int(head[-1]) + 1 if len(head) else 0
        self._partition(valid.slice(0, cut), buckets[:cut])
        self._flush()
        self._partition(valid.slice(cut), buckets[cut:])

    def _partition(self, table: pa.Table, buckets: np.ndarray) -> None:
        """Append a batch's rows to per-bucket buffers (one small, cache-friendly take)."""
        n = table.num_rows
        if n == 0:
            return
        self._buffered += n
        if self.kind == "tracks":
            self._by_bucket.setdefault(0, []).append(table)
            return
        order = np.argsort(buckets, kind="stable")
        taken = table.take(np_array(order))
        sorted_buckets = buckets[order]
        edges = np.flatnonzero(np.diff(sorted_buckets)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [n]])
        for s, e in zip(starts, ends, strict=True):
            self._by_bucket.setdefault(int(sorted_buckets[s]), []).append(taken.slice(s, e - s))

    def _log_findings(self, valid: pa.Table) -> None:
        s1, s2, s3, ns = (valid.column(c) for c in schema.SKIP_OUTCOMES)
        violations = pc.or_(
            pc.or_(pc.and_(s1, pc.invert(s2)), pc.and_(s2, pc.invert(s3))), pc.and_(ns, s3)
        )
        self.integrity["skip_nesting_violations"] += int(pc.sum(violations).as_py() or 0)
        counts = pc.value_counts(valid.column("date").combine_chunks())
        for item in counts.to_pylist():
            self.dates[item["values"]] += item["counts"]

    def _half_findings(self, valid: pa.Table) -> None:
        """Challenge rows on the wrong side of the split ``position <= length // 2`` (a
        prehistory play of the second half, an input play of the first): counted, kept."""
        second = 2 * int_np(valid.column("session_position")) > int_np(
            valid.column("session_length")
        )
        wrong = second if self.kind == "prehistory" else ~second
        self.integrity["plays_outside_half"] += int(np.count_nonzero(wrong))

    def _flush(self) -> None:
        if not self._by_bucket:
            return
        # at most one flush being encoded while the next is prepared (bounds memory)
        self._wait_writes()
        k = self._flushes
        self._flushes += 1
        for b in sorted(self._by_bucket):
            # one contiguous chunk: many tiny chunks make Parquet encoding several times slower
            table = pa.concat_tables(self._by_bucket[b]).combine_chunks()
            if self.kind == "tracks":
                self._write_part(table, f"tracks/part-{{fp}}{_suffix(k)}.parquet")
                continue
            part, dupes, incomplete = _sorted_part(table)
            self.integrity["duplicate_session_positions"] += dupes
            if self.kind == "log":  # a challenge half is incomplete by design
                self.integrity["incomplete_sessions"] += incomplete
            folder = PART_FOLDERS[self.kind]
            self._write_part(part, f"{folder}/{BUCKET_KEY}={b}/part-{{fp}}{_suffix(k)}.parquet")
        self._by_bucket = {}
        self._buffered = 0

    def _place(self, relative: str) -> Path:
        """Where a file of this source is written: the staging folder (rename commits), or its
        place in the store under the run's name (manifest commits: invisible until committed)."""
        if self.run is None:
            return self.staging / relative
        path = self.layout.root / relative.format(fp=self.run)
        if path.parent not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(path.parent)
        self._written.append(path)
        return path

    def _write_part(self, table: pa.Table, final_pattern: str) -> None:
        """Stage one part; the Parquet encoding runs in the writer thread."""
        staged = f"part-{len(self._staged)}.parquet"
        # the category lists grow as the parser meets new values: decode here, not in the thread
        out = _decode_categories(table, self.categories, self.target)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-write")
        path = self._place(staged if self.run is None else final_pattern)
        self._writes.append(self._pool.submit(write_table, out, path, **PARQUET_OPTIONS))
        self.rows_written += out.num_rows
        self._staged.append((staged, final_pattern))

    def _wait_writes(self) -> None:
        """Wait for the part writes submitted so far; a failed write raises here."""
        while self._writes:
            self._writes.pop(0).result()

    def add_rejected(self, rejected: pa.Table | None) -> None:
        if rejected is None or rejected.num_rows == 0:
            return
        if self._rejected_writer is None:
            path = self._place("rejected.parquet" if self.run is None else REJECTED_PART)
            self._rejected_writer = parquet_writer(path, REJECTED_SCHEMA, **PARQUET_OPTIONS)
        self._rejected_writer.write_table(rejected)
        self.rows_rejected += rejected.num_rows

    def close(self) -> None:
        """Finish the part writes (raising the first failure) and the rejected-rows file."""
        try:
            self._wait_writes()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
        if self._rejected_writer is not None:
            self._rejected_writer.close()
            self._rejected_writer = None

    def discard(self) -> None:
        """Drop everything staged (the source failed)."""
        if self._pool is not None:  # let running writes end before their folder goes
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._writes = []
        self.close()
        if self.run is None:
            rmtree(self.staging)
            return
        for path in self._written:  # never committed: invisible, but not left behind
            path.unlink(missing_ok=True)

    def flush_all(self) -> None:
        """Write out whatever is buffered (call once, at the end of the source)."""
        self._flush()

    def staged_moves(self, fingerprint: str) -> list[tuple[str, str]]:
        """Finish the staged files (after :meth:`flush_all`) and list their renames: (staged
        name, path in the store), named after the source's ``fingerprint``."""
        self.close()
        if self.run is not None:  # written in place already: nothing moves
            return []
        moves = [(s, f.format(fp=fingerprint)) for s, f in self._staged]
        if (self.staging / "rejected.parquet").exists():
            moves.append(("rejected.parquet", REJECTED_PART.format(fp=fingerprint)))
        return moves

    def written_files(self) -> list[str]:
        """Under manifest commits: the files written in place, relative to the store."""
        return [str(p.relative_to(self.layout.root)) for p in self._written]

    def finish(self, fingerprint: str, entry: dict[str, Any]) -> Path:
        """Write the commit journal (after :meth:`flush_all`); returns the staging folder."""
        write_commit_journal(self.staging, fingerprint, entry, self.staged_moves(fingerprint))
        return self.staging


REJECTED_PART = "rejected/part-{fp}.parquet"


def _suffix(k: int) -> str:
    return "" if k == 0 else f"-{k}"


def far_dates(dates: Counter, day: str | None) -> tuple[int, str | None]:
    """Rows more than one day away from the file's day (its name's day, else its modal date)."""
    if not dates:
        return 0, day
    modal = max(sorted(dates), key=lambda d: dates[d])
    ref = modal if day is None else dt.date.fromisoformat(day)
    far = sum(c for d, c in dates.items() if abs((d - ref).days) > 1)
    return far, ref.isoformat()
