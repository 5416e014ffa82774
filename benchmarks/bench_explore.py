"""Benchmark: ``skipmodel explore`` on a simulated store against one bare scan of its columns.

Data: ``skipmodel.simulate.mssd`` (14 days, one file per day) ingested with ``skipmodel ingest``
(ingest ends by compacting each bucket into one sorted file), cached under
``$SKIPMODEL_BENCH_CACHE`` (default ``/tmp/skipmodel-bench/explore``); a cached store from
before compaction existed is compacted first.

Sizes (full run): ~1.26 M plays in 5 buckets, ~5.2 M in 20 and ~100 M in 400: about 250 k plays
per bucket throughout, as a store is ingested for its size (explore holds three buckets at a
time, so its memory follows the bucket size, not the rows). The ~100 M-play store takes about
20 minutes to simulate and ingest the first time (~9 GB of memory), then is cached.

Targets (issue 3):

- explore (what ``skipmodel explore`` runs: ``--jobs 0``, every view, figures and tables
  written) on the ~100 M-play store takes <= 2x the time of one pyarrow dataset scan of the
  columns it reads (the session-log columns of the log pass, from the same files, + the tracks
  table's id and numeric features). Drawing the seven figures costs a few seconds whatever the
  data size, so the target is judged where the scan itself takes seconds; the ratio at 5.2 M
  plays is reported beside it.
- peak RSS stays flat as the data grows (largest / smallest store <= 1.5x; 80x the rows).

Each measurement runs in a fresh child process, timed inside the child (imports excluded)
with its own peak RSS and CPU time (workers included); after one uncounted scan that brings the
store into the page cache, the scan and explore children alternate, ``REPEATS`` times each, and
the medians are compared (the machine is shared and noisy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: (sessions, buckets) per size; about 16.5 plays per session. The last size is timed.
FULL_SIZES = ((75_000, 5), (310_000, 20), (6_000_000, 400))
QUICK_SIZES = ((2_000, 20), (8_000, 20))
DAYS = 14
CACHE = Path(os.environ.get("SKIPMODEL_BENCH_CACHE", "/tmp/skipmodel-bench")) / "explore"
TIME_TARGET = 2.0
RSS_TARGET = 1.5
#: The size the time target is judged at (rows), on the last store.
TARGET_ROWS = 5_000_000
#: Each side is measured this many times (alternating); medians are reported.
REPEATS = 3

_EXPLORE = """
import json, os, resource, sys, time
from skipmodel.explore import ExploreOptions, compute, explore, parallel
from skipmodel.explore.passes import store_sources
store, out, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
figures = len(sys.argv) < 5
options = ExploreOptions(jobs=jobs)
use = lambda who: resource.getrusage(who)
cpu = lambda: sum(use(resource.RUSAGE_SELF)[:2])
start, cpu0 = time.perf_counter(), cpu()
if figures:  # what skipmodel explore runs: passes, figures, tables, gallery
    rows = explore(store, out, options).summary.rows
else:  # the passes alone
    rows = compute(store_sources(store, options), options).log.overview.rows
done, cpu2 = time.perf_counter(), cpu()
# the workers (children of the fork server): CPU time and peak RSS from /proc (Linux)
tick, worker_cpu, worker_kb = os.sysconf("SC_CLK_TCK"), 0.0, 0
for executor in parallel._POOLS.values():
    for pid in list(executor._processes or {}):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        worker_cpu += (int(fields[11]) + int(fields[12])) / tick
        status = open(f"/proc/{pid}/status").read().split("VmHWM:")[1]
        worker_kb += int(status.split()[0])
print(json.dumps({"total": done - start, "rows": rows,
                  "cpu": cpu2 - cpu0 + worker_cpu, "workers": options.workers,
                  "rss_kb": use(resource.RUSAGE_SELF).ru_maxrss + worker_kb}))
"""

_SCAN = """
import json, resource, sys, time
import pyarrow.dataset as ds
from skipmodel.explore.passes import LOG_COLUMNS_NEEDED
from skipmodel.store.schema import TRACK_NUMERIC_FEATURES
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
from skipmodel.load.loaders import SampleSpec, iter_batches
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


def store_path(data_dir: Path, n_sessions: int, buckets: int) -> Path:
    return data_dir / (f"store-{n_sessions}" if buckets == 20 else f"store-{n_sessions}x{buckets}")


def build_store(data_dir: Path, n_sessions: int, buckets: int) -> Path:
    """Simulate and ingest (cached): ``data_dir/store-<n>[x<buckets>]``, compacted."""
    store = store_path(data_dir, n_sessions, buckets)
    if (store / "manifest.json").is_file():
        from skipmodel.ingest.compact import compact

        compact(store)  # a no-op on a compacted store
        return store
    from skipmodel.simulate.mssd import simulate

    raw = data_dir / f"sim-{n_sessions}"
    log, tracks = raw / "training_set.tar.gz", raw / "track_features.tar.gz"
    if not (raw / "truth.json").is_file():  # written last: else simulated before (seed 1)
        result = simulate(raw, sessions=n_sessions, seed=1, days=DAYS, files_per_day=1)
        log, tracks = result.training_set, result.track_features
    subprocess.run(
        [
            sys.executable,
            "-m",
            "skipmodel",
            "ingest",
            str(log),
            str(tracks),
            "--store",
            str(store),
            "--buckets",
            str(buckets),
            "--quiet",
        ],
        check=True,
        capture_output=True,
    )
    return store


