"""The one reader of the store's tracks table, and the track-feature join onto plays.

**The duplicate rule.** A track id stored more than once (in two track files, or twice in one)
counts once: its first row wins, in the store's fixed order (part files sorted by name, then
row order within a file; :func:`skipmodel.store.parts.part_files`). :func:`first_rows` is that
rule, written once; every consumer reads the table through it:

* :class:`TrackTable` streams the de-duplicated rows as Arrow batches with a column projection
  (explore's histograms, cpdag's co-moment pass) or returns a small projection as one table
  (scale's bin ranges). Finding the first rows costs one pass over the ``track_id`` column: 8
  bytes of hash per stored row plus a sorted copy while the mask is built (~60 MB at the peak
  for MSSD's 3.7 M tracks), then a keep-mask of 1 byte per stored row (3.7 MB). Only when some
  hash repeats are those rows' ids read again and compared as strings, so a hash collision can
  never drop a track.
* :class:`TrackFeatures` finds the row of each play's track (the loaders' join, compaction's
  track rows). It keeps every stored row, so row numbers are positions in the stored table, but
  its lookups only ever answer a first row: the ids of later rows are masked by the same rule.

Two ways to find the track row of each play, same answer:

* probe (default, cheap for a small sample): each bucket hashes its distinct track ids and probes
  every track id against them (Arrow kernels), so no index is built per call, but each bucket
  pays one pass over the whole track table;
* index (:meth:`TrackFeatures.build_index`, for passes over many buckets): the track ids are
  hashed once into a sorted 64-bit array; each bucket then hashes only its distinct ids and
  binary-searches them, and every candidate is confirmed by comparing the strings, so a hash
  collision can never join a wrong track. Cost per bucket is O(distinct ids x log tracks)
  instead of O(tracks): for real MSSD (3.7 M tracks, 100 buckets) that is the difference
  between 370 M probes and 3.7 M per pass.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from skipmodel.errors import SkipmodelError
from skipmodel.store.fspath import parquet_file
from skipmodel.store.layout import StoreLayout
from skipmodel.store.location import store_path
from skipmodel.store.parts import read_parts
from skipmodel.store.schema import TRACK_SCHEMA

#: Track ids hashed at a time while finding first rows (bounds the hashing temporaries).
ID_CHUNK_ROWS = 1 << 18
#: Rows per batch of :meth:`TrackTable.batches` (before duplicates are dropped).
TRACK_BATCH_ROWS = 1 << 18

_WORD_PRIME = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying is a bijection
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def id_hash(values: pa.Array) -> np.ndarray:
    """A fast 64-bit hash of each string, for in-process lookups only (not stable storage).

    Reads the UTF-8 bytes eight at a time (one NumPy pass per 8 bytes, not per byte as
    :func:`skipmodel.store.hashing.fnv1a64`), so hashing 38-character track ids takes five passes.
    Nulls hash as the empty string. Equal strings always hash equal; callers confirm matches.
    """
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[values.offset : values.offset + n + 1]
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    if values.null_count:
        lengths = np.where(values.is_valid().to_numpy(zero_copy_only=False), lengths, 0)
    raw = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    # FNV-style: xor a word, multiply by an odd constant; one splitmix64 finish mixes the bits
    out = lengths.astype(np.uint64) * _WORD_PRIME
    width = int(lengths.max())
    if int(lengths.min()) == width:
        # all the same length (e.g. every track id is "t_" + a UUID): the strings are one
        # contiguous n x width block; zero-pad each row to whole words and view it as uint64
        block = raw[int(starts[0]) : int(starts[0]) + n * width].reshape(n, width)
        padded = np.zeros((n, -(-width // 8) * 8), dtype=np.uint8)
        padded[:, :width] = block
        with np.errstate(over="ignore"):
            for word in padded.view("<u8").T:
                out ^= word
                out *= _WORD_PRIME
        return _mix(out)
    # padded copy, so an 8-byte read at any string start stays inside the buffer
    data = np.zeros(raw.size + 8, dtype=np.uint8)
    data[: raw.size] = raw
    # every byte offset as the start of a little-endian uint64 (unaligned view, no copy)
    words = np.ndarray(shape=(raw.size + 1,), dtype="<u8", buffer=data, strides=(1,))
    with np.errstate(over="ignore"):
        for at in range(0, width, 8):
            # a string already ended reads any in-range word; the masks below ignore it
            word = words[np.minimum(starts + at, raw.size)]
            left = lengths - at
            keep = np.clip(left, 0, 8).astype(np.uint64)
            word &= np.where(keep >= 8, _ALL_ONES, (np.uint64(1) << (keep * np.uint64(8))) - 1)
            # strings already ended keep their hash, whatever the longest string in the batch
            out = np.where(left > 0, (out ^ word) * _WORD_PRIME, out)
    return _mix(out)


def _fixed_width(values: pa.Array) -> np.ndarray | None:
    """The strings as an (n, width) uint8 block when all are valid and equally long, else None
    (MSSD track ids are all ``t_`` + a UUID: comparing rows of such blocks is a string compare)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values.null_count or not len(values):
        return None
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[
        values.offset : values.offset + len(values) + 1
    ]
    lengths = np.diff(offsets)
    width = int(lengths[0])
    if width == 0 or not bool(np.all(lengths == width)):
        return None
    raw = np.frombuffer(data_buf, dtype=np.uint8)
    return raw[int(offsets[0]) : int(offsets[0]) + len(values) * width].reshape(len(values), width)


