"""Running a pass's tasks: in this process, or one Spark task per item.

The function a task runs is skipmodel's own (a parser and writer per input file, a merge per
bucket, a pass's partial per bucket); the engine only decides where it runs. On Spark the
function and its item are pickled to an executor (a module-level function by reference: the
executors import skipmodel from their own Python), run there, and the result comes back to the
driver, where the caller merges the results in the items' order.

A task's own failure is carried back as the exception it raised (a :class:`SkipmodelError`
stays one line); a failure of Spark itself (an executor lost for good, a worker that cannot
import skipmodel) becomes one :class:`SkipmodelError` naming the first line of the cause.
"""

from __future__ import annotations

import functools
import pickle
import traceback
import uuid
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from skipmodel.engine.options import EngineOptions
from skipmodel.progress import Progress


@dataclass(frozen=True)
class _Outcome:
    """What a guarded task sends back: its result, or the exception it raised (with the
    executor's traceback as text)."""

    value: Any = None
    error: BaseException | None = None
    remote_traceback: str = ""

    def unwrap(self) -> Any:
        if self.error is not None:
            if self.remote_traceback:
                self.error.add_note(f"on the Spark executor:\n{self.remote_traceback}")
            raise self.error
        return self.value


def _guarded[T, R](function: Callable[[T], R], item: T) -> _Outcome:
    """Run ``function(item)`` on an executor, catching its exception to send it back whole."""
    try:
        return _Outcome(function(item))
    except Exception as exc:
        try:  # an exception that cannot be pickled travels as its text
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return _Outcome(error=exc, remote_traceback=traceback.format_exc())


#: the last broadcast value unpickled in this (reused) Python worker, by its token
_SHARED: dict[str, Any] = {}


def _guarded_shared(
    function: Callable[[Any, Any], Any], shared: Any, token: str, item: Any
) -> _Outcome:
    """:func:`_guarded` for a function of ``(item, shared)``, ``shared`` a Spark broadcast of
    the value's cloudpickle bytes (Spark pickles broadcasts with the standard pickle, which
    refuses what a task's own data may hold, such as lambdas)."""
    return _guarded(functools.partial(_call_shared, function, shared, token), item)


def _call_shared(function: Callable[[Any, Any], Any], shared: Any, token: str, item: Any) -> Any:
    if token not in _SHARED:
        from pyspark import cloudpickle

        _SHARED.clear()  # one pass's value at a time per worker
        _SHARED[token] = cloudpickle.loads(shared.value)
    return function(item, _SHARED[token])


def run_tasks[T, R](
    options: EngineOptions,
    function: Callable[..., R],
    items: Sequence[T],
    *,
    label: str,
    shared: Any = None,
) -> list[R]:
    """``function(item)`` for each item, the results in the items' order.

    Parameters
    ----------
    options
        ``local``: in this process, one after another; ``spark``: one Spark task per item
        (``sc.parallelize(items, len(items)).map(function).collect()``).
    function
        A module-level function (pickled by reference; the executors import skipmodel).
    items
        Picklable work descriptions (paths, bucket numbers, options).
    label
        Names the work in the progress line and in Spark's job description.
    shared
        What every task needs besides its item (a model's encoders, say): ``function`` is then
        called as ``function(item, shared)``. On Spark it is broadcast, sent once to each
        executor rather than pickled into every task, and destroyed when the tasks are done.

    Examples
    --------
    >>> run_tasks(EngineOptions(), abs, [-1, 2, -3], label="abs")
    [1, 2, 3]
    """
    items = list(items)
    if options.name == "local" or not items:
        task = function if shared is None else functools.partial(_call_local, function, shared)
        return list(iter_tasks(options, task, items, label=label))
    from skipmodel.engine.spark import spark_failure, spark_session

    sc = spark_session(options.spark_master()).sparkContext
    sc.setJobDescription(label)
    broadcast = None
    guarded = functools.partial(_guarded, function)
    if shared is not None:
        from pyspark import cloudpickle

        broadcast = sc.broadcast(cloudpickle.dumps(shared))
        token = uuid.uuid4().hex
        guarded = functools.partial(_guarded_shared, function, broadcast, token)
    with Progress(label, unit="tasks", total=len(items)) as bar:
        try:
            outcomes = sc.parallelize(items, len(items)).map(guarded).collect()
        except Exception as exc:
            raise spark_failure(label, exc) from None
        finally:
            if broadcast is not None:
                broadcast.destroy()
        bar.advance(len(items))
    return [outcome.unwrap() for outcome in outcomes]


def _call_local(function: Callable[[Any, Any], Any], shared: Any, item: Any) -> Any:
    return function(item, shared)


def iter_tasks[T, R](
    options: EngineOptions, function: Callable[[T], R], items: Sequence[T], *, label: str
) -> Generator[R]:
    """Like :func:`run_tasks`, but yields each result, in the items' order, as soon as it and
    every result before it are done, so the caller can commit work while later tasks run.

    On Spark each item is a Spark job of one task, submitted from a few driver threads (about
    twice the cluster's cores at a time); closing the iterator early cancels what is pending.
    """
    items = list(items)
    with Progress(label, unit="tasks", total=len(items)) as bar:
        if options.name == "local":
            for item in items:
                result = function(item)
                bar.advance()
                yield result
            return
        if not items:
            return
        from skipmodel.engine.spark import spark_failure, spark_session

        sc = spark_session(options.spark_master()).sparkContext
        guarded = functools.partial(_guarded, function)

        def one(item: T) -> _Outcome:
            sc.setJobDescription(label)
            (outcome,) = sc.parallelize([item], 1).map(guarded).collect()
            return outcome  # type: ignore[no-any-return]

        threads = max(2, 2 * int(sc.defaultParallelism))
        pool = ThreadPoolExecutor(max_workers=min(threads, len(items)))
        futures: list[Future[_Outcome]] = []
        try:
            futures = [pool.submit(one, item) for item in items]
            for future in futures:
                try:
                    outcome = future.result()
                except Exception as exc:
                    raise spark_failure(label, exc) from None
                bar.advance()
                yield outcome.unwrap()
        finally:
            pending = [f for f in futures if not f.done()]
            pool.shutdown(wait=False, cancel_futures=True)
            if pending:
                sc.cancelAllJobs()
