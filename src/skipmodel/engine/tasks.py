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


def run_tasks[T, R](
    options: EngineOptions, function: Callable[[T], R], items: Sequence[T], *, label: str
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

    Examples
    --------
    >>> run_tasks(EngineOptions(), abs, [-1, 2, -3], label="abs")
    [1, 2, 3]
    """
    items = list(items)
    if options.name == "local" or not items:
        return list(iter_tasks(options, function, items, label=label))
    from skipmodel.engine.spark import spark_failure, spark_session

    sc = spark_session(options.spark_master()).sparkContext
    sc.setJobDescription(label)
    with Progress(label, unit="tasks", total=len(items)) as bar:
        try:
            outcomes = (
                sc.parallelize(items, len(items))
                .map(functools.partial(_guarded, function))
                .collect()
            )
        except Exception as exc:
            raise spark_failure(label, exc) from None
        bar.advance(len(items))
    return [outcome.unwrap() for outcome in outcomes]


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