def _repeated(hashes: np.ndarray) -> np.ndarray:
    """Positions in ``hashes`` whose value occurs more than once, ascending."""
    ordered = np.sort(hashes)
    values = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    if not values.size:
        return np.empty(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(values, hashes), values.size - 1)
    return np.flatnonzero(values[at] == hashes)


def _gather(chunks: Iterable[pa.Array], positions: np.ndarray) -> pa.Array:
    """The values at ``positions`` (ascending) of the chunks taken as one array, as strings."""
    taken, at = [], 0
    for chunk in chunks:
        lo, hi = np.searchsorted(positions, [at, at + len(chunk)])
        if hi > lo:
            part = chunk.take(pa.array(positions[lo:hi] - at))
            if pa.types.is_dictionary(part.type):
                part = part.dictionary_decode()
            taken.append(part.cast(pa.large_string()))
        at += len(chunk)
    return pa.concat_arrays(taken) if taken else pa.array([], type=pa.large_string())


def first_rows(read_ids: Callable[[], Iterable[pa.Array]]) -> np.ndarray:
    """Which stored track rows count: the first row of each track id (the one duplicate rule).

    Each id is hashed (:func:`id_hash`); rows whose hash is unique keep. Rows whose hash repeats
    (the duplicates, and any hash collision) are read again and compared as strings: of each
    id, the earliest row keeps. Null ids keep (they never join anything). Memory: 16 bytes per
    stored row while the mask is built (~60 MB for MSSD's 3.7 M tracks), 1 byte after.

    Parameters
    ----------
    read_ids : callable
        Returns the ``track_id`` column of the stored rows, in store order, as an iterable of
        arrays. Called once, and a second time only when some hash repeats.

    Returns
    -------
    numpy.ndarray
        One bool per stored row: False for a row whose id an earlier row already has.

    Examples
    --------
    >>> first_rows(lambda: [pa.array(["a", "b"]), pa.array(["a", None, None, "c", "b"])]).tolist()
    [True, True, False, True, True, True, False]
    """
    hashes, nulls, at = [], [], 0
    for ids in read_ids():
        hashes.append(id_hash(ids))
        if ids.null_count:
            nulls.append(at + np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False)))
        at += len(ids)
    keep = np.ones(at, dtype=bool)
    every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    del hashes  # peak: the hashes and one sorted copy (8 + 8 bytes per stored row)
    candidates = _repeated(every)
    del every
    if nulls:
        candidates = np.setdiff1d(candidates, np.concatenate(nulls), assume_unique=True)
    if not candidates.size:
        return keep
    codes = _gather(read_ids(), candidates).dictionary_encode().indices
    _, first = np.unique(codes.to_numpy(zero_copy_only=False), return_index=True)
    later = np.ones(candidates.size, dtype=bool)
    later[first] = False
    keep[candidates[later]] = False
    return keep


def _open(path: Path) -> pq.ParquetFile:
    try:
        return parquet_file(path)
    except (OSError, pa.ArrowException) as exc:
        raise SkipmodelError(f"cannot read store file {path}: {exc}") from None


