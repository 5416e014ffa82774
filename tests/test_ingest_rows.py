"""Whole ingests of hostile rows: an over-long line, quoted line breaks, bytes that are not UTF-8.

Each bad row is rejected with a reason and its original bytes, the rest of its file and the
inputs after it are ingested, and ``rows_read = rows_written + rows_rejected`` holds.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_helpers import sessions
from skipmodel.cli import main
from skipmodel.ingest import ingest
from skipmodel.ingest.rules import MAX_LINE_BYTES
from skipmodel.store.rejected import read_rejected
from skipmodel.store.schema import REJECTED_SCHEMA, SCHEMA_VERSION

MINI = "log_mini_first11sessions.csv"
TF = "tf_mini_subset_for_first11sessions.csv"


@pytest.fixture
def log_lines(mssd_dir):
    lines = (mssd_dir / MINI).read_bytes().splitlines()
    return lines[0], lines[1:]


def test_a_ten_megabyte_field_rejects_its_row_and_the_rest_is_ingested(
    tmp_path, mssd_dir, log_lines, capsys
):
    header, rows = log_lines
    fields = rows[5].split(b",")
    fields[3] = b"t" * (10 << 20)  # track_id_clean
    big = b",".join(fields)
    src = tmp_path / "log_0_20180715_000000000000.csv"
    src.write_bytes(b"\n".join([header, *rows[:5], big, *rows[5:]]) + b"\n")
    store = tmp_path / "s"
    assert main(["ingest", str(src), str(mssd_dir / TF), "--store", str(store)]) == 0
    report = ingest([src, mssd_dir / TF], store, progress=False)  # again: nothing changes
    assert (report.log_rows_read, report.log_rows_written, report.log_rows_rejected) == (
        len(rows) + 1,
        len(rows),
        1,
    )
    assert report.track_rows_written == 175  # the input after the bad file was read
    assert sessions(store).num_rows == len(rows)
    rejected = read_rejected(store)
    assert rejected["line"].to_pylist() == [7]
    reason = rejected["reason"][0].as_py()
    assert reason.startswith(f"line too long: {len(big):,} bytes, over the limit of ")
    assert f"{MAX_LINE_BYTES:,}" in reason
    assert rejected["raw_bytes"][0].as_py() == big[:MAX_LINE_BYTES]
    assert "straddl" not in capsys.readouterr().err


def test_a_quoted_line_break_stores_no_broken_session(tmp_path, log_lines):
    header, rows = log_lines
    rest = rows[1].split(b",", 1)[1]
    src = tmp_path / "log.csv"
    src.write_bytes(b"\n".join([header, rows[0], b'"W\nX",' + rest, rows[2]]) + b"\n")
    report = ingest([src], tmp_path / "s", progress=False)
    assert (report.log_rows_read, report.log_rows_written, report.log_rows_rejected) == (4, 2, 2)
    assert not any('"' in s for s in sessions(tmp_path / "s")["session_id"].to_pylist())
    assert read_rejected(tmp_path / "s")["line"].to_pylist() == [3, 4]


def test_rows_that_are_not_utf8_round_trip_byte_exactly(tmp_path, log_lines):
    header, rows = log_lines
    rows = list(rows[:20])
    rows[3] = rows[3].replace(b"t_", b"t_\xff\xc3(", 1)  # an invalid byte, a broken sequence
    rows[8] = rows[8] + b"\xe2\x82"  # a sequence cut by the line end
    rows[19] = rows[19] + b"\xc3"  # and by the end of the file (no final line break)
    src = tmp_path / "log.csv"
    src.write_bytes(b"\n".join([header, *rows]))
    report = ingest([src], tmp_path / "s", progress=False)
    assert (report.log_rows_read, report.log_rows_rejected) == (20, 3)
    rejected = read_rejected(tmp_path / "s")
    bad = [rows[3], rows[8], rows[19]]
    assert rejected["raw_bytes"].to_pylist() == bad
    assert rejected["raw"].to_pylist() == [b.decode("utf-8", "replace") for b in bad]
    assert set(rejected["reason"].to_pylist()) == {"not UTF-8 text (invalid bytes)"}
    assert rejected["line"].to_pylist() == [5, 10, 21]


def test_rejected_rows_of_a_version_1_store_still_read(tmp_path):
    assert SCHEMA_VERSION == 2
    folder = tmp_path / "s" / "rejected"
    folder.mkdir(parents=True)
    old = pa.table(
        {"source": ["a.csv"], "line": [2], "raw": ["x\ufffd"], "reason": ["not UTF-8 text"]}
    )
    pq.write_table(old, folder / "part-0aaa.parquet")
    new = pa.table(
        {
            "source": ["b.csv"],
            "line": [3],
            "raw": ["y\ufffd"],
            "reason": ["not UTF-8 text"],
            "raw_bytes": [b"y\xff"],
        },
        schema=REJECTED_SCHEMA,
    )
    pq.write_table(new, folder / "part-1bbb.parquet")
    rows = read_rejected(tmp_path / "s")
    assert rows.schema == REJECTED_SCHEMA
    assert rows["raw_bytes"].to_pylist() == [None, b"y\xff"]
    assert rows["raw"].to_pylist() == ["x\ufffd", "y\ufffd"]
    assert read_rejected(tmp_path / "empty").num_rows == 0


def test_row_limits_on_the_command_line(tmp_path, log_lines, capsys):
    header, rows = log_lines
    fields = rows[1].split(b",")
    fields[0] = b"s" * 41
    src = tmp_path / "log.csv"
    src.write_bytes(b"\n".join([header, rows[0], b",".join(fields)]) + b"\n")
    assert main(["ingest", str(src), "--store", str(tmp_path / "s"), "--max-id-bytes", "40"]) == 0
    assert read_rejected(tmp_path / "s")["reason"].to_pylist() == [
        "session_id: 41 bytes, over the limit of 40 for an id or category"
    ]
    capsys.readouterr()
    assert main(["ingest", str(src), "--store", str(tmp_path / "t"), "--max-line-bytes", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_line_bytes must be a positive number of bytes" in err
    assert not (tmp_path / "t").exists()
