"""``skipmodel ingest``: raw MSSD files (tar.gz, folders, csv, csv.gz) into a Parquet store.

The pieces, one module each:

- :mod:`skipmodel.ingest.sources` finds the CSVs under the input paths and streams them
  decompressed (archives member by member, never unpacked to disk), hashing the content;
- :mod:`skipmodel.ingest.parse` tells logs from track features by header and turns the text into
  typed Arrow batches, rejecting bad rows with their line number, raw text and reason;
- :mod:`skipmodel.ingest.write` partitions, sorts and stages each source, then commits it
  atomically and records it in the manifest;
- :mod:`skipmodel.ingest.compact` merges each bucket's parts into one sorted file at the end.

A source whose fingerprint is already in the manifest is read (its fingerprint is known only at
its end) but not written again: its rows are in the store already, perhaps inside a compacted
bucket.

Accounting: for every source and in the totals, ``rows_read = rows_written + rows_rejected``,
where a row is a physical line after the header (a blank line is a rejected row).

Integrity findings (counted in the manifest, rows are kept): skip-level nesting violations
(``skip_1 & !skip_2``, ``skip_2 & !skip_3``, ``not_skipped & skip_3``); duplicate
``(session_id, session_position)`` rows within a source; rows whose ``date`` is more than one day
from the file's day (the ``log_<k>_<yyyymmdd>`` day in the file name, else the file's most
common date); sessions with fewer distinct positions than their ``session_length``, counted per
part, or per whole session once every bucket is compacted (then duplicates too); and, over the whole store at the end of each ingest, log rows (and distinct tracks) whose
``track_id_clean`` is not in the track-features table.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skipmodel.errors import SkipmodelError
from skipmodel.ingest.compact import compact_store, compaction_summary
from skipmodel.ingest.parse import SourceParser, sniff_header
from skipmodel.ingest.sources import (
    STREAM_ERRORS,
    CsvSource,
    SkippedInput,
    check_paths,
    file_day,
    iter_inputs,
)
from skipmodel.ingest.write import FLUSH_ROWS, SourceWriter, far_dates
from skipmodel.progress import Progress
from skipmodel.store.journal import (
    apply_commit,
    new_manifest,
    recompute_totals,
    recover,
    store_lock,
)
from skipmodel.store.layout import DEFAULT_BUCKETS, MANIFEST_FILE, StoreLayout, atomic_write_json

__all__ = ["IngestReport", "SourceReport", "ingest"]


@dataclass(frozen=True)
class SourceReport:
    """What one input CSV contributed."""

    name: str
    kind: str
    fingerprint: str
    rows_read: int
    rows_written: int
    rows_rejected: int


@dataclass(frozen=True)
class IngestReport:
    """Counts of one ``ingest`` call (``totals``/``integrity`` are the whole store's)."""

    store: Path
    n_buckets: int
    sources: tuple[SourceReport, ...]
    skipped: tuple[str, ...]
    log_rows_read: int
    log_rows_written: int
    log_rows_rejected: int
    track_rows_read: int
    track_rows_written: int
    track_rows_rejected: int
    integrity: Mapping[str, Any] = field(default_factory=dict)
    totals: Mapping[str, int] = field(default_factory=dict)

    @property
    def rejected_dir(self) -> Path:
        return self.store / "rejected"


def _left_by_interrupted_ingest(name: str) -> bool:
    """What a first ingest killed before its first manifest can leave (the lock, staging, or
    the manifest's own temporary file); the next run recovers from these."""
    return name in (".ingest.lock", ".staging") or (
        name.startswith(f".{MANIFEST_FILE}.") and name.endswith(".tmp")
    )


def _check_store_folder(layout: StoreLayout, n_buckets: int | None) -> None:
    """Refuse, before touching anything, a folder that is neither empty nor a store."""
    if n_buckets is not None and not 1 <= n_buckets <= 10_000:
        raise SkipmodelError(f"--buckets must be between 1 and 10000, not {n_buckets}")
    if layout.root.exists() and not layout.root.is_dir():
        raise SkipmodelError(f"--store {layout.root} is a file; give a folder")
    if (
        layout.root.is_dir()
        and not layout.manifest_path.is_file()
        and not all(_left_by_interrupted_ingest(p.name) for p in layout.root.iterdir())
    ):
        raise SkipmodelError(
            f"{layout.root} exists, is not empty and is not a skipmodel store; "
            "choose an empty or new --store folder"
        )


def _open_store(layout: StoreLayout, n_buckets: int | None) -> dict[str, Any]:
    if layout.manifest_path.is_file():
        manifest = layout.read_manifest()
        stored = int(manifest["n_buckets"])
        if n_buckets is not None and n_buckets != stored:
            raise SkipmodelError(
                f"{layout.root} was built with {stored} buckets, not {n_buckets}; "
                f"re-run with --buckets {stored} or choose a new --store"
            )
        return manifest
    n = DEFAULT_BUCKETS if n_buckets is None else n_buckets
    manifest = new_manifest(n)
    atomic_write_json(layout.manifest_path, manifest)
    return manifest


def _ingest_source(
    layout: StoreLayout,
    source: CsvSource,
    n_buckets: int,
    bar: Progress,
    flush_rows: int,
) -> SourceReport:
    reader = source.open()
    writer: SourceWriter | None = None
    try:
        kind, columns = sniff_header(reader)
        parser = SourceParser(reader, kind, columns)
        writer = SourceWriter(layout, kind, n_buckets, parser.categories, flush_rows=flush_rows)
        rows_read = 0
        with closing(parser.batches()) as batches:
            for batch in batches:
                writer.add(batch.valid)
                writer.add_rejected(batch.rejected)
                rows_read += batch.n_read
                bar.advance(batch.n_read, note=source.name[-50:])
        fp = reader.fingerprint()
        day = file_day(source.name) if kind == "log" else None
        far, ref_day = far_dates(writer.dates, day)
        writer.flush_all()
        integrity = dict(writer.integrity)
        if kind == "log":
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
        committed = layout.read_manifest()["sources"].get(fp)
        if committed is not None:
            # already in the store (maybe inside a compacted bucket): keep it, add the name
            writer.discard()
            _add_names(layout, fp, [source.name])
            return SourceReport(
                source.name,
                committed["kind"],
                fp,
                committed["rows_read"],
                committed["rows_written"],
                committed["rows_rejected"],
            )
        staging = writer.finish(fp, entry)
    except (*STREAM_ERRORS, pa.ArrowException) as exc:
        if writer is not None:
            writer.discard()
        if reader.error is not None:  # the input stream broke (pyarrow may re-wrap the error)
            raise SkipmodelError(
                f"{source.name}: truncated or corrupt compressed data ({reader.error}); "
                "nothing of this source was written, fix or remove it and re-run"
            ) from None
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
    apply_commit(layout, staging)
    return SourceReport(source.name, kind, fp, rows_read, written, rejected)


def _add_names(layout: StoreLayout, fingerprint: str, names: list[str]) -> None:
    """Record another name of a source already in the store."""
    manifest = layout.read_manifest()
    entry = manifest["sources"][fingerprint]
    merged = sorted(set(entry["names"]) | set(names))
    if merged != entry["names"]:
        entry["names"] = merged
        atomic_write_json(layout.manifest_path, manifest)


def _missing_tracks(layout: StoreLayout) -> dict[str, Any]:
    """Log rows / distinct tracks of the whole store absent from the track-features table."""
    track_files = sorted(layout.tracks.glob("part-*.parquet"))
    if not track_files:
        return {"log_tracks_missing_from_features": None, "log_rows_with_missing_track": None}
    known = pa.concat_arrays(
        [pq.read_table(p, columns=["track_id"])["track_id"].combine_chunks() for p in track_files]
    )
    known = pc.unique(known)
    missing_rows = 0
    missing_ids: list[pa.Array] = []
    for part in sorted(layout.sessions.glob("*/part-*.parquet")):
        ids = pq.read_table(part, columns=["track_id_clean"])["track_id_clean"].combine_chunks()
        absent = pc.invert(pc.is_in(ids, value_set=known))
        n = int(pc.sum(absent).as_py() or 0)
        if n:
            missing_rows += n
            missing_ids.append(pc.unique(ids.filter(absent)))
    distinct = len(pc.unique(pa.concat_arrays(missing_ids))) if missing_ids else 0
    return {
        "log_tracks_missing_from_features": distinct,
        "log_rows_with_missing_track": missing_rows,
    }


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    store: str | os.PathLike[str],
    *,
    n_buckets: int | None = None,
    progress: bool = True,
    flush_rows: int = FLUSH_ROWS,
    compact: bool = True,
) -> IngestReport:
    """Ingest raw MSSD files into the Parquet store at ``store``.

    Parameters
    ----------
    paths
        ``.tar.gz``/``.tgz`` archives, folders, ``.csv`` and ``.csv.gz`` files, in any mix.
    store
        The store folder; created if absent, extended (idempotently) if it is a store.
    n_buckets
        Session buckets of a new store (default 100). An existing store keeps its own count;
        asking for a different one is an error.
    progress
        Show rows/s on a terminal (never in CI or pipes).
    flush_rows
        Valid rows buffered before writing parts (bounds memory; tests use small values).
    compact
        At the end, merge each bucket's parts into one file sorted by session
        (:mod:`skipmodel.ingest.compact`), so readers need neither open many files nor
        re-sort. Without it the store stays correct but slower to read; a later ingest or
        :func:`skipmodel.ingest.compact.compact` compacts it.

    Returns
    -------
    IngestReport
        Counts of this call; ``totals`` and ``integrity`` are the whole store's.

    Examples
    --------
    >>> report = ingest(["data/demo/training_set.tar.gz"], "data/store")  # doctest: +SKIP
    >>> report.log_rows_read == report.log_rows_written + report.log_rows_rejected  # doctest: +SKIP
    True
    """
    path_list = [Path(p) for p in paths]
    check_paths(path_list)
    _check_store_folder(StoreLayout(Path(store)), n_buckets)
    layout = StoreLayout(Path(store))
    with store_lock(layout):
        manifest = _open_store(layout, n_buckets)
        recover(layout)
        n = int(manifest["n_buckets"])
        reports: list[SourceReport] = []
        skipped: dict[str, str] = {}
        with Progress("ingest", unit="rows", enabled=None if progress else False) as bar:
            for item in iter_inputs(path_list, exclude=layout.root):
                if isinstance(item, SkippedInput):
                    skipped[item.name] = item.reason
                    continue
                reports.append(_ingest_source(layout, item, n, bar, flush_rows))
        if compact:
            compact_store(layout)
        manifest = layout.read_manifest()
        manifest["compaction"] = compaction_summary(layout)
        manifest.setdefault("skipped", {}).update(skipped)
        manifest.setdefault("integrity", {}).update(_missing_tracks(layout))
        recompute_totals(manifest)
        atomic_write_json(layout.manifest_path, manifest)

    def total(kind: str, what: str) -> int:
        return sum(getattr(r, f"rows_{what}") for r in reports if r.kind == kind)

    return IngestReport(
        store=layout.root,
        n_buckets=n,
        sources=tuple(reports),
        skipped=tuple(skipped),
        log_rows_read=total("log", "read"),
        log_rows_written=total("log", "written"),
        log_rows_rejected=total("log", "rejected"),
        track_rows_read=total("tracks", "read"),
        track_rows_written=total("tracks", "written"),
        track_rows_rejected=total("tracks", "rejected"),
        integrity=MappingProxyType(dict(manifest["integrity"])),
        totals=MappingProxyType(dict(manifest["totals"])),
    )