def _runs(values: list[dict], key: str) -> str:
    return ", ".join(f"{v[key]:.2f}" for v in values)


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    data_dir = CACHE
    data_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    rss: list[tuple[int, float, int]] = []
    sizes = QUICK_SIZES if quick else FULL_SIZES
    for i, (n_sessions, buckets) in enumerate(sizes):
        store = str(build_store(data_dir, n_sessions, buckets))
        out = str(CACHE / f"explore-{n_sessions}")
        _child(_SCAN, store)  # not counted: both sides read from the page cache, not the disk
        if i < len(sizes) - 1:  # context: peak RSS, and the ratio at this size
            scan, explore = _child(_SCAN, store), _child(_EXPLORE, store, out, "0")
            passes = _child(_EXPLORE, store, out, "0", "--no-figures")
            rss.append((explore["rows"], explore["rss_kb"] / 1024, buckets))
            if i == len(sizes) - 2:
                rows.append(
                    {
                        "name": "explore_vs_bare_scan_smaller_store",
                        "value": round(explore["total"], 2),
                        "unit": "s",
                        "peer": round(scan["total"], 2),
                        "ratio": round(explore["total"] / scan["total"], 2),
                        "target": None,
                        "passed": None,
                        "notes": f"context, one run each: {explore['rows']:,} rows in {buckets} "
                        f"buckets; the passes alone {passes['total']:.2f} s "
                        f"({passes['total'] / scan['total']:.2f}x); the rest is drawing and "
                        "writing the seven views, a cost that does not grow with the rows",
                    }
                )
            continue
        scans, totals, singles, computes = [], [], [], []
        for _ in range(REPEATS):
            scans.append(_child(_SCAN, store))
            totals.append(_child(_EXPLORE, store, out, "0"))  # what skipmodel explore runs
            singles.append(_child(_EXPLORE, store, out, "1"))  # context: one process
            computes.append(_child(_EXPLORE, store, out, "0", "--no-figures"))
        loader = _child(_LOADER, store)
        explore = sorted(totals, key=lambda t: t["total"])[len(totals) // 2]
        rss.append((explore["rows"], explore["rss_kb"] / 1024, buckets))
        scan_s = _median([s["total"] for s in scans])
        total_s = _median([t["total"] for t in totals])
        compute_s = _median([c["total"] for c in computes])
        single_s = _median([t["total"] for t in singles])
        scan_cpu = _median([s["cpu"] for s in scans])
        big_enough = explore["rows"] >= TARGET_ROWS
        rows.append(
            {
                "name": "explore_vs_bare_scan",
                "value": round(total_s, 2),
                "unit": "s",
                "peer": round(scan_s, 2),
                "ratio": round(total_s / scan_s, 2),
                "target": f"<= {TIME_TARGET}x a pyarrow dataset scan of the same columns",
                "passed": bool(total_s / scan_s <= TIME_TARGET and (big_enough or quick)),
                "notes": (
                    f"{explore['rows']:,} rows, {buckets} buckets; skipmodel explore as run "
                    f"(--jobs 0: {explore['workers']} processes), all 7 views with figures and "
                    f"tables; medians of {REPEATS} alternating runs (explore {_runs(totals, 'total')} s; "
                    f"scan {_runs(scans, 'total')} s); CPU time (workers included) "
                    f"{_median([t['cpu'] for t in totals]):.2f} s vs {scan_cpu:.2f} s"
                    + ("" if big_enough else "; below the 5 M rows of the target (quick)")
                ),
            }
        )
        rows.append(
            {
                "name": "explore_passes_vs_bare_scan",
                "value": round(compute_s, 2),
                "unit": "s",
                "peer": round(scan_s, 2),
                "ratio": round(compute_s / scan_s, 2),
                "target": None,
                "passed": None,
                "notes": "context: the passes alone (--jobs 0, no figures); runs "
                f"{_runs(computes, 'total')} s; CPU time "
                f"{_median([c['cpu'] for c in computes]):.2f} s vs {scan_cpu:.2f} s",
            }
        )
        rows.append(
            {
                "name": "explore_jobs1_vs_bare_scan",
                "value": round(single_s, 2),
                "unit": "s",
                "peer": round(scan_s, 2),
                "ratio": round(single_s / scan_s, 2),
                "target": None,
                "passed": None,
                "notes": "context: everything in one process (--jobs 1, the Python API's "
                f"default), figures included; runs {_runs(singles, 'total')} s",
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
                "notes": "context: iter_batches with the explore spec (sort, lags, feature join), "
                "no aggregation",
            }
        )
    (small_rows, small_mb, _), (big_rows, big_mb, _) = rss[0], rss[-1]
    rows.append(
        {
            "name": "explore_peak_rss_growth",
            "value": round(big_mb, 1),
            "unit": "MB",
            "peer": round(small_mb, 1),
            "ratio": round(big_mb / small_mb, 2),
            "target": f"<= {RSS_TARGET}x for {big_rows / small_rows:.1f}x the rows",
            "passed": bool(big_mb / small_mb <= RSS_TARGET),
            "notes": "peak RSS of skipmodel explore (this process + each worker's peak): "
            + "; ".join(f"{mb:.0f} MB at {n:,} rows in {b} buckets" for n, mb, b in rss),
        }
    )
    return rows
