"""Nested Laplace (``fit --method laplace``): accuracy against NUTS, and the full model on 100 M plays.

Sections (``--only laplace``; ``SKIPMODEL_BENCH_LAPLACE=accuracy,scale,tracks`` picks some):

* **accuracy** — a simulated store of ~100,000 plays (6,000 sessions; quick: 600), the
  ``markov`` and ``full`` models fitted to its train split by NUTS (4 chains x 1,000 draws after
  1,000 tuning; quick: 2 x 300) and by Laplace. For every scalar and vector element of the
  posterior with the same name in both (intercept, seasonal, Markov, slopes, smooth curves on
  their grid, pooling scales) |mean_laplace - mean_nuts| in NUTS posterior sds and the sd
  ratio; the same over the track effects (Laplace's per-level summary against NUTS's draws);
  held-out log loss of both on the test split. The full table is written beside the report
  (``laplace_accuracy_<model>.csv``). Targets (issue 18): median |d| <= 0.1 sd, median sd ratio
  in [0.9, 1.1], every global quantity within 0.25 sd (pooling scales may be listed as
  exceptions), tracks mean |d| <= 0.1 and mean sd ratio in [0.9, 1.1], log loss within 0.001.
* **scale** — ``full`` on the ~100 M-play store the explore benchmark builds (6 M sessions in 400
  buckets, 200 k tracks; cached under ``/tmp/skipmodel-bench/explore``; quick: 8,000 sessions):
  wall time, peak RSS, passes and time per pass in a fresh process, against one bare pyarrow
  dataset scan of the columns the model reads (the log columns and the tracks table, in
  another fresh process, best of two). Targets: the fit <= 30 min, peak RSS <= 8 GB, each pass
  from the row cache <= 4x the scan. Beside it, NUTS on a 100,000-play sample of the same store
  (4 x 1,000): its time, and its posterior sds over Laplace's full-data ones.
* **tracks** — the 3.7 M-track catalogue: stores simulated with ``--tracks 3700000`` (1.5 M
  sessions) and a quarter of it, fitted by Laplace (``full``, the widest rows per level):
  levels, peak RSS, and the memory per million levels as the slope between the two (quick:
  50,000 and 200,000 tracks).

A written projection for the 2.07-billion-play release is in the notes of the ``scale`` rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CACHE = Path(os.environ.get("SKIPMODEL_BENCH_CACHE", "/tmp/skipmodel-bench"))
TIME_TARGET_S = 30 * 60
RSS_TARGET_GB = 8.0
PASS_TARGET = 4.0
RELEASE_PLAYS = 2_072_002_577

_FIT = """
import json, sys, time
import skipmodel.scale
from skipmodel.model.data import StoreSample
from skipmodel.model.fitting import fit
from skipmodel.model.spec import get_variant
from skipmodel.model.fitting import save_run
store, model, fraction = sys.argv[1], sys.argv[2], float(sys.argv[3])
start = time.perf_counter()
result = fit(get_variant(model), StoreSample(store, fraction=fraction), method="laplace",
             draws=1000)
seconds = time.perf_counter() - start
if len(sys.argv) > 4:
    save_run(result, sys.argv[4])
d = result.diagnostics
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) forking parent
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "rss_kb": hwm,
    "passes": d["passes"], "pass_seconds": d["pass_seconds"], "converged": d["converged"],
    "n_levels": d["n_levels"], "n_dense": d["n_dense"], "rows": result.manifest["n_rows"],
    "cache": d["row_cache"], "hyper": d["hyper_mode"]}))
"""

_SCAN = """
import json, sys, time
import pyarrow.dataset as ds
from skipmodel.model.spec import get_variant
from skipmodel.store.layout import open_store
store, model = sys.argv[1], sys.argv[2]
layout = open_store(store)
spec = get_variant(model)
start = time.perf_counter()
logs = ds.dataset(layout.sessions, format="parquet", partitioning="hive")
wanted = set(spec.predictor_columns()) | {spec.outcome, "session_id", "session_position",
    "track_id_clean", "date", "hour_of_day", "session_length"}
columns = [c for c in logs.schema.names if c in wanted]
rows = sum(b.num_rows for b in logs.to_batches(columns=columns))
tracks = ds.dataset(layout.tracks, format="parquet")
tracks.to_table(columns=[c for c in tracks.schema.names if c in wanted | {"track_id"}])
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "columns": columns}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _flat(ds: Any, name: str) -> np.ndarray:
    values = np.asarray(ds[name].values)
    return values.reshape(values.shape[0] * values.shape[1], -1)


