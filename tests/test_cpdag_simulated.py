"""The CPDAG of simulated track features recovers the simulator's true CPDAG (truth.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skipmodel.cpdag import correlation_from_store, pc
from skipmodel.cpdag.pc import _canonical

simulate = pytest.importorskip("skipmodel.simulate.mssd")
ingest = pytest.importorskip("skipmodel.ingest")


@pytest.fixture(scope="module")
def simulated_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sim")
    result = simulate.simulate(root / "raw", sessions=60, tracks=30_000, seed=3, days=1)
    ingest.ingest([result.track_features, result.training_set], root / "store", progress=False)
    return root / "store", json.loads(result.truth.read_text())["track_feature_dag"]


def test_recovers_the_simulators_true_cpdag(simulated_store: tuple[Path, dict]) -> None:
    store, truth = simulated_store
    data = correlation_from_store(store)  # default transforms: the simulator's analysis scale
    assert data.n == 30_000 and data.rows_dropped == 0
    fit = pc(data.corr, data.n, names=data.names, alpha=1e-4)
    expected = {_canonical(e["from"], e["to"], e["type"]) for e in truth["cpdag_edges"]}
    assert fit.edge_set() == expected
    isolated = set(data.names) - {n for e in fit.edges for n in (e.source, e.target)}
    assert isolated == set(truth["independent_features"])


def test_without_the_log_transform_the_graph_is_wrong(simulated_store: tuple[Path, dict]) -> None:
    # A deliberately wrong analysis scale must fail the same check.
    from skipmodel.cpdag.corr import Transforms

    store, truth = simulated_store
    data = correlation_from_store(store, transforms=Transforms(drop=("track_id", "mode")))
    fit = pc(data.corr, data.n, names=data.names, alpha=1e-4)
    expected = {_canonical(e["from"], e["to"], e["type"]) for e in truth["cpdag_edges"]}
    assert fit.edge_set() != expected
