"""Compaction: one sorted file per bucket, the same bytes however and whenever it is reached."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingest_helpers import sessions, store_files
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import compact as ingest_compact
from skipmodel.ingest import ingest
from skipmodel.ingest.compact import compact
from skipmodel.load.loaders import load_table
from skipmodel.store.format import COMPACT_JOURNAL, SOURCE_COLUMN, TRACK_ROW_COLUMN, is_sorted_file

PARTIAL = "mssd_trainset_partial_rows_1180.csv"
MINI = "log_mini_first11sessions.csv"
TF = "tf_mini_subset_for_first11sessions.csv"
OPTIONS = {"n_buckets": 3, "flush_rows": 150, "progress": False}


@pytest.fixture
def inputs(tmp_path, mssd_dir) -> list[Path]:
    """Three log files and the track features; one session of the 1,180-row excerpt is cut
    in two, its halves in different files (as sessions crossing midnight are in MSSD)."""
    src = tmp_path / "inputs"
    src.mkdir()
    lines = (mssd_dir / PARTIAL).read_text().splitlines(keepends=True)
    sid = [line.split(",")[0] for line in lines]
    cut = next(i for i in range(500, len(lines) - 1) if sid[i] == sid[i + 1] == sid[i - 1])
    (src / "log_0_20180716_000000000000.csv").write_text("".join(lines[: cut + 1]))
    (src / "log_1_20180717_000000000000.csv").write_text("".join(lines[:1] + lines[cut + 1 :]))
    for name in (MINI, TF):
        (src / name).write_bytes((mssd_dir / name).read_bytes())
    return sorted(src.iterdir())


def _manifest(store: Path) -> dict:
    manifest = json.loads((store / "manifest.json").read_text())
    for entry in manifest["sources"].values():
        entry.pop("ingested_at")
    return manifest


def _same_store(a: Path, b: Path) -> None:
    files_a, files_b = store_files(a), store_files(b)
    assert files_a.keys() == files_b.keys()
    for key in files_a:
        assert files_a[key].equals(files_b[key]), key
        assert (a / key).read_bytes() == (b / key).read_bytes(), key
    assert _manifest(a) == _manifest(b)


def test_one_sorted_file_per_bucket_with_sources_and_same_rows(tmp_path, inputs):
    ingest(inputs, tmp_path / "raw", compact=False, **OPTIONS)
    ingest(inputs, tmp_path / "packed", **OPTIONS)
    for bucket in (tmp_path / "packed" / "sessions").iterdir():
        files = list(bucket.glob("part-*.parquet"))
        assert len(files) == 1 and is_sorted_file(files[0])
        table = pq.read_table(files[0], partitioning=None)
        keys = list(
            zip(table["session_id"].to_pylist(), table["session_position"].to_pylist(), strict=True)
        )
        assert keys == sorted(keys)
    assert sessions(tmp_path / "packed").equals(sessions(tmp_path / "raw"))
    # every row knows its source, and its source's manifest entry
    manifest = _manifest(tmp_path / "packed")
    table = pq.read_table(tmp_path / "packed" / "sessions", columns=[SOURCE_COLUMN])
    counts = table[SOURCE_COLUMN].cast("string").value_counts().to_pylist()
    assert {c["values"]: c["counts"] for c in counts} == {
        fp: e["rows_written"] for fp, e in manifest["sources"].items() if e["kind"] == "log"
    }
    # the loaders read both layouts alike
    packed, raw = (load_table(tmp_path / name, lags=2) for name in ("packed", "raw"))
    assert packed.schema == raw.schema
    assert packed.to_pylist() == raw.to_pylist()  # category dictionaries may be ordered apart


def test_incremental_ingests_compact_to_the_same_bytes_as_one(tmp_path, inputs):
    ingest(inputs, tmp_path / "once", **OPTIONS)
    for path in inputs:  # one source per run, each run compacting what it touched
        ingest([path], tmp_path / "steps", **OPTIONS)
    _same_store(tmp_path / "once", tmp_path / "steps")
    # and the other order, with an uncompacted run in between
    for k, path in enumerate(reversed(inputs)):
        ingest([path], tmp_path / "reversed", compact=k != 1, **OPTIONS)
    _same_store(tmp_path / "once", tmp_path / "reversed")


def test_integrity_counts_whole_sessions_once_compacted(tmp_path, inputs, mssd_dir):
    raw = ingest(inputs, tmp_path / "raw", compact=False, **OPTIONS)
    packed = ingest(inputs, tmp_path / "packed", **OPTIONS)
    uncut = ingest([mssd_dir / PARTIAL, mssd_dir / MINI], tmp_path / "uncut", compact=False)
    # per part, the cut session's two halves each look incomplete (or one more time than it
    # is); per whole session it counts as in the uncut file
    want = uncut.integrity["incomplete_sessions"]
    assert packed.integrity["incomplete_sessions"] == want
    assert raw.integrity["incomplete_sessions"] in (want + 1, want + 2)
    assert _manifest(tmp_path / "packed")["compaction"]["complete"]
    assert packed.totals == raw.totals  # accounting unchanged: read = written + rejected


def test_compact_on_a_store_built_without(tmp_path, inputs):
    ingest(inputs, tmp_path / "reference", **OPTIONS)
    ingest(inputs, tmp_path / "store", compact=False, **OPTIONS)
    report = compact(tmp_path / "store")
    assert report.buckets_compacted == 3 and report.parts_replaced > 3
    _same_store(tmp_path / "reference", tmp_path / "store")
    assert compact(tmp_path / "store").buckets_compacted == 0  # nothing left to do


@pytest.mark.parametrize("fail_at", ["write", "journal", "rename", "remove"])
def test_killed_compaction_is_finished_by_the_rerun(tmp_path, inputs, monkeypatch, fail_at):
    ingest(inputs, tmp_path / "reference", **OPTIONS)
    store = tmp_path / "store"
    ingest(inputs, store, compact=False, **OPTIONS)
    calls = {"n": 0}

    def dies(*_: object, **__: object) -> None:
        raise KeyboardInterrupt  # the process dies here

    real_replace, real_unlink = os.replace, Path.unlink
    if fail_at == "write":
        monkeypatch.setattr(pq, "write_table", dies)
    elif fail_at == "journal":
        monkeypatch.setattr(ingest_compact, "atomic_write_json", dies)
    elif fail_at == "rename":

        def replace_but_not_the_compacted(src: object, dst: object) -> None:
            if str(src).endswith(".compacting"):  # journal written, file not yet in place
                raise KeyboardInterrupt
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace_but_not_the_compacted)
    else:

        def unlink_once(self: Path, missing_ok: bool = False) -> None:
            calls["n"] += 1
            if calls["n"] == 2:  # the compacted file is in place, one old part is gone
                raise KeyboardInterrupt
            real_unlink(self, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", unlink_once)
    with pytest.raises(KeyboardInterrupt):
        compact(store)
    monkeypatch.setattr(os, "replace", real_replace)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    monkeypatch.undo()
    if fail_at in ("rename", "remove"):
        # half done: the loaders refuse rather than count rows twice
        assert list(store.glob(f"sessions/*/{COMPACT_JOURNAL}"))
        with pytest.raises(SkipmodelError, match="half compacted"):
            load_table(store)
    ingest(inputs, store, **OPTIONS)  # the re-run: every source known, compaction finished
    _same_store(tmp_path / "reference", store)
    assert not [p for p in store.rglob(".*") if p.name != ".ingest.lock" and p.is_file()]


def test_compact_command(tmp_path, inputs, capsys):
    import argparse

    from skipmodel.commands import compact as command

    ingest(inputs, tmp_path / "store", compact=False, **OPTIONS)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert command.run(parser.parse_args(["--store", str(tmp_path / "store")])) == 0
    assert "3 bucket(s) merged" in capsys.readouterr().out
    with pytest.raises(SkipmodelError, match="not a skipmodel store"):
        command.run(parser.parse_args(["--store", str(tmp_path / "nowhere")]))


def test_ingest_command_no_compact(tmp_path, inputs):
    from skipmodel.cli import main

    store = tmp_path / "store"
    argv = ["ingest", *map(str, inputs), "--store", str(store), "--buckets", "3", "--quiet"]
    assert main([*argv, "--no-compact"]) == 0
    assert not any(is_sorted_file(p) for p in store.glob("sessions/*/part-*.parquet"))
    assert main(argv) == 0  # the next ingest (nothing new) still compacts
    files = list(store.glob("sessions/*/part-*.parquet"))
    assert len(files) == 3 and all(is_sorted_file(p) for p in files)


def test_track_rows_are_used_only_while_the_track_files_are_the_same(tmp_path, inputs):
    logs, features = inputs[:-1], inputs[-1:]
    ingest(inputs, tmp_path / "once", **OPTIONS)
    # logs compacted before any track features exist: their stored track rows are all -1
    ingest(logs, tmp_path / "late", **OPTIONS)
    ingest(features, tmp_path / "late", compact=False, **OPTIONS)
    files = list((tmp_path / "late").glob("sessions/*/part-*.parquet"))
    assert all(
        pq.read_table(f, columns=[TRACK_ROW_COLUMN]).column(0).to_pylist().count(-1)
        == pq.ParquetFile(f).metadata.num_rows
        for f in files
    )
    want = load_table(tmp_path / "once", features=["danceability"], lags=1)
    got = load_table(tmp_path / "late", features=["danceability"], lags=1)
    assert want.column("danceability").null_count < want.num_rows  # features are joined
    assert got.to_pylist() == want.to_pylist()  # stale track rows ignored: looked up instead
    compact(tmp_path / "late")  # now recomputed against the new track files
    _same_store(tmp_path / "once", tmp_path / "late")
