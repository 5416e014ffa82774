"""The store's journal: the writer lock, the manifest's totals, commits and their recovery.

An ingest stages each source in ``STORE/.staging/<random>/`` and commits it through a journal
``COMMIT.json`` (:func:`apply_commit`); a compaction journals its swap of parts for one file in
``.compact.json``. :func:`recover` rolls every journaled step forward and deletes what was never
committed, so any writer (ingest, compaction) starts from a consistent store; the staging folder
itself exists only while something is staged (:func:`drop_empty_staging`). A first ingest that
fails before committing anything takes its files away again (:func:`discard_new_store`).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from skipmodel.errors import SkipmodelError
from skipmodel.store import schema
from skipmodel.store.format import COMPACT_JOURNAL, COMPACT_PREFIX, COMPACT_TMP_SUFFIX
from skipmodel.store.fspath import FsPath, renames_atomically, replace, rmtree
from skipmodel.store.layout import BUCKET_KEY, StoreLayout, atomic_write_json
from skipmodel.store.lease import lease_lock
from skipmodel.store.parts import part_files
from skipmodel.store.visible import COMMIT_MANIFEST, COMMIT_RENAME


def finish_compaction(bucket_dir: Path, journal: dict[str, Any]) -> None:
    """Roll a journaled compaction forward (idempotent)."""
    final = bucket_dir / journal["file"]
    tmp = bucket_dir / journal["tmp"]
    if tmp.exists():
        replace(tmp, final)
    for name in journal["remove"]:
        if name != journal["file"]:
            (bucket_dir / name).unlink(missing_ok=True)
    (bucket_dir / COMPACT_JOURNAL).unlink(missing_ok=True)


def recover_compactions(layout: StoreLayout) -> int:
    """Finish every journaled compaction of the store; returns how many were rolled forward."""
    done = 0
    if not layout.sessions.is_dir():
        return 0
    for bucket_dir in layout.bucket_dirs():
        journal = bucket_dir / COMPACT_JOURNAL
        if journal.is_file():
            finish_compaction(bucket_dir, json.loads(journal.read_text()))
            done += 1
        for orphan in bucket_dir.glob(f".{COMPACT_PREFIX}*{COMPACT_TMP_SUFFIX}"):
            orphan.unlink(missing_ok=True)  # written, but killed before its journal
    return done


STAGING_DIR = ".staging"


JOURNAL = "COMMIT.json"


LOCK_FILE = ".ingest.lock"


#: Prefix of each source kind's totals (``<prefix>_rows_read`` ...).
TOTAL_PREFIX = {"log": "log", "tracks": "track", "prehistory": "prehistory", "input": "input"}
TOTAL_KEYS = tuple(
    f"{prefix}_rows_{what}"
    for prefix in TOTAL_PREFIX.values()
    for what in ("read", "written", "rejected")
)


INTEGRITY_KEYS = (
    "skip_nesting_violations",
    "duplicate_session_positions",
    "dates_far_from_file_day",
    "incomplete_sessions",
)


@contextmanager
def store_lock(layout: StoreLayout) -> Iterator[None]:
    """One ingest at a time per store: an ``flock`` on a local disk (released by the OS if the
    process dies), a lease object elsewhere (:mod:`skipmodel.store.lease`)."""
    if isinstance(layout.root, FsPath):
        with lease_lock(layout.root, LOCK_FILE):
            yield
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(layout.root / LOCK_FILE, "w")  # noqa: SIM115 - closed below, after the yield
    except FileNotFoundError:  # another ingest's failed first run just removed the folder
        raise SkipmodelError(
            f"{layout.root}: another 'skipmodel ingest' removed this store folder meanwhile; re-run"
        ) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SkipmodelError(
                f"{layout.root}: another 'skipmodel ingest' is writing this store; wait for it"
            ) from None
        yield


# -- manifest and commit -------------------------------------------------------------------
def new_manifest(n_buckets: int) -> dict[str, Any]:
    return {
        "schema_version": schema.SCHEMA_VERSION,
        "n_buckets": n_buckets,
        "sources": {},
        "skipped": {},
        "totals": dict.fromkeys(TOTAL_KEYS, 0),
        "integrity": dict.fromkeys(INTEGRITY_KEYS, 0),
    }


def recompute_totals(manifest: dict[str, Any]) -> None:
    """The manifest's ``totals`` (per source kind) and ``integrity`` from its sources.

    ``integrity`` describes the training sessions and tracks: the findings of challenge sources
    (:data:`~skipmodel.store.schema.CHALLENGE_KINDS`) are summed apart, under
    ``challenge.integrity`` (with the rest of ``challenge`` left as it is).
    """
    totals = dict.fromkeys(TOTAL_KEYS, 0)
    integrity = dict.fromkeys(INTEGRITY_KEYS, 0)
    challenge: dict[str, int] = {}
    for entry in manifest["sources"].values():
        kind = entry["kind"]
        prefix = TOTAL_PREFIX.get(kind)
        if prefix is None:
            raise SkipmodelError(
                f"the store's manifest has a source of unknown kind {kind!r}; "
                "it was written by a newer skipmodel: upgrade"
            )
        for what in ("read", "written", "rejected"):
            totals[f"{prefix}_rows_{what}"] += entry[f"rows_{what}"]
        found = entry.get("integrity", {})
        if kind in schema.CHALLENGE_KINDS:
            for key, value in found.items():
                challenge[f"{kind}_{key}"] = challenge.get(f"{kind}_{key}", 0) + value
            continue
        for key, value in found.items():
            if key in integrity:
                integrity[key] += value
    if challenge or "challenge" in manifest:
        manifest.setdefault("challenge", {})["integrity"] = dict(sorted(challenge.items()))
    manifest["totals"] = totals
    compaction = manifest.get("compaction")
    written = {
        fp for fp, e in manifest["sources"].items() if e["kind"] == "log" and e["rows_written"]
    }
    if compaction and compaction["complete"] and set(compaction["sources"]) == written:
        # every log row sits in a compacted bucket: count per whole session, not per part
        integrity.update(compaction["integrity"])
    store_wide = {k: v for k, v in manifest.get("integrity", {}).items() if k not in integrity}
    manifest["integrity"] = {**integrity, **store_wide}


def write_commit_journal(
    staging: Path, fingerprint: str, entry: dict[str, Any], moves: list[tuple[str, str]]
) -> None:
    """Commit a staged source: its journal, written atomically, is the point of no return
    (from here :func:`recover` rolls it forward; before, it deletes the staging folder)."""
    journal = {"fingerprint": fingerprint, "entry": entry, "moves": moves}
    atomic_write_json(staging / JOURNAL, journal)


def apply_commit(layout: StoreLayout, staging: Path) -> None:
    """Move a staged source into place and record it (idempotent: safe to redo after a kill)."""
    journal = json.loads((staging / JOURNAL).read_text())
    fp = journal["fingerprint"]
    finals = set()
    for staged, final in journal["moves"]:
        target = layout.root / final
        finals.add(target)
        if (staging / staged).exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            replace(staging / staged, target)
    stale = [
        *layout.sessions.glob(f"{BUCKET_KEY}=*/part-{fp}*.parquet"),
        *layout.challenge.glob(f"*/{BUCKET_KEY}=*/part-{fp}*.parquet"),
        *layout.tracks.glob(f"part-{fp}*.parquet"),
        *layout.rejected.glob(f"part-{fp}*.parquet"),
    ]
    for path in stale:
        if path not in finals:
            path.unlink()
    manifest = layout.read_manifest()
    entry = journal["entry"]
    old = manifest["sources"].get(fp)
    if old:
        entry["names"] = sorted(set(old["names"]) | set(entry["names"]))
    manifest["sources"][fp] = entry
    recompute_totals(manifest)
    layout.write_manifest(manifest)
    rmtree(staging)


def commit_by_manifest(layout: StoreLayout, fingerprint: str, entry: dict[str, Any]) -> None:
    """Commit a source written under manifest commits (its parts named after ``entry["run"]``):
    the manifest's rewrite naming the run is the commit (:mod:`skipmodel.store.visible`)."""
    manifest = layout.read_manifest()
    view = layout.view()
    entry["seq"] = view.next_seq() if view is not None else 1
    manifest["sources"][fingerprint] = entry
    recompute_totals(manifest)
    layout.write_manifest(manifest)


