"""Spark for the tests: ``local[2]`` and a real standalone cluster on 127.0.0.1.

The cluster is a master and two workers (one core each), each its own JVM started from the
pyspark installation's ``bin/spark-class``, once per test run (session fixtures) and torn down
by PID at the end. Every executor is a JVM of its own with its own Python workers, so a test
passing on it relies on no state in the driver process. The Spark tests skip, with the reason,
only when Java (or pyspark) cannot be had.

Import the fixtures into a test module: ``from spark_cluster import spark_cluster, ...``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skipmodel.engine import EngineOptions
from skipmodel.engine.spark import java_command

#: How long the master and the workers may take to come up.
START_SECONDS = 90.0


def spark_home() -> Path:
    """The pyspark installation (its ``bin/`` and ``jars/``); skips when pyspark is absent."""
    try:
        import pyspark
    except ImportError:
        pytest.skip("pyspark is not installed: pip install 'skipmodel[spark]'")
    return Path(pyspark.__file__).parent


def require_java() -> None:
    if java_command() is None:
        pytest.skip("no Java (java on PATH or JAVA_HOME): the Spark tests need Java 17+")


def expose_tests() -> None:
    """Let executors import the test modules (their task functions) as the driver does: the
    engine hands ``PYTHONPATH`` on to them."""
    tests = str(Path(__file__).resolve().parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if tests not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([tests, *paths])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running standalone cluster: its master URL and the PIDs of its JVMs."""

    master: str
    web: str
    processes: list[subprocess.Popen]
    logs: Path

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.web}/json/", timeout=2) as response:
                return int(json.loads(response.read())["aliveworkers"])
        except (OSError, ValueError, KeyError):
            return 0

    def answers(self) -> bool:
        """Whether the master's web UI answers (it is up)."""
        try:
            with urllib.request.urlopen(f"{self.web}/json/", timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate every JVM by its PID (workers first), then kill what is left."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def start_cluster(workdir: Path, workers: int = 2) -> Cluster:
    """A master and ``workers`` workers on 127.0.0.1 (one core, 1 GiB each)."""
    home = spark_home()
    spark_class = str(home / "bin" / "spark-class")
    port, web_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(workdir),
        "SPARK_NO_DAEMONIZE": "1",
    }
    processes: list[subprocess.Popen] = []

    def launch(name: str, *args: str) -> None:
        with open(workdir / f"{name}.log", "wb") as log:  # the JVM keeps its own copy
            processes.append(
                subprocess.Popen(
                    [spark_class, *args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group: torn down as one by PID
                )
            )

    launch(
        "master",
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webui-port",
        str(web_port),
    )
    master = f"spark://127.0.0.1:{port}"
    cluster = Cluster(master, f"http://127.0.0.1:{web_port}", processes, workdir)
    try:
        for k in range(workers):
            (workdir / f"worker{k}").mkdir()
            launch(
                f"worker{k}",
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                str(_free_port()),
                "--work-dir",
                str(workdir / f"worker{k}"),
                master,
            )
        deadline = time.monotonic() + START_SECONDS
        while cluster.alive_workers() < workers or not cluster.answers():
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"the test cluster did not start; see the logs in {workdir}")
            time.sleep(0.5)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def spark_local() -> EngineOptions:
    """The Spark engine on ``local[2]`` (executors in the driver's JVM)."""
    spark_home()
    require_java()
    expose_tests()
    return EngineOptions("spark", "local[2]")


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineOptions]:
    """The Spark engine on a two-worker standalone cluster on 127.0.0.1 (one per test run)."""
    spark_home()
    require_java()
    expose_tests()
    cluster = start_cluster(tmp_path_factory.mktemp("spark-cluster"))
    try:
        yield EngineOptions("spark", cluster.master)
    finally:
        from skipmodel.engine import spark

        spark.stop()
        cluster.stop()
