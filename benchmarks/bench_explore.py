"""Benchmark: ``skipmodel explore`` on a simulated store against one bare scan of its columns.

Data: ``skipmodel.simulate`` (14 days, one file per day) ingested with ``skipmodel ingest``
(20 buckets; ingest ends by compacting each bucket into one sorted file), cached under
``$SKIPMODEL_BENCH_CACHE`` (default ``/tmp/skipmodel-bench/explore``); a cached store from
before compaction existed is compacted first. Targets (issue 3): explore on the full store of a
>= 5-million-row log takes <= 2x the time of one pyarrow dataset scan of the columns it reads
(the session-log columns of the log pass, from the same files, + the tracks table's id and
numeric features), and peak RSS stays flat between two sizes (ratio <= 1.5 for 4x the rows).
Each measurement runs in a fresh child process, timed inside the child (imports excluded)
with its own peak RSS and CPU time; the scan and explore children alternate, ``REPEATS`` times
each, and the medians are compared (the machine is shared and noisy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Sessions per size: about 16.5 plays each (full: ~1.2 M and ~5.1 M rows).
FULL_SIZES = (75_000, 310_000)
QUICK_SIZES = (2_000, 8_000)
BUCKETS = 20
DAYS = 14
CACHE = Path(os.environ.get("SKIPMODEL_BENCH_CACHE", "/tmp/skipmodel-bench")) / "explore"
TIME_TARGET = 2.0
RSS_TARGET = 1.5
#: Each side is measured this many times (alternating); medians are reported.
REPEATS = 3

_EXPLORE = """
import json, os, resource, sys, time
from skipmodel.explore import ExploreOptions, compute, parallel, write_outputs
from skipmodel.explore.passes import store_sources
from skipmodel.store import open_store
store, out, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = ExploreOptions(jobs=jobs)
use = lambda who: resource.getrusage(who)
cpu = lambda: sum(use(resource.RUSAGE_SELF)[:2])
start, cpu0 = time.perf_counter(), cpu()
results = compute(store_sources(store, options), options)
computed, cpu1 = time.perf_counter(), cpu()
if len(sys.argv) < 5:
    write_outputs(results, out, open_store(store).read_manifest())
done = time.perf_counter()
# the workers (children of the fork server): CPU time and peak RSS from /proc (Linux)
tick, worker_cpu, worker_kb = os.sysconf("SC_CLK_TCK"), 0.0, 0
for executor in parallel._POOLS.values():
    for pid in list(executor._processes or {}):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        worker_cpu += (int(fields[11]) + int(fields[12])) / tick
        status = open(f"/proc/{pid}/status").read().split("VmHWM:")[1]
        worker_kb += int(status.split()[0])
print(json.dumps({"compute": computed - start, "total": done - start, "rows": results.log.overview.rows,
                  "cpu": cpu1 - cpu0 + worker_cpu, "workers": options.workers,
                  "rss_kb": use(resource.RUSAGE_SELF).ru_maxrss + worker_kb}))
"""

_SCAN = """
import json, resource, sys, time
import pyarrow.dataset as ds
from skipmodel.explore.passes import LOG_COLUMNS_NEEDED
from skipmodel.schema import TRACK_NUMERIC_FEATURES
store = sys.argv[1]
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
start, cpu0 = time.perf_counter(), cpu()
rows = 0
log = ds.dataset(store + "/sessions", format="parquet", partitioning="hive")
for batch in log.to_batches(columns=list(LOG_COLUMNS_NEEDED)):
    rows += batch.num_rows
tracks = ds.dataset(store + "/tracks", format="parquet")
for batch in tracks.to_batches(columns=["track_id", *TRACK_NUMERIC_FEATURES]):
    pass
