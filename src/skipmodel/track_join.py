"""Track features joined onto plays: the store's track table, deduplicated, with a reusable lookup.

The track table is read once per loader call (only the projected feature columns) and its ids
indexed once; each bucket then looks up only its distinct track ids, so the per-bucket cost grows
with the bucket, not with the size of the track table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.parts import part_files, read_parts
from skipmodel.schema import TRACK_SCHEMA
from skipmodel.store import StoreLayout


def load_tracks(layout: StoreLayout, columns: Sequence[str]) -> pa.Table:
    """The store's track table: ``track_id`` plus ``columns``, one row per track id.

    A track id stored more than once (e.g. in two feature files) keeps its first row in part-file
    name order, then file row order, so the choice is the same on every machine.
    """
    read = ["track_id", *columns]
    schema = pa.schema([TRACK_SCHEMA.field(c).with_nullable(True) for c in read])
    tracks = read_parts(part_files(layout.tracks), read, schema)
    if tracks.num_rows == 0:
        return tracks
    rows = pa.array(np.arange(tracks.num_rows, dtype=np.int64))
    first = (
        pa.table({"track_id": tracks.column("track_id"), "row": rows})
        .group_by("track_id", use_threads=False)
        .aggregate([("row", "min")])
        .column("row_min")
    )
    if len(first) == tracks.num_rows:
        return tracks
    return tracks.take(pc.sort_indices(first))


class TrackFeatures:
    """Feature columns of unique tracks, with an id index built once.

    Parameters
    ----------
    tracks : pyarrow.Table
        ``track_id`` (unique) plus feature columns, as from :func:`load_tracks`.
    """

    def __init__(self, tracks: pa.Table) -> None:
        self.tracks = tracks
        ids = tracks.column("track_id").to_numpy(zero_copy_only=False) if tracks.num_rows else []
        # an object Index keeps its hash table after the first lookup: built once, probed per bucket
        self._index = pd.Index(np.asarray(ids, dtype=object), dtype=object)

    @classmethod
    def from_store(cls, layout: StoreLayout, columns: Sequence[str]) -> TrackFeatures:
        return cls(load_tracks(layout, columns))

    def rows_of(self, track_ids: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Row of each id in the track table (int64), null when the track is unknown."""
        if isinstance(track_ids, pa.ChunkedArray):
            track_ids = track_ids.combine_chunks()
        encoded = track_ids.dictionary_encode()
        distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
        where = self._index.get_indexer(distinct)
        rows = where[encoded.indices.to_numpy(zero_copy_only=False)]
        return pa.array(rows, type=pa.int64(), mask=rows < 0)

    def join(
        self, table: pa.Table, columns: Sequence[str], *, on: str = "track_id_clean"
    ) -> pa.Table:
        """``table`` with ``columns`` appended (null where the track is unknown)."""
        if not columns:
            return table
        rows = self.rows_of(table.column(on)) if self.tracks.num_rows else None
        for name in columns:
            if rows is None:
                values = pa.nulls(table.num_rows, type=TRACK_SCHEMA.field(name).type)
            else:
                values = self.tracks.column(name).take(rows)
            table = table.append_column(name, values)
        return table
