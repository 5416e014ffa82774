"""The engine core: run_tasks / iter_tasks on local, local[2] and a standalone cluster, and the
one-line refusals of bad Spark setups."""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from skipmodel.engine import EngineOptions, add_engine_arguments, engine_options, run_tasks
from skipmodel.engine.tasks import iter_tasks
from skipmodel.errors import SkipmodelError
from spark_cluster import require_java, spark_cluster, spark_home, spark_local  # noqa: F401


def _worker_facts(k: int) -> tuple[int, int, str, str]:
    """Run on an executor: the item, its square, the Python and a forwarded variable."""
    return k, k * k, sys.executable, os.environ.get("NUMBA_CACHE_DIR", "")


def _fails(k: int) -> int:
    if k == 2:
        raise SkipmodelError(f"item {k} is bad")
    return k


def test_local_engine_runs_in_order_in_this_process():
    facts = run_tasks(EngineOptions(), _worker_facts, [3, 1, 2], label="facts")
    assert [f[:2] for f in facts] == [(3, 9), (1, 1), (2, 4)]
    assert list(iter_tasks(EngineOptions(), abs, [-2, 1], label="abs")) == [2, 1]


def test_arguments_and_default_master(monkeypatch):
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    options = engine_options(parser.parse_args(["--engine", "spark"]))
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    assert options == EngineOptions("spark") and options.spark_master() == "local[*]"
    monkeypatch.setenv("SPARK_MASTER", "spark://h:7077")
    assert options.spark_master() == "spark://h:7077"
    given = engine_options(parser.parse_args(["--engine", "spark", "--spark-master", "local[2]"]))
    assert given.spark_master() == "local[2]"
    with pytest.raises(SkipmodelError, match="needs --engine spark"):
        engine_options(parser.parse_args(["--spark-master", "local[2]"]))
    assert engine_options(parser.parse_args([])) == EngineOptions()


def test_unanswering_master_is_one_line_within_seconds():
    spark_home()
    require_java()  # else the refusal is the missing Java's
    start = time.monotonic()
    with pytest.raises(SkipmodelError, match="does not answer"):
        run_tasks(EngineOptions("spark", "spark://127.0.0.1:9"), abs, [1], label="probe")
    assert time.monotonic() - start < 10


class _NoExecutors:
    """A SparkContext's face as ``_wait_for_executors`` sees it: the driver alone, no executor."""

    def __init__(self) -> None:
        self.stopped = False
        self._jsc = self

    def sc(self) -> _NoExecutors:
        return self

    def getExecutorMemoryStatus(self) -> _NoExecutors:  # noqa: N802 - the JVM's name
        return self

    def size(self) -> int:
        return 1  # the driver's own block manager

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize(("alive", "reason"), [(0, "it has no worker"), (2, "no worker with free")])
def test_a_master_without_free_workers_is_refused_as_its_web_ui_says(monkeypatch, alive, reason):
    """No worker: refused within seconds, once the master's web UI says so (not after the 90 s
    an executor may take on a busy cluster); workers but no executor: after the busy wait."""
    from skipmodel.engine import spark as engine_spark

    class UI(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's name
            body = json.dumps({"aliveworkers": alive}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), UI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SPARK_MASTER_WEBUI_PORT", str(server.server_port))
    monkeypatch.setattr(engine_spark, "NO_WORKER_WAIT_SECONDS", 0.3)
    monkeypatch.setattr(engine_spark, "BUSY_WAIT_SECONDS", 1.0)
    sc = _NoExecutors()
    start = time.monotonic()
    try:
        with pytest.raises(SkipmodelError, match=f"gave no executor within .*{reason}") as err:
            engine_spark._wait_for_executors(sc, "spark://127.0.0.1:7077")
    finally:
        server.shutdown()
        server.server_close()
    assert sc.stopped and len(str(err.value).splitlines()) == 1
    assert time.monotonic() - start < (1.0 if alive == 0 else 3.0)
    assert engine_spark.master_workers("spark://127.0.0.1:7077") is None  # the UI is gone


def _cli(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    script = (
        "from skipmodel.engine import EngineOptions, run_tasks\n"
        "from skipmodel.errors import SkipmodelError\n"
        "try:\n"
        "    run_tasks(EngineOptions('spark', 'local[1]'), abs, [1], label='x')\n"
        "except SkipmodelError as e:\n"
        "    print(e)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )


def test_no_java_is_one_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "JAVA_HOME": ""}
    env.pop("JAVA_HOME")
    done = _cli(env, tmp_path)
    assert "needs Java 17 or newer" in done.stdout and "openjdk-17" in done.stdout
    assert done.stderr == ""


def test_missing_pyspark_names_the_extra(tmp_path):
    blocker = tmp_path / "pyspark"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = _cli(env, tmp_path)
    assert "pip install 'skipmodel[spark]'" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize("which", ["spark_cluster", "spark_local"])
def test_spark_runs_each_item_on_an_executor(which, request):
    options = request.getfixturevalue(which)
    facts = run_tasks(options, _worker_facts, [3, 1, 2, 5], label="facts")
    assert [f[:2] for f in facts] == [(3, 9), (1, 1), (2, 4), (5, 25)]
    assert {f[2] for f in facts} == {sys.executable}  # the driver's Python
    if os.environ.get("NUMBA_CACHE_DIR"):
        assert {f[3] for f in facts} == {os.environ["NUMBA_CACHE_DIR"]}
    assert list(iter_tasks(options, abs, [-4, 3, -2], label="abs")) == [4, 3, 2]
    with pytest.raises(SkipmodelError, match="item 2 is bad"):
        run_tasks(options, _fails, [1, 2, 3], label="fails")
    with pytest.raises(SkipmodelError, match="item 2 is bad"):
        list(iter_tasks(options, _fails, [1, 2, 3], label="fails"))
    # what every task shares is broadcast (a lambda inside: cloudpickled, as task data are)
    shared = {"offset": lambda x: x + 10, "pid": os.getpid()}
    got = run_tasks(options, _with_shared, [1, 2, 3], label="shared", shared=shared)
    assert [g[0] for g in got] == [11, 12, 13]
    assert run_tasks(EngineOptions(), _with_shared, [1], label="here", shared=shared)[0][0] == 11


def _with_shared(item: int, shared: dict) -> tuple[int, int]:
    return shared["offset"](item), shared["pid"]
