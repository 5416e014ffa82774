"""Helpers shared by the ingest tests: reading a store back, packing inputs, splitting lines."""

from __future__ import annotations

import gzip
import io
import re
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from skipmodel.simulate import simulate
from skipmodel.store import schema
from skipmodel.store.format import SOURCE_COLUMN, TRACK_ROW_COLUMN

LINE_END = re.compile(rb"\r\n|\n|\r")


def read_parts(folder: Path, pattern: str = "**/part-*.parquet") -> pa.Table | None:
    """All part files under ``folder`` as one table (category columns decoded to strings)."""
    files = sorted(folder.glob(pattern))
    if not files:
        return None
    tables = []
    for f in files:
        t = pq.read_table(f, partitioning=None)
        cols = [
            c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in t.itercolumns()
        ]
        tables.append(pa.Table.from_arrays(cols, names=t.column_names))
    return pa.concat_tables(tables)


def sessions(store: Path) -> pa.Table:
    table = read_parts(store / "sessions")
    assert table is not None
    # compacted buckets add the per-row source fingerprint and track row after the log columns
    extra = [c for c in (SOURCE_COLUMN, TRACK_ROW_COLUMN) if c in table.column_names]
    table = table.drop_columns(extra)
    assert table.column_names == list(schema.LOG_COLUMNS)
    return table.sort_by([("session_id", "ascending"), ("session_position", "ascending")])


def tracks(store: Path) -> pa.Table:
    table = read_parts(store / "tracks")
    assert table is not None
    return table.sort_by("track_id")


def rejected(store: Path) -> pa.Table | None:
    return read_parts(store / "rejected")


def store_files(store: Path) -> dict[str, pa.Table]:
    """Every data file of a store by relative path, with its content."""
    return {
        str(p.relative_to(store)): pq.read_table(p, partitioning=None)
        for p in sorted(store.rglob("*.parquet"))
    }


def data_lines(raw: bytes) -> list[bytes]:
    """The physical lines after the header, split as pyarrow does (\\n, \\r\\n, \\r)."""
    pieces = LINE_END.split(raw)
    if pieces and pieces[-1] == b"":
        pieces = pieces[:-1]
    return pieces[1:]


def pack_tar(
    files: list[Path], out: Path, *, folder: str = "training_set", mode: str = "w:gz"
) -> Path:
    with tarfile.open(out, mode) as tar:
        info = tarfile.TarInfo(f"{folder}/README.txt")
        text = b"not data\n"
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
        for f in files:
            tar.add(f, arcname=f"{folder}/{f.name}")
    return out


def gzip_copy(src: Path, out: Path) -> Path:
    with open(src, "rb") as fin, gzip.open(out, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return out


def log_text(logs: pa.Table, replace: dict[str, pa.Array] | None = None) -> pa.Table:
    """``logs`` with MSSD's log columns as a CSV writes them (flags as 0/1, categories as
    text), ``replace`` standing in for some of them."""
    columns = []
    for name in schema.LOG_COLUMNS:
        col = (replace or {}).get(name)
        col = logs.column(name) if col is None else col
        if name in schema.LOG_INT_FLAGS:
            col = col.cast(pa.int8())
        elif pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        columns.append(col)
    return pa.Table.from_arrays(columns, names=list(schema.LOG_COLUMNS))


def simulated_inputs(root: Path) -> Path:
    """Simulated log and track files, extracted into ``root/inputs``, with corrupt rows, a
    gzipped file, an empty file, a copy under another name and a README."""
    simulate(root / "sim", sessions=240, seed=5, days=2, files_per_day=2)
    folder = root / "inputs"
    for archive in sorted((root / "sim").glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    logs = sorted(folder.rglob("log_*.csv"))
    assert len(logs) >= 3
    lines = logs[0].read_bytes().splitlines(keepends=True)
    bad = [
        lines[5].replace(b",", b";", 3),  # too few fields
        b"\n",  # a blank line is a rejected row
        lines[7].replace(b"true", b"maybe", 1).replace(b"false", b"maybe", 1),
        b"\xff\xfe not utf-8 at all\n",
    ]
    logs[0].write_bytes(b"".join(lines[:10] + bad + lines[10:]))
    with open(logs[1], "rb") as src, gzip.open(f"{logs[1]}.gz", "wb") as out:
        shutil.copyfileobj(src, out)
    logs[1].unlink()
    shutil.copy(logs[2], logs[2].with_name("copy_of_" + logs[2].name))
    (folder / "empty.csv").write_bytes(b"")
    (folder / "README.txt").write_text("not data\n")
    return folder
