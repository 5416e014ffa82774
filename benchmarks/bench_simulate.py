"""Benchmark: ``skipmodel simulate`` end to end against pandas merely writing the same rows.

The simulator draws every play from the skip model and writes the gzipped tar archives, the
truth and the per-track truth. The peer, measured in the same run, is ``pandas.DataFrame.to_csv``
writing the very same log rows (read back from the archive, not timed) to gzipped CSV at the
same gzip level: what a straightforward writer pays for the output alone, without simulating.
Target (issue 2): 100,000 sessions in about a minute (<= 60 s wall clock).

Run: ``.venv/bin/python -m benchmarks.run simulate`` (or ``make bench``), or directly
``.venv/bin/python benchmarks/bench_simulate.py [--quick]``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

from skipmodel.simulate.mssd import simulate

TARGET_SECONDS_100K = 60.0


def _pandas_write(archive: Path, work: Path) -> tuple[float, int]:
    """Seconds pandas takes to write the archive's log files as csv.gz (reading not timed)."""
    with tarfile.open(archive) as tar:
        frames = [pd.read_csv(tar.extractfile(m)) for m in tar.getmembers() if m.isfile()]
    rows = sum(len(f) for f in frames)
    started = time.perf_counter()
    for i, frame in enumerate(frames):
        frame.to_csv(
            work / f"log_{i}.csv.gz",
            index=False,
            compression={"method": "gzip", "compresslevel": 6, "mtime": 0},
        )
    return time.perf_counter() - started, rows


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    """Time the simulator; rows for reports/bench/simulate.{json,md}."""
    sessions = 10_000 if quick else 100_000
    work = Path(tempfile.mkdtemp(prefix="skipmodel-bench-simulate-"))
    try:
        cpu0 = time.process_time()
        result = simulate(work / "sim", sessions=sessions, seed=1)
        cpu = time.process_time() - cpu0
        peer_s, rows = _pandas_write(result.training_set, work)
        sizes = {p.name: p.stat().st_size for p in (result.training_set, result.track_features)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    scaled = result.seconds * 100_000 / sessions
    return [
        {
            "name": f"simulate_{sessions // 1000}k_sessions_vs_pandas_write_only",
            "value": round(result.seconds, 2),
            "unit": "s",
            "peer": round(peer_s, 2),
            "ratio": round(result.seconds / peer_s, 3),
            "target": f"<= {TARGET_SECONDS_100K:.0f} s per 100k sessions",
            "passed": scaled <= TARGET_SECONDS_100K,
            "notes": f"{result.n_plays:,} plays ({rows:,} rows re-read for the peer), "
            f"{result.n_tracks:,} tracks, {result.n_log_files} log files; simulate CPU "
            f"{cpu:.1f} s; peer = pandas to_csv gzip-6 of the same log rows only; "
            f"archives {sizes}",
        },
        {
            "name": "simulate_plays_per_s",
            "value": round(result.n_plays / result.seconds),
            "unit": "plays/s",
            "peer": round(rows / peer_s),
            "ratio": round((result.n_plays / result.seconds) / (rows / peer_s), 3),
            "target": "",
            "passed": True,
            "notes": "peer = rows/s of pandas writing (not simulating) the same rows",
        },
    ]


if __name__ == "__main__":
    for row in run(Path("reports/bench"), quick="--quick" in sys.argv):
        print(json.dumps(row))
