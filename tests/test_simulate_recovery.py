"""truth.json is the model that generated the data: a plain logistic regression recovers it.

Reads only the written files (the CSVs in the archives, truth.json, truth_tracks.parquet),
builds the design the truth describes, puts the known track intercepts and smooth effects in an
offset, fits the rest by maximum likelihood (IRLS) and compares every block of effects with the
truth by a Wald test. A deliberately wrong truth (Markov effect dropped) must fail the same
check.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from skipmodel.simulate.mssd import simulate
from skipmodel.store.schema import CONTEXT_TYPES, WEEKDAYS


def _read(archive: Path) -> pd.DataFrame:
    with tarfile.open(archive) as tar:
        frames = [pd.read_csv(tar.extractfile(m)) for m in tar.getmembers() if m.isfile()]
    return pd.concat(frames, ignore_index=True)


def _irls(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    beta = np.zeros(x.shape[1])
    for _ in range(30):
        eta = offset + x @ beta
        p = 1 / (1 + np.exp(-eta))
        w = p * (1 - p)
        hessian = x.T @ (x * w[:, None])
        step = np.linalg.solve(hessian, x.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta, np.linalg.inv(hessian)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    out = tmp_path_factory.mktemp("recovery")
    simulate(out, sessions=5000, seed=17, tracks=6000)
    truth = json.loads((out / "truth.json").read_text())["skip_model"]
    log = _read(out / "training_set.tar.gz")
    tf = _read(out / "track_features.tar.gz").set_index("track_id")
    track = pq.read_table(out / "truth_tracks.parquet").to_pandas().set_index("track_id")

    log["prev_skip_2"] = log.groupby("session_id")["skip_2"].shift()
    log["prev_track"] = log.groupby("session_id")["track_id_clean"].shift()
    d = truth["danceability"]
    z = (tf["danceability"] - d["standardise_mean"]) / d["standardise_sd"]
    log["z"] = z.reindex(log["track_id_clean"]).to_numpy()
    log["z_prev"] = z.reindex(log["prev_track"]).fillna(0.0).to_numpy()
    later = log["session_position"].to_numpy() > 1

    # offset: the known track intercepts and smooth effects (interpolated on the truth's grids)
    offset = track["intercept"].reindex(log["track_id_clean"]).to_numpy()
    keep = np.ones(len(log), dtype=bool)
    for name, smooth in truth["smooth_effects"].items():
        x = tf[name].reindex(log["track_id_clean"]).to_numpy()
        x = np.log(x) if smooth["scale"] == "log" else x
        grid = np.array(smooth["grid"])
        keep &= (x >= grid[0]) & (x <= grid[-1])
        offset = offset + np.interp(x, grid, smooth["effect"])

    weekday = pd.to_datetime(log["date"]).dt.day_of_week.to_numpy()
    blocks: dict[str, list[np.ndarray]] = {}
    truths: dict[str, list[float]] = {}

    def add(block: str, column: np.ndarray, true_value: float) -> None:
        blocks.setdefault(block, []).append(column.astype(float))
        truths.setdefault(block, []).append(true_value)

    # reference levels: Mon, hour 0, position 20, user_collection; contrasts against them
    wd = [truth["weekday_effect"][w] for w in WEEKDAYS]
    for k in range(1, 7):
        add("weekday", weekday == k, wd[k] - wd[0])
    hours = log["hour_of_day"].to_numpy()
    for h in range(1, 24):
        add("hour", hours == h, truth["hour_effect"][str(h)] - truth["hour_effect"]["0"])
    pos = log["session_position"].to_numpy()
    pe = truth["position_effect"]
    for p in range(1, 20):
        extra = truth["markov"]["no_previous"] if p == 1 else 0.0  # confounded at position 1
        add("position", pos == p, pe[str(p)] + extra - pe["20"])
    ce = truth["context_type_effect"]
    for c in CONTEXT_TYPES[1:]:
        add("context_type", log["context_type"].to_numpy() == c, ce[c] - ce[CONTEXT_TYPES[0]])
    add("premium", log["premium"].to_numpy(), truth["premium_effect"])
    add("shuffle", log["hist_user_behavior_is_shuffle"].to_numpy(), truth["shuffle_effect"])
    prev = (log["prev_skip_2"] == True).to_numpy()  # noqa: E712 - object column with NaN
    add("markov", prev & later, truth["markov"]["prev_skip_2"])
    zz = log["z"].to_numpy()
    zp = log["z_prev"].to_numpy()
    add("danceability", zz, d["main_effect"])
    add("danceability", np.where(later, zz * zp, 0.0), d["prev_x_current"])
    add("danceability", np.where(later, np.abs(zz - zp), 0.0), d["abs_change"])

    intercept_truth = (
        truth["intercept"] + wd[0] + truth["hour_effect"]["0"] + pe["20"] + ce[CONTEXT_TYPES[0]]
    )
    names = list(blocks)
    x = np.column_stack([np.ones(len(log))] + [c for n in names for c in blocks[n]])
    beta, cov = _irls(x[keep], log["skip_2"].to_numpy(float)[keep], offset[keep])
    sizes = [len(blocks[n]) for n in names]
    starts = np.cumsum([1, *sizes[:-1]])
    est = {"intercept": (beta[:1], cov[:1, :1])}
    true = {"intercept": np.array([intercept_truth])}
    for n, s, k in zip(names, starts, sizes, strict=True):
        est[n] = (beta[s : s + k], cov[s : s + k, s : s + k])
        true[n] = np.array(truths[n])
    return est, true, beta, cov


def _wald_p(estimate: np.ndarray, cov: np.ndarray, truth: np.ndarray) -> float:
    diff = estimate - truth
    chi2 = float(diff @ np.linalg.solve(cov, diff))
    return float(stats.chi2.sf(chi2, len(diff)))


def test_every_block_of_the_truth_is_recovered(fitted) -> None:
    est, true, _, _ = fitted
    p_values = {name: _wald_p(*est[name], true[name]) for name in true}
    # 12 blocks: Bonferroni at 0.001 overall leaves a false alarm rate far below one in 1000
    assert min(p_values.values()) > 1e-3 / len(p_values), p_values


def test_a_wrong_truth_fails_the_same_check(fitted) -> None:
    est, true, _, _ = fitted
    assert _wald_p(*est["markov"], np.array([0.0])) < 1e-6
    wrong_hours = -true["hour"]  # the hour curve upside down
    assert _wald_p(*est["hour"], wrong_hours) < 1e-6
