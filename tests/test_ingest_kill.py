"""An ingest killed at any moment and re-run yields the same store as an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest_helpers import pack_tar, store_files
from skipmodel.ingest import ingest
from skipmodel.store import fspath as fspath_module
from skipmodel.store import journal as store_journal

SCRIPT = (
    "import sys; from skipmodel.ingest import ingest; "
    "ingest(sys.argv[2:], sys.argv[1], n_buckets=5, flush_rows=150, progress=False)"
)


@pytest.fixture
def inputs(tmp_path, mssd_dir) -> list[Path]:
    """A few thousand rows in several files, a tar.gz among them (distinct content each)."""
    src = tmp_path / "inputs"
    src.mkdir()
    text = (mssd_dir / "mssd_trainset_partial_rows_1180.csv").read_text()
    variants = []
    for k in range(3):
        path = src / f"log_{k}_20180716_000000000000.csv"
        path.write_text(text.replace("\n1_", f"\n{k + 2}_"))
        variants.append(path)
    archive = pack_tar(variants[:1], tmp_path / "inputs_set.tar.gz")
    variants[0].unlink()
    for name in ("log_mini_first11sessions.csv", "tf_mini_subset_for_first11sessions.csv"):
        (src / name).write_bytes((mssd_dir / name).read_bytes())
    return [archive, src]


def _run(store: Path, inputs: list[Path]) -> subprocess.Popen:
    env = {**os.environ, "CI": "1"}
    cmd = [sys.executable, "-c", SCRIPT, str(store), *map(str, inputs)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _snapshot(store: Path) -> tuple[dict, dict]:
    manifest = json.loads((store / "manifest.json").read_text())
    summary = {k: manifest[k] for k in ("n_buckets", "totals", "integrity", "skipped")}
    summary["sources"] = {
        fp: {k: v for k, v in e.items() if k != "ingested_at"}
        for fp, e in manifest["sources"].items()
    }
    return store_files(store), summary


def _same(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    files_a, man_a = a
    files_b, man_b = b
    assert files_a.keys() == files_b.keys()
    for key in files_a:
        assert files_a[key].equals(files_b[key]), key
    assert man_a == man_b


def test_kill_at_random_moments_then_rerun(tmp_path, inputs):
    reference = tmp_path / "reference"
    start = time.perf_counter()
    proc = _run(reference, inputs)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    duration = time.perf_counter() - start
    want = _snapshot(reference)
    assert want[1]["totals"]["log_rows_written"] == 3 * 1180 + 201

    rng = random.Random(7)
    killed_mid_run = 0
    for attempt in range(4):
        store = tmp_path / f"store{attempt}"
        for _ in range(1 + attempt % 2):  # sometimes two kills before the clean re-run
            proc = _run(store, inputs)
            time.sleep(rng.uniform(0.2, duration))
            if proc.poll() is None:
                killed_mid_run += 1
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        proc = _run(store, inputs)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        _same(_snapshot(store), want)
        assert not list(store.rglob("*.tmp"))
        assert not (store / ".staging").exists()
    assert killed_mid_run >= 2  # the kills really interrupted running ingests


def test_crash_during_commit_is_rolled_forward(tmp_path, inputs, monkeypatch):
    ingest(inputs, tmp_path / "reference", n_buckets=5, flush_rows=150, progress=False)
    want = _snapshot(tmp_path / "reference")
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 7 and ".staging" in str(src):
            raise KeyboardInterrupt  # the process dies between two renames of one source
        return real_replace(src, dst)

    monkeypatch.setattr(fspath_module.os, "replace", flaky_replace)
    store = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        ingest(inputs, store, n_buckets=5, flush_rows=150, progress=False)
    monkeypatch.setattr(fspath_module.os, "replace", real_replace)
    journals = list((store / ".staging").glob("*/COMMIT.json"))
    assert len(journals) == 1  # a half-committed source, recorded in its journal
    ingest(inputs, store, flush_rows=150, progress=False)
    _same(_snapshot(store), want)


def test_rerun_after_a_kill_before_the_first_manifest(tmp_path, inputs):
    """A first ingest killed while writing its first manifest leaves only the lock and the
    manifest's temp file: the re-run must treat that folder as its own, not as a stranger's."""
    reference = tmp_path / "reference"
    ingest(inputs, reference, n_buckets=5, flush_rows=150, progress=False)
    store = tmp_path / "store"
    store.mkdir()
    (store / store_journal.LOCK_FILE).write_text("")
    (store / ".manifest.json.abc123.tmp").write_text('{"half": ')
    ingest(inputs, store, n_buckets=5, flush_rows=150, progress=False)
    _same(_snapshot(reference), _snapshot(store))
    assert not list(store.glob(".manifest.json.*.tmp"))
