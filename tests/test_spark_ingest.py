"""``ingest --engine spark`` gives the local engine's store: same files, rows, rejected rows and
manifest counts, on local[2] and on a two-worker standalone cluster; and the same recovery
after the driver is killed mid-ingest."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingest_helpers import rejected, sessions, simulated_inputs, store_files
from skipmodel.cli import main
from skipmodel.engine import EngineOptions
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from spark_cluster import spark_cluster, spark_local  # noqa: F401 - fixtures
from store_contents import manifest_facts

BUCKETS = 4
FLUSH = 300


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Simulated log and track files, extracted, with corrupt rows, a gzipped file, an empty
    file, a copy under another name and a README."""
    return simulated_inputs(tmp_path_factory.mktemp("spark-inputs"))


def snapshot(store: Path) -> tuple[dict, dict]:
    facts = manifest_facts(store)
    return store_files(store), {**facts, "order": list(facts["sources"])}


def assert_same_store(got: Path, want: Path) -> None:
    files_got, man_got = snapshot(got)
    files_want, man_want = snapshot(want)
    assert files_got.keys() == files_want.keys()
    for key in files_want:
        assert files_got[key].equals(files_want[key]), key
    assert man_got == man_want
    assert sessions(got).equals(sessions(want))
    order = [("source", "ascending"), ("line", "ascending")]
    rejected_got, rejected_want = rejected(got), rejected(want)
    if rejected_want is None:
        assert rejected_got is None
    else:
        assert rejected_got is not None
        assert rejected_got.sort_by(order).equals(rejected_want.sort_by(order))
    assert not (got / ".staging").exists()
    assert not list(got.rglob("*.tmp"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs) -> Path:
    store = tmp_path_factory.mktemp("spark-ref") / "store"
    report = ingest([inputs], store, n_buckets=BUCKETS, flush_rows=FLUSH, progress=False)
    assert report.log_rows_rejected >= 4 and report.already_ingested
    return store


def test_archives_are_refused_in_one_line(tmp_path, inputs):
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(inputs, arcname="x")
    spark = EngineOptions("spark", "local[1]")
    for given in (archive, tmp_path):
        with pytest.raises(SkipmodelError, match="extract it .* or use --engine local"):
            ingest([given], tmp_path / "store", engine=spark)
    assert not (tmp_path / "store").exists()


def test_nothing_to_ingest_creates_no_store(tmp_path, spark_local):  # noqa: F811
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.csv").write_bytes(b"")
    (folder / "blank.csv").write_bytes(b"\n\n")
    with pytest.raises(SkipmodelError, match="nothing to ingest"):
        ingest([folder], tmp_path / "store", engine=spark_local)
    assert not (tmp_path / "store").exists()


def _readme_spark_block() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Spark", 1)[1].split("\n## ", 1)[0]
    return section.split("```py\n", 1)[1].split("```", 1)[0]


def test_readme_spark_sql_reads_the_store(reference, spark_local, capsys):  # noqa: F811
    """The README's Spark SQL example (skip rate by hour of day) runs on a store and agrees
    with the store read by pyarrow."""
    from skipmodel.engine.spark import spark_session

    block = _readme_spark_block()
    assert 'STORE = "data/store"' in block
    # Spark resolves a relative path against its JVM's working folder (where it started)
    block = block.replace('STORE = "data/store"', f'STORE = "file://{reference}"')
    namespace = {"spark": spark_session(spark_local.spark_master())}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    plays = sessions(reference)
    hours = plays.column("hour_of_day").to_numpy()
    skips = plays.column("skip_2").to_numpy(zero_copy_only=False)
    got = {row.hour_of_day: (row.plays, row.skip_rate) for row in namespace["by_hour"]}
    assert sum(n for n, _ in got.values()) == plays.num_rows
    for hour, (n, rate) in got.items():
        assert n == (hours == hour).sum()
        assert rate == pytest.approx(skips[hours == hour].mean(), rel=1e-12)
    assert "skipped" in capsys.readouterr().out


def test_readme_committed_files_read_by_spark(tmp_path, inputs, spark_local):  # noqa: F811
    """The README's reading of a manifest-commit store by Spark, from its committed files: a
    stray file a killed writer left is not counted."""
    from skipmodel.engine.spark import spark_session
    from skipmodel.store import committed_files

    store = tmp_path / "store"
    ingest([inputs], store, n_buckets=BUCKETS, flush_rows=FLUSH, progress=False, commit="manifest")
    bucket = next((store / "sessions").iterdir())
    shutil.copy(next(bucket.glob("part-*.parquet")), bucket / f"part-{'c' * 32}.parquet")
    spark = spark_session(spark_local.spark_master())
    STORE = f"file://{store}"  # noqa: N806 - as the README writes it
    files = [f"file://{f}" for f in committed_files(store)]
    plays = spark.read.option("basePath", STORE + "/sessions").parquet(*files)
    assert (
        plays.count()
        == sessions(store).num_rows - pq.read_metadata(bucket / f"part-{'c' * 32}.parquet").num_rows
    )
    assert "session_bucket" in plays.columns


@pytest.mark.parametrize("which", ["spark_local", "spark_cluster"])
def test_spark_ingest_equals_local(tmp_path, inputs, reference, which, request):
    engine = request.getfixturevalue(which)
    store = tmp_path / "store"
    report = ingest([inputs], store, n_buckets=BUCKETS, flush_rows=FLUSH, engine=engine)
    assert_same_store(store, reference)
    assert report.log_rows_rejected >= 4 and report.already_ingested
    again = ingest([inputs], store, flush_rows=FLUSH, engine=engine)  # idempotent
    assert again.already_ingested and len(again.already_ingested) == len(again.sources)
    assert_same_store(store, reference)
    if which == "spark_local":  # without the compaction: the parts and counts alike
        loose = {}
        for name, given in (("local", None), ("spark", engine)):
            loose[name] = tmp_path / f"loose-{name}"
            ingest([inputs], loose[name], n_buckets=BUCKETS, flush_rows=FLUSH, compact=False,
                   progress=False, engine=given)  # fmt: skip
        assert_same_store(loose["spark"], loose["local"])


def test_spark_ingest_of_real_excerpts_by_the_cli(tmp_path, mssd_dir, spark_cluster, capsys):  # noqa: F811
    folder = tmp_path / "excerpts"
    folder.mkdir()
    for name in ("log_mini_first11sessions.csv", "tf_mini_subset_for_first11sessions.csv"):
        shutil.copy(mssd_dir / name, folder / name)
    text = (mssd_dir / "mssd_trainset_partial_rows_1180.csv").read_bytes()
    with gzip.open(folder / "log_0_20180716_000000000000.csv.gz", "wb") as out:
        out.write(text)
    want = tmp_path / "local"
    assert main(["ingest", str(folder), "--store", str(want), "--buckets", "3", "--quiet"]) == 0
    got = tmp_path / "spark"
    argv = ["ingest", str(folder), "--store", f"file://{got}", "--buckets", "3", "--quiet"]
    argv += ["--engine", "spark", "--spark-master", spark_cluster.master]
    assert main(argv) == 0
    assert "session rows" in capsys.readouterr().out
    assert_same_store(got, want)


KILL_SCRIPT = (
    "import sys; from skipmodel.engine import EngineOptions; from skipmodel.ingest import ingest; "
    f"ingest([sys.argv[2]], sys.argv[1], n_buckets={BUCKETS}, flush_rows={FLUSH}, "
    "progress=False, engine=EngineOptions('spark', sys.argv[3]))"
)


def _spark_run(store: Path, inputs: Path, master: str) -> subprocess.Popen:
    env = {**os.environ, "CI": "1"}
    cmd = [sys.executable, "-c", KILL_SCRIPT, str(store), str(inputs), master]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_driver_then_rerun_gives_the_same_store(
    tmp_path,
    inputs,
    reference,
    spark_cluster,  # noqa: F811
):
    """The driver is killed once sources are committing (executors on other JVMs may still be
    staging); the re-run recovers and ends with the uninterrupted store."""
    from skipmodel.engine import spark

    spark.stop()  # this process's application would hold every core of the cluster
    store = tmp_path / "store"
    proc = _spark_run(store, inputs, spark_cluster.master)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        manifest = store / "manifest.json"
        if manifest.is_file() and json.loads(manifest.read_text() or "{}").get("sources"):
            break
        time.sleep(0.05)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert running, f"the ingest ended before it could be killed: {err.decode()}"
    done = _spark_run(store, inputs, spark_cluster.master)
    _, err = done.communicate(timeout=180)
    assert done.returncode == 0, err.decode()
    assert err == b""  # nothing of Spark on the console
    assert_same_store(store, reference)