def _file_batches(path: Path, columns: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Every stored row of one track file, ``columns`` only."""
    try:
        yield from _open(path).iter_batches(columns=list(columns), batch_size=batch_rows)
    except (OSError, pa.ArrowException) as exc:
        raise SkipmodelError(f"cannot read store file {path}: {exc}") from None


def kept_batches(
    path: str | Path, keep: np.ndarray, columns: Sequence[str], *, batch_rows: int = 1 << 18
) -> Iterator[pa.RecordBatch]:
    """The rows of one track file that count (``keep``: its part of :meth:`TrackTable.keep`),
    ``columns`` only, in file order: one file's share of :meth:`TrackTable.batches`, for a pass
    that reads the track files as separate tasks."""
    at = 0
    for batch in _file_batches(store_path(path), columns, batch_rows):
        rows = keep[at : at + batch.num_rows]
        at += batch.num_rows
        if not rows.all():
            batch = batch.filter(pa.array(rows))
        if batch.num_rows:
            yield batch


class TrackTable:
    """The store's tracks table as every consumer reads it: one row per track id.

    The duplicate rule (:func:`first_rows`) is applied on first use and kept (a keep-mask of
    one byte per stored row), so several passes over one ``TrackTable`` pay for it once.

    Parameters
    ----------
    layout : StoreLayout
        The store.

    Examples
    --------
    >>> tracks = TrackTable(open_store("data/store"))  # doctest: +SKIP
    >>> for batch in tracks.batches(["energy", "tempo"]):  # doctest: +SKIP
    ...     ...
    """

    def __init__(self, layout: StoreLayout) -> None:
        self.layout = layout
        self.files = layout.parts(layout.tracks)
        self._keep: list[np.ndarray] | None = None

    @property
    def column_names(self) -> list[str]:
        """Columns of the stored track files (the first file's; the schema's when there is none)."""
        if not self.files:
            return list(TRACK_SCHEMA.names)
        return list(_open(self.files[0]).schema_arrow.names)

    @property
    def stored_rows(self) -> int:
        """Rows in the track files, duplicates included (from the files' metadata)."""
        return sum(_open(p).metadata.num_rows for p in self.files)

    def keep(self) -> list[np.ndarray]:
        """Per track file, the mask of its rows that count (see :func:`first_rows`)."""
        if self._keep is None:
            sizes = [_open(p).metadata.num_rows for p in self.files]
            mask = first_rows(
                lambda: (
                    batch.column(0)
                    for path in self.files
                    for batch in _file_batches(path, ["track_id"], ID_CHUNK_ROWS)
                )
            )
            self._keep = np.split(mask, np.cumsum(sizes)[:-1]) if sizes else []
        return self._keep

    @property
    def n_tracks(self) -> int:
        """Distinct track ids (the rows that count)."""
        return sum(int(k.sum()) for k in self.keep())

    def batches(
        self, columns: Sequence[str], *, batch_rows: int = TRACK_BATCH_ROWS
    ) -> Iterator[pa.RecordBatch]:
        """The rows that count, ``columns`` only (types as stored), in store order.

        Batches hold at most ``batch_rows`` rows (fewer where duplicates were dropped); the
        projection need not include ``track_id``.
        """
        for path, keep in zip(self.files, self.keep(), strict=True):
            yield from kept_batches(path, keep, columns, batch_rows=batch_rows)

    def table(self, columns: Sequence[str]) -> pa.Table:
        """:meth:`batches` as one table, for small projections (one float column of MSSD's
        tracks is 30 MB)."""
        stored = _open(self.files[0]).schema_arrow if self.files else TRACK_SCHEMA
        schema = pa.schema([stored.field(c) for c in columns])
        return pa.Table.from_batches(list(self.batches(columns)), schema=schema)


def load_tracks(layout: StoreLayout, columns: Sequence[str]) -> pa.Table:
    """The store's track table: ``track_id`` plus ``columns``, every stored row, in file order.

    Part files are read in name order; duplicates are kept here (row numbers are positions in
    the stored table) and :class:`TrackFeatures` never answers a row that does not count.
    """
    read = ["track_id", *columns]
    schema = pa.schema([TRACK_SCHEMA.field(c).with_nullable(True) for c in read])
    return read_parts(layout.parts(layout.tracks), read, schema)


class TrackFeatures:
    """Feature columns of the store's tracks, joined onto plays one bucket at a time.

    A track id stored more than once (e.g. in two feature files) takes its first row in part-file
    name order, then file row order (:func:`first_rows`, applied before the first lookup), so
    the choice is the same on every machine and the same as :class:`TrackTable`'s.

    Parameters
    ----------
    tracks : pyarrow.Table
        ``track_id`` plus feature columns, as from :func:`load_tracks`.
    """

    def __init__(self, tracks: pa.Table) -> None:
        self.tracks = tracks
        self._ids = tracks.column("track_id").combine_chunks()
        self._index: tuple[np.ndarray, np.ndarray] | None = None
        #: build the index on the first lookup (a full pass may never need one: compacted
        #: buckets carry their track rows)
        self.index_on_first_lookup = False
        self._slot_bits = 0
        self._slot_start = np.zeros(1, dtype=np.int64)
        self._block: np.ndarray | None = None
        #: whether the ids of rows that do not count are masked yet (:meth:`_count_once`)
        self._counted_once = False
        # buckets are prepared on reader threads: the lazy masking and index are built once
        self._lock = threading.RLock()

    def _count_once(self) -> None:
        """Null the ids of the rows :func:`first_rows` drops, so that a lookup (probe or
        index) can only answer the first row of an id."""
        with self._lock:
            if self._counted_once:
                return
            ids, step = self._ids, ID_CHUNK_ROWS
            keep = first_rows(lambda: (ids.slice(at, step) for at in range(0, len(ids), step)))
            if not keep.all():
                self._ids = pc.if_else(pa.array(keep), ids, pa.scalar(None, ids.type))
            self._counted_once = True

    def build_index(self) -> bool:
        """Hash the track ids once so :meth:`rows_of` costs O(distinct ids) per call.

        Worth it when many buckets are joined (a full pass); a small sample keeps the probe.
        Returns False (and keeps probing) in the practically impossible case that two
        different track ids share a 64-bit hash.
        """
        with self._lock:
            return self._build_index()

    def _build_index(self) -> bool:
        if self._index is not None:
            return True
        self._count_once()
        # null ids never join (nor do the masked ids of later duplicate rows): not indexed
        valid = np.flatnonzero(self._ids.is_valid().to_numpy(zero_copy_only=False))
        hashes = id_hash(self._ids.take(pa.array(valid)) if self._ids.null_count else self._ids)
        order = np.argsort(hashes, kind="stable")  # stable: equal ids keep file order
        hashes = hashes[order]
        order = valid[order]
        # each id is indexed once, so equal hashes are a collision of different ids
        same = np.flatnonzero(hashes[1:] == hashes[:-1])
        if same.size:
            a = self._ids.take(pa.array(order[same]))
            b = self._ids.take(pa.array(order[same + 1]))
            if not pc.all(pc.equal(a, b)).as_py():
                return False
        # hashes are sorted, so their top bits cut them into contiguous runs: the start of
        # each run lets a lookup begin next to its answer instead of binary-searching
        self._slot_bits = max(1, int(np.ceil(np.log2(max(len(hashes), 2)))))
        top = hashes >> np.uint64(64 - self._slot_bits)
        self._slot_start = np.searchsorted(top, np.arange((1 << self._slot_bits) + 1))
        self._block = _fixed_width(self._ids)
        self._index = (hashes, order)  # last: a reader thread sees the index whole or not at all
        return True

    @classmethod
    def from_store(cls, layout: StoreLayout, columns: Sequence[str]) -> TrackFeatures:
        return cls(load_tracks(layout, columns))

    def rows_of(self, track_ids: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Row of each id in the track table (int64), null when the track is unknown.

        Without an index (:meth:`build_index`) this hashes the distinct ids of ``track_ids``
        and probes the track table's ids against them, so a small sample never indexes the
        whole table; with one it looks every id up in the index (hashing an id is cheaper than
        dictionary-encoding it).
        """
        rows = self.row_numbers(track_ids)
        return pa.array(rows, type=pa.int64(), mask=rows < 0)

    def row_numbers(
        self,
        track_ids: pa.Array | pa.ChunkedArray,
        *,
        dictionary_hashes: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`rows_of` as a NumPy int64 array with -1 for unknown tracks.

        For a dictionary array, ``dictionary_hashes`` may give :func:`id_hash` of its
        dictionary when the caller has it already.
        """
        if isinstance(track_ids, pa.ChunkedArray):
            track_ids = track_ids.combine_chunks()
        if self.index_on_first_lookup:
            self.index_on_first_lookup = False
            self.build_index()
        self._count_once()
        if pa.types.is_dictionary(track_ids.type):
            # look each distinct id up once, then gather by the indices
            if self._index is not None:
                found = self._lookup(track_ids.dictionary, dictionary_hashes)
            else:
                found = self.row_numbers(track_ids.dictionary)
            of_entry = np.append(found, -1)
            indices = track_ids.indices
            if indices.null_count:  # a null index reads the trailing -1
                indices = indices.fill_null(len(of_entry) - 1)
            return of_entry[indices.to_numpy(zero_copy_only=False)]
        if self._index is not None:
            return self._lookup(track_ids)
        encoded = track_ids.dictionary_encode()
        code_of_track = pc.index_in(self._ids, value_set=encoded.dictionary)
        known = code_of_track.is_valid().to_numpy(zero_copy_only=False)
        track_rows = np.flatnonzero(known)
        codes = code_of_track.drop_null().to_numpy(zero_copy_only=False)
        row_of_code = np.full(len(encoded.dictionary), -1, dtype=np.int64)
        row_of_code[codes] = track_rows  # one row per id: later duplicates' ids are masked
        indices = encoded.indices
        if indices.null_count:
            row_of_code = np.append(row_of_code, -1)
            indices = indices.fill_null(len(row_of_code) - 1)
        return row_of_code[indices.to_numpy(zero_copy_only=False)]

    def _lookup(self, ids: pa.Array, wanted: np.ndarray | None = None) -> np.ndarray:
        """Track row of each id via the index, -1 when unknown (or null); ``wanted`` is
        :func:`id_hash` of ``ids`` if known."""
        assert self._index is not None
        hashes, order = self._index
        if not len(ids) or not len(hashes):
            return np.full(len(ids), -1, dtype=np.int64)
        wanted = id_hash(ids) if wanted is None else wanted
        slot = (wanted >> np.uint64(64 - self._slot_bits)).astype(np.intp)
        at = self._slot_start[slot]
        end = self._slot_start[slot + 1]
        # walk each run to the first hash >= wanted (runs hold ~1 hash on average)
        live = np.flatnonzero(at < end)
        while live.size:
            live = live[hashes[at[live]] < wanted[live]]
            at[live] += 1
            live = live[at[live] < end[live]]
        hit = at < end
        at[~hit] = 0
        hit &= hashes[at] == wanted
        rows = order[at]
        # confirm by string: a hash match of an unknown id with a stored one is not a join
        query = _fixed_width(ids) if self._block is not None else None
        if query is not None and self._block is not None and query.shape[1] == self._block.shape[1]:
            width = query.shape[1]
            same = np.ascontiguousarray(self._block[rows]).view(f"V{width}").ravel() == (
                np.ascontiguousarray(query).view(f"V{width}").ravel()
            )
        else:
            same = pc.fill_null(pc.equal(self._ids.take(pa.array(rows)), ids), False)
            same = same.to_numpy(zero_copy_only=False)
        return np.where(hit & same, rows, -1)

    def join(
        self, table: pa.Table, columns: Sequence[str], *, on: str = "track_id_clean"
    ) -> pa.Table:
        """``table`` with ``columns`` appended (null where the track is unknown)."""
        if not columns:
            return table
        return self.take(table, self.rows_of(table.column(on)), columns)

    def take(self, table: pa.Table, rows: pa.Array, columns: Sequence[str]) -> pa.Table:
        """``table`` with ``columns`` of the track rows ``rows`` (from :meth:`rows_of`) appended."""
        for name in columns:
            if self.tracks.num_rows:
                values = self.tracks.column(name).take(rows)
            else:
                values = pa.nulls(table.num_rows, type=TRACK_SCHEMA.field(name).type)
            table = table.append_column(name, values)
        return table
