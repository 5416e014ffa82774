"""The per-bucket (per-track-file) functions of the cpdag and cells passes, merged in order,
give the single-stream result (no Spark: the tasks run here).

The explore passes have theirs in ``test_explore_tasks.py``; Spark itself in
``test_spark_passes.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import skipmodel.engine
from skipmodel.cpdag.corr import (
    STORE_TRANSFORMS,
    _select_columns,
    correlation_from_batches,
    correlation_from_store,
)
from skipmodel.engine import EngineOptions
from skipmodel.load.tracks import TrackTable
from skipmodel.scale.aggregate import aggregate
from skipmodel.store.layout import open_store
from test_spark_passes import BINS, CELLS_SPEC, LAPLACE_SPEC
from test_spark_passes import store as store  # noqa: F401 - the fixture: 4 buckets, 2 track files


@pytest.fixture
def tasks_here(monkeypatch: pytest.MonkeyPatch) -> EngineOptions:
    """An engine whose tasks (one per item, as on Spark) run in this process."""
    calls: list[int] = []

    def run_here(options, function, items, *, label, shared=None):  # noqa: ANN001, ANN202
        calls.append(len(items))
        if shared is not None:
            return [function(item, shared) for item in items]
        return [function(item) for item in items]

    monkeypatch.setattr(skipmodel.engine, "run_tasks", run_here)
    engine = EngineOptions("spark", "local[1]")
    object.__setattr__(engine, "calls", calls)
    return engine


def test_per_file_comoments_equal_one_stream(store: Path) -> None:
    tracks = TrackTable(open_store(store))
    assert len(tracks.files) == 2 and tracks.n_tracks == 300
    names = _select_columns(tracks.column_names, STORE_TRANSFORMS)
    one = correlation_from_batches(tracks.batches(names), names, transforms=STORE_TRANSFORMS)
    merged = correlation_from_store(store)  # one task per file, merged in file order
    assert merged.n == one.n == 300 and merged.summary() == one.summary()
    assert np.allclose(merged.corr, one.corr, rtol=1e-12, atol=1e-15)
    assert np.allclose(merged.mean, one.mean, rtol=1e-12, atol=0)
    assert np.allclose(merged.std, one.std, rtol=1e-12, atol=0)


def test_bootstrap_streams_differ_by_file(store: Path) -> None:
    a = correlation_from_store(store, bootstrap=2, seed=4)
    b = correlation_from_store(store, bootstrap=2, seed=4)
    assert a.replicate_n == b.replicate_n and len(a.replicates) == 2
    assert a.replicate_n[0] != a.replicate_n[1]  # independent replicates
    assert np.array_equal(a.replicates[0], b.replicates[0])


def test_per_bucket_cells_equal_one_stream(store: Path, tasks_here: EngineOptions) -> None:
    one = aggregate(store, CELLS_SPEC, bins=BINS, progress=False)
    merged = aggregate(store, CELLS_SPEC, bins=BINS, progress=False, engine=tasks_here)
    assert tasks_here.calls == [4]  # type: ignore[attr-defined] - one task per bucket
    assert merged.n_rows == one.n_rows and merged.batches >= 4
    assert merged.table.equals(one.table)
    assert int(np.sum(merged.trials)) == merged.n_rows


def test_per_bucket_cells_of_a_sample(store: Path, tasks_here: EngineOptions) -> None:
    from skipmodel.scale.aggregate import sample_for_cells

    sample = sample_for_cells(CELLS_SPEC, fraction=0.6, seed=2, split="test")
    one = aggregate(store, CELLS_SPEC, bins=BINS, sample=sample, progress=False)
    merged = aggregate(
        store, CELLS_SPEC, bins=BINS, sample=sample, progress=False, engine=tasks_here
    )
    assert 0 < merged.n_rows == one.n_rows and merged.table.equals(one.table)


def test_per_bucket_laplace_sums_equal_one_pass(store: Path, tasks_here: EngineOptions) -> None:
    """A pass's sums per bucket (each over its own levels), added in bucket order, equal one
    pass over the whole sample to rounding (1e-12 relative: the same rows, another order)."""
    from skipmodel.model.data import StoreSample
    from skipmodel.scale.laplace.fit import run_pass
    from skipmodel.scale.laplace.path import StoreRows
    from skipmodel.scale.laplace.structure import build_latent_model
    from skipmodel.scale.laplace.tasks import BucketPasses

    rows = StoreRows(StoreSample(store), LAPLACE_SPEC)
    model = rows.model = build_latent_model(rows.first_design())
    passes = BucketPasses(tasks_here, str(store), rows.sample, LAPLACE_SPEC, rows.encoders, model)
    rng = np.random.default_rng(4)
    c = rng.normal(0, 0.3, model.q)
    nodes = rng.normal(0, 0.5, (model.n_levels, 9))
    one = run_pass(model, rows, c, nodes, None)
    rows.close()
    for _ in range(2):  # the first pass finds each bucket's levels, the second ships only those
        split = run_pass(model, passes, c, nodes, None)
        assert split.n_rows == one.n_rows == rows.n_rows and model.n_levels > 100
        assert split.ll == pytest.approx(one.ll, rel=1e-12)
        for name in ("g", "A", "g_t", "w_t", "H", "S"):
            np.testing.assert_allclose(getattr(split, name), getattr(one, name), rtol=1e-12)
    assert tasks_here.calls == [4, 4]  # type: ignore[attr-defined]
    assert sum(len(levels) for levels in passes._levels.values()) >= model.n_levels


def test_per_bucket_level_counts_give_the_stream_encoders(
    store: Path, tasks_here: EngineOptions
) -> None:
    """The encoders' pass as tasks: level counts per bucket added here, pilot rows from the
    head of the stream; the same encoders and row count as one pass."""
    from skipmodel.model.data import StoreSample
    from skipmodel.scale.minibatch import fit_encoders

    sample = StoreSample(store).rows_sample(LAPLACE_SPEC)
    one, n_one = fit_encoders(store, LAPLACE_SPEC, sample, pilot_rows=500)
    split, n_split = fit_encoders(store, LAPLACE_SPEC, sample, pilot_rows=500, engine=tasks_here)
    assert n_split == n_one > 1000 and tasks_here.calls == [4]  # type: ignore[attr-defined]
    assert split.levels == one.levels and max(len(m.levels) for m in one.levels.values()) > 100
    assert split.scalers == one.scalers


def test_per_bucket_passes_fit_a_session_term_as_the_local_passes_do(
    store: Path, tasks_here: EngineOptions
) -> None:
    """With a session term each bucket's sessions are numbered in the bucket and placed after
    the previous buckets' on the driver: the fit equals the local passes' (the same sums in
    another order) to 1e-8."""
    from skipmodel.model.data import StoreSample
    from skipmodel.model.spec import ModelSpec, Session
    from skipmodel.scale.laplace.fit import LaplaceOptions, fit_passes
    from skipmodel.scale.laplace.path import StoreRows
    from skipmodel.scale.laplace.structure import build_latent_model
    from skipmodel.scale.laplace.tasks import BucketPasses

    spec = ModelSpec(name="moods", terms=(*LAPLACE_SPEC.terms, Session()))
    rows = StoreRows(StoreSample(store), spec)
    model = rows.model = build_latent_model(rows.first_design())
    options = LaplaceOptions(draws=10, jobs=1)
    local = fit_passes(model, rows, options, progress=False)
    rows.close()
    passes = BucketPasses(tasks_here, str(store), rows.sample, spec, rows.encoders, model)
    split = fit_passes(model, passes, options, progress=False)
    assert local.converged and split.converged and len(local.passes) == len(split.passes)
    np.testing.assert_allclose(split.log_theta, local.log_theta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(split.mode, local.mode, rtol=1e-8, atol=1e-10)
    assert sum(passes._n_sessions.values()) > 100