def compare(nuts: Any, lap: Any) -> pd.DataFrame:
    """Per posterior element with the same name: |d mean| in NUTS sds and the sd ratio."""
    a = nuts.posterior["posterior"].to_dataset()
    b = lap.posterior["posterior"].to_dataset()
    rows = []
    for name in b.data_vars:
        if name not in a.data_vars or name.endswith("_modes"):
            continue
        x, y = _flat(a, str(name)), _flat(b, str(name))
        for j in range(x.shape[1]):
            sd = x[:, j].std()
            if sd < 1e-9:  # a fixed element (no previous play = 0)
                continue
            rows.append(
                {
                    "quantity": f"{name}[{j}]" if x.shape[1] > 1 else str(name),
                    "variable": str(name),
                    "nuts_mean": x[:, j].mean(),
                    "nuts_sd": sd,
                    "laplace_mean": y[:, j].mean(),
                    "laplace_sd": y[:, j].std(),
                    "abs_delta_sd": abs(y[:, j].mean() - x[:, j].mean()) / sd,
                    "sd_ratio": y[:, j].std() / sd,
                }
            )
    return pd.DataFrame(rows)


def compare_tracks(nuts: Any, lap: Any, design: Any) -> tuple[float, float]:
    """Mean |d mean| / sd and mean sd ratio over the track effects."""
    from skipmodel.model.terms.pooled import effect_table

    a = nuts.posterior["posterior"].to_dataset()
    draws = {str(k): _flat(a, str(k)).reshape(-1, *a[k].shape[2:]) for k in a.data_vars}
    td = next(t for t in design.terms if t.term.kind == "pooled" and t.term.label == "track")
    table = effect_table(td, draws)
    summary = lap.posterior["levels"].to_dataset()
    mean, sd = summary["track_effect_mean"].values, summary["track_effect_sd"].values
    ref_sd = table.std(axis=0)
    return (
        float(np.mean(np.abs(mean - table.mean(axis=0)) / ref_sd)),
        float(np.mean(sd / ref_sd)),
    )


def log_loss(result: Any, frame: pd.DataFrame) -> float:
    from skipmodel.model.prediction import predict

    p = predict(result, frame)["p_skip"].to_numpy().clip(1e-9, 1 - 1e-9)
    y = frame[result.spec.outcome].astype(float).to_numpy()
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _row(name: str, value: Any, unit: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, **kw}


