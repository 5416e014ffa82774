"""A minimal progress display: a live line with rows/s on a terminal, silent in CI and pipes."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TextIO

#: Progress forced on or off for the current call (:func:`forced_progress`); None: decide.
_FORCED: ContextVar[bool | None] = ContextVar("skipmodel_progress", default=None)


@contextlib.contextmanager
def forced_progress(enabled: bool | None) -> Iterator[None]:
    """Within the block, progress displays are on (True), off (False) or decided as usual."""
    token = _FORCED.set(enabled)
    try:
        yield
    finally:
        _FORCED.reset(token)


def in_notebook(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr) is a Jupyter kernel's output stream."""
    stream = sys.stderr if stream is None else stream
    return type(stream).__module__.startswith("ipykernel")


def progress_enabled(stream: TextIO | None = None) -> bool:
    """True when a human is watching: a TTY or a Jupyter notebook, and not CI (``CI`` set) or
    ``SKIPMODEL_QUIET``; :func:`forced_progress` overrides it (``fit(..., progress=True)``)."""
    forced = _FORCED.get()
    if forced is not None:
        return forced
    stream = sys.stderr if stream is None else stream
    if os.environ.get("CI") or os.environ.get("SKIPMODEL_QUIET"):
        return False
    return in_notebook(stream) or bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """Counts units of work and redraws at most every ``interval`` seconds.

    Examples
    --------
    >>> with Progress("ingest", unit="rows") as bar:
    ...     bar.advance(1000)
    """

    def __init__(
        self,
        label: str,
        *,
        unit: str = "rows",
        total: int | None = None,
        interval: float = 0.25,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.total = total
        self.count = 0
        self.interval = interval
        # Resolved per call, not at import: pytest and redirections swap sys.stderr later.
        self.stream = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(self.stream) if enabled is None else enabled
        self._start = time.perf_counter()
        self._last = 0.0

    def advance(self, n: int = 1, *, note: str = "") -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self._draw(now, note)

    def _draw(self, now: float, note: str = "") -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.count / elapsed
        done = f"{self.count:,}" + (f"/{self.total:,}" if self.total else "")
        line = f"\r{self.label}: {done} {self.unit} ({rate:,.0f} {self.unit}/s) {note}"
        self.stream.write(line[:120].ljust(80))
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
