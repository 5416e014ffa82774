"""Benchmark: full passes of ``skipmodel.load.iter_batches`` against a bare pyarrow scan.

Store: the explore benchmark's simulated store (``benchmarks.bench_explore.build_store``: 14 days,
one file per day, 20 buckets, ~5.2 M rows; ~1.3 M in quick mode), cached under
``$SKIPMODEL_BENCH_CACHE/explore``. Each spec is timed against a ``pyarrow.dataset`` scan of exactly
the columns the loader reads (its log columns plus ``track_id`` and the joined features of the
tracks table). Every measurement runs in a fresh child process, timed inside the child (imports
excluded); loader and scan alternate and the best of ``REPEATS`` is kept for each, so the ratio
compares two numbers measured in the same run under the same machine load.

Target (issues 3 and 7): a full pass with features and lags within 1.5x of the bare scan.

Run: ``.venv/bin/python -m benchmarks.run --out reports/bench --only loaders [--quick]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.bench_explore import CACHE, FULL_SIZES, QUICK_SIZES, build_store

TARGET = 1.5
REPEATS = 3

#: name -> SampleSpec keyword arguments (JSON), from light to heavy
SPECS: dict[str, dict] = {
    "plain": {"features": False, "lags": 0},
    "explore": {
        "columns": [
            "session_id",
            "session_position",
            "session_length",
            "track_id_clean",
            "skip_1",
            "skip_2",
            "skip_3",
            "not_skipped",
            "hour_of_day",
            "date",
        ],
        "features": ["danceability"],
        "lags": 1,
        "lag_features": ["danceability"],
    },
    "all_features_lag1": {},
}

_CHILD = """
import json, sys, time
import pyarrow.dataset as ds
from skipmodel.load.loaders import SampleSpec, iter_batches
from skipmodel.load.spec import read_plan
store, which, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spec = SampleSpec(**options)
start = time.perf_counter()
rows = 0
if which == "loader":
    for batch in iter_batches(store, spec):
        rows += batch.num_rows
else:
    plan = read_plan(spec)
    log = ds.dataset(store + "/sessions", format="parquet", partitioning="hive")
    for batch in log.to_batches(columns=list(plan.log_read)):
        rows += batch.num_rows
    if plan.track_read:
        tracks = ds.dataset(store + "/tracks", format="parquet")
        for batch in tracks.to_batches(columns=["track_id", *plan.track_read]):
            pass
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows}))
"""


def _child(store: Path, which: str, options: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store), which, json.dumps(options)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(store: Path, options: dict, repeats: int = REPEATS) -> tuple[float, float, int]:
    """Best loader time, best bare-scan time (alternating runs) and the row count."""
    loader, scan, rows = [], [], 0
    for _ in range(repeats):
        scan.append(_child(store, "scan", options)["seconds"])
        run = _child(store, "loader", options)
        loader.append(run["seconds"])
        rows = run["rows"]
    return min(loader), min(scan), rows


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    CACHE.mkdir(parents=True, exist_ok=True)
    n_sessions = (QUICK_SIZES if quick else FULL_SIZES)[-1]
    store = build_store(CACHE, n_sessions)
    rows_out = []
    for name, options in SPECS.items():
        loader_s, scan_s, rows = measure(store, options, 2 if quick else REPEATS)
        ratio = loader_s / scan_s
        gated = name != "plain"
        rows_out.append(
            {
                "name": f"full_pass_{name}_vs_bare_scan",
                "value": round(loader_s, 2),
                "unit": "s",
                "peer": round(scan_s, 2),
                "ratio": round(ratio, 2),
                "target": f"<= {TARGET}x" if gated else None,
                "passed": bool(ratio <= TARGET) if gated else None,
                "notes": f"{rows:,} rows, 20 buckets; spec {json.dumps(options) if options else 'SampleSpec() defaults'}; "
                f"best of {2 if quick else REPEATS} alternating fresh-process runs each",
            }
        )
    return rows_out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    cli = parser.parse_args()
    for row in run(cli.out, quick=cli.quick):
        print(json.dumps(row))
