"""Benchmark: ``skipmodel ingest`` of a >= 5-million-row session log (csv.gz) against its peers.

Input: a synthetic MSSD-format log (:mod:`benchmarks.synth_log`, vectorised, real text format),
written once and cached under ``/tmp/skipmodel-bench/ingest``; a second file a quarter the size
shows that peak memory does not grow with the input. Every measurement runs in a fresh child
process (same interpreter, same page cache; contenders interleaved, best of three), timed inside
the child, peak RSS from
``ru_maxrss``:

- ingest: ``skipmodel.ingest.ingest`` into a new store (100 buckets), all validation on,
  ending with the compaction of every bucket into one sorted file (the default);
- reference only: the same ingest without the compaction (``compact=False``), to show its cost;
- bare pyarrow: ``pyarrow.csv.read_csv(path)`` with default options (type inference, threads);
- pandas: ``pandas.read_csv(path)`` with default options;
- reference only (no target, when python-isal is installed): ``pandas.read_csv`` reading through
  the same ISA-L inflate thread that ingest uses, to show how much of the gap is inflate.

Targets (issue 2): ingest rows/s >= 2x pandas; ingest time <= 1.5x the bare pyarrow read; peak RSS
< 1 GB and flat (big/small <= 1.3 at 4x the rows); store bytes <= 0.6x the csv.gz bytes.

Run: ``.venv/bin/python -m benchmarks.run --only ingest [--quick]``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.synth_log import write_synthetic_log

CACHE = Path("/tmp/skipmodel-bench/ingest")

_CHILD = r"""
import json, resource, sys, time
kind, path, store = sys.argv[1:4]
started = time.perf_counter()
if kind in ("ingest", "ingest_uncompacted"):
    from skipmodel.ingest import sources as ingest_sources
    from skipmodel.ingest import ingest
    report = ingest([path], store, progress=False, compact=kind == "ingest")
    rows = report.log_rows_written
    extra = {"rejected": report.log_rows_rejected, "read": report.log_rows_read,
             "inflate": "isal" if ingest_sources._igzip is not None else "zlib"}
elif kind == "pyarrow":
    import pyarrow.csv
    rows = pyarrow.csv.read_csv(path).num_rows
    extra = {}
elif kind == "pandas":
    import pandas
    rows = len(pandas.read_csv(path))
    extra = {}
