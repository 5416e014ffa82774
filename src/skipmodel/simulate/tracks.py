"""Simulated track features: a known linear Gaussian DAG on the scale the CPDAG workflow uses.

Fifteen continuous features are generated from a linear structural equation model on the
*analysis scale* of issue 4: ``log(x + 1e-10)`` for the heavy-tailed features listed in
:data:`skipmodel.store.schema.HEAVY_TAILED_FEATURES`, the raw value for the others. Each node is
``mean + sd * u`` where the standardised ``u`` follows ``u_j = sum_i w_ij u_i + e_j`` with unit
variance, so the implied correlation matrix of the analysis-scale columns is known exactly
(:func:`implied_correlation`). A heavy-tailed feature is written as ``exp(latent)``, so
``log(x + 1e-10)`` returns the latent value up to 1e-10 / x (negligible at the simulated
scales). Bounded features are clipped to their domain; the means and sds are chosen so that
fewer than ~0.2 % of values are clipped (the exact fractions go to ``truth.json``).

The remaining features (popularity, release year, key, mode, tempo, time signature and the
acoustic vectors) are drawn independently of everything else with realistic marginals, so the
true CPDAG over all numeric features is the DAG's CPDAG plus isolated nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from skipmodel.store.schema import HEAVY_TAILED_FEATURES, TRACK_COLUMNS, TRACK_NUMERIC_FEATURES

#: Offset of the usual log transform (issue 4): ``log(x + LOG_OFFSET)``.
LOG_OFFSET = 1e-10


@dataclass(frozen=True)
class DagNode:
    """One DAG feature: its analysis-scale mean and sd and the domain of the written value."""

    name: str
    mean: float
    sd: float
    low: float | None = None  # domain of the value written to the file (after exp for logs)
    high: float | None = None

    @property
    def log_scale(self) -> bool:
        return self.name in HEAVY_TAILED_FEATURES


#: The DAG's nodes, in a topological order.
DAG_NODES: tuple[DagNode, ...] = (
    DagNode("energy", 0.60, 0.13, 0.0, 1.0),
    DagNode("acousticness", -2.8, 0.95, 0.0, 1.0),  # log scale
    DagNode("beat_strength", 0.50, 0.12, 0.0, 1.0),
    DagNode("bounciness", 0.55, 0.13, 0.0, 1.0),
    DagNode("speechiness", -2.8, 0.60, 0.0, 1.0),  # log scale
    DagNode("flatness", 0.0, 0.03, 0.0, None),  # log scale, values around 1.0
    DagNode("duration", float(np.log(220.0)), 0.30, 0.0, None),  # log scale, seconds
    DagNode("loudness", -8.5, 2.8, None, 0.0),
    DagNode("danceability", 0.60, 0.13, 0.0, 1.0),
    DagNode("valence", 0.45, 0.14, 0.0, 1.0),
    DagNode("dyn_range_mean", 2.2, 0.25, 0.0, None),  # log scale
    DagNode("organism", 0.30, 0.10, 0.0, 1.0),
    DagNode("mechanism", 0.55, 0.13, 0.0, 1.0),
    DagNode("liveness", -1.7, 0.55, 0.0, 1.0),  # log scale
    DagNode("instrumentalness", -8.0, 2.7, 0.0, 1.0),  # log scale
)

#: (parent, child, weight on the standardised scale). Unit-variance nodes: the weights of one
#: child's parents must have squared sum < 1 (parents are independent where it matters).
DAG_EDGES: tuple[tuple[str, str, float], ...] = (
    ("energy", "loudness", 0.6),
    ("acousticness", "loudness", -0.35),
    ("loudness", "dyn_range_mean", -0.5),
    ("beat_strength", "danceability", 0.6),
    ("bounciness", "danceability", 0.4),
    ("danceability", "valence", 0.5),
    ("energy", "valence", 0.35),
    ("acousticness", "organism", 0.6),
    ("acousticness", "mechanism", -0.5),
    ("speechiness", "liveness", 0.45),
    ("flatness", "liveness", -0.4),
    ("duration", "instrumentalness", 0.4),
)

#: Features drawn independently of every other feature (isolated nodes of the true CPDAG).
INDEPENDENT_FEATURES: tuple[str, ...] = tuple(
    c for c in TRACK_NUMERIC_FEATURES if c not in {n.name for n in DAG_NODES}
)

# time_signature shares of tf_mini (2 never occurs; the rest of the mass goes to 4).
_TIME_SIGNATURE_SHARE = {0: 0.000552, 1: 0.008145, 3: 0.076858, 5: 0.016665}
_MAJOR_SHARE = 32555 / 50704  # tf_mini mode counts


def dag_weight_matrix() -> np.ndarray:
    """Standardised-scale weights ``W[parent, child]`` in :data:`DAG_NODES` order."""
    index = {n.name: i for i, n in enumerate(DAG_NODES)}
    w = np.zeros((len(DAG_NODES), len(DAG_NODES)))
    for parent, child, weight in DAG_EDGES:
        assert index[parent] < index[child], "DAG_NODES must be topologically ordered"
        w[index[parent], index[child]] = weight
    return w


def _noise_sd(w: np.ndarray) -> np.ndarray:
    """Noise sd per node so that every standardised node has variance exactly 1."""
    p = w.shape[0]
    cov = np.zeros((p, p))
    sd = np.zeros(p)
    for j in range(p):
        explained = w[:j, j] @ cov[:j, :j] @ w[:j, j]
        if explained >= 1.0:
            raise ValueError(f"parents of {DAG_NODES[j].name} explain more than its variance")
        sd[j] = np.sqrt(1.0 - explained)
        cov[j, :j] = cov[:j, j] = w[:j, j] @ cov[:j, :j]
        cov[j, j] = 1.0
    return sd


def implied_correlation() -> np.ndarray:
    """The exact correlation matrix of the DAG features on the analysis scale (unclipped)."""
    w = dag_weight_matrix()
    b = np.linalg.inv(np.eye(len(w)) - w.T)  # u = B e
    cov = b @ np.diag(_noise_sd(w) ** 2) @ b.T
    d = np.sqrt(np.diag(cov))
    return cov / np.outer(d, d)


def dag_to_cpdag(
    nodes: list[str] | tuple[str, ...], edges: list[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """The CPDAG (Markov equivalence class) of a DAG: v-structures, then Meek's rules 1-3.

    Returns ``(from, to, type)`` with type ``-->`` or ``---`` (undirected edges listed once,
    endpoints in ``nodes`` order), sorted.
    """
    idx = {n: i for i, n in enumerate(nodes)}
    p = len(nodes)
    parents: dict[int, set[int]] = {j: set() for j in range(p)}
    for a, b in edges:
        parents[idx[b]].add(idx[a])
    adj = np.zeros((p, p), dtype=bool)
    for a, b in edges:
        adj[idx[a], idx[b]] = adj[idx[b], idx[a]] = True
    # directed[i, j] True means i --> j is compelled; undirected edges have neither set.
    directed = np.zeros((p, p), dtype=bool)
    for c in range(p):
        pa_c = sorted(parents[c])
        for i, u in enumerate(pa_c):
            for v in pa_c[i + 1 :]:
                if not adj[u, v]:
                    directed[u, c] = directed[v, c] = True

    def undirected(i: int, j: int) -> bool:
        return bool(adj[i, j] and not directed[i, j] and not directed[j, i])

    changed = True
    while changed:
        changed = False
        for i in range(p):
            for j in range(p):
                if not undirected(i, j):
                    continue
                # R1: k --> i --- j, k not adjacent to j  =>  i --> j
                r1 = any(directed[k, i] and not adj[k, j] for k in range(p) if k != j)
                # R2: i --> k --> j  =>  i --> j
                r2 = any(directed[i, k] and directed[k, j] for k in range(p))
                # R3: i --- k --> j, i --- l --> j, k and l not adjacent  =>  i --> j
                ks = [k for k in range(p) if undirected(i, k) and directed[k, j]]
                r3 = any(not adj[k, m] for a_, k in enumerate(ks) for m in ks[a_ + 1 :])
                if r1 or r2 or r3:
                    directed[i, j] = True
                    changed = True
    out: list[tuple[str, str, str]] = []
    for i in range(p):
        for j in range(p):
            if directed[i, j]:
                out.append((nodes[i], nodes[j], "-->"))
            elif i < j and undirected(i, j):
                out.append((nodes[i], nodes[j], "---"))
    return sorted(out)


def _float32(x: np.ndarray) -> np.ndarray:
    """Round to float32 precision, as the real file's values are (printed as float64)."""
    return x.astype(np.float32).astype(np.float64)


