"""Property tests: archives mixing CSVs with empty members, links, folders and non-CSV files.

Whatever the mix and order, every CSV with a header row is ingested (a CSV packed twice counts
once), every empty member, link and non-CSV file is listed under ``skipped`` with its reason, no
staging folder is left, and a re-run changes nothing. An archive with no CSV to ingest is a
one-line error that creates no store.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive_helpers import Member, pack_members
from conftest import MSSD_FIXTURES
from ingest_helpers import store_files
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest

LOG = MSSD_FIXTURES / "log_mini_first11sessions.csv"
pytestmark = pytest.mark.skipif(not LOG.is_file(), reason="shared MSSD fixtures not found")

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Row slices of the real excerpt a CSV member may hold (the same slice twice is one source).
SLICES = ((0, 7), (7, 40), (40, 41), (41, 200))
SKIP_REASONS = {
    "empty": "empty file: 0 bytes",
    "empty_gz": "empty file: 0 bytes decompressed",
    "blank": "empty file: blank lines only, no header row",
    "readme": "not a .csv/.csv.gz member",
    "symlink": "symbolic link (to 'training_set/m0.csv'): links are not followed",
    "hardlink": "hard link (to 'training_set/m0.csv'): links are not followed",
}

member_kinds = st.one_of(
    st.tuples(st.just("csv"), st.integers(0, len(SLICES) - 1), st.booleans()),
    st.tuples(st.sampled_from([*SKIP_REASONS, "dir"]), st.just(0), st.just(False)),
)


def _member(i: int, kind: str, piece: int, gz: bool, lines: list[bytes]) -> Member:
    stem = f"training_set/m{i}"
    if kind == "csv":
        lo, hi = SLICES[piece]
        text = b"\n".join([lines[0], *lines[1 + lo : 1 + hi]]) + b"\n"
        return Member(f"{stem}.csv.gz", gzip.compress(text)) if gz else Member(f"{stem}.csv", text)
    if kind in ("symlink", "hardlink"):
        return Member(f"{stem}.csv", kind=kind, target="training_set/m0.csv")
    return {
        "empty": Member(f"{stem}.csv"),
        "empty_gz": Member(f"{stem}.csv.gz", gzip.compress(b"")),
        "blank": Member(f"{stem}.csv", b"\r\n\n  \n"),
        "readme": Member(f"{stem}.txt", b"notes\n"),
        "dir": Member(stem, kind="dir"),
    }[kind]


@SETTINGS
@given(kinds=st.lists(member_kinds, min_size=1, max_size=7))
def test_archive_members_are_ingested_or_listed(kinds):
    lines = LOG.read_bytes().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        members = [_member(i, *k, lines) for i, k in enumerate(kinds)]
        archive = pack_members(members, Path(tmp) / "set.tar.gz")
        store = Path(tmp) / "store"
        pieces = {piece for kind, piece, _ in kinds if kind == "csv"}
        if not pieces:
            with pytest.raises(SkipmodelError, match="nothing to ingest: no CSV"):
                ingest([archive], store, n_buckets=2, progress=False)
            assert not store.exists()
            return
        want_rows = sum(SLICES[p][1] - SLICES[p][0] for p in pieces)
        want_skipped = {
            f"{archive}!{m.name}": SKIP_REASONS[kind]
            for m, (kind, _, _) in zip(members, kinds, strict=True)
            if kind in SKIP_REASONS
        }
        report = ingest([archive], store, n_buckets=2, progress=False)
        first = store_files(store)
        again = ingest([archive], store, n_buckets=2, progress=False)
        manifest = json.loads((store / "manifest.json").read_text())
        for r in (report, again):
            assert r.log_rows_written == r.log_rows_read == want_rows
            assert r.log_rows_rejected == 0
            assert dict(r.skip_reasons) == want_skipped
        assert len(again.already_ingested) == sum(kind == "csv" for kind, _, _ in kinds)
        assert manifest["skipped"] == want_skipped
        assert manifest["totals"]["log_rows_written"] == want_rows
        assert len(manifest["sources"]) == len(pieces)
        assert not (store / ".staging").exists()
        second = store_files(store)
        assert first.keys() == second.keys()
        assert all(first[k].equals(second[k]) for k in first)
