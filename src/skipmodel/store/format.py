"""The store's on-disk format shared by its writers and readers: compacted-file columns and
Parquet metadata keys, and the questions a reader asks of a part file.

A compacted bucket (see :mod:`skipmodel.ingest.compact`) is one Parquet file, sorted by
``(session_id, session_position)``, with a per-row source fingerprint, a per-row track row, and
key-value metadata naming its sort order, sources, integrity counts and the track files its track
rows refer to. Readers (:mod:`skipmodel.load`, :mod:`skipmodel.explore`) import these names from
here, never from the writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from skipmodel.store.fspath import read_schema
from skipmodel.store.layout import StoreLayout
from skipmodel.store.visible import COMPACT_PREFIX

#: Per-row fingerprint of the input a row came from (only in compacted files).
SOURCE_COLUMN = "source_fingerprint"


#: Parquet metadata key: the sort order of the file's rows.
SORTED_KEY = b"skipmodel.sorted_by"


SORTED_VALUE = b"session_id,session_position"


#: Parquet metadata key: JSON list of the source fingerprints merged into the file.
SOURCES_KEY = b"skipmodel.sources"


#: Parquet metadata key: JSON object of integrity counts over the file's whole sessions.
INTEGRITY_KEY = b"skipmodel.integrity"


#: Per-row row of the play's track in the store's track table (-1: no features), valid while
#: the track files are those named under :data:`TRACKS_KEY`.
TRACK_ROW_COLUMN = "track_row"


#: Parquet metadata key: JSON list of the track part files the track rows refer to.
TRACKS_KEY = b"skipmodel.tracks"


COMPACT_JOURNAL = ".compact.json"


COMPACT_TMP_SUFFIX = ".compacting"


def read_metadata(path: Path) -> dict[bytes, bytes]:
    return read_schema(path).metadata or {}


def file_metadata(path: Path) -> dict[bytes, bytes]:
    """A part file's key-value metadata, {} when it cannot be read (reading the file then
    says why)."""
    try:
        return read_metadata(path)
    except (OSError, pa.ArrowException):
        return {}


def is_sorted_file(path: Path) -> bool:
    """Whether a session part file declares its rows sorted by ``(session_id, position)``."""
    return file_metadata(path).get(SORTED_KEY) == SORTED_VALUE


def pending_compaction(bucket_dir: Path) -> bool:
    """True while a compaction of ``bucket_dir`` is half done (its journal is present)."""
    return (bucket_dir / COMPACT_JOURNAL).is_file()


def is_compacted(files: list[Path], tracks: str | None = None) -> bool:
    """One compacted file (whose track rows refer to the track files ``tracks``, if given)."""
    if not (len(files) == 1 and files[0].name.startswith(COMPACT_PREFIX)):
        return False
    meta = file_metadata(files[0])  # {} if unreadable: not compacted
    fresh = tracks is None or meta.get(TRACKS_KEY) == tracks.encode()
    return meta.get(SORTED_KEY) == SORTED_VALUE and fresh


def tracks_signature(layout: StoreLayout) -> str:
    """The track part files a track row refers to (JSON list of names: their fingerprints)."""
    return json.dumps([p.name for p in layout.parts(layout.tracks)])
