"""Benchmark: ``skipmodel ingest`` by the local engine, Spark ``local[2]`` and a two-worker
standalone Spark cluster, and a projection for the whole release on N executors.

Input: ``skipmodel simulate --sessions 600000`` (the issue's 10 M plays, in daily log files and
4 track files; ``--quick``: 20 000 sessions), cached under ``/tmp/skipmodel-bench/spark`` with its
tar.gz files extracted (Spark reads files, not archives); every contender ingests the same
extracted folder into a new store of 100 buckets, in a fresh child process, timed inside it:

- local: ``ingest(folder, store)`` in one process (the default engine);
- Spark ``local[2]``: the session started first (timed apart: JVM start), then the ingest with
  ``engine=EngineOptions("spark", "local[2]")``: one task per file, one per bucket;
- Spark standalone: a master and two workers (one core, 1 GiB each) on 127.0.0.1, started from
  the pyspark installation (``tests/spark_cluster.py``), each executor its own JVM and Python;
- the work decomposed, serially in one process: per input file the parse-and-stage task
  (``stage_file``: rows/s on one core) and the driver's commit (``commit_source``), per bucket
  the compaction task (``compact_bucket``) and the track check (``absent_in_bucket``: every
  play's ``track_id_clean`` looked up in the track table), and the driver's closing steps;
- explore's passes over the local engine's store by each engine (``bench_spark_passes``'s child:
  the whole of ``compute``, warm, the figures left out), on the same cluster.

On one 2-core machine Spark is slower (its JVM start, task scheduling and Python worker
start-ups on the same 2 cores); the table says by how much. The projection for the full release
(2.07 B plays, 660 files, stored in 1,000 buckets so that one bucket, ~2 M plays, fits an
executor's memory) on N single-core executors is::

    stage     = ceil(660 / N) * (3.14 M rows / stage rate)      tasks in waves; the driver's
    commit    = 660 * commit cost                               commits overlap the staging
    compact   = ceil(1000 / N) * (2.07 M rows / compact rate)
    check     = ceil(1000 / N) * (2.07 M rows / check rate)      in the compaction's task
    total     = max(stage, commit) + compact + check + driver's closing steps
                + per-task Spark overhead * (660 + 1000) / N

with the rates measured here (per core) and the per-task overhead the Spark runs show beyond
the decomposed work. It assumes the store on a filesystem as fast for every executor as the
local disk is here, and executors that each get a core.

Run: ``.venv/bin/python -m benchmarks.run --only spark [--quick]``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CACHE = Path("/tmp/skipmodel-bench/spark")
REPO = Path(__file__).resolve().parents[1]
BUCKETS = 100
#: The full release (MSSD_SCHEMA.md) and the bucket count it would be stored in on Spark.
RELEASE_ROWS = 2_072_000_000
RELEASE_FILES = 660
RELEASE_BUCKETS = 1_000
EXECUTORS = (2, 8, 32, 128, 660)

_CHILD = r"""
import json, sys, time
kind, folder, store, master = sys.argv[1:5]
from skipmodel.engine import EngineOptions
from skipmodel.ingest import ingest
out = {}
if kind == "local":
    started = time.perf_counter()
    report = ingest([folder], store, n_buckets=__BUCKETS__, progress=False)
    out["seconds"] = time.perf_counter() - started
elif kind == "spark":
    from skipmodel.engine.spark import spark_session
    started = time.perf_counter()
    spark_session(master).sparkContext.parallelize([0], 1).count()
    out["start_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    report = ingest([folder], store, n_buckets=__BUCKETS__, progress=False,
                    engine=EngineOptions("spark", master))
    out["seconds"] = time.perf_counter() - started
