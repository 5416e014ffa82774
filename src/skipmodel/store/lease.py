"""The writer lock of a store on a filesystem without ``flock``: a lease object.

Object stores (S3, GCS) and HDFS have no advisory locks that a killed process releases, so a
writer of such a store holds ``.ingest.lock``: a small JSON object naming its owner (host,
process, a random token) that a thread rewrites every :data:`HEARTBEAT` seconds. Another writer
refuses to start, in one line, while the object is younger than :data:`LEASE` seconds; a lease
left by a killed writer expires (or is taken over at once by a writer on the same host when its
process is gone). After writing its lease a writer waits :data:`SETTLE` seconds and reads it
back: of two writers starting together the one whose object was written last wins, the other
refuses. Object stores give no compare-and-swap through pyarrow, so two writers whose starts
fall within the settle time of each other's write can both proceed; skipmodel therefore
*refuses* concurrent writers it can see rather than guaranteeing mutual exclusion (README,
"Stores on other filesystems").
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skipmodel.errors import SkipmodelError

#: Seconds a lease stays valid without a heartbeat.
LEASE = 120.0
#: Seconds between heartbeats.
HEARTBEAT = 20.0
#: Seconds between writing a lease and reading it back.
SETTLE = 2.0


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


def _alive_here(holder: dict[str, Any]) -> bool:
    """Whether the holder runs on this host and its process still exists."""
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell: trust its heartbeat
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError):
        return True
    return True


def _refusal(path: Path, holder: dict[str, Any], age: float) -> SkipmodelError:
    return SkipmodelError(
        f"{path.parent}: another 'skipmodel ingest' (host {holder.get('host')}, process "
        f"{holder.get('pid')}, lease renewed {age:.0f} s ago) is writing this store; wait for "
        f"it (a killed writer's lease expires {LEASE:.0f} s after its last renewal)"
    )


@contextmanager
def lease_lock(root: Path, lock_name: str, *, settle: float = SETTLE) -> Iterator[None]:
    """Hold the store's lease while the block runs (see the module doc)."""
    path = root / lock_name
    root.mkdir(parents=True, exist_ok=True)
    holder = _read(path)
    if holder is not None:
        age = time.time() - float(holder.get("renewed", 0))
        if age < LEASE and _alive_here(holder):
            raise _refusal(path, holder, age)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex}

    def write() -> None:
        path.write_text(json.dumps({**me, "renewed": time.time()}))

    write()
    time.sleep(settle)
    now = _read(path)
    if now is None or now.get("token") != me["token"]:
        holder = now or {}
        raise _refusal(path, holder, time.time() - float(holder.get("renewed", 0)))
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT):
            current = _read(path)
            if current is None or current.get("token") != me["token"]:
                return  # taken over (we were presumed dead): the commit will not be ours
            write()

    thread = threading.Thread(target=beat, name="skipmodel-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        current = _read(path)
        if current is not None and current.get("token") == me["token"]:
            path.unlink(missing_ok=True)
