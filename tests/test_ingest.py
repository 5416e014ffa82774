"""``skipmodel ingest`` on the real MSSD excerpts: exact counts, values, layouts, idempotence."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archive_helpers import Member, pack_members
from ingest_helpers import gzip_copy, pack_tar, rejected, sessions, store_files, tracks
from skipmodel.cli import main
from skipmodel.ingest import ingest
from skipmodel.store import schema
from skipmodel.store.format import SOURCE_COLUMN, TRACK_ROW_COLUMN, is_sorted_file
from skipmodel.store.hashing import session_bucket

MINI = "log_mini_first11sessions.csv"
PARTIAL = "mssd_trainset_partial_rows_1180.csv"
TF = "tf_mini_subset_for_first11sessions.csv"


@pytest.fixture
def excerpts(mssd_dir):
    return [mssd_dir / MINI, mssd_dir / PARTIAL, mssd_dir / TF]


def test_real_excerpts_ingest_exactly(tmp_path, mssd_dir):
    report = ingest([mssd_dir / MINI, mssd_dir / TF], tmp_path / "s", progress=False)
    assert (report.log_rows_read, report.log_rows_written, report.log_rows_rejected) == (
        201,
        201,
        0,
    )
    assert (report.track_rows_read, report.track_rows_written, report.track_rows_rejected) == (
        175,
        175,
        0,
    )
    assert report.integrity["incomplete_sessions"] == 0
    assert report.integrity["skip_nesting_violations"] == 0
    assert report.integrity["log_tracks_missing_from_features"] == 0
    assert rejected(tmp_path / "s") is None

    report = ingest([mssd_dir / PARTIAL], tmp_path / "p", progress=False)
    assert (report.log_rows_read, report.log_rows_written, report.log_rows_rejected) == (
        1180,
        1180,
        0,
    )
    frame = pd.read_csv(mssd_dir / PARTIAL)
    per_session = frame.groupby("session_id").agg(
        n=("session_position", "nunique"), length=("session_length", "max")
    )
    expected_incomplete = int((per_session.n < per_session.length).sum())
    assert expected_incomplete > 0
    assert report.integrity["incomplete_sessions"] == expected_incomplete
    # no track features in that store: the missing-track check cannot run
    assert report.integrity["log_tracks_missing_from_features"] is None


def test_values_round_trip_against_pandas(tmp_path, mssd_dir):
    ingest([mssd_dir / MINI, mssd_dir / PARTIAL, mssd_dir / TF], tmp_path / "s", progress=False)
    got = sessions(tmp_path / "s").to_pandas()
    want = pd.concat([pd.read_csv(mssd_dir / MINI), pd.read_csv(mssd_dir / PARTIAL)])
    want = want.sort_values(["session_id", "session_position"]).reset_index(drop=True)
    assert len(got) == len(want) == 1381
    for col in schema.LOG_COLUMNS:
        g, w = got[col], want[col]
        if col == "date":
            assert (g.astype(str).to_numpy() == w.to_numpy()).all()
        elif col in schema.LOG_INT_FLAGS:
            assert (g.to_numpy() == w.astype(bool).to_numpy()).all(), col
        else:
            assert (g.to_numpy() == w.to_numpy()).all(), col

    got_t = tracks(tmp_path / "s").to_pandas()
    want_t = pd.read_csv(mssd_dir / TF).sort_values("track_id").reset_index(drop=True)
    assert list(got_t.columns) == list(schema.TRACK_COLUMNS)
    for col in schema.TRACK_COLUMNS:
        g, w = got_t[col], want_t[col]
        if w.dtype.kind == "f":
            np.testing.assert_array_equal(g.to_numpy(dtype=float), w.to_numpy(), err_msg=col)
        else:
            assert (g.astype(str).to_numpy() == w.astype(str).to_numpy()).all(), col


@pytest.mark.parametrize("compact", [True, False])
def test_store_layout_types_buckets_and_order(tmp_path, excerpts, compact):
    ingest(excerpts, tmp_path / "s", n_buckets=7, progress=False, compact=compact)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["n_buckets"] == 7
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert manifest["totals"]["log_rows_written"] == 1381
    assert manifest["totals"]["track_rows_written"] == 175
    parts = sorted((tmp_path / "s" / "sessions").glob("session_bucket=*/part-*.parquet"))
    assert parts
    buckets = [p.parent for p in parts]
    assert (len(set(buckets)) == len(buckets)) == compact  # compacted: one file per bucket
    for part in parts:
        table = pq.read_table(part, partitioning=None)
        if compact:
            assert is_sorted_file(part)
            assert set(table[SOURCE_COLUMN].to_pylist()) <= set(manifest["sources"])
            table = table.drop_columns([SOURCE_COLUMN, TRACK_ROW_COLUMN])
        assert table.schema.equals(schema.LOG_SCHEMA), part
        bucket = int(part.parent.name.split("=")[1])
        assert set(session_bucket(table["session_id"], 7)) == {bucket}
        keys = list(
            zip(table["session_id"].to_pylist(), table["session_position"].to_pylist(), strict=True)
        )
        assert keys == sorted(keys)
        assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"
    for part in (tmp_path / "s" / "tracks").glob("part-*.parquet"):
        assert pq.read_table(part).schema.equals(schema.TRACK_SCHEMA)
    assert not list((tmp_path / "s").rglob("*.tmp"))
    assert not (tmp_path / "s" / ".staging").exists()  # no empty staging folder left


def test_same_content_from_tar_folder_and_gzip(tmp_path, excerpts):
    ingest(excerpts, tmp_path / "plain", progress=False)
    reference = sessions(tmp_path / "plain")
    reference_tracks = tracks(tmp_path / "plain")

    archive = pack_tar(excerpts, tmp_path / "training_set.tar.gz")
    report = ingest([archive], tmp_path / "tar", progress=False)
    assert report.skipped == (f"{archive}!training_set/README.txt",)
    folder = tmp_path / "folder" / "nested"
    folder.mkdir(parents=True)
    for f in excerpts:
        shutil.copy(f, folder / f.name)
    (folder / "notes.md").write_text("hello\n")
    gz = [gzip_copy(f, tmp_path / f"{f.name}.gz") for f in excerpts]
    ingest([tmp_path / "folder"], tmp_path / "dir", progress=False)
    ingest(gz, tmp_path / "gz", progress=False)
    for name in ("tar", "dir", "gz"):
        assert sessions(tmp_path / name).equals(reference), name
        assert tracks(tmp_path / name).equals(reference_tracks), name
    # the fingerprint is of the decompressed content: identical part names everywhere
    assert store_files(tmp_path / "tar").keys() == store_files(tmp_path / "plain").keys()
    manifest = json.loads((tmp_path / "dir" / "manifest.json").read_text())
    assert str(folder / "notes.md") in manifest["skipped"]


def test_ingest_twice_and_overlapping_inputs_do_not_duplicate(tmp_path, excerpts, mssd_dir):
    store = tmp_path / "s"
    ingest(excerpts, store, progress=False)
    first = store_files(store)
    again = gzip_copy(mssd_dir / MINI, tmp_path / "again.csv.gz")
    report = ingest([*excerpts, again], store)
    # counted as the store holds them: each distinct source once (issue 17, item 7)
    assert report.log_rows_written == 201 + 1180
    assert report.track_rows_written == 175
    assert report.already_ingested == (*map(str, excerpts), str(again))
    second = store_files(store)
    assert first.keys() == second.keys()
    assert all(first[k].equals(second[k]) for k in first)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["totals"]["log_rows_written"] == 1381
    assert len(manifest["sources"]) == 3


def test_small_flushes_split_sources_into_parts_without_splitting_sessions(tmp_path, mssd_dir):
    store = tmp_path / "s"
    ingest([mssd_dir / PARTIAL], store, n_buckets=3, flush_rows=100, progress=False, compact=False)
    assert sessions(store).num_rows == 1180
    parts = list((store / "sessions").rglob("part-*-*.parquet"))
    assert parts, "expected several parts per bucket"
    seen: dict[str, str] = {}
    for part in (store / "sessions").rglob("part-*.parquet"):
        for sid in set(pq.read_table(part, columns=["session_id"])["session_id"].to_pylist()):
            assert seen.setdefault(sid, part.name) == part.name, sid
    whole = ingest([mssd_dir / PARTIAL], tmp_path / "w", n_buckets=3, progress=False, compact=False)
    assert (
        whole.integrity["incomplete_sessions"]
        == json.loads((store / "manifest.json").read_text())["integrity"]["incomplete_sessions"]
    )


def test_rejects_and_integrity_findings(tmp_path, mssd_dir):
    lines = (mssd_dir / MINI).read_text().splitlines()
    header, rows = lines[0], lines[1:]

    def edit(i: int, col: str, value: str) -> str:
        fields = rows[i].split(",")
        fields[schema.LOG_COLUMNS.index(col)] = value
        return ",".join(fields)

    bad = {
        3: (edit(2, "hour_of_day", "24"), "hour_of_day: 24 outside 0..23"),
        5: (edit(4, "session_position", "21"), "session_position 21 > session_length 20"),
        7: (edit(6, "skip_1", "maybe"), "skip_1: not a boolean"),
        9: (edit(8, "date", "2018-02-30"), "date: not a YYYY-MM-DD date"),
        11: (rows[10] + ",extra", "wrong number of fields: 22 instead of 21"),
        13: ("", "blank line"),
        15: (edit(14, "session_id", ""), "session_id: empty id"),
        17: (edit(16, "hist_user_behavior_n_seekfwd", "-1"), "outside 0..32767"),
        19: (edit(18, "context_switch", "2"), "context_switch: not a 0/1 flag"),
        21: (edit(20, "session_length", "0"), "session_length: 0 outside 1..127"),
    }
    out = list(rows)
    for line, (text, _) in bad.items():
        out[line - 2] = text
    # findings that keep the row: a nesting violation, a far date, a duplicate position
    out[30] = edit(30, "skip_1", "true").replace(
        ",true,false,false,true,", ",true,false,false,false,"
    )
    out[31] = edit(31, "date", "2018-07-01")
    out.insert(40, out[39])
    src = tmp_path / "log_0_20180715_000000000000.csv"
    src.write_text("\n".join([header, *out]) + "\n")

    report = ingest([src], tmp_path / "s", progress=False)
    assert report.log_rows_read == len(out)
    assert report.log_rows_rejected == len(bad)
    assert report.log_rows_written == len(out) - len(bad)
    rej = rejected(tmp_path / "s").to_pylist()
    assert [r["line"] for r in rej] == sorted(bad)
    for r in rej:
        text, reason = bad[r["line"]]
        assert r["source"] == str(src)
        assert r["raw"] == text
        assert reason in r["reason"], (reason, r["reason"])
    integrity = report.integrity
    assert integrity["duplicate_session_positions"] == 1
    assert integrity["dates_far_from_file_day"] == 1
    assert integrity["skip_nesting_violations"] >= 1
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    (entry,) = manifest["sources"].values()
    assert entry["file_day"] == "2018-07-15"
    assert entry["rows_read"] == entry["rows_written"] + entry["rows_rejected"]


def test_boolean_spellings_and_empty_track_values(tmp_path, mssd_dir):
    lines = (mssd_dir / MINI).read_text().splitlines()
    text = "\n".join(lines[:6]).replace(",true,", ",True,", 1).replace(",false,", ",FALSE,", 1)
    text = text.replace("false,false,false,true", "0,0,0,1", 1)
    (tmp_path / "log.csv").write_text(text + "\n")
    tf = (mssd_dir / TF).read_text().splitlines()
    fields = tf[1].split(",")
    fields[schema.TRACK_COLUMNS.index("danceability")] = ""
    (tmp_path / "tf.csv").write_text("\n".join([tf[0], ",".join(fields)]) + "\n")
    report = ingest([tmp_path / "log.csv", tmp_path / "tf.csv"], tmp_path / "s", progress=False)
    assert report.log_rows_rejected == 0
    assert report.track_rows_written == 1
    assert tracks(tmp_path / "s")["danceability"].null_count == 1
    want = pd.read_csv(mssd_dir / MINI, nrows=5)
    got = sessions(tmp_path / "s").to_pandas()
    assert (got["skip_1"].to_numpy() == want["skip_1"].to_numpy()).all()
    assert (got["not_skipped"].to_numpy() == want["not_skipped"].to_numpy()).all()


def test_header_only_file_is_zero_rows(tmp_path, mssd_dir):
    header = (mssd_dir / MINI).read_text().splitlines()[0]
    (tmp_path / "h.csv").write_text(header + "\n")
    report = ingest([tmp_path / "h.csv"], tmp_path / "s", progress=False)
    assert report.log_rows_read == report.log_rows_written == 0


def test_columns_in_another_order_and_extra_columns(tmp_path, mssd_dir):
    frame = pd.read_csv(mssd_dir / MINI, dtype=str, keep_default_na=False)
    frame = frame[list(reversed(frame.columns))]
    frame["comment"] = "x"
    frame.to_csv(tmp_path / "log.csv", index=False)
    ingest([tmp_path / "log.csv"], tmp_path / "a", progress=False)
    ingest([mssd_dir / MINI], tmp_path / "b", progress=False)
    assert sessions(tmp_path / "a").equals(sessions(tmp_path / "b"))


def test_store_arrow_types_match_schema(tmp_path, mssd_dir):
    ingest([mssd_dir / MINI], tmp_path / "s", progress=False)
    part = next((tmp_path / "s" / "sessions").rglob("*.parquet"))
    table = pq.read_table(part, partitioning=None)
    assert table.schema.field("context_type").type == pa.dictionary(pa.int8(), pa.string())
    assert table.schema.field("date").type == pa.date32()


def test_console_counts_match_the_manifest_for_repeated_inputs(tmp_path, capsys, mssd_dir):
    """A file given twice, then ingested again: 201 written, as the manifest says, not 402."""
    store = tmp_path / "s"
    src = str(mssd_dir / MINI)
    for argv in ([src, src], [src]):
        assert main(["ingest", *argv, "--store", str(store), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "logs:   201 rows read, 201 written, 0 rejected" in out
        already = "already in the store (counted once above, not written again): 1 input(s)"
        assert f"{already}: {src}\n" in out
        manifest = json.loads((store / "manifest.json").read_text())
        assert manifest["totals"]["log_rows_written"] == 201
        assert not (store / ".staging").exists()


def test_links_in_an_archive_are_skipped_and_listed(tmp_path, capsys, mssd_dir):
    archive = pack_members(
        [
            Member("training_set", kind="dir"),
            Member("training_set/log_0.csv", (mssd_dir / MINI).read_bytes()),
            Member("training_set/soft.csv", kind="symlink", target="log_0.csv"),
            Member("training_set/hard.csv", kind="hardlink", target="training_set/log_0.csv"),
        ],
        tmp_path / "set.tar.gz",
    )
    store = tmp_path / "s"
    assert main(["ingest", str(archive), "--store", str(store), "--quiet"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["totals"]["log_rows_written"] == 201
    soft, hard = (f"{archive}!training_set/{n}.csv" for n in ("soft", "hard"))
    assert manifest["skipped"] == {  # the folder member is not listed
        soft: "symbolic link (to 'log_0.csv'): links are not followed",
        hard: "hard link (to 'training_set/log_0.csv'): links are not followed",
    }
    assert f"{soft}: symbolic link" in out
    assert f"{hard}: hard link" in out
