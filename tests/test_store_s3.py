"""A store on S3 (moto's server on 127.0.0.1, opened by pyarrow's own S3 client): ``skipmodel
ingest --store s3://...`` commits by manifest and holds what a local store holds, and the
readers (loaders, explore, sample, rejected rows) read it alike."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from ingest_helpers import simulated_inputs
from s3_server import s3_server  # noqa: F401 - fixture
from skipmodel.cli import main
from skipmodel.explore import ExploreOptions, compute
from skipmodel.explore.passes import store_sources
from skipmodel.explore.tasks import EngineTasks
from skipmodel.ingest import ingest
from skipmodel.load.loaders import load_table
from skipmodel.store.location import store_path
from skipmodel.store.rejected import read_rejected
from spark_cluster import spark_local  # noqa: F401 - fixture
from store_contents import assert_same_contents

BUCKETS = 4


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return simulated_inputs(tmp_path_factory.mktemp("s3-inputs"))


def test_a_store_on_s3_equals_the_local_store(tmp_path, inputs, s3_server, capsys):  # noqa: F811
    local = tmp_path / "local"
    ingest([inputs], local, n_buckets=BUCKETS, progress=False)
    uri = s3_server.uri("skipmodel-test/stores/one")
    argv = ["ingest", str(inputs), "--store", uri, "--buckets", str(BUCKETS), "--quiet"]
    assert main(argv) == 0
    assert "rows read" in capsys.readouterr().out
    root = store_path(uri)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["commit"] == "manifest"  # no atomic rename on S3
    assert_same_contents(uri, local)
    assert load_table(uri).equals(load_table(local))
    assert read_rejected(uri).equals(read_rejected(local))
    assert not (root / ".ingest.lock").exists()
    options = ExploreOptions(jobs=1)
    got = compute(store_sources(uri, options), options)
    want = compute(store_sources(local, options), options)
    assert repr(got.log.overview) == repr(want.log.overview)
    out = tmp_path / "sample.parquet"
    assert main(["sample", "--store", uri, "--fraction", "0.5", "--out", str(out)]) == 0
    local_out = tmp_path / "local-sample.parquet"
    assert (
        main(["sample", "--store", str(local), "--fraction", "0.5", "--out", str(local_out)]) == 0
    )
    assert pq.read_table(out).equals(pq.read_table(local_out))
    # a second ingest of the same files adds nothing
    assert main([*argv[:4], "--quiet"]) == 0
    assert_same_contents(uri, local)


def test_a_bad_s3_location_is_one_line(tmp_path, inputs, s3_server, capsys):  # noqa: F811
    uri = s3_server.uri("skipmodel-test/nothing-here")
    assert main(["explore", "--store", uri, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a skipmodel store" in err and len(err.splitlines()) == 1
    # a bucket that does not exist, and a server that does not answer: pyarrow's reason
    missing = s3_server.uri("no-such-bucket/store").replace("&allow_bucket_creation=true", "")
    assert main(["ingest", str(inputs), "--store", missing, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not found" in err and "check the location" in err and len(err.splitlines()) == 1
    down = uri.replace(f":{s3_server.port}", ":9")
    assert main(["explore", "--store", down, "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert "check the location" in err and len(err.splitlines()) == 1


def test_spark_writes_and_reads_a_store_on_s3(tmp_path, inputs, s3_server, spark_local):  # noqa: F811
    """Spark tasks open the S3 store themselves (the store's filesystem pickles with its path):
    the ingest's file and bucket tasks write it, explore's bucket tasks read it."""
    local = tmp_path / "local"
    ingest([inputs], local, n_buckets=BUCKETS, progress=False)
    uri = s3_server.uri("skipmodel-test/stores/spark")
    ingest([inputs], uri, n_buckets=BUCKETS, progress=False, engine=spark_local)
    assert_same_contents(uri, local)
    options = ExploreOptions(jobs=1)
    sources = store_sources(uri, options)
    got = compute(sources, options, tasks=EngineTasks(spark_local, sources))
    want = compute(store_sources(local, options), options)
    assert repr(got.log.overview) == repr(want.log.overview)


def test_fit_predict_and_cpdag_read_a_store_on_s3(tmp_path, inputs, s3_server):  # noqa: F811
    """A Laplace fit, its predictions and the PC algorithm's correlations from the S3 store
    equal those from the local one (the run records the store's URI and reopens it)."""
    import numpy as np

    from skipmodel.model.fitting import load_run

    local = tmp_path / "local"
    ingest([inputs], local, n_buckets=BUCKETS, progress=False)
    uri = s3_server.uri("skipmodel-test/stores/fit")
    ingest([inputs], uri, n_buckets=BUCKETS, progress=False)
    runs = {}
    for name, store in (("s3", uri), ("local", str(local))):
        runs[name] = tmp_path / f"run-{name}"
        argv = ["fit", "--store", store, "--model", "markov", "--method", "laplace"]
        assert main([*argv, "--draws", "50", "--out", str(runs[name])]) == 0
    a, b = load_run(runs["s3"]), load_run(runs["local"])
    assert a.manifest["store"] == uri
    for name in b.posterior["posterior"].data_vars:
        np.testing.assert_allclose(a.posterior["posterior"][name], b.posterior["posterior"][name])
    out = tmp_path / "p.parquet"
    assert main(["predict", str(runs["s3"]), "--store", uri, "--out", str(out)]) == 0
    local_out = tmp_path / "p-local.parquet"
    assert (
        main(["predict", str(runs["local"]), "--store", str(local), "--out", str(local_out)]) == 0
    )
    assert pq.read_table(out).equals(pq.read_table(local_out))
    for name, store in (("s3", uri), ("local", str(local))):
        argv = ["cpdag", "--store", store, "--out", str(tmp_path / f"pc-{name}"), "--no-log", "all"]
        assert main(argv) == 0
    summaries = [
        json.loads((tmp_path / f"pc-{n}" / "summary.json").read_text()) for n in ("s3", "local")
    ]
    assert summaries[0]["variables"] == summaries[1]["variables"]
    assert summaries[0]["data"]["n"] == summaries[1]["data"]["n"] > 0