def default_commit(root: Path) -> str:
    """The commit protocol of a new store at ``root``: rename where renames are atomic."""
    return COMMIT_RENAME if renames_atomically(root) else COMMIT_MANIFEST


def collect_garbage(layout: StoreLayout) -> int:
    """Delete the part files a store under manifest commits does not name (written by a run
    that was never committed, or merged into a compacted file since); returns how many."""
    removed = 0
    for folder in layout.part_folders():
        kept = set(layout.parts(folder))
        for path in part_files(folder):
            if path not in kept:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def recover(layout: StoreLayout) -> int:
    """Finish journaled commits and delete abandoned staging folders and temp files (under
    manifest commits: every part file the manifest does not name)."""
    if layout.view() is not None:
        collect_garbage(layout)
    recover_compactions(layout)  # before the temp files go: a journal may name one
    rolled = 0
    staging_root = layout.root / STAGING_DIR
    if staging_root.is_dir():
        for child in sorted(staging_root.iterdir()):
            if (child / JOURNAL).is_file():
                apply_commit(layout, child)
                rolled += 1
            else:
                rmtree(child)
    for sub in (layout.sessions, layout.tracks, layout.rejected, layout.challenge, layout.root):
        if sub.is_dir():
            pattern = "**/.*.tmp" if sub != layout.root else ".*.tmp"
            for tmp in sub.glob(pattern):
                tmp.unlink(missing_ok=True)
    drop_empty_staging(layout)
    return rolled


def drop_empty_staging(layout: StoreLayout) -> None:
    """Remove the staging folder when nothing is staged (writers create it again on demand)."""
    with suppress(OSError):  # absent, or holds a staged source
        (layout.root / STAGING_DIR).rmdir()


def discard_new_store(layout: StoreLayout) -> bool:
    """Remove what a first ingest created, if it committed nothing (called under the lock).

    The manifest, the staging folder, empty table folders, temporary files and the lock file
    go; the folder itself stays for the caller (who knows whether it existed before). A source
    whose commit journal is written is committed (the next run rolls it forward), so then
    nothing is removed. Returns True when the store's files were removed.
    """
    staging = layout.root / STAGING_DIR
    if any(staging.glob(f"*/{JOURNAL}")):
        return False
    if (view := layout.view()) is not None:
        if view.runs:
            return False
        collect_garbage(layout)
    try:
        if layout.manifest_path.is_file() and layout.read_manifest()["sources"]:
            return False
    except SkipmodelError:  # an unreadable manifest: leave the folder as it is
        return False
    rmtree(staging)
    for folder in (layout.sessions, layout.tracks, layout.rejected, layout.challenge):
        if folder.is_dir() and not any(folder.rglob("*.parquet")):
            rmtree(folder)
    for path in (layout.manifest_path, *layout.root.glob(".*.tmp"), layout.root / LOCK_FILE):
        path.unlink(missing_ok=True)
    return True
