"""Property tests: randomly corrupted MSSD files never crash ingest and every row is accounted for.

Whole-file problems (an unreadable header, binary content, a broken gzip) may raise
:class:`SkipmodelError`; anything else must ingest with ``read = written + rejected``, one
rejected row per bad physical line, kept with its exact line number, raw text and bytes. The
corruptions include quoted fields with line breaks, stray quotes and over-long fields; every
stored id stays within its bounds.
"""

from __future__ import annotations

import gzip
import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MSSD_FIXTURES
from ingest_helpers import data_lines, rejected, sessions, tracks
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.ingest.rules import MAX_ID_BYTES, MAX_LINE_BYTES

#: What no stored id may hold: control characters (C0, DEL, C1) and quotes.
BAD_ID = re.compile(r'[\x00-\x1f\x7f-\x9f"]')

LOG = MSSD_FIXTURES / "log_mini_first11sessions.csv"
TF = MSSD_FIXTURES / "tf_mini_subset_for_first11sessions.csv"
pytestmark = pytest.mark.skipif(not LOG.is_file(), reason="shared MSSD fixtures not found")

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _lines(path: Path, n: int) -> list[bytes]:
    return path.read_bytes().splitlines()[: n + 1]


def corrupt(text: bytes, kind: str, rng: random.Random) -> bytes:
    if kind == "truncate":
        return text[: rng.randrange(len(text) + 1)]
    lines = text.split(b"\n")
    if len(lines) < 3:
        return text
    i = rng.randrange(1, len(lines) - 1)  # the header stays intact except for "truncate"
    line = lines[i]
    if kind == "delete_delimiter" and b"," in line:
        k = rng.choice([j for j, c in enumerate(line) if c == ord(",")])
        lines[i] = line[:k] + line[k + 1 :]
    elif kind == "duplicate_delimiter" and b"," in line:
        k = rng.choice([j for j, c in enumerate(line) if c == ord(",")])
        lines[i] = line[:k] + b"," + line[k:]
    elif kind == "garbage":
        k = rng.randrange(len(line) + 1)
        junk = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 8)))
        lines[i] = line[:k] + junk + line[k:]
    elif kind == "swap":
        fields = line.split(b",")
        a, b = rng.randrange(len(fields)), rng.randrange(len(fields))
        fields[a], fields[b] = fields[b], fields[a]
        lines[i] = b",".join(fields)
    elif kind == "bad_date":
        lines[i] = line.replace(b"2018-07-15", rng.choice([b"2018-13-01", b"15/07/2018", b"x"]))
    elif kind == "blank_lines":
        lines[i:i] = [b""] * rng.randrange(1, 3)
    elif kind == "crlf":
        lines[i] = line + b"\r"
    elif kind == "empty_field":
        fields = line.split(b",")
        fields[rng.randrange(len(fields))] = b""
        lines[i] = b",".join(fields)
    elif kind == "huge_number" and line.count(b",") >= 2:  # not a blank line from blank_lines
        fields = line.split(b",")
        fields[rng.randrange(1, 3)] = b"99999999999999999999"
        lines[i] = b",".join(fields)
    elif kind == "quoted_newline":  # RFC 4180 quoting around a line break: not honoured
        fields = line.split(b",")
        k = rng.randrange(len(fields))
        cut = rng.randrange(len(fields[k]) + 1)
        brk = rng.choice([b"\n", b"\r\n", b"\n\n"])
        fields[k] = b'"' + fields[k][:cut] + brk + fields[k][cut:] + b'"'
        lines[i] = b",".join(fields)
    elif kind == "quote":
        k = rng.randrange(len(line) + 1)
        lines[i] = line[:k] + rng.choice([b'"', b'""', b'"x"']) + line[k:]
    elif kind == "long_field":  # over the line limit, or only over the id limit
        fields = line.split(b",")
        size = rng.choice([MAX_ID_BYTES + 1, MAX_LINE_BYTES + rng.randrange(1, 5000)])
        fields[rng.randrange(len(fields))] = rng.choice([b"x", b"\xc3\xa9", b"\xff"]) * size
        lines[i] = b",".join(fields)
    return b"\n".join(lines)


KINDS = [
    "truncate",
    "delete_delimiter",
    "duplicate_delimiter",
    "garbage",
    "swap",
    "bad_date",
    "blank_lines",
    "crlf",
    "empty_field",
    "huge_number",
    "quoted_newline",
    "quote",
    "long_field",
]


def _check_accounting(src: Path, raw: bytes, store: Path, kind: str) -> None:
    try:
        report = ingest([src], store, n_buckets=4, progress=False)
    except SkipmodelError as exc:
        assert "\n" not in str(exc)
        assert "unreadable CSV" not in str(exc)  # no row's content may fail its whole file
        return
    lines = data_lines(raw)
    read = report.log_rows_read if kind == "log" else report.track_rows_read
    written = report.log_rows_written if kind == "log" else report.track_rows_written
    rejected_n = report.log_rows_rejected if kind == "log" else report.track_rows_rejected
    assert read == written + rejected_n
    assert read == len(lines)
    rej = rejected(store)
    got = [] if rej is None else rej.to_pylist()
    assert len(got) == rejected_n
    assert len({r["line"] for r in got}) == len(got)
    for r in got:
        assert 2 <= r["line"] <= len(lines) + 1
        text = lines[r["line"] - 2]
        if r["reason"].startswith("blank line"):
            assert text.strip(b",") == b""
        elif r["reason"].startswith("line too long"):
            assert len(text) > MAX_LINE_BYTES
            assert r["raw_bytes"] == text[:MAX_LINE_BYTES]
        else:  # the line's bytes, exactly, and as text
            assert r["raw_bytes"] == text, r["reason"]
            assert r["raw"] == text.decode("utf-8", "replace"), r
    kept = sessions(store) if kind == "log" and written else tracks(store) if written else None
    if kind == "log" and written:
        assert kept.num_rows == written
    for column in ("session_id", "track_id_clean") if kind == "log" else ("track_id",):
        for value in [] if kept is None else kept[column].to_pylist():
            assert 0 < len(value.encode()) <= MAX_ID_BYTES and not BAD_ID.search(value), value


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_corrupted_logs_are_accounted_for(kinds, seed):
    rng = random.Random(seed)
    raw = b"\n".join(_lines(LOG, 40)) + b"\n"
    for kind in kinds:
        raw = corrupt(raw, kind, rng)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "log_0_20180715_000000000000.csv"
        src.write_bytes(raw)
        _check_accounting(src, raw, Path(tmp) / "store", "log")


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_corrupted_track_features_are_accounted_for(kinds, seed):
    rng = random.Random(seed)
    raw = b"\n".join(_lines(TF, 20)) + b"\n"
    for kind in kinds:
        raw = corrupt(raw, kind, rng)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "tf_000000000000.csv"
        src.write_bytes(raw)
        _check_accounting(src, raw, Path(tmp) / "store", "tracks")


@settings(max_examples=25, deadline=None)
@given(cut=st.floats(0.0, 0.999))
def test_truncated_gzip_is_a_clean_error_and_leaves_nothing(cut):
    with tempfile.TemporaryDirectory() as tmp:
        gz = Path(tmp) / "log.csv.gz"
        data = gzip.compress(LOG.read_bytes())
        gz.write_bytes(data[: int(len(data) * cut)])
        store = Path(tmp) / "store"
        with pytest.raises(SkipmodelError, match="log.csv.gz"):
            ingest([gz], store, progress=False)
        assert not list(store.rglob("*.parquet"))
        shutil.rmtree(store, ignore_errors=True)  # a failed first ingest may remove it itself
