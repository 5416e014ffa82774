"""``skipmodel ingest``: raw MSSD files (tar.gz, folders, csv, csv.gz) into a Parquet store.

The pieces, one module each:

- :mod:`skipmodel.ingest.sources` finds the CSVs under the input paths and streams them
  decompressed (archives member by member, never unpacked to disk), hashing the content;
- :mod:`skipmodel.ingest.parse` tells logs from track features by header (and the challenge's
  test-set files by name and header) and turns the text into typed Arrow batches, rejecting bad
  rows with their line number, raw text and reason;
- :mod:`skipmodel.ingest.write` partitions, sorts and stages each source, then commits it
  atomically and records it in the manifest;
- :mod:`skipmodel.ingest.compact` merges each bucket's parts into one sorted file at the end;
- :mod:`skipmodel.ingest.challenge` sums up the challenge's test set in the manifest.

The WSDM Cup 2019 test set (``log_prehistory_*``: first halves of the test sessions, every
column; ``log_input_*``: second halves, four columns) is ingested with the training files from
any input form, validated by the same rules (an input row: its id, track, position and length,
``position <= length``), and written under ``STORE/challenge/`` apart from the training sessions
(:mod:`skipmodel.store.layout`); each kind has its own totals (``prehistory_rows_*``,
``input_rows_*``) and its findings go to the manifest's ``challenge`` entry, not ``integrity``.

A source whose fingerprint is already in the manifest is read (its fingerprint is known only at
its end) but not written again: its rows are in the store already, perhaps inside a compacted
bucket. The counts of a call are over its distinct sources as the manifest holds them, so a file
given twice, or ingested again, counts once (and is reported as already in the store).

Declared user columns (``columns``, :mod:`skipmodel.store.user_columns`) are recorded in the
manifest by the store's first ingest of session logs and kept in every training log's parts;
header columns neither MSSD's nor declared are listed per source (``ignored_columns``).

The store is opened (created, locked, recovered) only when the first CSV with a header row
arrives: inputs with nothing to ingest are an error that creates nothing, and a first ingest
that fails before committing anything removes what it created. Empty CSVs (0 bytes, or blank
lines only) are skipped and listed, like files that are not CSVs.

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

import os
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pyarrow as pa

from skipmodel.engine import EngineOptions
from skipmodel.errors import SkipmodelError
from skipmodel.ingest.challenge import absent_tracks, challenge_summary, known_tracks
from skipmodel.ingest.compact import compact_store, compaction_summary
from skipmodel.ingest.engine_tasks import (
    finish_buckets_on_engine,
    refuse_archives,
    stage_on_engine,
)
from skipmodel.ingest.rules import DEFAULT_LIMITS, RowLimits
from skipmodel.ingest.sources import (
    CsvSource,
    SkippedInput,
    check_paths,
    iter_inputs,
)
from skipmodel.ingest.staging import SourceReport, commit_source, stage_source
from skipmodel.ingest.write import FLUSH_ROWS
from skipmodel.progress import Progress
from skipmodel.store.fspath import FsPath
from skipmodel.store.journal import (
    collect_garbage,
    default_commit,
    discard_new_store,
    drop_empty_staging,
    new_manifest,
    recompute_totals,
    recover,
    store_lock,
)
from skipmodel.store.layout import DEFAULT_BUCKETS, MANIFEST_FILE, StoreLayout
from skipmodel.store.location import store_path
from skipmodel.store.user_columns import StoredColumn, check_declaration, settle_declaration
from skipmodel.store.visible import COMMIT_RENAME, COMMITS, commit_of

__all__ = ["IngestReport", "SourceReport", "ingest"]


@dataclass(frozen=True)
class IngestReport:
    """Counts of one ``ingest`` call (``totals``/``integrity`` are the whole store's).

    The per-kind counts are over the call's distinct sources, as the manifest records them: a
    source given twice, or already in the store (named in ``already_ingested``), counts once.
    ``skipped`` names the files and members not ingested; ``skip_reasons`` says why.
    """

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
    skip_reasons: Mapping[str, str] = field(default_factory=dict)
    already_ingested: tuple[str, ...] = ()
    #: The challenge's first halves (``log_prehistory_*``) and second halves (``log_input_*``).
    prehistory_rows_read: int = 0
    prehistory_rows_written: int = 0
    prehistory_rows_rejected: int = 0
    input_rows_read: int = 0
    input_rows_written: int = 0
    input_rows_rejected: int = 0
    #: The manifest's ``challenge`` entry (sessions per half, sessions with one half only,
    #: findings); empty when the store holds no challenge data.
    challenge: Mapping[str, Any] = field(default_factory=dict)
    #: The user columns the store keeps (:mod:`skipmodel.store.user_columns`).
    user_columns: tuple[StoredColumn, ...] = ()

    @property
    def ignored_columns(self) -> dict[str, int]:
        """Header columns not kept, with the number of this call's sources that had them."""
        counts: dict[str, int] = {}
        for source in {r.fingerprint: r for r in self.sources}.values():
            for name in source.ignored_columns:
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def rejected_dir(self) -> Path:
        return self.store / "rejected"


def _left_by_interrupted_ingest(name: str) -> bool:
    """What a first ingest killed before its first manifest can leave (the lock, staging, or
    the manifest's own temporary file); the next run recovers from these."""
    return name in (".ingest.lock", ".staging") or (
        name.startswith(f".{MANIFEST_FILE}.") and name.endswith(".tmp")
    )


def _check_store_folder(
    layout: StoreLayout,
    n_buckets: int | None,
    columns: tuple[StoredColumn, ...] | None,
    commit: str | None = None,
) -> None:
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
    if layout.manifest_path.is_file():
        manifest = layout.read_manifest()
        _check_buckets(layout, manifest, n_buckets)
        _check_commit(layout, manifest, commit)
        settle_declaration(manifest, columns, layout.root)  # refuse another one before reading


def _check_buckets(layout: StoreLayout, manifest: Mapping[str, Any], n_buckets: int | None) -> None:
    stored = int(manifest["n_buckets"])
    if n_buckets is not None and n_buckets != stored:
        raise SkipmodelError(
            f"{layout.root} was built with {stored} buckets, not {n_buckets}; "
            f"re-run with --buckets {stored} or choose a new --store"
        )


def _check_commit(layout: StoreLayout, manifest: Mapping[str, Any], commit: str | None) -> None:
    stored = commit_of(manifest)
    if commit is not None and commit != stored:
        raise SkipmodelError(
            f"{layout.root} commits by {stored}, not {commit}; a store keeps the protocol it "
            f"was created with: re-run with --commit {stored} or choose a new --store"
        )


def _open_store(
    layout: StoreLayout,
    n_buckets: int | None,
    columns: tuple[StoredColumn, ...] | None,
    commit: str | None = None,
) -> tuple[dict[str, Any], tuple[StoredColumn, ...]]:
    """The store's manifest (written first when new) and the user columns it keeps."""
    if layout.manifest_path.is_file():
        manifest = layout.read_manifest()
        _check_buckets(layout, manifest, n_buckets)
        _check_commit(layout, manifest, commit)
        before = dict(manifest)
        kept = settle_declaration(manifest, columns, layout.root)
        if manifest != before:
            layout.write_manifest(manifest)
        return manifest, kept
    n = DEFAULT_BUCKETS if n_buckets is None else n_buckets
    manifest = new_manifest(n)
    chosen = commit if commit is not None else default_commit(layout.root)
    if chosen != COMMIT_RENAME:  # (stores under rename commits keep their old manifest)
        manifest["commit"] = chosen
    kept = settle_declaration(manifest, columns, layout.root)
    layout.write_manifest(manifest)
    return manifest, kept


def _topmost_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist (None if it exists;
    None off the local disk, where folders are names, not things to remove)."""
    if isinstance(folder, FsPath):
        return None
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


class _LazyStore:
    """The store an ingest writes, opened only when the first CSV with a header row arrives.

    Opening creates the folder if needed, takes the writer lock, writes a first manifest and
    recovers an interrupted ingest. Leaving releases the lock and removes an empty staging
    folder; when a first ingest fails before committing anything, it removes the files
    (:func:`~skipmodel.store.journal.discard_new_store`) and the folders it created.
    """

    def __init__(
        self,
        layout: StoreLayout,
        n_buckets: int | None,
        columns: tuple[StoredColumn, ...] | None = None,
        commit: str | None = None,
    ) -> None:
        self.layout = layout
        self._commit = commit
        self.n_buckets = 0
        self.user_columns: tuple[StoredColumn, ...] = ()
        self._declared = columns
        self._requested = n_buckets
        self._lock = ExitStack()
        self._locked = False
        self._new = False
        self._created: Path | None = None

    @property
    def opened(self) -> bool:
        return self.n_buckets > 0

    def open(self) -> int:
        """The store's bucket count; opens the store on the first call."""
        if not self.opened:
            self._created = _topmost_missing(self.layout.root.absolute())
            self._new = not self.layout.manifest_path.is_file()
            self._lock.enter_context(store_lock(self.layout))
            self._locked = True
            manifest, self.user_columns = _open_store(
                self.layout, self._requested, self._declared, self._commit
            )
            recover(self.layout)
            self.n_buckets = int(manifest["n_buckets"])
        return self.n_buckets

    def __enter__(self) -> _LazyStore:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        with self._lock:
            if not self._locked:
                return
            if exc is None or not self._new or not discard_new_store(self.layout):
                drop_empty_staging(self.layout)
                return
        if self._created is not None:  # the lock is released: remove the folders created
            folder = self.layout.root.absolute()
            while True:
                try:
                    folder.rmdir()
                except OSError:  # not empty: something else lives there now
                    return
                if folder == self._created:
                    return
                folder = folder.parent


def _ingest_source(
    store: _LazyStore,
    source: CsvSource,
    bar: Progress,
    flush_rows: int,
    limits: RowLimits,
) -> SourceReport | SkippedInput:
    staged = stage_source(store, source, bar, flush_rows, limits)
    if isinstance(staged, SkippedInput):
        return staged
    return commit_source(store.layout, staged)


def _missing_tracks(layout: StoreLayout, known: pa.Array | None) -> dict[str, Any]:
    """Log rows / distinct tracks of the whole store absent from the track-features table."""
    if known is None:
        return {"log_tracks_missing_from_features": None, "log_rows_with_missing_track": None}
    files = [p for b in layout.bucket_dirs() for p in layout.parts(b)]
    rows, distinct = absent_tracks(known, files)
    return {"log_tracks_missing_from_features": distinct, "log_rows_with_missing_track": rows}


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    store: str | os.PathLike[str],
    *,
    n_buckets: int | None = None,
    progress: bool = True,
    flush_rows: int = FLUSH_ROWS,
    compact: bool = True,
    limits: RowLimits = DEFAULT_LIMITS,
    columns: Iterable[StoredColumn] | None = None,
    engine: EngineOptions | None = None,
    commit: str | None = None,
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
    limits
        The longest line and id or category value accepted (1 MiB, 256 bytes); rows over them
        are rejected with the reason.
    columns
        User columns of the session logs to keep, typed (:mod:`skipmodel.store.user_columns`):
        recorded by the store's first ingest of logs, reused when None, refused when they differ
        from the record. Every training log must have them in its header; an empty field is
        null, a value not of the type rejects the row. Undeclared extra columns are not kept but
        listed per source (``ignored_columns`` in the manifest).
    engine
        Where the files are parsed and the buckets compacted: this process (None, or the local
        engine) or one Spark task per input file and per bucket
        (:mod:`skipmodel.ingest.engine_tasks`; ``.csv``/``.csv.gz`` files and folders only).
        The store is the same either way.
    commit
        How a new store commits its writes (:mod:`skipmodel.store.visible`): ``rename``
        (default on a local disk and HDFS) or ``manifest`` (default on object stores such as
        S3 and GCS; also for a shared folder whose renames or locks are not to be trusted).
        An existing store keeps its own; asking for another is an error.

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
    spark = engine is not None and engine.name != "local"
    if spark:
        refuse_archives(path_list)
    layout = StoreLayout(store_path(store))
    declared = None if columns is None else check_declaration(columns)
    if commit is not None and commit not in COMMITS:
        raise SkipmodelError(f"--commit must be one of {', '.join(COMMITS)}, not {commit!r}")
    _check_store_folder(layout, n_buckets, declared, commit)
    reports: list[SourceReport] = []
    skipped: dict[str, str] = {}
    with _LazyStore(layout, n_buckets, declared, commit) as target:
        with Progress("ingest", unit="rows", enabled=None if progress else False) as bar:
            inputs = iter_inputs(path_list, exclude=layout.root)
            results = (
                stage_on_engine(
                    engine, target, list(inputs), bar, flush_rows=flush_rows, limits=limits
                )
                if engine is not None and spark
                else (
                    item
                    if isinstance(item, SkippedInput)
                    else _ingest_source(target, item, bar, flush_rows, limits)
                    for item in inputs
                )
            )
            for result in results:
                if isinstance(result, SkippedInput):
                    skipped[result.name] = result.reason
                else:
                    reports.append(result)
        if not target.opened or not reports:  # (Spark opens the store before reading)
            raise SkipmodelError(_nothing_to_ingest(path_list, skipped))
        missing = None
        if engine is not None and spark:  # compaction and track check, a task per bucket
            missing = finish_buckets_on_engine(layout, engine, compact=compact)[1]
        elif compact:
            compact_store(layout)
        manifest = layout.read_manifest()
        manifest["compaction"] = compaction_summary(layout)
        listed = manifest.setdefault("skipped", {})
        listed.update(skipped)
        for report in reports:  # skipped by an earlier ingest (empty then), ingested now
            listed.pop(report.name, None)
        known = known_tracks(layout)
        if missing is None:
            missing = _missing_tracks(layout, known)
        manifest.setdefault("integrity", {}).update(missing)
        summary = challenge_summary(layout, int(manifest["n_buckets"]), known)
        if summary is not None:
            manifest["challenge"] = summary
        recompute_totals(manifest)
        layout.write_manifest(manifest)
        if layout.view() is not None:
            collect_garbage(layout)  # the parts merged into compacted files

    distinct = {r.fingerprint: r for r in reports}.values()

    def total(kind: str, what: str) -> int:
        return sum(getattr(r, f"rows_{what}") for r in distinct if r.kind == kind)

    return IngestReport(
        store=layout.root,
        n_buckets=target.n_buckets,
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
        skip_reasons=MappingProxyType(skipped),
        already_ingested=tuple(r.name for r in reports if r.already_in_store),
        prehistory_rows_read=total("prehistory", "read"),
        prehistory_rows_written=total("prehistory", "written"),
        prehistory_rows_rejected=total("prehistory", "rejected"),
        input_rows_read=total("input", "read"),
        input_rows_written=total("input", "written"),
        input_rows_rejected=total("input", "rejected"),
        challenge=MappingProxyType(dict(manifest.get("challenge", {}))),
        user_columns=target.user_columns,
    )


def _nothing_to_ingest(paths: list[Path], skipped: Mapping[str, str]) -> str:
    """The one-line error for inputs that hold no CSV with a header row."""
    where = ", ".join(map(str, paths[:3])) + (
        f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    )
    message = f"nothing to ingest: no CSV file with a header row found in {where}"
    if skipped:
        listed = "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:3])
        more = f"; {len(skipped) - 3} more" if len(skipped) > 3 else ""
        message += f" (skipped {len(skipped)}: {listed}{more})"
    return (
        f"{message}; give .csv, .csv.gz or .tar.gz files of MSSD session logs or track "
        "features, or folders holding them"
    )
