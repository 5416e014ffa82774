"""The parser alone: exact line numbers across many small blocks, strict typing rules."""

from __future__ import annotations

import io
import random

import pyarrow as pa
import pytest

from conftest import MSSD_FIXTURES
from skipmodel.errors import SkipmodelError
from skipmodel.ingest.parse import SourceParser, sniff_header
from skipmodel.ingest.rules import RowLimits
from skipmodel.ingest.sources import HashingReader
from skipmodel.store import schema

LOG = MSSD_FIXTURES / "mssd_trainset_partial_rows_1180.csv"
pytestmark = pytest.mark.skipif(not LOG.is_file(), reason="shared MSSD fixtures not found")


def _parse(raw: bytes, block_size: int, **limits: int) -> tuple[pa.Table, pa.Table | None, int]:
    reader = HashingReader(io.BytesIO(raw), "test.csv")  # type: ignore[arg-type]
    kind, columns = sniff_header(reader)
    parser = SourceParser(reader, kind, columns, block_size=block_size, limits=RowLimits(**limits))
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
    assert rejected["raw_bytes"].to_pylist() == [lines[5], lines[9]]  # the bytes, exactly
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


def _log_rows(n: int) -> tuple[bytes, list[bytes]]:
    lines = LOG.read_bytes().splitlines()
    return lines[0], lines[1 : n + 1]


def _with(row: bytes, column: str, value: bytes) -> bytes:
    fields = row.split(b",")
    fields[schema.LOG_COLUMNS.index(column)] = value
    return b",".join(fields)


@pytest.mark.parametrize("block_size", [997, 4096, 1 << 16])
def test_over_long_lines_are_rejected_and_the_rest_parsed(block_size):
    limit = min(1500, block_size)  # the limit never exceeds the block
    header, rows = _log_rows(60)
    rng = random.Random(block_size)
    out: list[bytes] = []
    long_lines = {}
    for row in rows:
        if rng.random() < 0.15:
            size = rng.choice([limit + 1, 3 * block_size + 5, 5000])
            out.append(_with(row, "track_id_clean", b"t" * size))
            long_lines[len(out) + 1] = out[-1]
        out.append(row)
    out.append(_with(rows[0], "session_id", b"s" * 2 * block_size))  # last, with no line end
    long_lines[len(out) + 1] = out[-1]
    raw = b"\n".join([header, *out])
    valid, rejected, n_read = _parse(raw, block_size, max_line_bytes=1500)
    assert n_read == len(out)
    assert valid.num_rows == len(out) - len(long_lines)
    assert rejected is not None
    assert rejected["line"].to_pylist() == sorted(long_lines)
    for r in rejected.to_pylist():
        text = long_lines[r["line"]]
        assert r["reason"].startswith(f"line too long: {len(text):,} bytes, over the limit")
        assert f"limit of {limit:,}" in r["reason"]
        assert r["raw_bytes"] == text[:limit]
        assert r["raw"] == text[:limit].decode()
    assert valid["session_id"].to_pylist() == [r.split(b",")[0].decode() for r in rows]


