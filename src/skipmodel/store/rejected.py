"""Reading a store's rejected rows, whatever schema version wrote them."""

from __future__ import annotations

import os

import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.store.fspath import parquet_file
from skipmodel.store.layout import StoreLayout
from skipmodel.store.location import store_path
from skipmodel.store.schema import REJECTED_SCHEMA


def read_rejected(root: str | os.PathLike[str]) -> pa.Table:
    """Every rejected row of the store at ``root``, with the columns of ``REJECTED_SCHEMA``.

    Rows come in part-file order, then line order. Parts written before schema version 2 have
    no ``raw_bytes`` column: it is null for their rows (their ``raw`` text shows bytes that
    were not UTF-8 as U+FFFD).

    Examples
    --------
    >>> rows = read_rejected("data/store")  # doctest: +SKIP
    >>> original = rows["raw_bytes"][0].as_py()  # the line's bytes, exactly  # doctest: +SKIP
    """
    tables = []
    layout = StoreLayout(store_path(root))
    for path in layout.parts(layout.rejected):
        try:
            table = parquet_file(path).read()
        except (OSError, pa.ArrowException) as exc:
            raise SkipmodelError(f"cannot read store file {path}: {exc}") from None
        if "raw_bytes" not in table.column_names:  # schema version 1
            table = table.append_column("raw_bytes", pa.nulls(table.num_rows, pa.binary()))
        tables.append(table.select(REJECTED_SCHEMA.names).cast(REJECTED_SCHEMA))
    if not tables:
        return REJECTED_SCHEMA.empty_table()
    return pa.concat_tables(tables)
