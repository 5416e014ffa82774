"""Manifest commits (the protocol for object stores), on the local filesystem: the store holds
what a rename-commit store holds, a file the manifest does not name is invisible and deleted by
the next writer, an ingest killed anywhere and re-run gives the same store, and the lease lock
refuses a second writer. Also a store on pyarrow's LocalFileSystem through ``FsPath`` (the code
path of every other filesystem)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from ingest_helpers import simulated_inputs
from skipmodel.errors import SkipmodelError
from skipmodel.explore import ExploreOptions, compute
from skipmodel.explore.passes import store_sources
from skipmodel.ingest import compact as compact_module
from skipmodel.ingest import ingest
from skipmodel.ingest.compact import compact
from skipmodel.load.loaders import load_table
from skipmodel.store import committed_files, journal
from skipmodel.store.fspath import FsPath
from skipmodel.store.layout import StoreLayout
from skipmodel.store.lease import lease_lock
from skipmodel.store.rejected import read_rejected
from store_contents import assert_same_contents, committed, files_on_disk

BUCKETS = 4
FLUSH = 300
OPTIONS = {"n_buckets": BUCKETS, "flush_rows": FLUSH, "progress": False}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    return simulated_inputs(tmp_path_factory.mktemp("manifest-inputs"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs) -> Path:
    """The same inputs under rename commits (the local default)."""
    store = tmp_path_factory.mktemp("rename") / "store"
    ingest([inputs], store, **OPTIONS)
    return store


def _manifest(store: Path) -> dict:
    return json.loads((store / "manifest.json").read_text())


def test_manifest_commits_hold_what_rename_commits_hold(tmp_path, inputs, reference):
    store = tmp_path / "store"
    report = ingest([inputs], store, commit="manifest", **OPTIONS)
    assert report.log_rows_rejected >= 4 and report.already_ingested
    manifest = _manifest(store)
    assert manifest["commit"] == "manifest"
    assert all("run" in e and "seq" in e for e in manifest["sources"].values())
    assert_same_contents(store, reference)
    assert load_table(store).equals(load_table(reference))
    assert read_rejected(store).equals(read_rejected(reference))
    # compacted: each bucket is the one file the manifest names, the merged parts are gone
    named = {b: f[0] for b, f in manifest["compaction"]["files"].items()}
    for bucket in (store / "sessions").iterdir():
        assert [p.name for p in bucket.glob("part-*.parquet")] == [named[bucket.name]]
    assert not (store / ".staging").exists()
    again = ingest([inputs], store, **{**OPTIONS, "n_buckets": None})  # idempotent
    assert len(again.already_ingested) == len(again.sources)
    assert_same_contents(store, reference)


def test_a_store_keeps_its_commit_protocol(tmp_path, inputs, reference):
    with pytest.raises(SkipmodelError, match="commits by rename, not manifest"):
        ingest([inputs], reference, commit="manifest", progress=False)
    with pytest.raises(SkipmodelError, match="--commit must be one of"):
        ingest([inputs], tmp_path / "s", commit="copy", progress=False)


def test_unnamed_files_are_invisible_and_collected(tmp_path, inputs, reference):
    store = tmp_path / "store"
    ingest([inputs], store, commit="manifest", compact=False, **OPTIONS)
    before = committed(store)
    bucket = next((store / "sessions").iterdir())
    part = next(bucket.glob("part-*.parquet"))
    stray = [
        bucket / f"part-{'a' * 32}.parquet",  # a run never committed (a killed task)
        bucket / "part-compact-0123456789abcdef0123456789abcdef.parquet",  # an unnamed merge
        store / "tracks" / f"part-{'b' * 32}-1.parquet",
    ]
    for path in stray:
        shutil.copy(part, path)
    assert committed(store).keys() == before.keys()
    for key, table in committed(store).items():
        assert table.equals(before[key]), key
    listed = committed_files(store) + committed_files(store, "tracks")
    assert not {str(p) for p in stray} & set(listed)
    assert len(listed) == len(files_on_disk(store / "sessions")) + len(
        files_on_disk(store / "tracks")
    ) - len(stray)
    compact(store)  # the next writer deletes them, and merges
    assert not any(p.exists() for p in stray)
    assert_same_contents(store, reference)


@pytest.mark.parametrize("where", ["commit", "compaction", "record"])
def test_a_killed_ingest_rerun_gives_the_same_store(
    tmp_path, inputs, reference, where, monkeypatch
):
    store = tmp_path / "store"
    calls = {"n": 0}

    def dies(*_: object, **__: object) -> None:
        raise KeyboardInterrupt  # the process dies here

    if where == "commit":  # before the third source's manifest rewrite: its parts are written
        real = journal.commit_by_manifest

        def third_dies(*args: object, **kwargs: object) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr("skipmodel.ingest.staging.commit_by_manifest", third_dies)
    elif where == "compaction":  # compacted files written, none recorded
        monkeypatch.setattr(compact_module, "record_compacted", dies)
    else:  # compaction recorded, merged parts not yet deleted
        monkeypatch.setattr("skipmodel.ingest.pipeline.collect_garbage", dies)
    with pytest.raises(KeyboardInterrupt):
        ingest([inputs], store, commit="manifest", **OPTIONS)
    monkeypatch.undo()
    if where == "commit":
        assert len(_manifest(store)["sources"]) == 2
    ingest([inputs], store, **{**OPTIONS, "n_buckets": None})
    assert_same_contents(store, reference)
    rerun = tmp_path / "clean"
    ingest([inputs], rerun, commit="manifest", **OPTIONS)
    # nothing left over: the same files as an uninterrupted run, but for the run ids
    assert len(files_on_disk(store)) == len(files_on_disk(rerun))


def test_a_failed_first_ingest_leaves_nothing(tmp_path, inputs, monkeypatch):
    store = tmp_path / "new" / "store"

    def dies(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("skipmodel.ingest.staging.commit_by_manifest", dies)
    with pytest.raises(KeyboardInterrupt):
        ingest([inputs], store, commit="manifest", **OPTIONS)
    assert not (tmp_path / "new").exists()


def test_a_store_through_pyarrow_fs_equals_the_local_one(tmp_path, inputs, reference):
    """``FsPath`` on LocalFileSystem: every read and write through pyarrow.fs, the lease lock;
    rename commits (the default where renames are atomic) and manifest commits."""
    local = pafs.LocalFileSystem()
    for commit in ("rename", "manifest"):
        root = FsPath(str(tmp_path / commit), fs=local)
        ingest([inputs], root, commit=commit, **OPTIONS)
        assert_same_contents(root, reference)
        assert load_table(root).equals(load_table(reference))
        assert not (tmp_path / commit / journal.LOCK_FILE).exists()  # the lease is released
    options = ExploreOptions(jobs=1)
    got = compute(store_sources(FsPath(str(tmp_path / "manifest"), fs=local), options), options)
    want = compute(store_sources(reference, options), options)
    assert got.log.overview.rows == want.log.overview.rows == 3997
    assert repr(got.log.overview) == repr(want.log.overview)  # counts, sums, days: equal


def test_the_lease_refuses_a_second_writer(tmp_path):
    root = FsPath(str(tmp_path / "store"), fs=pafs.LocalFileSystem())
    refused = pytest.raises(SkipmodelError, match="another 'skipmodel ingest'.* is writing")
    with (
        lease_lock(root, ".ingest.lock", settle=0.01),
        refused,
        lease_lock(root, ".ingest.lock", settle=0.01),
    ):
        pass
    lock = tmp_path / "store" / ".ingest.lock"
    assert not lock.exists()
    # a lease left by a process that is gone (this host) is taken over at once
    dead = {"host": socket.gethostname(), "pid": 2**22 + 12345, "token": "x"}
    lock.write_text(json.dumps({**dead, "renewed": time.time()}))
    with lease_lock(root, ".ingest.lock", settle=0.01):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    # another host's fresh lease is respected; an expired one is not
    other = {"host": "elsewhere", "pid": 1, "token": "y"}
    lock.write_text(json.dumps({**other, "renewed": time.time()}))
    with (
        pytest.raises(SkipmodelError, match="host elsewhere"),
        lease_lock(root, ".ingest.lock", settle=0.01),
    ):
        pass
    lock.write_text(json.dumps({**other, "renewed": time.time() - 3600}))
    with lease_lock(root, ".ingest.lock", settle=0.01):
        pass


def test_a_manifest_read_torn_by_its_replacement_is_read_again(tmp_path, inputs, monkeypatch):
    """An object store can serve an object being replaced torn (S3 reads its size, then its
    bytes): a reader of the manifest reads it again rather than calling the store corrupt."""
    root = FsPath(str(tmp_path / "store"), fs=pafs.LocalFileSystem())
    ingest([inputs], root, commit="manifest", **OPTIONS)
    real = FsPath.read_text
    served = {"n": 0}

    def torn_once(self: FsPath, *args: object, **kwargs: object) -> str:
        text = real(self, *args, **kwargs)  # type: ignore[arg-type]
        served["n"] += 1
        return text[: len(text) // 2] if served["n"] == 1 else text

    monkeypatch.setattr(FsPath, "read_text", torn_once)
    assert StoreLayout(root).read_manifest()["commit"] == "manifest"
    assert served["n"] == 2
    monkeypatch.setattr(FsPath, "read_text", lambda self, *a, **k: "{")
    with pytest.raises(SkipmodelError, match="manifest.json is corrupt"):
        StoreLayout(root).read_manifest()
