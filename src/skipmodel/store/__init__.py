"""The store: its on-disk format, layout, journal, schema and hashing — the only thing the
store's writers (:mod:`skipmodel.ingest`) and readers (:mod:`skipmodel.load`,
:mod:`skipmodel.explore`, :mod:`skipmodel.cpdag`, :mod:`skipmodel.scale`) share.

- :mod:`.location` — where a store lives: a folder, ``file://``, or a URI pyarrow.fs opens.
- :mod:`.fspath` — :class:`~.fspath.FsPath`, a ``Path`` whose I/O goes through pyarrow.fs.
- :mod:`.layout` — folders, the manifest, :func:`open_store`, atomic writes.
- :mod:`.visible` — which part files are committed (rename or manifest commits).
- :mod:`.lease` — the writer lock off the local disk (a lease object).
- :mod:`.format` — compacted-file columns and Parquet metadata keys; what a reader asks of a file.
- :mod:`.journal` — the writer lock, manifest totals, commits and their recovery.
- :mod:`.schema` — the Arrow schemas of session logs, tracks and rejected rows.
- :mod:`.rejected` — reading the rejected rows of any schema version.
- :mod:`.hashing` — stable vectorised hashing of ids (buckets, samples).
- :mod:`.parts` — reading part files in a fixed order with checked types.
- :mod:`.arrays` — Arrow <-> NumPy conversions.
"""

from __future__ import annotations

import os

from skipmodel.store.fspath import FsPath
from skipmodel.store.layout import DEFAULT_BUCKETS, StoreLayout, open_store

__all__ = ["DEFAULT_BUCKETS", "StoreLayout", "committed_files", "open_store"]


def committed_files(store: str | os.PathLike[str], table: str = "sessions") -> list[str]:
    """The committed Parquet files of one of a store's tables (``sessions``, ``tracks``,
    ``rejected``), as paths or URIs, for another engine to read (Spark, DuckDB, Polars).

    Under rename commits every file in the folder is committed; under manifest commits (object
    stores) a killed writer may have left files the manifest does not name, which this list
    leaves out.

    Examples
    --------
    >>> files = committed_files("s3://bucket/store")  # doctest: +SKIP
    >>> spark.read.option("basePath", "s3a://bucket/store/sessions").parquet(*files)  # doctest: +SKIP
    """
    layout = open_store(store)
    if table == "sessions":
        folders = layout.bucket_dirs()
    elif table in ("tracks", "rejected"):
        folders = [layout.root / table]
    else:
        raise ValueError(f"table must be sessions, tracks or rejected, not {table!r}")
    return [
        path.bare_uri if isinstance(path, FsPath) else str(path)
        for folder in folders
        for path in layout.parts(folder)
    ]