def accuracy(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    import skipmodel.scale  # noqa: F401 - registers --method laplace
    from skipmodel.ingest import ingest
    from skipmodel.model.data import StoreSample, load_plays
    from skipmodel.model.design import build_design
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import get_variant
    from skipmodel.simulate.mssd import simulate

    sessions = 600 if quick else 6000
    chains, draws = (2, 300) if quick else (4, 1000)
    root = CACHE / "laplace" / f"accuracy{sessions}"
    store = root / "store"
    if not (store / "manifest.json").is_file():
        sim = simulate(root / "sim", sessions=sessions, seed=11, days=7)
        ingest([sim.training_set, sim.track_features], store, n_buckets=8, progress=False)
    data = StoreSample(store)
    rows: list[dict[str, Any]] = []
    for model in ("markov", "full"):
        spec = get_variant(model)
        t0 = time.perf_counter()
        lap = fit(spec, data, method="laplace", draws=4000)
        lap_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        nuts = fit(spec, data, draws=draws, tune=draws, chains=chains, seed=3)
        nuts_s = time.perf_counter() - t0
        table = compare(nuts, lap)
        table.to_csv(out_dir / f"laplace_accuracy_{model}.csv", index=False)
        train = load_plays(store, data.rows_sample(spec))
        test = load_plays(store, StoreSample(store, split="test").rows_sample(spec))
        design = build_design(spec, train, encoders=nuts.encoders, require_outcome=False)
        track_delta, track_ratio = compare_tracks(nuts, lap, design)
        loss_nuts, loss_lap = log_loss(nuts, test), log_loss(lap, test)
        worst = table.sort_values("abs_delta_sd", ascending=False).head(4)
        beyond = table[table.abs_delta_sd > 0.25]
        scales = beyond.variable.str.endswith(("_sigma", "_amplitude"))
        setting = f"{lap.manifest['n_rows']:,} train plays; NUTS {chains} x {draws}"
        rows += [
            _row(
                f"{model}: median |d mean| / NUTS sd (globals)",
                round(float(table.abs_delta_sd.median()), 3),
                "sd",
                target="<= 0.1",
                passed=bool(table.abs_delta_sd.median() <= 0.1),
                notes=f"{len(table)} elements; {setting}; worst: "
                + ", ".join(
                    f"{q} {d:.2f}" for q, d in zip(worst.quantity, worst.abs_delta_sd, strict=True)
                ),
            ),
            _row(
                f"{model}: global elements beyond 0.25 sd",
                int(len(beyond)),
                "elements",
                target="0 besides pooling scales",
                passed=bool(scales.all()),
                notes=", ".join(beyond.quantity) or "none",
            ),
            _row(
                f"{model}: median sd ratio (globals)",
                round(float(table.sd_ratio.median()), 3),
                "ratio",
                target="[0.9, 1.1]",
                passed=bool(0.9 <= table.sd_ratio.median() <= 1.1),
                notes=f"range {table.sd_ratio.min():.2f} .. {table.sd_ratio.max():.2f}",
            ),
            _row(
                f"{model}: tracks mean |d mean| / sd",
                round(track_delta, 3),
                "sd",
                target="<= 0.1",
                passed=track_delta <= 0.1,
                notes=f"mean sd ratio {track_ratio:.3f} (target [0.9, 1.1])",
            ),
            _row(
                f"{model}: tracks mean sd ratio",
                round(track_ratio, 3),
                "ratio",
                target="[0.9, 1.1]",
                passed=0.9 <= track_ratio <= 1.1,
            ),
            _row(
                f"{model}: held-out log loss, Laplace - NUTS",
                round(loss_lap - loss_nuts, 5),
                "nats",
                peer=round(loss_nuts, 5),
                target="|d| <= 0.001",
                passed=abs(loss_lap - loss_nuts) <= 0.001,
                notes=f"{len(test):,} test plays; Laplace {loss_lap:.5f}",
            ),
            _row(
                f"{model}: fit time, Laplace vs NUTS",
                round(lap_s, 1),
                "s",
                peer=round(nuts_s, 1),
                ratio=round(lap_s / nuts_s, 4),
                notes=f"Laplace {lap.diagnostics['passes']} passes",
            ),
        ]
    return rows


def scale(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_explore import CACHE as EXPLORE_CACHE
    from benchmarks.bench_explore import build_store

    n_sessions, buckets = (8_000, 20) if quick else (6_000_000, 400)
    EXPLORE_CACHE.mkdir(parents=True, exist_ok=True)
    store = str(build_store(EXPLORE_CACHE, n_sessions, buckets))
    _child(_SCAN, store, "full")  # into the page cache, not counted
    scans = [_child(_SCAN, store, "full") for _ in range(2)]
    scan = min(s["seconds"] for s in scans)
    run_dir = CACHE / "laplace" / f"run-full-{n_sessions}"
    lap = _child(_FIT, store, "full", "1.0", str(run_dir))
    passes = lap["pass_seconds"]
    cached = passes[1:] if len(passes) > 1 else passes
    per_pass = float(np.median(cached))
    rows_per_s = lap["rows"] / per_pass
    first = passes[0]
    rss_gb = lap["rss_kb"] / 2**20
    # a 100,000-play sample by NUTS beside it
    frac = min(1.0, 100_000 / max(lap["rows"], 1))
    import skipmodel.scale  # noqa: F401
    from skipmodel.model.data import StoreSample
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import get_variant

    t0 = time.perf_counter()
    small = fit(get_variant("full"), StoreSample(store, fraction=frac), draws=1000, tune=1000,
                chains=4, seed=5)  # fmt: skip
    nuts_s = time.perf_counter() - t0
    from skipmodel.model.fitting import load_run

    big = load_run(run_dir)
    table = compare(small, big)
    table["wider"] = 1 / table["sd_ratio"]
    table.to_csv(out_dir / "laplace_scale_sds.csv", index=False)
    wide = float(table["wider"].median())
    by_variable = table.groupby("variable")["wider"].median().sort_values()
    spread = "; ".join(f"{k} {v:.1f}x" for k, v in by_variable.items())
    projection_s = lap["seconds"] / lap["rows"] * RELEASE_PLAYS if lap["rows"] else float("nan")
    cache_gb = lap["cache"]["bytes"] / lap["rows"] * RELEASE_PLAYS / 1e9
    note = (
        f"{lap['rows']:,} plays, {lap['n_levels']:,} track levels, {lap['n_dense']} dense "
        f"effects; {lap['passes']} passes (converged: {lap['converged']}); first pass (store "
        f"read, designed, encoded, cached) {first:.0f} s, later passes from the row cache "
        f"median {per_pass:.0f} s ({rows_per_s / 1e6:.2f} M plays/s on 2 cores); row cache "
        f"{lap['cache']['bytes'] / 1e9:.1f} GB ({'disk' if lap['cache']['on_disk'] else 'memory'})"
    )
    projection = (
        f"projection for the 2.07 B-play release at this throughput: ~{projection_s / 3600:.1f} h "
        f"on 2 cores (time grows with the plays; the encoders pass and the first pass read the "
        f"store, the others a row cache of ~{cache_gb:.0f} GB on disk); on N Spark executors "
        f"of 2 cores each, about that / N once the Spark engine (issue 22) runs the passes"
    )
    return [
        _row(
            "full, Laplace on all plays: wall time",
            round(lap["seconds"], 1),
            "s",
            target=f"<= {TIME_TARGET_S}",
            passed=lap["seconds"] <= TIME_TARGET_S,
            notes=note,
        ),  # fmt: skip
        _row(
            "full, Laplace: peak RSS",
            round(rss_gb, 2),
            "GB",
            target=f"<= {RSS_TARGET_GB}",
            passed=rss_gb <= RSS_TARGET_GB,
            notes=f"the whole process at {lap['n_levels']:,} levels (the memory per million "
            "levels is the slope the tracks section measures)",
        ),  # fmt: skip
        _row(
            "full, Laplace: pass from the row cache vs one bare scan",
            round(per_pass, 1),
            "s",
            peer=round(scan, 1),
            ratio=round(per_pass / scan, 2),
            target=f"<= {PASS_TARGET}x",
            passed=per_pass / scan <= PASS_TARGET,
            notes=f"first pass (reads the store) {first / scan:.2f}x the scan; scan: pyarrow "
            f"dataset of {len(scans[0]['columns'])} log columns + the tracks table, best of 2; "
            + projection,
        ),  # fmt: skip
        _row(
            "full, NUTS on a 100,000-play sample: time",
            round(nuts_s, 1),
            "s",
            peer=round(lap["seconds"], 1),
            ratio=round(nuts_s / lap["seconds"], 3),
            notes=f"4 x 1,000 draws on {small.manifest['n_rows']:,} plays; {small.summary()}",
        ),  # fmt: skip
        _row(
            "full: NUTS sample sd / Laplace full-data sd (median over globals)",
            round(wide, 1),
            "x",
            notes=f"what full data buys: sqrt(plays ratio) = "
            f"{np.sqrt(lap['rows'] / small.manifest['n_rows']):.0f}x expected for effects of "
            "the play; effects of the track are held by the number of tracks, scales of few "
            f"levels by their priors. Median per variable: {spread} "
            "(every element in laplace_scale_sds.csv)",
        ),  # fmt: skip
    ]


def _catalogue_store(n_tracks: int, sessions: int) -> Path:
    from skipmodel.ingest import ingest
    from skipmodel.simulate.mssd import simulate

    root = CACHE / "laplace" / f"tracks{n_tracks}x{sessions}"
    store = root / "store"
    if not (store / "manifest.json").is_file():
        sim = simulate(root / "sim", sessions=sessions, seed=13, days=7, tracks=n_tracks)
        ingest([sim.training_set, sim.track_features], store, n_buckets=40, progress=False)
        import shutil

        shutil.rmtree(root / "sim", ignore_errors=True)  # the store is what the fit reads
    return store


def tracks(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    """Memory per million levels: the slope of peak RSS between two catalogue sizes."""
    sizes = (
        ((50_000, 10_000), (200_000, 40_000))
        if quick
        else ((925_000, 375_000), (3_700_000, 1_500_000))
    )
    fits = [_child(_FIT, str(_catalogue_store(*size)), "full", "1.0") for size in sizes]
    small, big = fits
    rss = [f["rss_kb"] / 2**20 for f in fits]
    slope = (rss[1] - rss[0]) / max(big["n_levels"] - small["n_levels"], 1) * 1e6
    return [
        _row(
            "full, catalogue of tracks: levels fitted",
            big["n_levels"],
            "levels",
            notes=f"{sizes[1][0]:,} tracks simulated, {big['rows']:,} plays; levels = tracks "
            f"with >= 2 plays (min_count 2) plus __other__; {big['seconds']:.0f} s, "
            f"{big['passes']} passes, converged: {big['converged']}",
        ),  # fmt: skip
        _row(
            "full, catalogue: peak RSS",
            round(rss[1], 2),
            "GB",
            target="<= 24 (machine)",
            passed=rss[1] <= 24,
            notes=f"{small['n_levels']:,} levels ({small['rows']:,} plays): {rss[0]:.2f} GB",
        ),  # fmt: skip
        _row(
            "full: memory per million levels (peak RSS slope)",
            round(slope, 2),
            "GB",
            notes="the growth of the whole process's peak RSS between the two catalogues, "
            "per million levels fitted (the plays grow with them: row cache included)",
        ),  # fmt: skip
    ]


SECTIONS = {"accuracy": accuracy, "scale": scale, "tracks": tracks}


def run(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = os.environ.get("SKIPMODEL_BENCH_LAPLACE", ",".join(SECTIONS)).split(",")
    rows: list[dict[str, Any]] = []
    for name in chosen:
        part = SECTIONS[name.strip()](out_dir, quick=quick)
        rows += part
        with open(out_dir / "laplace_partial.jsonl", "a") as f:
            for r in part:
                f.write(json.dumps(r, default=str) + "\n")
    return rows