elif kind == "pandas_isal":  # reference only: pandas fed by the same fast inflate as ingest
    import pandas
    from isal import igzip_threaded
    with igzip_threaded.open(path, "rb", threads=1) as fh:
        rows = len(pandas.read_csv(fh))
    extra = {}
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
rss_mb = usage.ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": rows, "rss_mb": rss_mb, **extra}))
"""


def _child(kind: str, path: Path, store: Path | None = None) -> dict:
    if store is not None and store.exists():
        shutil.rmtree(store)
    cmd = [sys.executable, "-c", _CHILD, kind, str(path), str(store or "")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _best(kind: str, path: Path, store: Path | None, repeats: int) -> dict:
    """Fastest of ``repeats`` runs (the least disturbed by other load); peak RSS is the max."""
    runs = [_child(kind, path, store) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "rss_mb": max(r["rss_mb"] for r in runs)}


def _keep_best(best: dict, run: dict) -> dict:
    if not best:
        return run
    keep = run if run["seconds"] < best["seconds"] else best
    return {**keep, "rss_mb": max(best["rss_mb"], run["rss_mb"])}


def _dir_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.parquet"))


def _input(n_rows: int) -> Path:
    path = CACHE / f"log_0_20180715_{n_rows}.csv.gz"
    if not path.exists():
        print(f"  writing {n_rows:,}-row synthetic log to {path} (cached) ...", flush=True)
        write_synthetic_log(path, n_rows, seed=n_rows)
    return path


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    big_rows = 1_000_000 if quick else 5_000_000
    big, small = _input(big_rows), _input(big_rows // 4)
    store = CACHE / "store"
    repeats = 1 if quick else 3
    load_before = os.getloadavg()[0]
    has_isal = importlib.util.find_spec("isal") is not None
    # interleaved, so that a burst of load on the machine hits every contender alike
    ing, arrow, pandas_, pandas_isal, raw = {}, {}, {}, {}, {}
    for _ in range(repeats):
        raw = _keep_best(raw, _child("ingest_uncompacted", big, store))
        ing = _keep_best(ing, _child("ingest", big, store))  # last: leaves a compacted store
        arrow = _keep_best(arrow, _child("pyarrow", big))
        pandas_ = _keep_best(pandas_, _child("pandas", big))
        if has_isal:
            pandas_isal = _keep_best(pandas_isal, _child("pandas_isal", big))
    store_bytes = _dir_bytes(store)
    ing_small = _best("ingest", small, CACHE / "store_small", 1)
    load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    rows = ing["rows"]
    assert ing["read"] == rows + ing["rejected"] and ing["rejected"] == 0
    assert arrow["rows"] == pandas_["rows"] == rows
    gz_bytes = big.stat().st_size
    rate = rows / ing["seconds"]
    pandas_rate = rows / pandas_["seconds"]
    flat = ing["rss_mb"] / ing_small["rss_mb"]
    note = (
        f"{rows:,} rows, {gz_bytes / 1e6:,.0f} MB csv.gz, 100 buckets, "
        f"ingest inflates with {ing['inflate']}"
    )
    reference = [
        {
            "name": "reference: ingest time with vs without the final compaction",
            "value": round(ing["seconds"], 2),
            "unit": "s",
            "peer": round(raw["seconds"], 2),
            "ratio": ing["seconds"] / raw["seconds"],
            "target": None,
            "passed": None,
            "notes": "no target: the compaction (one sorted file per bucket, what makes the "
            f"loaders and explore fast) costs {ing['seconds'] - raw['seconds']:.1f} s here; CPU "
            f"{ing['cpu']:.1f} s vs {raw['cpu']:.1f} s; best of {repeats}",
        }
    ]
    if pandas_isal:
        assert pandas_isal["rows"] == rows
        reference.append(
            {
                "name": "reference: ingest rows/s vs pandas.read_csv fed by the same isal inflate",
                "value": round(rate),
                "unit": "rows/s",
                "peer": round(rows / pandas_isal["seconds"]),
                "ratio": pandas_isal["seconds"] / ing["seconds"],
                "target": None,
                "passed": None,
                "notes": "no target: pandas.read_csv(isal.igzip_threaded.open(path)), i.e. pandas "
                "given the faster inflate ingest uses; the target row above keeps pandas as users "
                f"run it; pandas+isal {pandas_isal['seconds']:.1f} s "
                f"({pandas_isal['cpu']:.1f} s CPU); best of {repeats}",
            }
        )
    return [
        {
            "name": "ingest rows/s vs pandas.read_csv",
            "value": round(rate),
            "unit": "rows/s",
            "peer": round(pandas_rate),
            "ratio": rate / pandas_rate,
            "target": ">= 2",
            "passed": rate / pandas_rate >= 2,
            "notes": f"{note}; ingest {ing['seconds']:.1f} s ({ing['cpu']:.1f} s CPU), "
            f"pandas {pandas_['seconds']:.1f} s ({pandas_['cpu']:.1f} s CPU); best of {repeats}; "
            + load,
        },
        {
            "name": "ingest time vs bare pyarrow.csv.read_csv",
            "value": round(ing["seconds"], 2),
            "unit": "s",
            "peer": round(arrow["seconds"], 2),
            "ratio": ing["seconds"] / arrow["seconds"],
            "target": "<= 1.5",
            "passed": ing["seconds"] / arrow["seconds"] <= 1.5,
            "notes": "ingest validates, partitions, sorts and writes zstd Parquet; pyarrow only "
            f"parses; CPU {ing['cpu']:.1f} s vs {arrow['cpu']:.1f} s; best of {repeats}",
        },
        {
            "name": "context: bare pyarrow.csv.read_csv rows/s vs pandas.read_csv",
            "value": round(rows / arrow["seconds"]),
            "unit": "rows/s",
            "peer": round(pandas_rate),
            "ratio": pandas_["seconds"] / arrow["seconds"],
            "target": None,
            "passed": None,
            "notes": "no target: how fast a pure pyarrow.csv parse is against pandas on this "
            f"machine (CPU {arrow['cpu']:.1f} s vs {pandas_['cpu']:.1f} s)",
        },
        {
            "name": "ingest peak RSS",
            "value": round(ing["rss_mb"]),
            "unit": "MB",
            "peer": round(arrow["rss_mb"]),
            "ratio": ing["rss_mb"] / arrow["rss_mb"],
            "target": "< 1024 MB",
            "passed": ing["rss_mb"] < 1024,
            "notes": "peer: bare pyarrow read of the same file (holds it all)",
        },
        {
            "name": "ingest peak RSS, 4x rows vs 1x rows",
            "value": round(ing["rss_mb"]),
            "unit": "MB",
            "peer": round(ing_small["rss_mb"]),
            "ratio": flat,
            "target": "<= 1.3 (flat)",
            # below FLUSH_ROWS a source is buffered whole, so only sizes above it can be flat
            "passed": None if quick else flat <= 1.3,
            "notes": f"{rows:,} vs {ing_small['rows']:,} rows"
            + (" (quick: the small input is below the 1M-row flush size)" if quick else ""),
        },
        {
            "name": "store size vs csv.gz",
            "value": round(store_bytes / 1e6, 1),
            "unit": "MB",
            "peer": round(gz_bytes / 1e6, 1),
            "ratio": store_bytes / gz_bytes,
            "target": "<= 0.6",
            "passed": store_bytes / gz_bytes <= 0.6,
            "notes": "Parquet zstd, sessions in 100 buckets",
        },
        *reference,
    ]


if __name__ == "__main__":
    for row in run(Path("reports/bench"), quick="--quick" in sys.argv):
        print(row)