def test_quoted_field_with_a_line_break_is_two_rejected_lines():
    header, rows = _log_rows(3)
    rest = rows[1].split(b",", 1)[1]
    broken = b'"W\nX",' + rest  # RFC 4180 would read one row with the session "W\nX"
    valid, rejected, n_read = _parse(b"\n".join([header, rows[0], broken, rows[2]]) + b"\n", 4096)
    assert n_read == 4  # physical lines: quoting is not honoured
    assert valid.num_rows == 2
    assert '"' not in "".join(valid["session_id"].to_pylist())
    assert rejected["line"].to_pylist() == [3, 4]
    assert rejected["reason"].to_pylist() == [
        "wrong number of fields: 1 instead of 21 (quoted fields are not supported)",
        "session_id: quote character (quoted fields are not supported)",
    ]
    assert rejected["raw_bytes"].to_pylist() == [b'"W', b'X",' + rest]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("session_id", b"s" * 256, None),
        ("session_id", b"a b!c", None),  # spaces and "!" pass (the fast check looks again)
        ("session_id", "é".encode() * 128, None),  # 256 bytes of another alphabet: same shape
        ("session_id", b"s" * 257, "session_id: 257 bytes, over the limit of 256"),
        ("track_id_clean", b"t" * (2 << 20), "line too long: 2,097,"),
        ("track_id_clean", b"t_\x01x", "track_id_clean: control character '\\x01'"),
        ("track_id_clean", b"t_\tx", "track_id_clean: control character '\\t'"),
        ("track_id_clean", b"t_\x7fx", "track_id_clean: control character '\\x7f'"),
        ("track_id_clean", "t_\u0085x".encode(), "track_id_clean: control character '\\x85'"),
        ("session_id", b'ab"c', "session_id: quote character (quoted fields are not supported)"),
        ("context_type", b'"radio"', "context_type: quote character"),
        ("context_type", b"radio\x02", "context_type: control character '\\x02'"),
        ("context_type", b"c" * 300, "context_type: 300 bytes, over the limit of 256"),
    ],
)
def test_id_and_category_bounds(column, value, reason):
    header, rows = _log_rows(3)
    raw = b"\n".join([header, rows[0], _with(rows[1], column, value), rows[2]]) + b"\n"
    valid, rejected, n_read = _parse(raw, 4 << 20)
    assert n_read == 3
    if reason is None:
        assert rejected is None
        assert valid[column][1].as_py() == value.decode()
    else:
        assert rejected["line"].to_pylist() == [3]
        assert reason in rejected["reason"][0].as_py()
        assert valid.num_rows == 2


def test_quoted_header_is_a_one_line_error():
    quoted = io.BytesIO(b'"session_id","track_id_clean"\n')
    reader = HashingReader(quoted, "q.csv")  # type: ignore[arg-type]
    with pytest.raises(SkipmodelError, match="quoted fields are not supported") as err:
        sniff_header(reader)
    assert "\n" not in str(err.value)


def test_a_quote_in_an_extra_column_rejects_the_row():
    header, rows = _log_rows(2)
    raw = b"\n".join([header + b",comment", rows[0] + b",fine", rows[1] + b',"quoted"']) + b"\n"
    valid, rejected, _ = _parse(raw, 4096)
    assert valid.num_rows == 1
    assert rejected["reason"].to_pylist() == [
        "comment: quote character (quoted fields are not supported)"
    ]


@pytest.mark.parametrize("block_size", [997, 1009, 1013])
def test_multibyte_text_cut_by_a_block_boundary_is_kept(block_size):
    header, rows = _log_rows(40)
    track = "t_" + "€" * 20 + "日本"  # 66 of ~260 bytes per row are multi-byte characters
    out = [_with(r, "track_id_clean", track.encode()) for r in rows]
    out[7] = out[7] + b"\xff"  # and one line that is not UTF-8
    valid, rejected, n_read = _parse(b"\n".join([header, *out]) + b"\n", block_size)
    assert n_read == 40
    assert rejected["line"].to_pylist() == [9]
    assert rejected["raw_bytes"].to_pylist() == [out[7]]
    assert set(valid["track_id_clean"].to_pylist()) == {track}


def test_row_limits_are_configurable_and_checked():
    header, rows = _log_rows(2)
    long_id = _with(rows[1], "session_id", b"s" * 41)
    valid, rejected, _ = _parse(
        b"\n".join([header, rows[0], long_id]) + b"\n", 4096, max_id_bytes=40
    )
    assert valid.num_rows == 1
    assert rejected["reason"].to_pylist() == [
        "session_id: 41 bytes, over the limit of 40 for an id or category"
    ]
    with pytest.raises(SkipmodelError, match="max_id_bytes must be a positive number of bytes"):
        RowLimits(max_id_bytes=0)


def test_markers_longer_than_the_lines_they_replace_in_small_blocks():
    header, rows = _log_rows(30)
    out = []
    for row in rows:
        out += [row, b"\xff", b"\xc3"]  # each replaced by a marker many times its length
    valid, rejected, n_read = _parse(b"\n".join([header, *out]) + b"\n", 997)
    assert n_read == len(out)
    assert valid.num_rows == len(rows)
    assert rejected["raw_bytes"].to_pylist() == [b"\xff", b"\xc3"] * len(rows)
    assert rejected["line"].to_pylist() == [i + 2 for i, t in enumerate(out) if len(t) == 1]
