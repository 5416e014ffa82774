"""Benchmark: explore's passes by the local engine, Spark ``local[2]`` and a two-worker
standalone cluster on 127.0.0.1 (issue 22, part B).

Data: the ~5.2 M-play simulated store of ``bench_explore`` (310,000 sessions, 20 buckets,
compacted; built and cached by it under ``$SKIPMODEL_BENCH_CACHE``). Quick mode: 8,000
sessions.

Each engine runs in a fresh child process, timed inside the child: the passes of ``skipmodel
explore`` (every view's numbers; the figures are drawn by the driver whatever the engine, a
fixed few seconds). For Spark the child first starts the context and its executors' Python
workers with one trivial task per core (reported apart: paid once per session), then:

- ``passes``: the whole of ``compute`` with the engine (track passes + log pass + merge), run
  twice: the first (``cold``) pays each Python worker's import of the passes and their
  compiled kernels, the second is reported;
- ``tasks``: the log pass's tasks again, one per bucket (``log_pass_of_bucket``), wall time;
- ``merge``: the driver merging their results in bucket order.

From these the table gives the throughput per core of a task (rows / (task wall x cores)) and
the driver's merge cost per bucket, the two numbers a projection to the full release on N
executors needs (README, "Spark"). On one 2-core machine Spark is slower: its executors are the
same two cores, each task pays Python-worker and pickling overhead, and the local engine
already keeps both cores busy (one thread decodes ahead while the compiled loop reduces).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_explore import CACHE as EXPLORE_CACHE
from benchmarks.bench_explore import build_store

FULL = (310_000, 20)
QUICK = (8_000, 20)
ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, os, sys, time
from skipmodel.engine import EngineOptions, run_tasks
from skipmodel.explore import ExploreOptions, compute
from skipmodel.explore.passes import store_sources
from skipmodel.explore.tasks import BucketTask, EngineTasks, log_pass_of_bucket
from skipmodel.explore.passes import new_log_pass
store, master = sys.argv[1], sys.argv[2]
options = ExploreOptions(jobs=1)
sources = store_sources(store, options)
out = {}
if master == "local":
    start = time.perf_counter()
    rows = compute(sources, options).log.overview.rows
    out["passes"] = time.perf_counter() - start
else:
    engine = EngineOptions("spark", master)
    start = time.perf_counter()
    run_tasks(engine, abs, list(range(-4, 0)), label="warm-up")
    out["start"] = time.perf_counter() - start
    for key in ("cold", "passes"):  # cold: each Python worker imports the passes first
        start = time.perf_counter()
        rows = compute(sources, options, tasks=EngineTasks(engine, sources)).log.overview.rows
        out[key] = time.perf_counter() - start
    root = os.path.abspath(store)
    items = [BucketTask(root, 1.0, 0, True, options, None, b) for b in sources.bucket_numbers()]
    start = time.perf_counter()
    parts = run_tasks(engine, log_pass_of_bucket, items, label="log pass")
    out["tasks"] = time.perf_counter() - start
    start = time.perf_counter()
    log = new_log_pass(options, None)  # every view's accumulators but the chains grid
    for part in parts:
        log.merge(part)
    out["merge"] = time.perf_counter() - start
    log.transitions.close()
    out["buckets"] = len(items)
out["rows"] = rows
print(json.dumps(out))
"""


def _child(store: Path, master: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store), master],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(name: str, value: float, unit: str, notes: str, **extra: object) -> dict:
    return {"name": name, "value": round(value, 2), "unit": unit, "notes": notes, **extra}


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    from spark_cluster import start_cluster

    sessions, buckets = QUICK if quick else FULL
    EXPLORE_CACHE.mkdir(parents=True, exist_ok=True)
    store = build_store(EXPLORE_CACHE, sessions, buckets)
    _child(store, "local")  # not counted: the store into the page cache
    local = _child(store, "local")
    rows = [
        _row(
            "explore_passes_local",
            local["passes"],
            "s",
            f"{local['rows']:,} plays in {buckets} buckets, one process (+ read-ahead threads)",
        )
    ]
    spark = {"local[2]": _child(store, "local[2]")}
    with tempfile.TemporaryDirectory(prefix="skipmodel-bench-cluster-") as work:
        cluster = start_cluster(Path(work))
        try:
            spark["standalone 2 workers"] = _child(store, cluster.master)
        finally:
            cluster.stop()
    for where, found in spark.items():
        assert found["rows"] == local["rows"], (where, found["rows"], local["rows"])
        cores = 2
        per_core = found["rows"] / (found["tasks"] * cores)
        rows.append(
            _row(
                f"explore_passes_spark_{where.split()[0]}",
                found["passes"],
                "s",
                f"Spark {where}: context and Python workers {found['start']:.1f} s before "
                f"and a first run {found['cold']:.1f} s (each worker imports the passes; "
                f"once per session); warm log-pass tasks {found['tasks']:.2f} s for "
                f"{found['buckets']} buckets = {per_core:,.0f} plays/s per core; driver merge "
                f"{found['merge']:.3f} s ({1000 * found['merge'] / found['buckets']:.1f} ms a "
                "bucket)",
                peer=round(local["passes"], 2),
                ratio=round(found["passes"] / local["passes"], 2),
            )
        )
    return rows
