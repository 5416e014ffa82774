"""Compaction: every session bucket of a store merged into one Parquet file, sorted by session.

``skipmodel ingest`` writes one part per input source per bucket (that is what makes a source's
commit atomic and a re-ingest idempotent), so a store built from many files has many small parts
per bucket and every reader must merge and re-sort them. Compaction, run at the end of each
ingest (or alone through :func:`compact`), replaces the parts of each bucket by one file:

* rows sorted by ``(session_id, session_position)`` in Arrow's byte-wise string order, ties
  (duplicate positions) by the source's fingerprint, then by their order in that source, so the
  file depends only on the set of sources ingested, never on the order or the number of ingest
  runs that brought them;
* an extra column :data:`SOURCE_COLUMN` (dictionary-encoded) with the fingerprint of the input
  each row came from, which links a row to its manifest entry (file name, file day);
* strings dictionary-encoded over the whole column chunk (no fallback to plain pages), so a
  reader can ask for ``track_id_clean`` as dictionary indices and look each distinct id up once;
* a column :data:`TRACK_ROW_COLUMN`: the row of each play's track in the track table, so the
  loaders need not look track ids up; it is valid while the track files are the ones named in
  the metadata (:data:`TRACKS_KEY`), and a compaction after new track files recomputes it
  (the loaders fall back to the lookup meanwhile);
* the Parquet key-value metadata :data:`SORTED_KEY` (the sort order the loaders may rely on),
  :data:`SOURCES_KEY` (the fingerprints merged) and the bucket's integrity counts over *whole*
  sessions (a session split across sources is counted once, not per part).

Atomicity: the merged file is written under a hidden temporary name, then a journal
``.compact.json`` naming it and the parts it replaces is written atomically, then the file is
renamed into place and the parts deleted, then the journal. A kill before the journal leaves a
temporary file (deleted by the next run); a kill after it is rolled forward by the next ingest or
compaction (:func:`recover_compactions`), so a re-run gives the same bytes. A reader that meets a
bucket with a pending journal refuses it rather than count rows twice.

Under manifest commits (object stores, :mod:`skipmodel.store.visible`) nothing is renamed: the
merged file is written under its final name, whose digest covers the track files too (an
object's name is never reused), and :func:`record_compacted` commits it by naming it in the
manifest with the last source commit it merged. Until then it is invisible, and the parts it
replaces stay visible; after, they are invisible and the next writer deletes them.

Only ``STORE/sessions/`` is compacted: the challenge's test set (``STORE/challenge/``) keeps its
parts (one per input file per bucket, each sorted by session; the challenge loader sorts the
union of a bucket's halves anyway), so a compaction never touches or counts it.

Memory: a bucket is merged in memory with all its columns (about 60 bytes per play), so a
store whose buckets exceed the memory should be built with more ``--buckets``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.load.tracks import TrackFeatures
from skipmodel.store import schema
from skipmodel.store.arrays import bool_np, int_np, np_array, str_array
from skipmodel.store.format import (
    COMPACT_JOURNAL,
    COMPACT_PREFIX,
    COMPACT_TMP_SUFFIX,
    INTEGRITY_KEY,
    SORTED_KEY,
    SORTED_VALUE,
    SOURCE_COLUMN,
    SOURCES_KEY,
    TRACK_ROW_COLUMN,
    TRACKS_KEY,
    is_compacted,
    read_metadata,
    tracks_signature,
)
from skipmodel.store.fspath import parquet_file, write_table
from skipmodel.store.journal import (
    collect_garbage,
    finish_compaction,
    recompute_totals,
    recover,
    recover_compactions,
    store_lock,
)
from skipmodel.store.layout import (
    StoreLayout,
    atomic_path,
    atomic_write_json,
    open_store,
)
from skipmodel.store.user_columns import log_schema, recorded_columns
from skipmodel.store.visible import PartView

__all__ = [
    "CompactReport",
    "compact",
    "compact_store",
]

#: Rows per row group of a compacted file.
ROW_GROUP_ROWS = 1 << 20
#: Dictionary pages may grow this large before Parquet falls back to plain encoding.
DICTIONARY_PAGE_LIMIT = 1 << 30
_PART_NAME = re.compile(r"^part-(.+?)(?:-\d+)?\.parquet$")
_SOURCE_TYPE = pa.dictionary(pa.int32(), pa.string())


@dataclass(frozen=True)
class CompactReport:
    """What one compaction did: buckets merged (and parts replaced), buckets already compact."""

    store: Path
    buckets_compacted: int
    parts_replaced: int
    buckets_unchanged: int
    duplicate_session_positions: int
    incomplete_sessions: int


def _track_rows(table: pa.Table, tracks: TrackFeatures | None) -> pa.Array:
    """Row of each play's track in the store's track table (first row of an id), -1 if none."""
    if tracks is None:
        return np_array(np.full(table.num_rows, -1, dtype=np.int32))
    ids = pc.dictionary_encode(table.column("track_id_clean").combine_chunks())
    return np_array(tracks.row_numbers(ids).astype(np.int32))


def _read_member(path: Path, target: pa.Schema, view: PartView | None = None) -> pa.Table:
    """A part's log columns (``target``: MSSD's and the store's user columns) plus its per-row
    source fingerprint (from its name, or under manifest commits from its run in ``view``)."""
    try:
        table = parquet_file(path).read()
    except (OSError, pa.ArrowException) as exc:
        raise SkipmodelError(f"cannot read store file {path}: {exc}") from None
    missing = [c for c in target.names if c not in table.column_names]
    if missing:
        raise SkipmodelError(f"store file {path} lacks column(s) {', '.join(missing)}")
    log = table.select(target.names).cast(target)
    if SOURCE_COLUMN in table.column_names:
        source = table.column(SOURCE_COLUMN).cast(pa.string())
    else:
        match = _PART_NAME.match(path.name)
        fingerprint = match[1] if match is not None and view is None else None
        if view is not None:
            fingerprint = view.source_of(path.name)
        if fingerprint is None:
            raise SkipmodelError(
                f"store file {path} is neither an ingest part nor a compacted file; remove it"
            )
        # one dictionary entry repeated (``pa.array`` would import pandas: see :mod:`.parse`)
        codes = np_array(np.zeros(table.num_rows, dtype=np.int32))
        names = str_array([fingerprint])
        source = pa.DictionaryArray.from_arrays(codes, names).cast(pa.string())
    return log.append_column(SOURCE_COLUMN, source)


def _sort_bucket(table: pa.Table) -> pa.Table:
    """Rows by (session_id, position, source fingerprint), stable (file order breaks ties).

    Every member is sorted by session already, so session ids come in runs: only the first id
    of each run is ranked (byte-wise string order), and the rows are ordered by one integer
    key ``(rank, position, source rank)``.
    """
    n = table.num_rows
    ids = table.column("session_id").combine_chunks()
    sources = table.column(SOURCE_COLUMN).combine_chunks()
    source_names = pc.unique(sources).sort()
    if n < 2 or len(source_names) >= 1 << 20:
        return _sort_bucket_by_strings(table)
    heads = np.ones(n, dtype=bool)
    heads[1:] = bool_np(pc.not_equal(ids.slice(1), ids.slice(0, n - 1)))
    head_rows = np.flatnonzero(heads)
    rank = int_np(pc.rank(ids.take(np_array(head_rows)), tiebreaker="dense"))
    runs = np.diff(np.append(head_rows, n))
    position = int_np(table.column("session_position")) + 128  # int8
    source_rank = int_np(pc.index_in(sources, value_set=source_names))
    keys = (np.repeat(rank.astype(np.int64), runs) << 28) | (position << 20) | source_rank
    if bool(np.all(keys[1:] >= keys[:-1])):
        return table
    return table.take(np_array(np.argsort(keys, kind="stable")))


def _sort_bucket_by_strings(table: pa.Table) -> pa.Table:
    keys = pa.table(
        {
            "session_id": table.column("session_id"),
            "session_position": table.column("session_position"),
            "source": table.column(SOURCE_COLUMN),
        }
    )
    order = pc.sort_indices(
        keys,
        sort_keys=[
            ("session_id", "ascending"),
            ("session_position", "ascending"),
            ("source", "ascending"),
        ],
    )
    return table.take(order)


def _canonical_categories(table: pa.Table) -> pa.Table:
    """Category dictionaries sorted, so they do not depend on which parts were merged first
    (nulls of a user column stay nulls, not a dictionary entry)."""
    for i, field in enumerate(table.schema):
        if not pa.types.is_dictionary(field.type) or field.name == SOURCE_COLUMN:
            continue
        values = table.column(i).combine_chunks().dictionary_decode()
        dictionary = pc.drop_null(pc.unique(values)).sort()
        codes = pc.index_in(values, value_set=dictionary, skip_nulls=True)
        codes = codes.cast(field.type.index_type)
        encoded = pa.DictionaryArray.from_arrays(codes, dictionary)
        table = table.set_column(i, field, encoded)
    return table


def _whole_session_counts(table: pa.Table) -> tuple[int, int]:
    """Duplicate ``(session, position)`` rows and sessions with fewer distinct positions than
    their length, over a table of whole sessions sorted by session and position."""
    n = table.num_rows
    if n == 0:
        return 0, 0
    sid = table.column("session_id").combine_chunks()
    pos = int_np(table.column("session_position"))
    same = np.zeros(n, dtype=bool)
    if n > 1:
        same[1:] = bool_np(pc.equal(sid.slice(1), sid.slice(0, n - 1)))
    dup = np.zeros(n, dtype=bool)
    dup[1:] = same[1:] & (pos[1:] == pos[:-1])
    starts = np.flatnonzero(~same)
    rows = np.diff(np.append(starts, n))
    distinct = rows - np.add.reduceat(dup.astype(np.int64), starts)
    length = int_np(table.column("session_length"))[starts]
    return int(dup.sum()), int(np.count_nonzero(distinct < length))


@dataclass(frozen=True)
class _Merged:
    """One bucket merged in memory, ready to be published."""

    bucket_dir: Path
    members: tuple[Path, ...]
    name: str
    table: pa.Table
    duplicates: int
    incomplete: int
    #: under manifest commits: the last commit sequence number merged (else None)
    through: int | None = None


def _merge_bucket(
    layout: StoreLayout,
    bucket_dir: Path,
    tracks: TrackFeatures | None,
    signature: str,
    target: pa.Schema = schema.LOG_SCHEMA,
) -> _Merged | None:
    """Merge the parts of one bucket (``target``: the store's session-log schema, user columns
    included); None when it is already one compacted file whose track rows are current."""
    members = layout.parts(bucket_dir)
    if not members or is_compacted(members, signature):
        return None
    view = layout.view()
    tables = [_read_member(p, target, view) for p in members]
    table = pa.concat_tables(tables).unify_dictionaries()
    table = _canonical_categories(_sort_bucket(table.combine_chunks()))
    duplicates, incomplete = _whole_session_counts(table)
    sources = sorted(set(pc.unique(table.column(SOURCE_COLUMN)).to_pylist()))
    named = ",".join(sources)
    if view is not None:  # object names are never reused: new track rows, a new name
        named += f";{signature}"
    digest = hashlib.sha256(named.encode()).hexdigest()[:32]
    name = f"{COMPACT_PREFIX}{digest}.parquet"
    integrity = {"duplicate_session_positions": duplicates, "incomplete_sessions": incomplete}
    out = (
        table.set_column(
            table.schema.get_field_index(SOURCE_COLUMN),
            pa.field(SOURCE_COLUMN, _SOURCE_TYPE, nullable=False),
            table.column(SOURCE_COLUMN).dictionary_encode().cast(_SOURCE_TYPE),
        )
        .append_column(pa.field(TRACK_ROW_COLUMN, pa.int32()), _track_rows(table, tracks))
        .replace_schema_metadata(
            {
                SORTED_KEY: SORTED_VALUE,
                SOURCES_KEY: json.dumps(sources).encode(),
                INTEGRITY_KEY: json.dumps(integrity, sort_keys=True).encode(),
                TRACKS_KEY: signature.encode(),
            }
        )
    )
    through = None if view is None else view.next_seq() - 1
    return _Merged(bucket_dir, tuple(members), name, out, duplicates, incomplete, through)


def _publish(merged: _Merged) -> tuple[str, int] | None:
    """Write the merged file, then swap it for the parts (journaled, see the module doc).

    Under manifest commits the file is only written: returns its name and the last commit it
    merged, for the driver to record in the manifest (:func:`record_compacted`).
    """
    bucket_dir, name = merged.bucket_dir, merged.name
    if merged.through is not None:
        with atomic_path(bucket_dir / name) as path:
            write_table(merged.table, path, **_COMPACT_OPTIONS)
        return name, merged.through
    tmp_name = f".{name}{COMPACT_TMP_SUFFIX}"
    with atomic_path(bucket_dir / tmp_name) as tmp:
        write_table(merged.table, tmp, **_COMPACT_OPTIONS)
    journal = {"file": name, "tmp": tmp_name, "remove": [p.name for p in merged.members]}
    atomic_write_json(bucket_dir / COMPACT_JOURNAL, journal)
    finish_compaction(bucket_dir, journal)
    return None


_COMPACT_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "row_group_size": ROW_GROUP_ROWS,
    "dictionary_pagesize_limit": DICTIONARY_PAGE_LIMIT,
}


def record_compacted(layout: StoreLayout, published: dict[str, tuple[str, int]]) -> None:
    """Commit compacted files written under manifest commits: the manifest names each bucket's
    file and the last commit it merged (the parts it replaces become invisible)."""
    if not published:
        return
    manifest = layout.read_manifest()
    compaction = manifest.setdefault(
        "compaction", {"complete": False, "sources": [], "integrity": {}}
    )
    files = dict(compaction.get("files", {}))
    files.update({bucket: [name, through] for bucket, (name, through) in published.items()})
    compaction["files"] = dict(sorted(files.items()))
    layout.write_manifest(manifest)


def bucket_integrity(
    layout: StoreLayout, bucket_dir: Path
) -> tuple[list[str], dict[str, int]] | None:
    """Sources and whole-session integrity counts of a compacted bucket (None if not compact)."""
    files = layout.parts(bucket_dir)
    if not is_compacted(files):
        return None
    meta = read_metadata(files[0])
    return json.loads(meta[SOURCES_KEY]), json.loads(meta[INTEGRITY_KEY])


def compact_store(layout: StoreLayout, buckets: Iterable[int] | None = None) -> CompactReport:
    """Compact ``buckets`` (default: every bucket folder) of a store the caller has locked.

    Also records in the manifest's ``compaction`` entry the sources covered by the compacted
    buckets and their whole-session integrity counts (see :func:`recompute_totals
    <skipmodel.store.journal.recompute_totals>`). The caller rewrites the manifest.
    """
    recover_compactions(layout)
    target = log_schema(recorded_columns(layout.read_manifest()))
    signature = tracks_signature(layout)
    tracks = None
    if json.loads(signature):  # track rows are looked up once here, not on every read
        tracks = TrackFeatures.from_store(layout, [])
        tracks.build_index()
    dirs = layout.bucket_dirs() if buckets is None else [layout.bucket_dir(b) for b in buckets]
    compacted = replaced = unchanged = dup = incomplete = 0
    published: dict[str, tuple[str, int]] = {}

    def publish(merged: _Merged) -> None:
        done = _publish(merged)
        if done is not None:
            published[merged.bucket_dir.name] = done

    # one bucket is written (Parquet encoding releases the GIL) while the next is merged
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="skipmodel-compact") as pool:
        writing: Future[None] | None = None
        for bucket_dir in dirs:
            merged = (
                _merge_bucket(layout, bucket_dir, tracks, signature, target)
                if bucket_dir.is_dir()
                else None
            )
            if merged is None:
                unchanged += 1
                continue
            compacted += 1
            replaced += len(merged.members)
            dup += merged.duplicates
            incomplete += merged.incomplete
            if writing is not None:
                writing.result()  # at most two buckets in memory; a failed write raises here
            writing = pool.submit(publish, merged)
            del merged
        if writing is not None:
            writing.result()
    record_compacted(layout, published)
    return CompactReport(layout.root, compacted, replaced, unchanged, dup, incomplete)


def compaction_summary(layout: StoreLayout) -> dict[str, Any]:
    """The manifest's ``compaction`` entry: sources covered by every bucket being compact, and
    the whole-session integrity counts summed over buckets."""
    sources: set[str] = set()
    totals = {"duplicate_session_positions": 0, "incomplete_sessions": 0}
    complete = True
    for bucket_dir in layout.bucket_dirs():
        if not layout.parts(bucket_dir):
            continue
        found = bucket_integrity(layout, bucket_dir)
        if found is None:
            complete = False
            continue
        sources.update(found[0])
        for key in totals:
            totals[key] += int(found[1].get(key, 0))
    summary = {"complete": complete, "sources": sorted(sources), "integrity": totals}
    files = (layout.read_manifest().get("compaction") or {}).get("files")
    if files is not None:  # manifest commits: the compacted files it names
        summary["files"] = files
    return summary


def compact(store: str | os.PathLike[str]) -> CompactReport:
    """Merge every bucket of the store at ``store`` into one sorted file (see the module doc).

    Safe to run at any time and any number of times: an already compact bucket is left as it is.

    Examples
    --------
    >>> compact("data/store")  # doctest: +SKIP
    """
    layout = open_store(store)
    with store_lock(layout):
        recover(layout)
        report = compact_store(layout)
        manifest = layout.read_manifest()
        manifest["compaction"] = compaction_summary(layout)
        recompute_totals(manifest)
        layout.write_manifest(manifest)
        if layout.view() is not None:
            collect_garbage(layout)
    return report
