"""One input CSV through the store's two-phase write: staged by a parser and writer, then
committed through the journal.

:func:`stage_source` parses a source and writes its parts, sorted and bucketed, into a staging
folder of its own (``STORE/.staging/<random>/``); nothing it writes is visible in the store.
:func:`commit_source` then journals the staged moves and applies them
(:func:`skipmodel.store.journal.apply_commit`), or, when the source's fingerprint is in the
manifest already, drops the staged copy and records the extra name.

The local engine runs both phases in this process, one source after another. The Spark engine
runs :func:`stage_file` as one Spark task per input file, on an executor, and commits each
result on the driver in the inputs' order, so the manifest and the store are the local
engine's. Only the driver writes commit journals: a task's staging folder that never got one
(its driver was killed, its executor lost) is deleted by the next run's recovery, whatever the
task was still doing.
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.ingest.parse import HEAD_BYTES, SourceParser, sniff_header
from skipmodel.ingest.rules import DEFAULT_LIMITS, RowLimits
from skipmodel.ingest.sources import (
    EMPTY_FILE,
    STREAM_ERRORS,
    CsvSource,
    HashingReader,
    SkippedInput,
    _file_input,
    file_day,
)
from skipmodel.ingest.write import FLUSH_ROWS, SourceWriter, far_dates
from skipmodel.progress import Progress
from skipmodel.store.fspath import rmtree
from skipmodel.store.journal import apply_commit, commit_by_manifest, write_commit_journal
from skipmodel.store.layout import StoreLayout
from skipmodel.store.location import store_path
from skipmodel.store.schema import CHALLENGE_KINDS
from skipmodel.store.user_columns import StoredColumn

__all__ = [
    "FileTask",
    "SourceReport",
    "StagedSource",
    "commit_source",
    "stage_file",
    "stage_source",
]


@dataclass(frozen=True)
class SourceReport:
    """What one input CSV contributed."""

    name: str
    kind: str
    fingerprint: str
    rows_read: int
    rows_written: int
    rows_rejected: int
    already_in_store: bool = False
    #: header columns not kept (neither MSSD's nor declared user columns)
    ignored_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class StagedSource:
    """A source parsed and written to its staging folder, not yet committed."""

    name: str
    kind: str
    fingerprint: str
    staging: Path
    #: (staged file, final path relative to the store) for each file staged
    moves: tuple[tuple[str, str], ...]
    #: the source's manifest entry
    entry: dict[str, Any]
    ignored_columns: tuple[str, ...] = ()
    #: under manifest commits: the files written in place (relative to the store), to delete
    #: if the source turns out to be in the store already
    written: tuple[str, ...] = ()

    def discard(self, layout: StoreLayout) -> None:
        """Delete what was staged (a duplicate, or a failed commit)."""
        if "run" not in self.entry:
            rmtree(self.staging)
            return
        for relative in self.written:
            (layout.root / relative).unlink(missing_ok=True)


class StoreTarget(Protocol):
    """The store a source is staged into: opened on demand (the local engine opens it when the
    first CSV with a header row arrives; a Spark task gets it opened)."""

    layout: StoreLayout
    user_columns: tuple[StoredColumn, ...]

    @property
    def opened(self) -> bool: ...

    def open(self) -> int: ...


def empty_reason(reader: HashingReader) -> str | None:
    """Why a source without a header row is skipped; None when it has text."""
    head = reader.peek_head(HEAD_BYTES)
    if not head:
        return f"{EMPTY_FILE} decompressed" if reader.name.lower().endswith(".gz") else EMPTY_FILE
    if len(head) < HEAD_BYTES and not head.strip():
        return "empty file: blank lines only, no header row"
    return None


def stage_source(
    store: StoreTarget,
    source: CsvSource,
    bar: Progress,
    flush_rows: int = FLUSH_ROWS,
    limits: RowLimits = DEFAULT_LIMITS,
) -> StagedSource | SkippedInput:
    """Parse ``source`` and stage its parts and rejected rows (see the module doc)."""
    reader = source.open()
    writer: SourceWriter | None = None
    layout = store.layout
    try:
        empty = empty_reason(reader)
        if empty is not None:
            return SkippedInput(source.name, empty)
        kind, columns = sniff_header(reader)
        n_buckets = store.open()
        parser = SourceParser(reader, kind, columns, limits=limits, user_columns=store.user_columns)
        writer = SourceWriter(
            layout,
            kind,
            n_buckets,
            parser.categories,
            flush_rows=flush_rows,
            user_columns=store.user_columns,
        )
        rows_read = 0
        with closing(parser.batches()) as batches:
            for batch in batches:
                writer.add(batch.valid)
                writer.add_rejected(batch.rejected)
                rows_read += batch.n_read
                bar.advance(batch.n_read, note=source.name[-50:])
        # a prehistory has a training log's header: its kind (from its name) must enter its
        # fingerprint, or the same bytes as a training log would count as ingested already
        fp = reader.fingerprint(salt=kind if kind in CHALLENGE_KINDS else "")
        day = file_day(source.name) if kind != "tracks" else None
        far, ref_day = far_dates(writer.dates, day)
        writer.flush_all()
        integrity = dict(writer.integrity)
        if kind in ("log", "prehistory"):
            integrity["dates_far_from_file_day"] = far
        written, rejected = writer.rows_written, writer.rows_rejected
        if rows_read != written + rejected:  # pragma: no cover - an invariant, not input
            raise AssertionError(f"{source.name}: read {rows_read} != {written} + {rejected}")
        entry = {
            "names": [source.name],
            "kind": kind,
            "bytes": reader.nbytes,
            "rows_read": rows_read,
            "rows_written": written,
            "rows_rejected": rejected,
            "integrity": integrity,
            "file_day": ref_day,
            "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        if parser.ignored_columns:  # not kept: listed, so nothing is lost silently
            entry["ignored_columns"] = parser.ignored_columns
        moves = writer.staged_moves(fp)
        if writer.run is not None:
            entry["run"] = writer.run
    except (*STREAM_ERRORS, pa.ArrowException) as exc:
        if writer is not None:
            writer.discard()
        if reader.error is not None:  # the input stream broke (pyarrow may re-wrap the error)
            raise SkipmodelError(
                f"{source.name}: truncated or corrupt compressed data ({reader.error}); "
                "nothing of this source was written, fix or remove it and re-run"
            ) from None
        if not store.opened:  # the store could not be opened: the system's refusal, as it is
            raise
        if isinstance(exc, OSError):  # writing failed: disk full, permissions, ...
            raise SkipmodelError(
                f"cannot write the store {layout.root} ({exc}); nothing of {source.name} "
                "was kept, fix and re-run"
            ) from None
        raise SkipmodelError(f"{source.name}: unreadable CSV ({exc})") from None
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    finally:
        reader.close_all()
    return StagedSource(
        source.name,
        kind,
        fp,
        writer.staging,
        tuple(moves),
        entry,
        tuple(parser.ignored_columns),
        tuple(writer.written_files()),
    )


def add_names(layout: StoreLayout, fingerprint: str, names: list[str]) -> None:
    """Record another name of a source already in the store."""
    manifest = layout.read_manifest()
    entry = manifest["sources"][fingerprint]
    merged = sorted(set(entry["names"]) | set(names))
    if merged != entry["names"]:
        entry["names"] = merged
        layout.write_manifest(manifest)


def _names_run(layout: StoreLayout, fingerprint: str, run: str) -> bool:
    try:
        entry = layout.read_manifest()["sources"].get(fingerprint)
    except BaseException:  # noqa: BLE001 - unreadable: treat as committed, keep the files
        return True
    return entry is not None and entry.get("run") == run


def commit_source(layout: StoreLayout, staged: StagedSource) -> SourceReport:
    """Commit a staged source through the journal; a source already in the store (maybe inside
    a compacted bucket) is kept as it is, the staged copy dropped and its name added."""
    fp = staged.fingerprint
    by_manifest = "run" in staged.entry
    try:
        committed = layout.read_manifest()["sources"].get(fp)
        if committed is None and by_manifest:
            commit_by_manifest(layout, fp, staged.entry)
        elif committed is None:
            write_commit_journal(staged.staging, fp, staged.entry, list(staged.moves))
    except BaseException:
        if not (by_manifest and _names_run(layout, fp, staged.entry["run"])):
            staged.discard(layout)  # (a manifest already naming the run has committed it)
        raise
    if committed is not None:
        staged.discard(layout)
        add_names(layout, fp, [staged.name])
        return SourceReport(
            staged.name,
            committed["kind"],
            fp,
            committed["rows_read"],
            committed["rows_written"],
            committed["rows_rejected"],
            already_in_store=True,
            ignored_columns=tuple(committed.get("ignored_columns", ())),
        )
    if not by_manifest:
        apply_commit(layout, staged.staging)
    entry = staged.entry
    return SourceReport(
        staged.name,
        staged.kind,
        fp,
        entry["rows_read"],
        entry["rows_written"],
        entry["rows_rejected"],
        ignored_columns=staged.ignored_columns,
    )


# -- one input file as a Spark task ----------------------------------------------------------
@dataclass(frozen=True)
class FileTask:
    """What an executor needs to stage one input file: absolute paths (an executor's working
    folder is not the driver's), the name the manifest records, and the opened store's facts."""

    store: str
    path: str
    name: str
    n_buckets: int
    user_columns: tuple[StoredColumn, ...]
    flush_rows: int
    limits: RowLimits


@dataclass
class _OpenedStore:
    """A store the driver has opened (locked, recovered): a task only writes into it."""

    layout: StoreLayout
    n_buckets: int
    user_columns: tuple[StoredColumn, ...]
    opened: bool = True

    def open(self) -> int:
        return self.n_buckets


def stage_file(task: FileTask) -> StagedSource | SkippedInput:
    """Stage one input file on an executor (the driver commits the result)."""
    item = _file_input(Path(task.path))
    if isinstance(item, SkippedInput):
        return SkippedInput(task.name, item.reason)
    source = CsvSource(task.name, item.open)
    store = _OpenedStore(StoreLayout(store_path(task.store)), task.n_buckets, task.user_columns)
    with Progress("ingest", enabled=False) as bar:
        return stage_source(store, source, bar, task.flush_rows, task.limits)
