"""The Spark side of the engine: one SparkSession per driver, set up for skipmodel's tasks.

Only this module imports pyspark, and only when ``--engine spark`` is used. Before a JVM is
started the setup is checked, each problem as one line within seconds: pyspark installed (else
the extra to install), Java on ``PATH`` or under ``$JAVA_HOME``, and a ``spark://`` master
answering a TCP connect. Spark's console output (log4j lines, progress bars, JVM warnings) goes
to a log file, not the terminal; a failure names it.

Executors get what matters of the driver's environment: the driver's Python
(``spark.pyspark.python``, so workers import the same skipmodel), the compile caches
(``PYTENSOR_FLAGS``, ``NUMBA_CACHE_DIR``), the warning filters (``PYTHONWARNINGS``), any
``PYTHONPATH``, and ``SKIPMODEL_QUIET`` (no progress lines from executors).

One SparkContext may live in a process: the session is cached per master and stopped at exit
(asking for another master stops the first).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from skipmodel.errors import SkipmodelError

#: How long a ``spark://`` master may take to accept a TCP connection.
PROBE_SECONDS = 3.0
#: How long a cluster may take to give the application its first executor (an executor is a
#: JVM of its own: tens of seconds on a busy machine), when its master's web UI cannot say why.
EXECUTOR_WAIT_SECONDS = 90.0
#: How long to wait when the master's web UI says it has workers (busy ones, or starting
#: executors), and when it says it has none (one may be registering).
BUSY_WAIT_SECONDS = 30.0
NO_WORKER_WAIT_SECONDS = 5.0
#: The hint every "Spark is not installed" message ends with.
INSTALL_HINT = "pip install 'skipmodel[spark]'"
#: The environment variables handed on to the executors when the driver has them.
EXECUTOR_ENV = ("PYTENSOR_FLAGS", "NUMBA_CACHE_DIR", "PYTHONWARNINGS", "PYTHONPATH", "MPLBACKEND")
_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""

_lock = threading.Lock()
_session: Any = None
_master: str | None = None
_log_path: Path | None = None
#: Whether a message named the log file (then it is kept at exit, else removed).
_log_named = False


def _import_pyspark() -> Any:
    try:
        with warnings.catch_warnings():
            # pyspark warns, when its pandas helpers are first imported, that it does not yet
            # fully support pandas 3 (a FutureWarning). The engine uses no pandas API of
            # pyspark, but py4j's argument converters import pyspark.testing.utils (which
            # warns) on the first SparkConf: imported here, once, under this narrow filter.
            warnings.filterwarnings(
                "ignore",
                message="PySpark does not yet fully support pandas",
                category=FutureWarning,
            )
            import pyspark
            import pyspark.sql
            import pyspark.testing.utils  # noqa: F401 - see above
    except ImportError:
        raise SkipmodelError(f"--engine spark needs pyspark (4 or newer): {INSTALL_HINT}") from None
    return pyspark


def java_command() -> str | None:
    """The ``java`` Spark would start: ``$JAVA_HOME/bin/java``, else ``java`` on ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def check_java() -> str:
    """The java command, or a one-line error saying how to get one."""
    java = java_command()
    if java is None:
        where = (
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java"
            if os.environ.get("JAVA_HOME")
            else "no java on PATH and JAVA_HOME is not set"
        )
        raise SkipmodelError(
            f"--engine spark needs Java 17 or newer ({where}); install a JRE "
            "(e.g. apt-get install openjdk-17-jre-headless) or use --engine local"
        )
    return java


