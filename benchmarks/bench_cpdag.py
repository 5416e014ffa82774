"""Benchmark: the CPDAG step (streaming correlation + PC search) against causal-learn.

Rows
----
``search_30_variables``
    :func:`skipmodel.cpdag.pc` on a 30-variable correlation matrix (a random unit-variance
    linear-Gaussian DAG, n = 1e6, alpha = 1e-10: a dense search with conditioning sets up to 6
    variables). Best of 5. Target: under 1 s (pcalg's C++ "stable.fast": 0.16-0.34 s).
``data_pass_vs_read``
    :func:`correlation_from_store` vs a bare ``pyarrow.dataset`` read of the same columns
    (``to_table``, no transforms), both on a warm page cache. Ratio = ours / bare; target <= 2.
``end_to_end_1e6``
    A store whose tracks table holds n = 1e6 rows of the 28 numeric features drawn from a dense
    random DAG (real track features are strongly inter-dependent; that is what makes
    causal-learn slow on them): our data pass + search vs reading the same columns into numpy
    with the same transforms + causal-learn's ``pc(data, alpha, fisherz, stable=True,
    uc_priority=0)`` (``uc_priority=0``, "overwrite", is pcalg's collider rule). Ours is the
    best of 3 runs, causal-learn one run. Target: >= 20x with the same skeleton. Orientations
    can differ: causal-learn's stable search keeps the union of all separating sets found at a
    level, pcalg (and we) the first one, so a few colliders differ on dense data.
``same_cpdag_simulator_dag``
    The simulator's sparse feature DAG (one separating set per pair): the CPDAGs must be
    identical.

causal-learn is an optional, benchmark-only dependency (``pip install causal-learn``); without
it those rows are skipped with a note. Stores are cached under ``/tmp/skipmodel-bench``.

Run: ``.venv/bin/python -m benchmarks.run --only cpdag`` or
``.venv/bin/python benchmarks/bench_cpdag.py [--quick]``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from skipmodel.cpdag import correlation_from_store, pc
from skipmodel.cpdag.corr import STORE_TRANSFORMS
from skipmodel.store.schema import SCHEMA_VERSION, TRACK_SCHEMA

CACHE = Path("/tmp/skipmodel-bench")
ALPHA = 1e-10
SEARCH_TARGET_S = 1.0
SPEEDUP_TARGET = 20.0
READ_RATIO_TARGET = 2.0


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def dense_dag(p: int, prob: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random DAG on unit-variance nodes: weights ``W[parent, child]`` and noise sds.

    Each node's parent weights are scaled so its parents explain at most 80 % of its
    variance, so every edge stays detectable however many parents a node has.
    """
    w = np.triu(rng.uniform(0.2, 0.8, (p, p)) * rng.choice([-1, 1], (p, p)), 1)
    w *= np.triu(rng.random((p, p)) < prob, 1)
    cov = np.zeros((p, p))
    noise = np.zeros(p)
    for j in range(p):
        explained = w[:j, j] @ cov[:j, :j] @ w[:j, j]
        if explained > 0.8:
            w[:j, j] *= np.sqrt(0.8 / explained)
            explained = 0.8
        noise[j] = np.sqrt(1.0 - explained)
        cov[j, :j] = cov[:j, j] = w[:j, j] @ cov[:j, :j]
        cov[j, j] = 1.0
    return w, noise


