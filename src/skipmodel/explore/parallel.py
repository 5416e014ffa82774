"""The worker processes of explore: one cached pool, and buckets shared out by claims.

:func:`skipmodel.explore.passes.compute` shares the log pass (from
:data:`~skipmodel.explore.passes.LOG_PASS_MIN_WORKERS` processes on; below that, one process
with its read-ahead threads is faster) and :mod:`.drawing` the figures; both hand their work to
:func:`submit`. This module knows neither: it only runs functions in workers.

Every accumulator of the log pass merges (``LogPass.merge``) and a whole session lives in
one bucket, so this process and ``jobs - 1`` worker processes share the sample's buckets: each
walks the bucket list from its own starting point and reduces the buckets it *claims*
(:class:`Claims`: an exclusive create of a file named after the bucket in a temporary
directory), so a bucket is read exactly once, this process starts at once and the workers join
as soon as they are up, and a slow participant simply claims fewer buckets. The counts are those
of one process whatever ``jobs``; sums of floats may differ in the last bits with the order of
merging.

Workers start from a fork server that has already imported the explore modules (no thread of
this process is forked). If worker processes cannot be started, the work runs here.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from skipmodel.errors import SkipmodelError

#: Imported by the fork server before it forks a worker: the modules whose functions the
#: workers run (the log pass, the figures), so no worker imports them on its own. Names, not
#: imports: the fork server imports them, this module does not.
PRELOAD: tuple[str, ...] = ("skipmodel.explore.passes", "skipmodel.explore.drawing")

_POOLS: dict[int, ProcessPoolExecutor] = {}


def _context() -> mp.context.BaseContext:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        return ctx
    return mp.get_context("spawn")


def pool(workers: int) -> ProcessPoolExecutor:
    """The (cached) pool of ``workers`` processes (``jobs - 1``: one pool serves the log pass
    and the figures); shut down when the interpreter exits."""
    if workers not in _POOLS:
        _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=_context())
    return _POOLS[workers]


def submit(
    size: int, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> list[Future[Any]] | None:
    """Hand ``calls`` (function, arguments) to the pool of ``size`` workers; None, with the
    pool dropped, when worker processes cannot be started (the caller works alone)."""
    try:
        executor = pool(size)
        return [executor.submit(function, *args) for function, args in calls]
    except (BrokenProcessPool, OSError):
        _drop_pool(size)
        return None


def results(futures: Sequence[Future[Any]], size: int) -> list[Any]:
    """What the workers returned, in order; a worker that died is a one-line error."""
    try:
        return [future.result() for future in futures]
    except BrokenProcessPool as error:
        _drop_pool(size)
        raise SkipmodelError(
            f"an explore worker process died ({error}); re-run with --jobs 1"
        ) from error


def _drop_pool(workers: int) -> None:
    broken = _POOLS.pop(workers, None)
    if broken is not None:
        broken.shutdown(wait=False, cancel_futures=True)


@atexit.register
def _shutdown() -> None:
    for executor in _POOLS.values():
        executor.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


class Claims:
    """Buckets claimed by exclusive file creation in ``directory`` (shared across processes)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def claim(self, bucket: int) -> bool:
        try:
            os.close(os.open(os.path.join(self.directory, str(bucket)), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True

    def schedule(self, start: int, of: int) -> Callable[[Sequence[int]], Iterator[int]]:
        """Participant ``start`` of ``of``: walk the buckets from its own offset, claiming."""

        def walk(buckets: Sequence[int]) -> Iterator[int]:
            first = start * len(buckets) // of
            for bucket in (*buckets[first:], *buckets[:first]):
                if self.claim(bucket):
                    yield bucket

        return walk
