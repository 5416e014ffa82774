"""explore, cpdag --store and fit --aggregate on Spark (``local[2]`` and the two-worker
standalone cluster) give the local engine's numbers.

The Spark tasks run the same per-bucket (per-track-file) functions as the local engine and the
driver merges their results in bucket (file) order, so the counts are equal and, here, so are
the sums of floats, to the bit: a float sum depends on the order of its terms, and that order
is the same on every engine. The tests still allow 1e-12 relative on floats, the contract of
issue 22, so that a merge in another order would not be a failure by itself.

A simulated store of 4 buckets and 2 track files (about 3,000 plays) and the real excerpts:
each verb is a few Spark tasks, seconds each once the context is up. The file takes about 2.5
minutes on a busy 2-core machine, most of it starting things once: the local[2] context
(~25 s), the standalone cluster (~20 s, shared with the engine's tests), and each executor's
Python importing the explore and Laplace kernels on its first task. Tests are grouped by
engine (the ``spark`` fixture) so each context starts once.
"""

from __future__ import annotations

import math
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skipmodel.cli import main
from skipmodel.cpdag.corr import correlation_from_store
from skipmodel.engine import EngineOptions
from skipmodel.explore import ExploreOptions, compute
from skipmodel.explore.passes import StoreSources
from skipmodel.explore.tasks import EngineTasks
from skipmodel.ingest import ingest
from skipmodel.model.spec import Fixed, Markov, ModelSpec, Pooled, Seasonal
from skipmodel.scale.aggregate import aggregate
from skipmodel.simulate.mssd import simulate
from skipmodel.store.layout import open_store
from spark_cluster import spark_cluster, spark_local  # noqa: F401 - fixtures
from test_explore_buckets import _numbers
from test_explore_tasks import track_numbers

ENGINES = ["spark_local", "spark_cluster"]
#: Every term discrete or binned: the cells pass applies.
CELLS_SPEC = ModelSpec(
    name="cells",
    terms=(
        Pooled(column="context_type"),
        Seasonal(weekday=True, hour="none", position=False),
        Markov(features=("danceability",), interactions=False, changes=False),
        Fixed(columns=("premium",)),
    ),
)
BINS = {"danceability": 3}
#: A pool of tracks (eliminated level by level) and the Markov terms: the Laplace passes.
LAPLACE_SPEC = ModelSpec(name="tracks", terms=(Pooled(column="track_id_clean"), Markov()))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark-passes")
    sim = simulate(root / "sim", sessions=200, seed=3, tracks=300, days=5)
    ingest([sim.training_set], root / "store", n_buckets=4, progress=False)
    # the track features in two files that share 50 tracks (the first row of each counts)
    with tarfile.open(sim.track_features) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".csv"))
        lines = tar.extractfile(member).read().decode().splitlines()  # type: ignore[union-attr]
    for k, rows in enumerate((lines[1:201], lines[151:])):
        path = root / f"tf_00000000000{k}.csv"
        path.write_text("\n".join([lines[0], *rows]) + "\n")
        ingest([path], root / "store", n_buckets=4, progress=False)
    return root / "store"


@pytest.fixture(scope="module", params=ENGINES)
def spark(request: pytest.FixtureRequest) -> EngineOptions:
    """Each engine in turn, the tests grouped by engine (one Spark context per group)."""
    return request.getfixturevalue(request.param)


def close(a: object, b: object, rel: float = 1e-12) -> bool:
    """Equal, floats within ``rel`` relative (nested lists, tuples and dicts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        x, y = float(a), float(b)  # type: ignore[arg-type]
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=rel, abs_tol=0)
    return a == b


def explore_numbers(store: Path, engine: EngineOptions | None) -> tuple[dict, dict]:
    options = ExploreOptions(top_tracks=10, bins=4, min_count=1, order_by="energy")
    sources = StoreSources(open_store(store))
    tasks = EngineTasks(engine, sources) if engine is not None else None
    found = compute(sources, options, tasks=tasks)
    found.log.transitions_total = found.transitions.total
    return _numbers(found), track_numbers(found)


def test_the_store_has_several_buckets_and_track_files(store):
    layout = open_store(store)
    assert len(list(layout.tracks.glob("*.parquet"))) == 2
    assert sum(1 for b in layout.sessions.iterdir() if any(b.iterdir())) == 4


def test_cli_verbs_on_local_spark(store, tmp_path, spark_local):  # noqa: F811 - fixture
    """The verbs take --engine spark --spark-master URL and write the local engine's files."""
    spark = ["--engine", "spark", "--spark-master", spark_local.master]
    for name, extra in (("local", []), ("spark", spark)):
        args = ["--store", str(store), "--out", str(tmp_path / f"explore-{name}")]
        assert main(["explore", *args, "--views", "seasonality,transitions", *extra]) == 0
        args = ["--store", str(store), "--out", str(tmp_path / f"cpdag-{name}")]
        assert main(["cpdag", *args, *extra]) == 0
    for verb, files in (("explore", ("seasonality.csv", "transitions_counts.csv")),
                        ("cpdag", ("edges.csv",))):  # fmt: skip
        for file in files:
            local = (tmp_path / f"{verb}-local" / file).read_bytes()
            assert (tmp_path / f"{verb}-spark" / file).read_bytes() == local, file