print(json.dumps({"total": time.perf_counter() - start, "rows": rows, "cpu": cpu() - cpu0,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


_LOADER = """
import json, resource, sys, time
from skipmodel.explore.passes import LOG_COLUMNS_NEEDED
from skipmodel.loaders import SampleSpec, iter_batches
store = sys.argv[1]
spec = SampleSpec(columns=list(LOG_COLUMNS_NEEDED), features=["danceability"], lags=1, lag_features=["danceability"])
start = time.perf_counter()
rows = sum(batch.num_rows for batch in iter_batches(store, spec))
print(json.dumps({"total": time.perf_counter() - start, "rows": rows,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _child(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    return float(sorted(values)[len(values) // 2])


def build_store(data_dir: Path, n_sessions: int) -> Path:
    """Simulate and ingest (cached): ``data_dir/store-<n>``, compacted."""
    store = data_dir / f"store-{n_sessions}"
    if (store / "manifest.json").is_file():
        from skipmodel.ingest_compact import compact

        compact(store)  # a no-op on a compacted store
        return store
    from skipmodel.simulate import simulate

    raw = data_dir / f"sim-{n_sessions}"
    result = simulate(raw, sessions=n_sessions, seed=1, days=DAYS, files_per_day=1)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "skipmodel",
            "ingest",
            str(result.training_set),
            str(result.track_features),
            "--store",
            str(store),
            "--buckets",
            str(BUCKETS),
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    return store


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    out_dir = Path(out_dir)
    data_dir = CACHE
    data_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    rss: list[tuple[int, float]] = []
    sizes = QUICK_SIZES if quick else FULL_SIZES
    for i, n_sessions in enumerate(sizes):
        store = build_store(data_dir, n_sessions)
        last = i == len(sizes) - 1
        out = str(CACHE / f"explore-{n_sessions}")
        scans, computes, singles, totals = [], [], [], []
        for _ in range(REPEATS if last else 1):
            scans.append(_child(_SCAN, str(store)))
            computes.append(_child(_EXPLORE, str(store), out, "1", "--no-figures"))
            totals.append(_child(_EXPLORE, str(store), out, "1"))  # with figures
            if last:  # context: --jobs 0 (a worker per CPU)
                singles.append(_child(_EXPLORE, str(store), out, "0", "--no-figures"))
        explore = sorted(totals, key=lambda t: t["total"])[len(totals) // 2]
        loader = _child(_LOADER, str(store)) if last else None
        rss.append((explore["rows"], explore["rss_kb"] / 1024))
        if loader is not None:
            scan_s = _median([s["total"] for s in scans])
            compute_s = _median([c["compute"] for c in computes])
            scan_cpu = _median([s["cpu"] for s in scans])
            compute_cpu = _median([c["cpu"] for c in computes])
            ratio = explore["total"] / scan_s
            big_enough = explore["rows"] >= 5_000_000
            rows.append(
                {
                    "name": "explore_compute_vs_bare_scan",
                    "value": round(compute_s, 2),
                    "unit": "s",
                    "peer": round(scan_s, 2),
                    "ratio": round(compute_s / scan_s, 2),
                    "target": f"<= {TIME_TARGET}x (the passes alone, figures excluded)",
                    "passed": bool(compute_s / scan_s <= TIME_TARGET and (big_enough or quick)),
                    "notes": (
                        f"{explore['rows']:,} rows, {explore['workers']} worker process(es); "
                        f"medians of {len(scans)} alternating runs "
                        f"(explore {', '.join(f'{c["compute"]:.2f}' for c in computes)} s; "
                        f"scan {', '.join(f'{s["total"]:.2f}' for s in scans)} s); CPU time "
                        f"(workers included) {compute_cpu:.2f} s vs {scan_cpu:.2f} s = "
                        f"{compute_cpu / scan_cpu:.2f}x"
                    ),
                }
            )
            single_s = _median([c["compute"] for c in singles])
            rows.append(
                {
                    "name": "explore_compute_jobs0_vs_bare_scan",
                    "value": round(single_s, 2),
                    "unit": "s",
                    "peer": round(scan_s, 2),
                    "ratio": round(single_s / scan_s, 2),
                    "target": None,
                    "passed": None,
                    "notes": "context: the same passes with --jobs 0 (one process per CPU); "
                    f"runs {', '.join(f'{c["compute"]:.2f}' for c in singles)} s",
                }
            )
            rows.append(
                {
                    "name": "loader_pass_vs_bare_scan",
                    "value": round(loader["total"], 2),
                    "unit": "s",
                    "peer": round(scan_s, 2),
                    "ratio": round(loader["total"] / scan_s, 2),
                    "target": None,
                    "passed": None,
                    "notes": "context: iter_batches with the explore spec (sort, lags, feature join), no aggregation",
                }
            )
            rows.append(
                {
                    "name": "explore_vs_bare_scan",
                    "value": round(explore["total"], 2),
                    "unit": "s",
                    "peer": round(scan_s, 2),
                    "ratio": round(ratio, 2),
                    "target": f"<= {TIME_TARGET}x a pyarrow dataset scan of the same columns",
                    "passed": bool(ratio <= TIME_TARGET and (big_enough or quick)),
                    "notes": (
                        f"{explore['rows']:,} rows, {BUCKETS} buckets; all 7 views incl. figures; "
                        f"median of {len(totals)} runs "
                        f"({', '.join(f'{t["total"]:.2f}' for t in totals)} s); "
                        f"compute in this run {explore['compute']:.1f} s "
                        f"({explore['compute'] / scan_s:.2f}x)"
                        + ("" if big_enough else "; below the 5 M rows of the target (quick)")
                    ),
                }
            )
    (small_rows, small_mb), (big_rows, big_mb) = rss[0], rss[-1]
    rows.append(
        {
            "name": "explore_peak_rss_growth",
            "value": round(big_mb, 1),
            "unit": "MB",
            "peer": round(small_mb, 1),
            "ratio": round(big_mb / small_mb, 2),
            "target": f"<= {RSS_TARGET}x for {big_rows / small_rows:.1f}x the rows",
            "passed": bool(big_mb / small_mb <= RSS_TARGET),
            "notes": f"peak RSS of explore (this process + each worker's peak) at "
            f"{big_rows:,} rows vs {small_rows:,} rows",
        }
    )
    return rows
