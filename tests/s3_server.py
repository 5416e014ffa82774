"""An S3 server on 127.0.0.1 for the object-store tests: moto's, started from the test
environment's ``moto_server`` and stopped by its PID. Stores on it are opened by pyarrow's own S3
client through ``s3://bucket/path?endpoint_override=127.0.0.1:PORT&scheme=http``; the tests skip
with the reason when moto is not installed (it comes with the ``test`` extra)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: what pyarrow's S3 client needs besides the endpoint (moto accepts any credentials)
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "skipmodel-test",
    "AWS_SECRET_ACCESS_KEY": "skipmodel-test",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# set at import (test collection), before any Spark session starts: its Python workers inherit
# the environment the JVM was started with
for _key, _value in S3_ENV.items():
    os.environ.setdefault(_key, _value)


@dataclass(frozen=True)
class S3Server:
    port: int

    def uri(self, path: str) -> str:
        """An ``s3://`` URI of ``path`` (``bucket/key``) on this server."""
        return (
            f"s3://{path}?endpoint_override=127.0.0.1:{self.port}&scheme=http"
            "&region=us-east-1&allow_bucket_creation=true"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_as_moto(proc: subprocess.Popen, port: int) -> bool:
    """Whether our moto process, not another one on the port, serves S3 there (60 s to start)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            url = f"http://127.0.0.1:{port}/"  # S3's ListBuckets, answered by moto
            with urllib.request.urlopen(url, timeout=2) as response:
                listing = b"ListAllMyBucketsResult" in response.read()
                return listing and proc.poll() is None
        except OSError:
            time.sleep(0.2)
    return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        pytest.skip("moto is not installed (pip install 'skipmodel[test]'): no S3 server")
    folder = tmp_path_factory.mktemp("s3")
    for attempt in range(3):  # a port found free may be taken before moto binds it: retry
        port = _free_port()
        log = folder / f"moto-{attempt}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if _answers_as_moto(proc, port):
            break
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    else:
        pytest.fail(f"moto_server did not start: {log.read_text()[-2000:]}")
    try:
        yield S3Server(port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