def _mixing(w: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``B`` with ``u = B e`` for standard normal ``e``."""
    return np.linalg.inv(np.eye(len(w)) - w.T) * noise


def random_dag_correlation(p: int, prob: float, n: int, seed: int) -> np.ndarray:
    """Sample correlation of ``n`` rows from a random unit-variance linear-Gaussian DAG."""
    from scipy.stats import wishart

    rng = np.random.default_rng(seed)
    mix = _mixing(*dense_dag(p, prob, rng))
    cov = mix @ mix.T
    # the sample correlation of n Gaussian rows, drawn directly (Wishart) instead of the rows
    sample = wishart.rvs(df=n - 1, scale=cov / (n - 1), random_state=rng)
    d = np.sqrt(np.diag(sample))
    return sample / np.outer(d, d)


#: Integer columns of the tracks table: written rounded (and clipped) from the latent value.
_INTEGER_COLUMNS = {
    "release_year": (2000.0, 6.0, 1950, 2018),
    "key": (5.5, 2.5, 0, 11),
    "time_signature": (4.0, 0.8, 0, 5),
}


def _store(n: int) -> Path:
    """A store whose tracks table holds ``n`` rows from a dense random DAG (cached).

    Real track features are strongly inter-dependent (the issue's causal-learn timings come
    from such data), so the 28 numeric features follow a random linear-Gaussian DAG with about
    a third of all pairs linked. Heavy-tailed features are written as ``exp(latent)`` (the
    default ``log`` transform recovers the latent value); integer columns are rounded.
    """
    from skipmodel.store.schema import HEAVY_TAILED_FEATURES, TRACK_NUMERIC_FEATURES

    root = CACHE / f"cpdag_dense2_store_{n}"
    if (root / "manifest.json").is_file():
        return root
    (root / "tracks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    p = len(TRACK_NUMERIC_FEATURES)
    mix = _mixing(*dense_dag(p, 0.3, rng))
    order = rng.permutation(p)  # causal order unrelated to the column order
    chunk = 250_000
    for part, start in enumerate(range(0, n, chunk)):
        size = min(chunk, n - start)
        latent = rng.standard_normal((size, p)) @ mix.T
        columns: dict[str, pa.Array] = {
            "track_id": pa.array([f"t_{i:09d}" for i in range(start, start + size)])
        }
        for k, name in enumerate(TRACK_NUMERIC_FEATURES):
            x = latent[:, order[k]]
            if name in _INTEGER_COLUMNS:
                centre, scale, low, high = _INTEGER_COLUMNS[name]
                columns[name] = pa.array(np.clip(np.round(centre + scale * x), low, high))
            elif name in HEAVY_TAILED_FEATURES:
                columns[name] = pa.array(np.exp(x))
            else:
                columns[name] = pa.array(x)
        columns["mode"] = pa.array(np.where(rng.random(size) < 0.6, "major", "minor"))
        table = pa.table({f.name: columns[f.name] for f in TRACK_SCHEMA}).cast(TRACK_SCHEMA)
        pq.write_table(table, root / "tracks" / f"part-{part:03d}.parquet", compression="zstd")
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "n_buckets": 100,
        "sources": {},
        "totals": {"track_rows_read": n, "track_rows_written": n, "track_rows_rejected": 0},
        "integrity": {},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _transformed_rows(store: Path, names: tuple[str, ...]) -> np.ndarray:
    table = ds.dataset(store / "tracks", format="parquet").to_table(columns=list(names))
    cols = []
    for name in names:
        values = table.column(name).to_numpy().astype(np.float64)
        if name in STORE_TRANSFORMS.log:
            values = np.log(values + STORE_TRANSFORMS.log_offset)
        cols.append(values)
    return np.column_stack(cols)


def _causal_learn_edges(graph: np.ndarray, names: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """causal-learn's GeneralGraph matrix -> our canonical edge set."""
    edges = set()
    p = len(names)
    for i in range(p):
        for j in range(i + 1, p):
            a, b = graph[i, j], graph[j, i]
            if a == 0 and b == 0:
                continue
            if a == -1 and b == 1:
                edges.add((names[i], names[j], "-->"))
            elif a == 1 and b == -1:
                edges.add((names[j], names[i], "-->"))
            elif a == -1 and b == -1:
                edges.add((*sorted((names[i], names[j])), "---"))
            else:
                edges.add((*sorted((names[i], names[j])), "<->"))
    return edges


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    rows: list[dict] = []
    n = 200_000 if quick else 1_000_000

    corr30 = random_dag_correlation(30, 0.3, 1_000_000, seed=1)
    search_s, fit30 = _best(lambda: pc(corr30, 1_000_000, alpha=ALPHA), 3 if quick else 5)
    rows.append(
        {
            "name": "search_30_variables",
            "value": search_s,
            "unit": "s",
            "peer": None,
            "ratio": None,
            "target": f"< {SEARCH_TARGET_S} s",
            "passed": search_s < SEARCH_TARGET_S,
            "notes": f"{len(fit30.edges)} edges, tests per level {list(fit30.n_tests)}",
        }
    )

    store = _store(n)
    correlation_from_store(store)  # warm the page cache: every side below reads warm files
    bare_s, _ = _best(
        lambda: ds.dataset(store / "tracks", format="parquet").to_table(
            columns=[c for c in TRACK_SCHEMA.names if c not in STORE_TRANSFORMS.drop]
        ),
        3,
    )
    runs = []
    for _ in range(3):  # best of 3 end to end, keeping its split into pass and search
        t = time.perf_counter()
        data = correlation_from_store(store)
        pass_s = time.perf_counter() - t
        t = time.perf_counter()
        ours = pc(data.corr, data.n, names=data.names, alpha=ALPHA)
        runs.append((pass_s + time.perf_counter() - t, pass_s, time.perf_counter() - t))
    ours_s, pass_s, ours_search_s = min(runs)
    pass_best = min(r[1] for r in runs)
    rows.append(
        {
            "name": "data_pass_vs_read",
            "value": pass_best,
            "unit": "s",
            "peer": bare_s,
            "ratio": pass_best / bare_s,
            "target": f"<= {READ_RATIO_TARGET}x the bare read",
            "passed": pass_best / bare_s <= READ_RATIO_TARGET,
            "notes": f"n={data.n:,}, {len(data.names)} columns, 8 log-transformed; "
            f"{data.n / pass_best / 1e6:.1f} M rows/s",
        }
    )

    try:
        from causallearn.search.ConstraintBased.PC import pc as cl_pc
    except ImportError:
        rows.append(
            {
                "name": "end_to_end_1e6" if not quick else "end_to_end_2e5",
                "value": ours_s,
                "unit": "s",
                "peer": None,
                "ratio": None,
                "target": f">= {SPEEDUP_TARGET}x causal-learn",
                "passed": None,
                "notes": "causal-learn not installed (pip install causal-learn): peer skipped",
            }
        )
        return rows
    t = time.perf_counter()
    rows_np = _transformed_rows(store, data.names)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    # uc_priority=0 ("overwrite") is pcalg's collider rule; causal-learn's default (2) resolves
    # conflicting colliders differently, which would make the CPDAGs differ.
    cg = cl_pc(rows_np, ALPHA, "fisherz", stable=True, uc_priority=0, show_progress=False)
    cl_s = time.perf_counter() - t
    del rows_np
    theirs = _causal_learn_edges(cg.G.graph, data.names)
    same = theirs == ours.edge_set()
    differing = {frozenset(e[:2]) for e in theirs ^ ours.edge_set()}
    same_skeleton = {frozenset(e[:2]) for e in theirs} == {
        frozenset(e[:2]) for e in ours.edge_set()
    }
    ratio = (load_s + cl_s) / ours_s
    rows.append(
        {
            "name": "end_to_end_1e6" if not quick else "end_to_end_2e5",
            "value": ours_s,
            "unit": "s",
            "peer": load_s + cl_s,
            "ratio": ratio,
            "target": f">= {SPEEDUP_TARGET}x causal-learn",
            "passed": bool(ratio >= SPEEDUP_TARGET and same_skeleton),
            "notes": f"ours: pass {pass_s:.2f} s + search {ours_search_s:.2f} s; causal-learn: "
            f"load+transform {load_s:.2f} s + pc(fisherz, stable=True) {cl_s:.2f} s "
            f"(pc alone {cl_s / ours_s:.1f}x ours); same skeleton: {same_skeleton}, same CPDAG: "
            f"{same} ({len(ours.edges)} edges, {len(differing)} oriented differently: causal-learn's "
            "stable FAS keeps the union of all separating sets of a level, pcalg the first)",
        }
    )
    rows.append(_same_cpdag_on_simulator_dag(cl_pc, 200_000 if quick else 1_000_000))
    return rows


def _same_cpdag_on_simulator_dag(cl_pc, n: int) -> dict:  # noqa: ANN001 - causal-learn's pc
    """Ours vs causal-learn on the simulator's track-feature DAG (one separating set per pair)."""
    from skipmodel.simulate.tracks import simulate_track_features, track_feature_table

    root = CACHE / f"cpdag_simdag_store_{n}"
    if not (root / "manifest.json").is_file():
        (root / "tracks").mkdir(parents=True, exist_ok=True)
        cols, _ = simulate_track_features(np.random.default_rng(11), n)
        table = track_feature_table(pa.array([f"t_{i:09d}" for i in range(n)]), cols)
        pq.write_table(table.cast(TRACK_SCHEMA), root / "tracks" / "part-000.parquet")
        (root / "manifest.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION}))
    t = time.perf_counter()
    data = correlation_from_store(root)
    ours = pc(data.corr, data.n, names=data.names, alpha=ALPHA)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    rows_np = _transformed_rows(root, data.names)
    cg = cl_pc(rows_np, ALPHA, "fisherz", stable=True, uc_priority=0, show_progress=False)
    cl_s = time.perf_counter() - t
    same = _causal_learn_edges(cg.G.graph, data.names) == ours.edge_set()
    return {
        "name": "same_cpdag_simulator_dag",
        "value": ours_s,
        "unit": "s",
        "peer": cl_s,
        "ratio": cl_s / ours_s,
        "target": "identical CPDAG",
        "passed": same,
        "notes": f"n={data.n:,}, the simulator's sparse feature DAG ({len(ours.edges)} edges): "
        f"same CPDAG: {same}; little to search, so the ratio is small",
    }


if __name__ == "__main__":
    for row in run(CACHE, quick="--quick" in sys.argv):
        print(row)
