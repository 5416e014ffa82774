"""Every whole-input problem is one actionable line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile

import pytest

from archive_helpers import Member, pack_members
from ingest_helpers import gzip_copy, pack_tar
from skipmodel.cli import main
from skipmodel.ingest import ingest

MINI = "log_mini_first11sessions.csv"
PARTIAL = "mssd_trainset_partial_rows_1180.csv"


def _fail(capsys, argv: list[str], *needles: str) -> str:
    code = main(["ingest", *argv, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_missing_path(tmp_path, capsys):
    _fail(
        capsys, [str(tmp_path / "nope.csv"), "--store", str(tmp_path / "s")], "nope.csv", "no such"
    )
    assert not (tmp_path / "s").exists()


def test_unsupported_extension(tmp_path, capsys):
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")
    _fail(capsys, [str(tmp_path / "data.xlsx"), "--store", str(tmp_path / "s")], "unsupported")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty file"),
        (b"\n\n  \n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "binary"),
        (b"session_id;session_position;session_length\n1;2;3\n", "not comma-separated"),
        (b"a,b,c\n1,2,3\n", "expected session-log columns (session_id"),
        (b"\xff\xfe,\xff\n1,2\n", "not UTF-8"),
    ],
)
def test_not_a_csv(tmp_path, capsys, content, needle):
    (tmp_path / "log.csv").write_bytes(content)
    _fail(capsys, [str(tmp_path / "log.csv"), "--store", str(tmp_path / "s")], "log.csv", needle)
    assert not (tmp_path / "s").exists()  # a failed first ingest leaves no store behind


def test_missing_columns_are_named(tmp_path, capsys, mssd_dir):
    lines = (mssd_dir / MINI).read_text().splitlines()
    cut = [",".join(line.split(",")[:-2]) for line in lines]
    (tmp_path / "log.csv").write_text("\n".join(cut) + "\n")
    _fail(
        capsys,
        [str(tmp_path / "log.csv"), "--store", str(tmp_path / "s")],
        "misses required columns: hist_user_behavior_reason_start, hist_user_behavior_reason_end",
    )
    (tmp_path / "tf.csv").write_text("track_id,duration\nt_1,3.0\n")
    _fail(capsys, [str(tmp_path / "tf.csv"), "--store", str(tmp_path / "t")], "release_year")


def _only_manifest(store):
    """Nothing of a failed source is left: no parts, no staging, no temp files."""
    assert not list(store.rglob("*.parquet"))
    assert not list(store.rglob("*.tmp"))
    staging = store / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_truncated_gzip_is_named_and_leaves_nothing(tmp_path, capsys, mssd_dir):
    gz = gzip_copy(mssd_dir / "mssd_trainset_partial_rows_1180.csv", tmp_path / "log.csv.gz")
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    _fail(capsys, [str(gz), "--store", str(tmp_path / "s")], "log.csv.gz", "truncated or corrupt")
    _only_manifest(tmp_path / "s")


def test_corrupt_gzip_member_in_tar_is_named(tmp_path, capsys, mssd_dir):
    gz = gzip_copy(mssd_dir / "mssd_trainset_partial_rows_1180.csv", tmp_path / "log_1.csv.gz")
    data = bytearray(gz.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    gz.write_bytes(bytes(data))
    archive = pack_tar([gz], tmp_path / "set.tar.gz")
    _fail(
        capsys,
        [str(archive), "--store", str(tmp_path / "s")],
        "set.tar.gz!training_set/log_1.csv.gz",
    )
    _only_manifest(tmp_path / "s")


def test_truncated_archive_names_the_member_and_keeps_earlier_ones(tmp_path, capsys, mssd_dir):
    files = [mssd_dir / MINI, mssd_dir / "mssd_trainset_partial_rows_1180.csv"]
    archive = pack_tar(
        files, tmp_path / "set.tar", mode="w"
    )  # uncompressed: cut inside the 2nd member
    raw = archive.read_bytes()
    with tarfile.open(archive) as tar:
        second = tar.getmember("training_set/mssd_trainset_partial_rows_1180.csv")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(gzip.compress(raw[: second.offset_data + 5000]))
    _fail(capsys, [str(cut), "--store", str(tmp_path / "s")], "mssd_trainset_partial_rows_1180.csv")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["totals"]["log_rows_written"] == 201  # the complete first member stays


def test_different_bucket_count_is_refused(tmp_path, capsys, mssd_dir):
    store = str(tmp_path / "s")
    assert (
        main(["ingest", str(mssd_dir / MINI), "--store", store, "--buckets", "8", "--quiet"]) == 0
    )
    capsys.readouterr()
    _fail(
        capsys,
        [str(mssd_dir / MINI), "--store", store, "--buckets", "9"],
        "8 buckets",
        "--buckets 8",
    )
    assert main(["ingest", str(mssd_dir / MINI), "--store", store, "--quiet"]) == 0


def test_store_folder_that_is_not_a_store(tmp_path, capsys, mssd_dir):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "thesis.tex").write_text("x")
    _fail(capsys, [str(mssd_dir / MINI), "--store", str(tmp_path / "s")], "not a skipmodel store")


def test_console_script_prints_counts_and_one_line_errors(tmp_path, mssd_dir):
    env = {**os.environ, "CI": "1"}
    run = [sys.executable, "-m", "skipmodel", "ingest"]
    ok = subprocess.run(
        [*run, str(mssd_dir), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert "logs:   1,381 rows read, 1,381 written, 0 rejected" in ok.stdout
    assert "tracks: 175 rows read, 175 written, 0 rejected" in ok.stdout
    assert "incomplete sessions" in ok.stdout
    bad = subprocess.run(
        [*run, str(tmp_path / "missing.csv"), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_bad_bucket_counts_and_store_that_is_a_file(tmp_path, capsys, mssd_dir):
    src = str(mssd_dir / MINI)
    _fail(capsys, [src, "--store", str(tmp_path / "s"), "--buckets", "0"], "between 1 and 10000")
    assert not (tmp_path / "s").exists()
    (tmp_path / "f").write_text("x")
    _fail(capsys, [src, "--store", str(tmp_path / "f")], "is a file")


def test_store_inside_an_input_folder_is_not_read(tmp_path, mssd_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / MINI).write_bytes((mssd_dir / MINI).read_bytes())
    argv = ["ingest", str(data), "--store", str(data / "store"), "--quiet"]
    assert main(argv) == 0
    assert main(argv) == 0  # again: the store's own files are not inputs
    manifest = json.loads((data / "store" / "manifest.json").read_text())
    assert manifest["skipped"] == {}
    assert manifest["totals"]["log_rows_written"] == 201


def test_empty_members_are_skipped_listed_and_the_rest_ingested(tmp_path, capsys, mssd_dir):
    archive = pack_members(
        [
            Member("training_set/log_0.csv", (mssd_dir / MINI).read_bytes()),
            Member("training_set/log_1.csv"),  # 0 bytes
            Member("training_set/log_2.csv.gz", gzip.compress(b"")),
            Member("training_set/log_3.csv", b"\n \r\n"),
            Member("training_set/log_4.csv", (mssd_dir / PARTIAL).read_bytes()),
        ],
        tmp_path / "set.tar.gz",
    )
    store = tmp_path / "s"
    empty = [f"{archive}!training_set/log_{k}" for k in ("1.csv", "2.csv.gz", "3.csv")]
    for _ in range(2):  # every re-run succeeds the same way
        assert main(["ingest", str(archive), "--store", str(store), "--quiet"]) == 0
        out = capsys.readouterr().out
        manifest = json.loads((store / "manifest.json").read_text())
        assert manifest["totals"]["log_rows_written"] == 201 + 1180  # members after it too
        for name in empty:
            assert manifest["skipped"][name].startswith("empty file"), name
            assert f"{name}: empty file" in out


def test_empty_files_in_a_folder_are_skipped(tmp_path, mssd_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_bytes(b"")
    (data / "b.csv.gz").write_bytes(b"")  # not even a gzip header
    (data / "c.csv.gz").write_bytes(gzip.compress(b"\n\n"))
    (data / MINI).write_bytes((mssd_dir / MINI).read_bytes())
    report = ingest([data], tmp_path / "s", progress=False)
    assert report.log_rows_written == 201
    assert report.skipped == tuple(str(data / n) for n in ("a.csv", "b.csv.gz", "c.csv.gz"))
    assert report.skip_reasons[str(data / "a.csv")] == "empty file: 0 bytes"
    assert report.skip_reasons[str(data / "c.csv.gz")] == (
        "empty file: blank lines only, no header row"
    )


@pytest.mark.parametrize("content", ["nothing", "notes", "empty_csv", "archive_without_csv"])
def test_nothing_to_ingest_is_an_error_that_creates_nothing(tmp_path, capsys, content):
    data = tmp_path / "data"
    data.mkdir()
    if content == "notes":
        (data / "notes.md").write_text("hello\n")
    elif content == "empty_csv":
        (data / "log.csv").write_bytes(b"")
    elif content == "archive_without_csv":
        pack_members([Member("training_set/README.txt", b"x\n")], data / "set.tar.gz")
    store = tmp_path / "store"
    _fail(capsys, [str(data), "--store", str(store)], "nothing to ingest", "no CSV", str(data))
    assert not store.exists()


def test_nothing_to_ingest_leaves_an_existing_store_as_it_was(tmp_path, capsys, mssd_dir):
    store = tmp_path / "s"
    assert main(["ingest", str(mssd_dir / MINI), "--store", str(store), "--quiet"]) == 0
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    (tmp_path / "empty").mkdir()
    _fail(capsys, [str(tmp_path / "empty"), "--store", str(store)], "no CSV", "empty")
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


def test_failed_first_ingest_leaves_nothing_it_created(tmp_path, capsys, mssd_dir):
    gz = gzip_copy(mssd_dir / PARTIAL, tmp_path / "log.csv.gz")
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    nested = tmp_path / "new" / "deeper" / "store"
    _fail(capsys, [str(gz), "--store", str(nested)], "truncated or corrupt")
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()  # an empty folder the user made: kept, empty
    _fail(capsys, [str(gz), "--store", str(mine)], "truncated or corrupt")
    assert mine.is_dir() and not list(mine.iterdir())
    # a store that exists is never removed by a failed ingest
    assert main(["ingest", str(mssd_dir / MINI), "--store", str(mine), "--quiet"]) == 0
    _fail(capsys, [str(gz), "--store", str(mine)], "truncated or corrupt")
    manifest = json.loads((mine / "manifest.json").read_text())
    assert manifest["totals"]["log_rows_written"] == 201
    assert not (mine / ".staging").exists()
