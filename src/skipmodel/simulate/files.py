"""How simulated tables become files that read like the release's: ids, text, archives.

Ids are random version-4 UUIDs; floats are written as Python's ``repr``; CSVs are unquoted
with lowercase booleans and ISO dates; archives are ``.tar.gz`` files with one folder and fixed
times and owners, so the same tables always give the same bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from skipmodel.store.layout import atomic_path

__all__ = [
    "csv_bytes",
    "csv_header",
    "format_floats",
    "tar_gz_writer",
    "uuid4_strings",
    "write_tar_gz",
]

_GZIP_LEVEL = 6
_FIXED_MTIME = 1531612800  # 2018-07-15T00:00:00Z, the first day of the release

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def uuid4_strings(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUIDs as a fixed-width bytes array (``S36``), vectorised."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst : dst + width] = digits[:, src : src + width]
    return out.view("S36").ravel()


def format_floats(values: np.ndarray) -> pa.Array:
    """Python ``repr`` style text of float64 values (``1e-07``, ``100.0``), as the release has.

    Arrow's shortest round-trip formatting agrees with ``repr`` for 1e-4 <= |x| < 1e11 except
    that integral values lack the ``.0``; tiny values are formatted by ``repr`` directly.
    """
    text = pc.cast(pa.array(values, pa.float64()), pa.string()).to_numpy(zero_copy_only=False)
    text = text.astype(object)
    tiny = (np.abs(values) < 1e-4) & (values != 0)
    if tiny.any():
        text[tiny] = [repr(float(v)) for v in values[tiny]]
    whole = values == np.floor(values)
    if whole.any():
        text[whole] = [t + ".0" for t in text[whole]]
    return pa.array(text, pa.string())


def csv_header(columns: Iterable[str]) -> bytes:
    return (",".join(columns) + "\n").encode()


def csv_bytes(table: pa.Table, *, header: bool = True) -> bytes:
    """The table as CSV text: unquoted header and values, lowercase booleans, ISO dates."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(
        table,
        sink,
        pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65536),
    )
    head = csv_header(table.column_names) if header else b""
    return head + sink.getvalue().to_pybytes()


@contextlib.contextmanager
def tar_gz_writer(path: Path, folder: str) -> Iterator[Callable[[str, bytes], None]]:
    """A deterministic ``.tar.gz`` with ``folder/`` and its files (fixed times and owners).

    Yields ``add(name, data)``, which writes one member at once (memory stays at one file).
    The archive appears under its name only once the block completes.
    """
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        info = tarfile.TarInfo(folder)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.mtime = _FIXED_MTIME
        tar.addfile(info)

        def add(name: str, data: bytes) -> None:
            member = tarfile.TarInfo(f"{folder}/{name}")
            member.size = len(data)
            member.mode = 0o644
            member.mtime = _FIXED_MTIME
            tar.addfile(member, io.BytesIO(data))

        yield add


def write_tar_gz(path: Path, folder: str, members: Iterable[tuple[str, bytes]]) -> int:
    """:func:`tar_gz_writer` over ``members`` (consumed one at a time); returns their count."""
    count = 0
    with tar_gz_writer(path, folder) as add:
        for name, data in members:
            add(name, data)
            count += 1
    return count
