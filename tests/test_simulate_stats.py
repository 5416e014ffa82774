"""skipmodel simulate: the data carry the effects written in truth.json, and the feature DAG."""

from __future__ import annotations

import importlib.util
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skipmodel.simulate.mssd import TrueEffects, simulate
from skipmodel.simulate.tracks import DAG_NODES, dag_to_cpdag, implied_correlation
from skipmodel.store.schema import WEEKDAYS


def _read(archive: Path) -> pd.DataFrame:
    with tarfile.open(archive) as tar:
        frames = [pd.read_csv(tar.extractfile(m)) for m in tar.getmembers() if m.isfile()]
    return pd.concat(frames, ignore_index=True)


def _logs(out: Path) -> pd.DataFrame:
    log = _read(out / "training_set.tar.gz")
    log["prev_skip_2"] = log.groupby("session_id")["skip_2"].shift()
    return log


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict]:
    out = tmp_path_factory.mktemp("big")
    simulate(out, sessions=6000, seed=5, tracks=4000)
    return _logs(out), json.loads((out / "truth.json").read_text())


def test_overall_rates_are_realistic(big: tuple[pd.DataFrame, dict]) -> None:
    log, truth = big
    assert 0.45 < log["skip_2"].mean() < 0.58  # real log_mini: 0.517
    assert 0.70 < log["premium"].mean() < 0.90
    assert 0.22 < log["hist_user_behavior_is_shuffle"].mean() < 0.40
    assert (log["hist_user_behavior_n_seekfwd"] == 0).mean() > 0.9
    assert log["context_type"].value_counts().index[0] == "user_collection"
    done = log["not_skipped"]
    assert (log.loc[done, "hist_user_behavior_reason_end"] == "trackdone").mean() > 0.9
    assert (log.loc[log["skip_2"], "hist_user_behavior_reason_end"] == "fwdbtn").mean() > 0.6
    assert truth["empirical"]["skip_2_rate"] == pytest.approx(log["skip_2"].mean())
    # popular tracks are played often, so track pooling is identifiable
    assert log["track_id_clean"].value_counts().iloc[20] >= 100


def test_skip_after_skip_follows_the_markov_sign(tmp_path: Path) -> None:
    rates = {}
    for sign in (1.0, -1.0):
        out = tmp_path / f"m{sign}"
        simulate(
            out, sessions=1500, seed=2, tracks=2000, effects=TrueEffects(markov_prev_skip_2=sign)
        )
        log = _logs(out)
        by_prev = log.groupby("prev_skip_2")["skip_2"].mean()
        rates[sign] = by_prev[True] - by_prev[False]
    assert rates[1.0] > 0.12
    assert rates[-1.0] < -0.05


def test_weekday_and_hour_rates_follow_the_truth(big: tuple[pd.DataFrame, dict]) -> None:
    log, truth = big
    effects = truth["skip_model"]
    weekday = pd.to_datetime(log["date"]).dt.day_of_week
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    by_day = logit(log.groupby(weekday)["skip_2"].mean()).reindex(range(7))
    true_day = [effects["weekday_effect"][d] for d in WEEKDAYS]
    assert np.corrcoef(by_day, true_day)[0, 1] > 0.8
    by_hour = logit(log.groupby("hour_of_day")["skip_2"].mean()).reindex(range(24))
    true_hour = [effects["hour_effect"][str(h)] for h in range(24)]
    assert np.corrcoef(by_hour, true_hour)[0, 1] > 0.8
    by_pos = logit(log.groupby("session_position")["skip_2"].mean()).loc[2:]
    true_pos = [effects["position_effect"][str(p)] for p in range(2, 21)]
    assert np.corrcoef(by_pos, true_pos)[0, 1] > 0.8