def test_real_excerpts_on_local_spark(mssd_dir, tmp_path, spark_local):  # noqa: F811 - fixture
    """The real MSSD excerpts (``../shared/fixtures/mssd``): the same numbers on Spark."""
    store = tmp_path / "store"
    inputs = [
        mssd_dir / "log_mini_first11sessions.csv",
        mssd_dir / "mssd_trainset_partial_rows_1180.csv",
    ]
    ingest(
        [*inputs, mssd_dir / "tf_mini_subset_for_first11sessions.csv"],
        store,
        n_buckets=4,
        progress=False,
    )
    log, tracks = explore_numbers(store, None)
    assert log["rows"] > 1000
    spark_log, spark_tracks = explore_numbers(store, spark_local)
    assert close(spark_log, log) and close(spark_tracks, tracks)
    here, there = (correlation_from_store(store, engine=e) for e in (None, spark_local))
    assert here.summary() == there.summary()
    assert np.allclose(there.corr, here.corr, rtol=1e-12, atol=0)
    cells = [
        aggregate(store, CELLS_SPEC, bins=BINS, progress=False, engine=e)
        for e in (None, spark_local)
    ]
    assert cells[1].table.equals(cells[0].table) and cells[0].n_rows > 0


def test_explore_passes(store, spark):
    log, tracks = explore_numbers(store, None)
    assert log["rows"] > 1000 and log["transitions"] > 0
    spark_log, spark_tracks = explore_numbers(store, spark)
    assert close(spark_log, log) and close(spark_tracks, tracks)


def test_cpdag_comoments(store, spark):
    here = correlation_from_store(store, bootstrap=3, seed=1)
    there = correlation_from_store(store, bootstrap=3, seed=1, engine=spark)
    assert here.n == there.n > 100 and here.summary() == there.summary()
    assert np.allclose(there.corr, here.corr, rtol=1e-12, atol=0)
    for a, b in zip(there.replicates, here.replicates, strict=True):
        assert np.allclose(a, b, rtol=1e-12, atol=0)
    assert there.replicate_n == here.replicate_n


def test_cells(store, spark):
    here = aggregate(store, CELLS_SPEC, bins=BINS, progress=False)
    there = aggregate(store, CELLS_SPEC, bins=BINS, progress=False, engine=spark)
    assert here.n_rows == there.n_rows > 1000 and here.n_cells > 10
    assert there.table.equals(here.table)  # same cells, same order, same counts


def laplace_fits(spec: ModelSpec, store: Path, engine: EngineOptions) -> tuple[Any, Any]:
    """The store's Laplace fit here and on ``engine``."""
    from skipmodel.model.data import StoreSample
    from skipmodel.model.fitting import fit

    here = fit(spec, StoreSample(store), method="laplace", draws=50)
    there = fit(
        spec,
        StoreSample(store),
        method="laplace",
        draws=50,
        engine="spark",
        spark_master=engine.master,
    )
    return here, there


def test_laplace_fit(store, spark):
    """Every pass on Spark, the steps on the driver: the local fit to rounding. The passes add
    the same rows' sums in another order (1e-15 relative, test_pass_tasks), which the Newton
    and hyper steps carry into the posterior at about 1e-12; 1e-9 leaves room and would
    still catch a lost bucket or a level's sums added to another level (changes of 1e-3)."""
    here, there = laplace_fits(LAPLACE_SPEC, store, spark)
    assert there.options.engine == "spark" and here.options.engine is None
    assert there.diagnostics["passes"] == here.diagnostics["passes"]
    assert there.manifest["n_rows"] == here.manifest["n_rows"] > 1000
    for key in ("hyper_mode", "hyper_log_sd"):
        a, b = there.diagnostics[key], here.diagnostics[key]
        assert close(a, b, 1e-9), (key, a, b)
    levels_a, levels_b = there.posterior["levels"], here.posterior["levels"]
    for name in levels_b.data_vars:
        np.testing.assert_allclose(levels_a[name], levels_b[name], rtol=1e-9, atol=1e-12)
    for name in here.posterior["posterior"].data_vars:
        a, b = there.posterior["posterior"][name], here.posterior["posterior"][name]
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_laplace_fit_of_a_session_term(store, spark_local):  # noqa: F811 - fixture
    """Sessions numbered per bucket on the executors, placed on the driver: the local fit."""
    from skipmodel.model.spec import Session

    spec = ModelSpec(name="moods", terms=(*LAPLACE_SPEC.terms, Session()))
    here, there = laplace_fits(spec, store, spark_local)
    assert there.diagnostics["passes"] == here.diagnostics["passes"]
    a, b = there.diagnostics["hyper_mode"], here.diagnostics["hyper_mode"]
    assert "session_sigma" in a and close(a, b, 1e-8), (a, b)


def test_engine_refused_where_the_pass_cannot_use_it(store, tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["fit", "--store", str(store), "--model", "baseline", "--out", out]
    assert main([*base, "--engine", "spark"]) != 0
    assert "--engine is not used by" in capsys.readouterr().err
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n1,2\n2,3\n3,5\n4,4\n5,6\n")
    assert main(["cpdag", "--csv", str(csv), "--out", out, "--engine", "spark"]) != 0
    assert "--store" in capsys.readouterr().err