def simulate_track_features(
    rng: np.random.Generator, n_tracks: int
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Draw the feature columns of ``n_tracks`` tracks (no ids).

    Returns the columns (numpy arrays keyed by feature name; ``mode`` as a boolean ``major``
    array under the key ``"mode_major"``) and the fraction of clipped values per DAG feature.
    """
    w = dag_weight_matrix()
    noise_sd = _noise_sd(w)
    p = len(DAG_NODES)
    u = np.empty((n_tracks, p))
    e = rng.standard_normal((n_tracks, p)) * noise_sd
    for j in range(p):
        u[:, j] = u[:, :j] @ w[:j, j] + e[:, j]
    cols: dict[str, np.ndarray] = {}
    clipped: dict[str, float] = {}
    for j, node in enumerate(DAG_NODES):
        latent = node.mean + node.sd * u[:, j]
        value = np.exp(latent) if node.log_scale else latent
        low = -np.inf if node.low is None else node.low
        high = np.inf if node.high is None else node.high
        clipped[node.name] = float(np.mean((value < low) | (value > high)))
        cols[node.name] = _float32(np.clip(value, low, high))

    # Independent features with realistic marginals.
    cols["us_popularity_estimate"] = 100.0 - 10.0 * rng.beta(0.7, 3.5, n_tracks)
    years = 2018 - np.floor(rng.exponential(9.0, n_tracks))
    cols["release_year"] = np.clip(years, 1950, 2018).astype(np.int64)
    cols["key"] = rng.integers(0, 12, n_tracks)
    cols["tempo"] = _float32(np.clip(rng.normal(120.0, 28.0, n_tracks), 50.0, 220.0))
    sig_values = np.array([0, 1, 3, 4, 5])
    shares = np.array([_TIME_SIGNATURE_SHARE.get(int(s), 0.0) for s in sig_values])
    shares[sig_values == 4] = 1.0 - shares.sum()
    cols["time_signature"] = sig_values[rng.choice(len(sig_values), n_tracks, p=shares)]
    for i in range(8):
        cols[f"acoustic_vector_{i}"] = _float32(np.tanh(rng.normal(0.0, 0.45, n_tracks)))
    cols["mode_major"] = rng.random(n_tracks) < _MAJOR_SHARE
    return cols, clipped


def track_feature_table(track_ids: pa.Array, cols: dict[str, np.ndarray]) -> pa.Table:
    """The features as an Arrow table in the real file's column order (text types for CSV)."""
    arrays = []
    for name in TRACK_COLUMNS:
        if name == "track_id":
            arrays.append(track_ids)
        elif name == "mode":
            mode = np.where(cols["mode_major"], "major", "minor")
            arrays.append(pa.array(mode, pa.string()))
        else:
            arrays.append(pa.array(cols[name]))
    return pa.Table.from_arrays(arrays, names=list(TRACK_COLUMNS))


def dag_truth(clipped: dict[str, float]) -> dict[str, object]:
    """The DAG section of ``truth.json``: nodes, edges (both scales), CPDAG, correlations."""
    names = [n.name for n in DAG_NODES]
    sd = {n.name: n.sd for n in DAG_NODES}
    cpdag = dag_to_cpdag(names, [(a, b) for a, b, _ in DAG_EDGES])
    return {
        "scale": "log(x + 1e-10) for the features with log_scale true, raw value otherwise "
        "(the default transforms of the CPDAG workflow); the DAG is exact on this scale up to "
        "the clipped fractions and float32 rounding",
        "nodes": [
            {
                "name": n.name,
                "log_scale": n.log_scale,
                "mean": n.mean,
                "sd": n.sd,
                "clipped_fraction": clipped[n.name],
            }
            for n in DAG_NODES
        ],
        "edges": [
            {
                "from": a,
                "to": b,
                "weight_standardised": w,
                "weight": w * sd[b] / sd[a],  # on the analysis scale: d child / d parent
            }
            for a, b, w in DAG_EDGES
        ],
        "independent_features": list(INDEPENDENT_FEATURES),
        "cpdag_edges": [{"from": a, "to": b, "type": t} for a, b, t in cpdag],
        "implied_correlation": {
            "names": names,
            "matrix": np.round(implied_correlation(), 12).tolist(),
        },
    }