def test_track_features_follow_the_dag(tmp_path: Path) -> None:
    n = 30_000
    simulate(tmp_path, sessions=50, seed=9, tracks=n)
    tf = _read(tmp_path / "track_features.tar.gz")
    dag = json.loads((tmp_path / "truth.json").read_text())["track_feature_dag"]
    names = [node["name"] for node in dag["nodes"]]
    x = np.column_stack(
        [
            np.log(tf[node["name"]] + 1e-10) if node["log_scale"] else tf[node["name"]]
            for node in dag["nodes"]
        ]
    )
    sample = np.corrcoef(x.T)
    true = np.array(dag["implied_correlation"]["matrix"])
    assert dag["implied_correlation"]["names"] == names
    np.testing.assert_allclose(true, implied_correlation(), atol=1e-10)
    # Fisher z of each sample correlation against the DAG's: within sampling error.
    z = np.arctanh(np.clip(sample, -0.999, 0.999)) - np.arctanh(np.clip(true, -0.999, 0.999))
    z *= np.sqrt(n - 3)
    assert np.abs(z[np.triu_indices(len(names), 1)]).max() < 4.5
    # the analysis-scale means and sds are the ones in the truth
    for j, node in enumerate(dag["nodes"]):
        assert abs(x[:, j].mean() - node["mean"]) < 5 * node["sd"] / np.sqrt(n)
        assert x[:, j].std() == pytest.approx(node["sd"], rel=0.03)
    # the independent features are uncorrelated with the DAG features
    other = tf[dag["independent_features"]].to_numpy(float)
    cross = np.corrcoef(np.column_stack([x, other]).T)[: len(names), len(names) :]
    assert np.abs(cross).max() * np.sqrt(n) < 4.5


def test_true_cpdag() -> None:
    names = [n.name for n in DAG_NODES]
    from skipmodel.simulate.tracks import DAG_EDGES

    cpdag = set(dag_to_cpdag(names, [(a, b) for a, b, _ in DAG_EDGES]))
    assert ("energy", "loudness", "-->") in cpdag  # collider energy -> loudness <- acousticness
    assert ("acousticness", "loudness", "-->") in cpdag
    assert ("loudness", "dyn_range_mean", "-->") in cpdag  # Meek rule 1
    assert ("acousticness", "organism", "---") in cpdag  # no compelled direction
    assert ("duration", "instrumentalness", "---") in cpdag
    assert len(cpdag) == len(DAG_EDGES)
    # textbook cases: a chain is undirected, a collider and its consequences are directed
    assert dag_to_cpdag(["a", "b", "c"], [("a", "b"), ("b", "c")]) == [
        ("a", "b", "---"),
        ("b", "c", "---"),
    ]
    assert dag_to_cpdag(["a", "b", "c", "d"], [("a", "c"), ("b", "c"), ("c", "d")]) == [
        ("a", "c", "-->"),
        ("b", "c", "-->"),
        ("c", "d", "-->"),
    ]


def _canonical(edges: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    return {(a, b, t) if t == "-->" or a < b else (b, a, t) for a, b, t in edges}


def test_pc_recovers_the_true_cpdag_from_simulated_tracks(tmp_path: Path) -> None:
    """The cpdag module, on the simulated features (usual transforms), finds the true CPDAG."""
    if importlib.util.find_spec("skipmodel.cpdag") is None:
        pytest.skip("skipmodel.cpdag is not available in this checkout")
    from skipmodel.cpdag import pc
    from skipmodel.store.schema import HEAVY_TAILED_FEATURES, TRACK_NUMERIC_FEATURES

    n = 30_000
    simulate(tmp_path, sessions=50, seed=21, tracks=n)
    tf = _read(tmp_path / "track_features.tar.gz")
    dag = json.loads((tmp_path / "truth.json").read_text())["track_feature_dag"]
    names = list(TRACK_NUMERIC_FEATURES)
    x = np.column_stack(
        [np.log(tf[c] + 1e-10) if c in HEAVY_TAILED_FEATURES else tf[c] for c in names]
    )
    result = pc(np.corrcoef(x.T), n, names=names, alpha=1e-10)
    expected = _canonical([(e["from"], e["to"], e["type"]) for e in dag["cpdag_edges"]])
    assert result.edge_set() == expected
    # and from the exact correlation of the DAG features
    dag_names = [node.name for node in DAG_NODES]
    exact = pc(implied_correlation(), 10**6, names=dag_names, alpha=1e-6)
    assert exact.edge_set() == expected


def test_simulated_data_ingest_with_nothing_rejected(tmp_path: Path) -> None:
    if importlib.util.find_spec("skipmodel.ingest") is None:
        pytest.skip("skipmodel.ingest is not available in this checkout yet")
    from skipmodel.ingest import ingest

    sim = simulate(tmp_path / "sim", sessions=120, seed=4, tracks=600, days=3)
    report = ingest([sim.training_set, sim.track_features], tmp_path / "store", progress=False)
    assert report.log_rows_read == sim.n_plays == report.log_rows_written
    assert report.log_rows_rejected == 0
    assert report.track_rows_read == sim.n_tracks == report.track_rows_written
    assert report.track_rows_rejected == 0
    # no integrity findings but dates away from the file's day (older sessions, by design)
    findings = {k: v for k, v in report.integrity.items() if v and "date" not in k}
    assert not findings
