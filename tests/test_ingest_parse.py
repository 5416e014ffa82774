"""The parser alone: exact line numbers across many small blocks, strict typing rules."""

from __future__ import annotations

import io
import random

import pyarrow as pa
import pytest

from conftest import MSSD_FIXTURES
from skipmodel.errors import SkipmodelError
from skipmodel.ingest.parse import SourceParser, sniff_header
from skipmodel.ingest.sources import HashingReader
from skipmodel.store import schema

LOG = MSSD_FIXTURES / "mssd_trainset_partial_rows_1180.csv"
pytestmark = pytest.mark.skipif(not LOG.is_file(), reason="shared MSSD fixtures not found")


def _parse(raw: bytes, block_size: int) -> tuple[pa.Table, pa.Table | None, int]:
    reader = HashingReader(io.BytesIO(raw), "test.csv")  # type: ignore[arg-type]
    kind, columns = sniff_header(reader)
    parser = SourceParser(reader, kind, columns, block_size=block_size)
    valid, rejected, n_read = [], [], 0
    for batch in parser.batches():
        valid.append(batch.valid)
        if batch.rejected is not None:
            rejected.append(batch.rejected)
        n_read += batch.n_read
    return (
        pa.concat_tables(valid),
        pa.concat_tables(rejected).sort_by("line") if rejected else None,
        n_read,
    )


@pytest.mark.parametrize("block_size", [997, 4096, 1 << 20])
def test_line_numbers_exact_across_blocks(block_size):
    rng = random.Random(block_size)
    lines = LOG.read_bytes().splitlines()
    header, rows = lines[0], lines[1:]
    bad_lines = {}
    out = []
    for row in rows:
        roll = rng.random()
        if roll < 0.05:
            text = row + b",extra"  # wrong field count: seen by the CSV parser
        elif roll < 0.10:
            text = row.replace(b",false,", b",nope,", 1)  # bad boolean: seen by typing
        elif roll < 0.12:
            text = b""  # blank line
        else:
            out.append(row)
            continue
        out.append(text)
        bad_lines[len(out) + 1] = text
        if text == b"":
            out.append(row)  # the blank line is extra, the row still follows
    raw = b"\n".join([header, *out]) + b"\n"
    valid, rejected, n_read = _parse(raw, block_size)
    assert n_read == len(out)
    assert valid.num_rows == len(out) - len(bad_lines)
    assert rejected is not None
    assert rejected["line"].to_pylist() == sorted(bad_lines)
    assert [r.encode() for r in rejected["raw"].to_pylist()] == [
        bad_lines[k] for k in sorted(bad_lines)
    ]
    good = [r for i, r in enumerate(out) if i + 2 not in bad_lines]
    assert valid["session_id"].to_pylist() == [r.split(b",")[0].decode() for r in good]


def test_non_utf8_bytes_reject_only_their_rows():
    lines = LOG.read_bytes().splitlines()[:30]
    lines[5] = lines[5].replace(b"t_", b"t_\xff\xfe", 1)
    lines[9] = lines[9] + b",\xc3"  # a broken multi-byte sequence and a wrong field count
    valid, rejected, n_read = _parse(b"\n".join(lines) + b"\n", 4096)
    assert n_read == 29
    assert rejected["line"].to_pylist() == [6, 10]
    assert "not UTF-8" in rejected["reason"][0].as_py()
    assert valid.num_rows == 27


def test_typing_rules():
    header = ",".join(schema.LOG_COLUMNS).encode()
    base = LOG.read_bytes().splitlines()[1].split(b",")
    cases = {
        "hist_user_behavior_n_seekfwd": (b"0x1", False),
        "hour_of_day": (b"+5", False),
        "session_position": (b"3.0", False),
        "premium": (b"TRUE", True),
        "skip_1": (b"1", True),
        "context_switch": (b"true", False),  # 0/1 flags accept only 0 and 1
        "date": (b"2018-7-16", False),
        "context_type": (b"brand_new_context", True),  # unknown categories are kept
    }
    rows = []
    for col, (value, _) in cases.items():
        fields = list(base)
        fields[schema.LOG_COLUMNS.index(col)] = value
        rows.append(b",".join(fields))
    valid, rejected, _ = _parse(b"\n".join([header, *rows]) + b"\n", 1 << 20)
    ok_lines = {i + 2 for i, (_, ok) in enumerate(cases.values()) if ok}
    bad = set(range(2, len(rows) + 2)) - ok_lines
    assert set(rejected["line"].to_pylist()) == bad
    assert valid.num_rows == len(ok_lines)


def test_header_sniffing_errors():
    for raw, needle in [
        (b"", "empty file"),
        (b"x" * 70_000, "no line break"),
        (b"track_id,duration\n", "release_year"),
        (b"session_id,session_id\n", "misses required columns"),
    ]:
        with pytest.raises(SkipmodelError, match=needle):
            sniff_header(HashingReader(io.BytesIO(raw), "f.csv"))  # type: ignore[arg-type]
