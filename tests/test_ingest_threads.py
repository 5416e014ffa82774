"""Work moved to background threads (inflate, Parquet encoding) fails like the foreground did."""

from __future__ import annotations

import pytest

from ingest_helpers import sessions
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.ingest import write as ingest_write


def test_failed_part_write_is_one_line_and_leaves_nothing(tmp_path, mssd_dir, monkeypatch):
    real = ingest_write.pq.write_table
    calls = []

    def disk_full(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 3:  # a later part, written while the parser runs ahead
            raise OSError(28, "No space left on device")
        return real(table, where, **kwargs)

    monkeypatch.setattr(ingest_write.pq, "write_table", disk_full)
    src = mssd_dir / "mssd_trainset_partial_rows_1180.csv"
    with pytest.raises(SkipmodelError) as err:
        ingest([src], tmp_path / "s", progress=False, flush_rows=100)
    message = str(err.value)
    assert "\n" not in message
    assert "cannot write the store" in message and "No space left" in message
    assert len(calls) >= 3
    assert not list((tmp_path / "s").rglob("*.parquet"))
    staging = tmp_path / "s" / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_many_overlapping_flushes_keep_every_row(tmp_path, mssd_dir):
    src = mssd_dir / "mssd_trainset_partial_rows_1180.csv"
    one = ingest([src], tmp_path / "one", progress=False)
    many = ingest([src], tmp_path / "many", progress=False, flush_rows=100)
    assert one.log_rows_written == many.log_rows_written == 1180
    assert list((tmp_path / "many").rglob("part-*-*.parquet"))  # several flushes were staged
    assert sessions(tmp_path / "one").equals(sessions(tmp_path / "many"))
