"""Reading a store's Parquet part files: a fixed file order, only the needed columns, checked types."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.store.fspath import parquet_file


def part_files(directory: Path) -> list[Path]:
    """The ``part-*.parquet`` files of a store directory, sorted by name (none if absent).

    Sorted names give a fixed read order, so ties (duplicate rows) resolve the same everywhere;
    temporary files of an interrupted writer (``.part-*.tmp``) never match.
    """
    return sorted(directory.glob("part-*.parquet")) if directory.is_dir() else []


def read_parts(
    files: Sequence[Path],
    columns: Sequence[str],
    schema: pa.Schema,
    *,
    combine: bool = True,
    dictionary: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> pa.Table:
    """``columns`` of every file in ``files``, cast to ``schema``, as one table.

    Columns named in ``dictionary`` are read as Parquet stores them, dictionary indices plus
    the dictionary, instead of being expanded to plain strings (``schema`` should give them a
    dictionary type). Dictionary columns are unified across files. With ``combine`` (default) the table has one
    chunk per column; without, one chunk per file (no copy; for a caller that takes rows anyway). Unreadable files, missing columns and
    uncastable types raise a one-line :class:`SkipmodelError` naming the file. Columns in
    ``extra`` are read too, as stored and appended, where every file has them (else left out).
    """
    tables, extras = [], []
    for path in files:
        try:
            wanted = [c for c in dictionary if c in columns or c in extra]
            file = parquet_file(path, read_dictionary=wanted or None)
            present = [c for c in extra if c in file.schema_arrow.names]
            table = file.read(columns=[*columns, *present])
        except (OSError, pa.ArrowException) as exc:
            raise SkipmodelError(f"cannot read store file {path}: {exc}") from None
        extras.append(table.select(present))
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise SkipmodelError(
                f"store file {path} lacks column(s) {', '.join(missing)}; re-run 'skipmodel ingest'"
            )
        try:
            tables.append(table.select(list(columns)).cast(schema))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SkipmodelError(
                f"store file {path} has unexpected column types ({exc}); re-run 'skipmodel ingest'"
            ) from None
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables(tables).unify_dictionaries()
    shared = [c for c in extra if all(c in t.column_names for t in extras)]
    if shared:
        stored = pa.concat_tables([t.select(shared) for t in extras]).unify_dictionaries()
        for name in shared:
            table = table.append_column(name, stored.column(name))
    return table.combine_chunks() if combine else table
