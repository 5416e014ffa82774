"""``skipmodel ingest``: raw MSSD files into the Parquet store (see :mod:`.pipeline`).

- :mod:`.sources` — finding and opening inputs (archives, folders, csv, csv.gz).
- :mod:`.parse` — CSV text into typed, validated Arrow batches, row-exactly.
- :mod:`.write` — one source into staged, bucketed, sorted parts, committed through the journal.
- :mod:`.compact` — each bucket merged into one sorted file (:func:`.compact.compact`).
- :mod:`.challenge` — the manifest's summary of the challenge's test set (``STORE/challenge/``).
- :mod:`.pipeline` — the ingest entry that drives them.
"""

from skipmodel.ingest.pipeline import IngestReport, ingest

__all__ = ["IngestReport", "ingest"]