out["rows"] = report.log_rows_written
out["track_rows"] = report.track_rows_written
out["sources"] = len(report.sources)
print(json.dumps(out))
""".replace("__BUCKETS__", str(BUCKETS))

_DECOMPOSED = r"""
import json, sys, time
from pathlib import Path
folder, store = Path(sys.argv[1]), Path(sys.argv[2])
from skipmodel.ingest.challenge import known_tracks
from skipmodel.ingest.compact import compaction_summary
from skipmodel.ingest.engine_tasks import BucketTask, absent_in_bucket, compact_bucket
from skipmodel.ingest.pipeline import _LazyStore
from skipmodel.ingest.rules import DEFAULT_LIMITS
from skipmodel.ingest.sources import iter_inputs, CsvSource
from skipmodel.ingest.staging import FileTask, commit_source, stage_file
from skipmodel.ingest.write import FLUSH_ROWS
from skipmodel.store.format import tracks_signature
from skipmodel.store.layout import StoreLayout, BUCKET_KEY
layout = StoreLayout(store)
out = {"stage": [], "commit": [], "compact": []}
with _LazyStore(layout, __BUCKETS__) as target:
    n = target.open()
    root = str(store.absolute())
    for item in iter_inputs([folder]):
        if not isinstance(item, CsvSource):
            continue
        task = FileTask(root, str(Path(item.name).absolute()), item.name, n,
                        target.user_columns, FLUSH_ROWS, DEFAULT_LIMITS)
        t = time.perf_counter()
        staged = stage_file(task)
        out["stage"].append([staged.kind, staged.entry["rows_read"], time.perf_counter() - t])
        t = time.perf_counter()
        commit_source(layout, staged)
        out["commit"].append(time.perf_counter() - t)
    signature = tracks_signature(layout)
    for bucket in sorted(layout.sessions.glob(f"{BUCKET_KEY}=*")):
        t = time.perf_counter()
        done = compact_bucket(BucketTask(root, bucket.name, signature, target.user_columns))
        out["compact"].append(time.perf_counter() - t)
    out["check"] = []
    for bucket in sorted(layout.sessions.glob(f"{BUCKET_KEY}=*")):
        t = time.perf_counter()
        absent_in_bucket(BucketTask(root, bucket.name, signature, target.user_columns))
        out["check"].append(time.perf_counter() - t)
    t = time.perf_counter()
    compaction_summary(layout)
    known_tracks(layout)
    out["finalise"] = time.perf_counter() - t
