"""The store: its on-disk format, layout, journal, schema and hashing — the only thing the
store's writers (:mod:`skipmodel.ingest`) and readers (:mod:`skipmodel.load`,
:mod:`skipmodel.explore`, :mod:`skipmodel.cpdag`, :mod:`skipmodel.scale`) share.

- :mod:`.layout` — folders, the manifest, :func:`open_store`, atomic writes.
- :mod:`.format` — compacted-file columns and Parquet metadata keys; what a reader asks of a file.
- :mod:`.journal` — the writer lock, manifest totals, commits and their recovery.
- :mod:`.schema` — the Arrow schemas of session logs, tracks and rejected rows.
- :mod:`.rejected` — reading the rejected rows of any schema version.
- :mod:`.hashing` — stable vectorised hashing of ids (buckets, samples).
- :mod:`.parts` — reading part files in a fixed order with checked types.
- :mod:`.arrays` — Arrow <-> NumPy conversions.
"""

from skipmodel.store.layout import DEFAULT_BUCKETS, StoreLayout, open_store

__all__ = ["DEFAULT_BUCKETS", "StoreLayout", "open_store"]