def master_addresses(master: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a ``spark://`` master URL (several for a standby setup)."""
    if not master.startswith("spark://"):
        return []
    pairs = []
    for hostport in master[len("spark://") :].split(","):
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise SkipmodelError(
                f"--spark-master {master}: expected spark://HOST:PORT (e.g. spark://host:7077)"
            )
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def probe_master(master: str, timeout: float = PROBE_SECONDS) -> None:
    """Refuse, in seconds, a ``spark://`` master that no address of accepts a TCP connection."""
    reasons = []
    for host, port in master_addresses(master):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            reasons.append(exc.strerror or type(exc).__name__)
    if reasons:
        raise SkipmodelError(
            f"the Spark master {master} does not answer ({reasons[0]}); start it, fix "
            "--spark-master / $SPARK_MASTER, or use --engine local"
        )


def _is_loopback(master: str) -> bool:
    hosts = [host for host, _ in master_addresses(master)]
    return bool(hosts) and all(h in ("127.0.0.1", "localhost", "::1") for h in hosts)


def _log_file(named: bool = False) -> Path:
    global _log_path, _log_named
    _log_named = _log_named or named
    if _log_path is None:
        _log_path = Path(tempfile.gettempdir()) / f"skipmodel-spark-{os.getpid()}.log"
    return _log_path


def spark_conf(master: str) -> dict[str, str]:
    """The Spark configuration skipmodel starts a session with (see the module doc)."""
    log4j = _log_file().with_suffix(".log4j2.properties")
    log4j.write_text(_LOG4J)
    java_options = f"-Dlog4j2.configurationFile=file:{log4j}"
    conf = {
        "spark.master": master,
        "spark.app.name": "skipmodel",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.driver.extraJavaOptions": java_options,
        "spark.executor.extraJavaOptions": java_options,
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        "spark.executorEnv.SKIPMODEL_QUIET": "1",
    }
    for name in EXECUTOR_ENV:
        if os.environ.get(name):
            conf[f"spark.executorEnv.{name}"] = os.environ[name]
    if sys.warnoptions and "PYTHONWARNINGS" not in os.environ:
        conf["spark.executorEnv.PYTHONWARNINGS"] = ",".join(sys.warnoptions)
    if _is_loopback(master):  # a cluster on this host: executors call the driver back here
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
    return conf


def _start(master: str) -> Any:
    pyspark = _import_pyspark()
    check_java()
    probe_master(master)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    conf = pyspark.SparkConf()
    for key, value in spark_conf(master).items():
        conf.set(key, value)
    log = _log_file()
    try:
        gateway = None
        if pyspark.SparkContext._gateway is None:  # the JVM: its console output to the log
            with open(log, "ab") as out:
                gateway = launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": out})
        sc = pyspark.SparkContext(conf=conf, gateway=gateway)
    except Exception as exc:
        raise SkipmodelError(
            f"Spark did not start on {master} ({_first_line(exc)}); Spark 4 needs Java 17+, "
            f"see {_log_file(named=True)}"
        ) from None
    sc.setLogLevel("ERROR")
    if master_addresses(master):
        _wait_for_executors(sc, master)
    return SparkSession(sc)


def master_workers(master: str, timeout: float = 2.0) -> int | None:
    """Alive workers of a standalone master, from its web UI's ``/json/`` (port
    ``$SPARK_MASTER_WEBUI_PORT``, else Spark's 8080); None when the UI does not answer."""
    addresses = master_addresses(master)
    port = os.environ.get("SPARK_MASTER_WEBUI_PORT", "8080")
    for host, _ in addresses:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/json/", timeout=timeout) as ui:
                return int(json.loads(ui.read())["aliveworkers"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _wait_for_executors(sc: Any, master: str) -> None:
    """Refuse a cluster that gives the application no executor: within seconds when the
    master's web UI says it has no worker, else after :data:`BUSY_WAIT_SECONDS` (workers, all
    busy) or :data:`EXECUTOR_WAIT_SECONDS` (the UI cannot say)."""
    start = time.monotonic()
    workers = master_workers(master)
    while True:
        # block managers: the driver's own plus one per executor
        if sc._jsc.sc().getExecutorMemoryStatus().size() > 1:
            return
        waited = time.monotonic() - start
        if workers == 0 and waited > NO_WORKER_WAIT_SECONDS:
            workers = master_workers(master)  # one may have registered meanwhile
            if workers == 0:
                why = "it has no worker (its web UI says so); start one"
                break
        limit = EXECUTOR_WAIT_SECONDS if workers is None else BUSY_WAIT_SECONDS
        if waited > limit:
            why = "no worker with free cores and memory; check the cluster"
            break
        time.sleep(0.2)
    sc.stop()
    raise SkipmodelError(
        f"the Spark master {master} gave no executor within {time.monotonic() - start:.0f} s: "
        f"{why}, or use --engine local"
    )


def spark_session(master: str) -> Any:
    """The driver's SparkSession on ``master``, started (and checked) on first use."""
    global _session, _master
    with _lock:
        if _session is not None and _master == master:
            return _session
        stop()
        _session = _start(master)
        _master = master
        return _session


def stop() -> None:
    """Stop the driver's SparkSession, if one is running (also done at exit)."""
    global _session, _master
    if _session is not None:
        try:
            _session.stop()
        finally:
            _session, _master = None, None


def _at_exit() -> None:
    """Stop the session; remove the log files unless a message named the log."""
    try:
        stop()
    finally:
        if _log_path is not None:
            _log_path.with_suffix(".log4j2.properties").unlink(missing_ok=True)
            if not _log_named:
                _log_path.unlink(missing_ok=True)


atexit.register(_at_exit)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for marker in ("SkipmodelError: ", "Exception: ", "Error: "):
        if marker in text:  # a Python worker's error inside the JVM's: the innermost line
            text = text.rsplit(marker, 1)[-1]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return (first or type(exc).__name__)[:300]


def spark_failure(label: str, exc: BaseException) -> SkipmodelError:
    """One line for a Spark job that failed outside the task's own code."""
    text = str(exc)
    if "No module named 'skipmodel'" in text:
        return SkipmodelError(
            f"{label}: the Spark executors cannot import skipmodel; install it in their Python "
            f"({sys.executable} here, set by spark.pyspark.python) on every worker"
        )
    return SkipmodelError(
        f"{label}: the Spark job failed ({_first_line(exc)}); see {_log_file(named=True)}"
    )