print(json.dumps(out))
""".replace("__BUCKETS__", str(BUCKETS))


def _inputs(sessions: int) -> Path:
    """The simulated release, extracted (cached)."""
    sim = CACHE / f"sim-{sessions}"
    folder = sim / "extracted"
    if folder.is_dir():
        return folder
    if not (sim / "training_set.tar.gz").exists():
        print(f"  simulating {sessions:,} sessions into {sim} (cached) ...", flush=True)
        from skipmodel.simulate import simulate

        simulate(sim, sessions=sessions, seed=1)
    tmp = Path(tempfile.mkdtemp(dir=sim))
    for archive in ("training_set.tar.gz", "track_features.tar.gz"):
        with tarfile.open(sim / archive) as tar:
            tar.extractall(tmp, filter="data")
    tmp.rename(folder)
    return folder


def _run(script: str, *args: str) -> dict:
    env = {**os.environ, "CI": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ingest(kind: str, folder: Path, store: Path, master: str = "") -> dict:
    import shutil

    shutil.rmtree(store, ignore_errors=True)
    return _run(_CHILD, kind, str(folder), str(store), master)


def _cluster():  # noqa: ANN202 - tests/spark_cluster.Cluster
    sys.path.insert(0, str(REPO / "tests"))
    from spark_cluster import start_cluster

    return start_cluster(Path(tempfile.mkdtemp(prefix="skipmodel-bench-cluster-")))


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    from benchmarks.bench_spark_passes import _child as explore_child

    sessions = 20_000 if quick else 600_000
    folder = _inputs(sessions)
    store = CACHE / "store"
    kept = CACHE / "store-local"
    load_before = os.getloadavg()[0]
    local = _ingest("local", folder, kept)
    spark_local = _ingest("spark", folder, store, "local[2]")
    explore = {"local": explore_child(kept, "local"), "local[2]": explore_child(kept, "local[2]")}
    cluster = _cluster()
    try:
        standalone = _ingest("spark", folder, store, cluster.master)
        explore["standalone"] = explore_child(kept, cluster.master)
    finally:
        cluster.stop()
    import shutil

    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(kept, ignore_errors=True)
    parts = _run(_DECOMPOSED, str(folder), str(store))
    load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    rows = local["rows"]
    assert spark_local["rows"] == standalone["rows"] == rows

    log_stage = [(r, s) for kind, r, s in parts["stage"] if kind == "log"]
    stage_rows = sum(r for r, _ in log_stage)
    stage_seconds = sum(s for _, s in log_stage)
    stage_rate = stage_rows / stage_seconds
    commit_cost = sum(parts["commit"]) / len(parts["commit"])
    compact_rate = rows / sum(parts["compact"])
    check_rate = rows / sum(parts["check"])
    work = sum(s for _, _, s in parts["stage"]) + sum(parts["commit"]) + sum(parts["compact"])
    work += sum(parts["check"])
    tasks = len(parts["stage"]) + len(parts["compact"])  # a bucket's task compacts and checks
    # what the standalone run spent beyond the decomposed work spread over its 2 cores
    overhead = max(0.0, (standalone["seconds"] - parts["finalise"]) * 2 - work) / tasks

    def projection(n: int) -> float:
        stage = math.ceil(RELEASE_FILES / n) * (RELEASE_ROWS / RELEASE_FILES) / stage_rate
        commit = RELEASE_FILES * commit_cost
        per_bucket = RELEASE_ROWS / RELEASE_BUCKETS / compact_rate
        compact = math.ceil(RELEASE_BUCKETS / n) * per_bucket
        check = math.ceil(RELEASE_BUCKETS / n) * RELEASE_ROWS / RELEASE_BUCKETS / check_rate
        spark = overhead * (RELEASE_FILES + RELEASE_BUCKETS) / n
        return max(stage, commit) + compact + check + parts["finalise"] + spark

    size = f"{sessions:,} simulated sessions: {rows:,} plays in {local['sources']} files"
    out = [
        {
            "name": "ingest, local engine (one process)",
            "value": round(local["seconds"], 1),
            "unit": "s",
            "peer": None,
            "ratio": None,
            "target": None,
            "passed": None,
            "notes": f"{size}, extracted folder, {BUCKETS} buckets; {load}",
        }
    ]
    for name, res, start in (
        ("ingest, Spark local[2]", spark_local, spark_local["start_seconds"]),
        ("ingest, Spark standalone (2 workers x 1 core)", standalone, standalone["start_seconds"]),
    ):
        out.append(
            {
                "name": name,
                "value": round(res["seconds"], 1),
                "unit": "s",
                "peer": round(local["seconds"], 1),
                "ratio": res["seconds"] / local["seconds"],
                "target": None,
                "passed": None,
                "notes": f"same store; plus {start:.1f} s to start the session (JVM, executors), "
                "not counted; ratio to the local engine",
            }
        )
    for name, res in (
        ("explore, local engine", explore["local"]),
        ("explore, Spark local[2]", explore["local[2]"]),
        ("explore, Spark standalone (2 workers x 1 core)", explore["standalone"]),
    ):
        spark = "start" in res
        out.append(
            {
                "name": name,
                "value": round(res["passes"], 1),
                "unit": "s",
                "peer": round(explore["local"]["passes"], 1) if spark else None,
                "ratio": res["passes"] / explore["local"]["passes"] if spark else None,
                "target": None,
                "passed": None,
                "notes": f"{res['rows']:,} plays, every view's passes (figures not drawn)"
                + (
                    f"; warm (cold run {res['cold']:.1f} s, session start {res['start']:.1f} s "
                    "not counted)"
                    if spark
                    else ""
                ),
            }
        )
    out += [
        {
            "name": "per-task parse + stage, one core",
            "value": round(stage_rate),
            "unit": "rows/s",
            "notes": f"{len(log_stage)} log files, {stage_rows:,} rows, {stage_seconds:.1f} s",
        },
        {
            "name": "per-bucket compaction, one core",
            "value": round(compact_rate),
            "unit": "rows/s",
            "notes": f"{len(parts['compact'])} buckets",
        },
        {
            "name": "driver: commit of one staged file",
            "value": round(commit_cost, 3),
            "unit": "s",
            "notes": "journal, renames, manifest rewrite (serial, overlaps the staging)",
        },
        {
            "name": "per-bucket track check, one core",
            "value": round(check_rate),
            "unit": "rows/s",
            "notes": "every play's track id looked up in the track table (a task per bucket)",
        },
        {
            "name": "driver: closing steps",
            "value": round(parts["finalise"], 2),
            "unit": "s",
            "notes": "the compaction summary and the track table's ids (for the challenge)",
        },
        {
            "name": "Spark overhead per task (standalone)",
            "value": round(overhead, 2),
            "unit": "s",
            "notes": "(run time - closing scan) x 2 cores - decomposed work, per task",
        },
    ]
    for n in EXECUTORS:
        hours = projection(n) / 3600
        out.append(
            {
                "name": f"projection: full release (2.07 B plays) on {n} executors",
                "value": round(hours, 2),
                "unit": "h",
                "notes": f"{RELEASE_FILES} files, {RELEASE_BUCKETS} buckets, one core per "
                "executor; see the module doc for the formula",
            }
        )
    return out
