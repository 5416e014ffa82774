"""Benchmark: what a Laplace pass on an engine ships to its executors.

Each pass of ``fit --method laplace --engine spark`` runs one task per bucket. What every task
shares (the encoders, the latent model, the expansion point, and on a first pass every level's
quadrature nodes) is broadcast once per pass: each executor receives it once. A task's own item
carries its bucket and its levels' nodes. This benchmark measures both payloads (cloudpickle
bytes, as Spark sends them) for the first two passes of a fit of ``track_id_clean`` pooled plus
the Markov term. It runs on ``bench_laplace``'s catalogue store: 925,000 tracks, 375,000
sessions, 40 buckets (``--quick``: 50,000 tracks). The tasks run in this process with Spark's
serialiser; no cluster is needed, since the bytes are what is measured.

Before the broadcast, every task pickled the shared part too: a pass shipped
``tasks x (item + shared)``. Now it ships ``tasks x item + executors x shared``.

Run: ``.venv/bin/python -m benchmarks.run --only spark_payload [--quick]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench_laplace import _catalogue_store

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys
from pyspark import cloudpickle
import skipmodel.engine
import skipmodel.scale  # registers --method laplace
from skipmodel.model.data import StoreSample
from skipmodel.model.fitting import fit
from skipmodel.model.spec import Markov, ModelSpec, Pooled

passes = []

class Enough(Exception):
    pass

def run_here(options, function, items, *, label, shared=None):
    if shared is None:
        return [function(item) for item in items]
    per = [len(cloudpickle.dumps(item)) for item in items]
    passes.append({"tasks": len(items), "items": sum(per), "largest": max(per),
                   "shared": len(cloudpickle.dumps(shared))})
    if len(passes) == 2:
        raise Enough
    return [function(item, shared) for item in items]

skipmodel.engine.run_tasks = run_here
spec = ModelSpec(name="tracks", terms=(Pooled(column="track_id_clean"), Markov()))
try:
    fit(spec, StoreSample(sys.argv[1]), method="laplace", draws=50, engine="spark",
        spark_master="local[1]")
except Enough:
    pass
print(json.dumps(passes))
"""


def run(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    size = (50_000, 20_000) if quick else (925_000, 375_000)
    store = _catalogue_store(*size)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store)],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", **_env()},
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {done.stderr.strip()[-2000:]}")
    passes = json.loads(done.stdout.strip().splitlines()[-1])
    rows = []
    for k, p in enumerate(passes, start=1):
        before = p["tasks"] * (p["items"] / p["tasks"] + p["shared"])
        rows += [
            {
                "name": f"pass {k}: shared part, broadcast once per executor",
                "value": round(p["shared"] / 1e6, 1),
                "unit": "MB",
                "notes": f"{size[0]:,} tracks; encoders, latent model, point"
                + (", every level's nodes" if k == 1 else ""),
            },
            {
                "name": f"pass {k}: the {p['tasks']} tasks' own items",
                "value": round(p["items"] / 1e6, 2),
                "unit": "MB",
                "notes": f"largest {p['largest'] / 1e6:.2f} MB (a bucket's levels' nodes)",
            },
            {
                "name": f"pass {k}: shipped before the broadcast (every task pickled it all)",
                "value": round(before / 1e6, 1),
                "unit": "MB",
                "peer": None,
                "ratio": None,
                "notes": "tasks x (item + shared); now items + executors x shared",
            },
        ]
    return rows


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
