"""Streaming minibatch ADVI: variational fits of any spec on data larger than memory.

The store is never materialised. Each loader batch (:func:`skipmodel.load.iter_batches`) is
turned into design arrays with encoders fitted once (:func:`fit_encoders`), the arrays go into a
shuffle buffer, and minibatches of ``batch_size`` rows drawn from it are written into shared
variables the model reads; one optimiser step follows per minibatch. The Bernoulli likelihood
carries ``total_size = n_rows`` (PyMC's minibatch scaling: the minibatch logp is multiplied by
``n_rows / batch_size``), so the objective is an unbiased estimate of the full-data ELBO.

Ordering: buckets are hash-random groups of sessions, and rows within a bucket are sorted by a
hashed session id, so the stream is already a random order of *sessions*; the shuffle buffer
(default 20 minibatches) breaks up the plays of one session. Every row is used once per epoch.

Convergence: the loss (negative ELBO estimate) is averaged over windows of ``window`` steps; the
fit stops when the relative change between consecutive window means falls below ``tol`` (after
at least one epoch and ``min_steps`` steps: the loss flattens well before the variational sds
have shrunk to their optimum) or after ``max_epochs``.

Mean-field ADVI is known to underestimate posterior spread; :func:`compare_to_nuts` reports the
ratio of sds against a NUTS fit rather than hiding it. ``full_rank=True`` fits a full-rank
Gaussian (affordable up to a few hundred parameters). The returned approximation averages the
variational parameters over the steps after ``min_steps / 2`` (Polyak-Ruppert averaging).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import SampleSpec, iter_batches, sample_buckets
from skipmodel.model.design import Design, Encoders, build_design
from skipmodel.model.encoders import level_label, level_map
from skipmodel.model.spec import ModelSpec
from skipmodel.model.terms import LevelSource, kind_of
from skipmodel.progress import Progress

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions

#: The codes a pooled design keeps for prediction only (numbering of levels unseen in fitting).
UNSEEN_CODES = "unseen"


@dataclass(frozen=True)
class MinibatchOptions:
    """Options of :func:`fit_minibatch`."""

    batch_size: int = 2048
    buffer_batches: int = 20
    max_epochs: int = 3
    tol: float = 1e-3
    window: int = 100
    learning_rate: float = 0.01
    min_steps: int = 1000
    full_rank: bool = False
    draws: int = 1000
    seed: int = 0


@dataclass
class MinibatchResult:
    """A fitted approximation: posterior draws, loss trace, timing, and what was read."""

    spec: ModelSpec
    encoders: Encoders
    posterior: Any  # DataTree of draws from the approximation
    losses: np.ndarray
    converged: bool
    epochs: int
    steps: int
    n_rows: int
    seconds: float
    epoch_seconds: list[float] = field(default_factory=list)  # wall, compiling excluded
    epoch_cpu_seconds: list[float] = field(default_factory=list)  # CPU of every thread
    #: Building the step function and its first call (Numba compiles on the first call).
    compile_seconds: float = 0.0
    design_seconds: float = 0.0  # turning batches into design arrays, all epochs
    step_seconds: float = 0.0  # optimiser steps (logp + gradient + update), all epochs

    def summary(self) -> str:
        kind = "converged" if self.converged else "stopped at max_epochs (not converged)"
        per = np.mean(self.epoch_seconds) if self.epoch_seconds else float("nan")
        return (
            f"minibatch ADVI of {self.spec.name!r} on {self.n_rows:,} plays: {self.steps} steps, "
            f"{self.epochs} epoch(s), {per:.1f} s per epoch (+ {self.compile_seconds:.0f} s "
            f"compiling), {kind}; final loss "
            f"{self.losses[-min(len(self.losses), 100) :].mean():.1f}. Mean-field ADVI "
            "understates posterior sds; use for exploration or as a NUTS initialisation."
        )


# ---------------------------------------------------------------------------------------------
# Encoders from a stream


def fit_encoders(
    store: str | Path,
    spec: ModelSpec,
    sample: SampleSpec,
    *,
    pilot_rows: int = 200_000,
    progress: Progress | None = None,
    engine: EngineOptions | None = None,
) -> tuple[Encoders, int]:
    """Encoders for a stream, and its row count, in one pass.

    Scalers and smooth boxes come from the first ``pilot_rows`` rows (the stream is a random
    order of sessions); level maps of categorical columns from exact counts over every row, so
    no level seen in fitting is unknown to the encoders. On a Spark ``engine`` the counts are
    one task per bucket (:func:`level_counts_of_bucket`), added here, and the pilot rows are
    read here from the head of the stream: the same encoders.
    """
    sources = _level_sources(spec)
    if engine is not None and engine.name != "local":
        from skipmodel.engine import run_tasks

        tasks = [LevelCountTask(str(store), sample, spec, b) for b in sample_buckets(store, sample)]
        n_rows, counts = 0, _no_counts(sources)
        for part_rows, part in run_tasks(engine, level_counts_of_bucket, tasks, label="levels"):
            n_rows += part_rows
            for key in counts:
                counts[key] = counts[key].add(part[key], fill_value=0)
            if progress is not None:
                progress.advance(part_rows)
        pilot, have = [], 0
        stream = iter_batches(store, sample)
        for batch in stream:
            if have >= pilot_rows:
                break
            pilot.append(pa.Table.from_batches([batch]))
            have += batch.num_rows
        close = getattr(stream, "close", None)
        if close is not None:  # a generator stopped early: release its reader threads
            close()
    else:
        pilot, n_rows, counts = _count_stream(
            iter_batches(store, sample), sources, pilot_rows, progress
        )
    if n_rows == 0:
        raise SkipmodelError(f"the sample of {store} is empty; raise the fraction")
    enc = build_design(spec, pa.concat_tables(pilot)).encoders
    for key, lm in list(enc.levels.items()):
        if key in sources:
            c = counts[key].astype("int64")
            enc.levels[key] = level_map(lm.column, c, min_count=sources[key].min_count)
    return enc, n_rows


def _level_sources(spec: ModelSpec) -> dict[str, LevelSource]:
    """The terms' level maps (their kinds say which), counted with the one label rule."""
    return {s.key: s for t in spec.terms for s in kind_of(t).level_sources(t)}


def _no_counts(sources: dict[str, LevelSource]) -> dict[str, pd.Series]:
    return {k: pd.Series(dtype="int64") for k in sources}


def _count_stream(
    batches: Iterator[pa.RecordBatch],
    sources: dict[str, LevelSource],
    pilot_rows: int,
    progress: Progress | None,
) -> tuple[list[pa.Table], int, dict[str, pd.Series]]:
    """The first ``pilot_rows`` rows (whole batches), the rows, and the plays per level."""
    pilot: list[pa.Table] = []
    have = n_rows = 0
    counts = _no_counts(sources)
    for batch in batches:
        n_rows += batch.num_rows
        if progress is not None:
            progress.advance(batch.num_rows)
        if have < pilot_rows:
            pilot.append(pa.Table.from_batches([batch]))
            have += batch.num_rows
        for key, source in sources.items():
            counts[key] = counts[key].add(_count_levels(batch, source), fill_value=0)
    return pilot, n_rows, counts


@dataclass(frozen=True)
class LevelCountTask:
    """One bucket of the encoders' pass."""

    store: str
    sample: SampleSpec
    spec: ModelSpec
    bucket: int


def level_counts_of_bucket(task: LevelCountTask) -> tuple[int, dict[str, pd.Series]]:
    """Task: the rows of one bucket of the sample and its plays per level of each level map."""
    batches = iter_batches(task.store, task.sample, buckets=[task.bucket])
    _, n_rows, counts = _count_stream(batches, _level_sources(task.spec), 0, None)
    return n_rows, counts


def _count_levels(batch: pa.RecordBatch, source: LevelSource) -> pd.Series:
    """Plays per level label of ``source`` in ``batch``."""
    if len(source.columns) == 1:
        vc = batch.column(source.columns[0]).value_counts().to_pylist()
        return pd.Series({level_label(d["values"]): d["counts"] for d in vc}, dtype="int64")
    frame = batch.select(list(source.columns)).to_pandas()
    return source.labels(frame).value_counts().astype("int64")


# ---------------------------------------------------------------------------------------------
# Per-row arrays of a design, and the shuffle buffer


def _row_arrays(design: Design) -> dict[str, np.ndarray]:
    """Every per-row array the model reads, keyed ``outcome`` and ``<term>/codes|values/<name>``.

    Whatever the term, its per-row inputs are its codes and values; its tables come from the
    encoders and are the same for every minibatch. A term whose tables were computed from the
    rows themselves (:attr:`TermDesign.data_tables`, e.g. a smooth coded by encoders fitted
    before gather grids) cannot be streamed.
    """
    if design.outcome is None:
        raise SkipmodelError("the stream has no outcome column")
    out: dict[str, np.ndarray] = {"outcome": design.outcome}
    for td in design.terms:
        if td.data_tables:
            raise SkipmodelError(
                f"term {td.name!r} has tables computed from the rows ({', '.join(td.data_tables)}),"
                " which change with every minibatch; refit the encoders (fit_encoders)"
            )
        for name, codes in td.codes.items():
            if name != UNSEEN_CODES:
                out[f"{td.name}/codes/{name}"] = codes
        for name, values in td.values.items():
            out[f"{td.name}/values/{name}"] = values
    return out


def _shuffled_minibatches(
    chunks: Iterator[dict[str, np.ndarray]],
    batch_size: int,
    buffer_rows: int,
    rng: np.random.Generator,
) -> Iterator[dict[str, np.ndarray]]:
    buffer: dict[str, np.ndarray] | None = None
    for chunk in chunks:
        buffer = (
            chunk if buffer is None else {k: np.concatenate([buffer[k], chunk[k]]) for k in buffer}
        )
        n = len(buffer["outcome"])
        if n < buffer_rows + batch_size:
            continue
        perm = rng.permutation(n)
        buffer = {k: v[perm] for k, v in buffer.items()}
        n_out = (n - buffer_rows) // batch_size
        for i in range(n_out):
            yield {k: v[i * batch_size : (i + 1) * batch_size] for k, v in buffer.items()}
        buffer = {k: v[n_out * batch_size :] for k, v in buffer.items()}
    if buffer is not None:
        n = len(buffer["outcome"])
        perm = rng.permutation(n)
        for i in range(n // batch_size):  # the last partial minibatch (< batch_size) is dropped
            idx = perm[i * batch_size : (i + 1) * batch_size]
            yield {k: v[idx] for k, v in buffer.items()}


# ---------------------------------------------------------------------------------------------
# The model on shared minibatch arrays


def _shared_model(template: Design, n_rows: int, batch_size: int) -> tuple[Any, dict[str, Any]]:
    """The spec's own model with its per-row inputs in shared variables of ``batch_size`` rows,
    and the likelihood scaled to ``n_rows`` (``build_model``'s ``total_size``)."""
    import dataclasses

    import pytensor

    from skipmodel.model.build import build_model

    arrays = _row_arrays(template)
    shared = {
        k: pytensor.shared(
            np.zeros((batch_size, *v.shape[1:]), dtype=v.dtype),
            name=k,
            shape=(batch_size, *v.shape[1:]),
        )
        for k, v in arrays.items()
    }
    terms = tuple(
        dataclasses.replace(
            td,
            codes={n: shared[f"{td.name}/codes/{n}"] for n in td.codes if n != UNSEEN_CODES},
            values={n: shared[f"{td.name}/values/{n}"] for n in td.values},
        )
        for td in template.terms
    )
    design = dataclasses.replace(template, terms=terms, n_obs=batch_size, outcome=None)
    model = build_model(design, observed=shared["outcome"], total_size=n_rows)
    return model, shared


class _IterateAverage:
    """Polyak-Ruppert averaging of the variational parameters over the late steps.

    With a constant Adam step the iterates jitter around the optimum by about the learning
    rate, which can exceed a posterior sd on large data; their average does not.
    """

    def __init__(self, params: Any) -> None:
        self.params = list(params)
        self.sums: list[np.ndarray] | None = None
        self.count = 0

    def add(self) -> None:
        values = [np.array(p.get_value()) for p in self.params]
        self.sums = (
            values if self.sums is None else [a + v for a, v in zip(self.sums, values, strict=True)]
        )
        self.count += 1

    def apply(self) -> None:
        if self.sums is not None:
            for p, total in zip(self.params, self.sums, strict=True):
                p.set_value((total / self.count).astype(p.get_value().dtype))


def fit_minibatch(
    store: str | Path,
    spec: ModelSpec,
    *,
    sample: SampleSpec | None = None,
    options: MinibatchOptions = MinibatchOptions(),
    encoders: Encoders | None = None,
    progress: bool | None = None,
) -> MinibatchResult:
    """Fit ``spec`` by streaming minibatch ADVI over a store sample.

    Parameters
    ----------
    store : path
    spec : ModelSpec
    sample : SampleSpec, optional
        Default: the train split of the whole store with the columns and lags the spec needs.
    options : MinibatchOptions
    encoders : Encoders, optional
        Fitted by :func:`fit_encoders` (one extra pass) if not given.
    progress : bool, optional
        A rows/s line with the current loss (default: on a terminal).
    """
    import pymc as pm

    from skipmodel.model.data import sample_spec_for

    for term in spec.terms:
        refusal = kind_of(term).minibatch_refusal
        if refusal is not None:
            raise SkipmodelError(f"--minibatch cannot fit term {term.name!r}: {refusal}")
    if sample is None:
        sample = sample_spec_for(spec, fraction=1.0, seed=options.seed, split="train")
    start = time.perf_counter()
    if encoders is None:
        encoders, n_rows = fit_encoders(store, spec, sample)
    else:
        n_rows = sum(b.num_rows for b in iter_batches(store, sample))
    if n_rows < options.batch_size:
        raise SkipmodelError(
            f"only {n_rows} rows: fewer than one minibatch of {options.batch_size}"
        )
    rng = np.random.default_rng(options.seed)

    timing = {"design": 0.0, "steps": 0.0, "first_call": 0.0}

    def chunks() -> Iterator[dict[str, np.ndarray]]:
        for batch in iter_batches(store, sample):
            t0 = time.perf_counter()
            design = build_design(spec, pa.Table.from_batches([batch]), encoders=encoders)
            arrays = _row_arrays(design)
            timing["design"] += time.perf_counter() - t0
            yield arrays

    first = next(iter_batches(store, sample))
    template = build_design(spec, pa.Table.from_batches([first]), encoders=encoders)
    compile_start = time.perf_counter()
    model, shared = _shared_model(template, n_rows, options.batch_size)
    with model:
        inference = (
            pm.FullRankADVI(random_seed=options.seed)
            if options.full_rank
            else pm.ADVI(random_seed=options.seed)
        )
        step = inference.objective.step_function(
            obj_optimizer=pm.adam(learning_rate=options.learning_rate),
            total_grad_norm_constraint=100.0,
            score=True,
        )
    compile_seconds = time.perf_counter() - compile_start
    losses: list[float] = []
    averaged = _IterateAverage(inference.approx.params)
    epoch_seconds: list[float] = []
    epoch_cpu: list[float] = []
    converged = False
    previous = np.inf
    epoch = 0
    with Progress("minibatch ADVI", unit="rows", enabled=progress) as bar:
        while epoch < options.max_epochs and not converged:
            t0, c0 = time.perf_counter(), time.process_time()
            buffer_rows = options.buffer_batches * options.batch_size
            for mb in _shuffled_minibatches(chunks(), options.batch_size, buffer_rows, rng):
                ts = time.perf_counter()
                for key, var in shared.items():
                    var.set_value(mb[key])
                out = step()
                if not losses:  # the first call compiles: counted as compiling, not as the epoch
                    timing["first_call"] = time.perf_counter() - ts
                else:
                    timing["steps"] += time.perf_counter() - ts
                losses.append(float(np.asarray(out[0] if isinstance(out, list) else out)))
                if len(losses) > options.min_steps // 2:
                    averaged.add()
                bar.advance(options.batch_size, note=f"epoch {epoch + 1} loss {losses[-1]:,.0f}")
                if len(losses) % options.window == 0:
                    current = float(np.mean(losses[-options.window :]))
                    settled = epoch >= 1 and len(losses) >= options.min_steps
                    if settled and abs(current - previous) < options.tol * abs(previous):
                        converged = True
                        break
                    previous = current
            epoch += 1
            first = timing["first_call"] if epoch == 1 else 0.0
            epoch_seconds.append(time.perf_counter() - t0 - first)
            epoch_cpu.append(time.process_time() - c0 - first)
    averaged.apply()
    approx = inference.approx
    with model:
        tree = approx.sample(draws=options.draws, random_seed=options.seed)
    return MinibatchResult(
        spec=spec,
        encoders=encoders,
        posterior=tree,
        losses=np.asarray(losses),
        converged=converged,
        epochs=epoch,
        steps=len(losses),
        n_rows=n_rows,
        seconds=time.perf_counter() - start,
        epoch_seconds=epoch_seconds,
        epoch_cpu_seconds=epoch_cpu,
        compile_seconds=compile_seconds + timing["first_call"],
        design_seconds=timing["design"],
        step_seconds=timing["steps"],
    )


def compare_to_nuts(
    approx_tree: Any, nuts_tree: Any, variables: list[str] | None = None
) -> pd.DataFrame:
    """Per scalar parameter: NUTS mean and sd, ADVI mean and sd, the mean difference in NUTS sds,
    and the sd ratio (ADVI / NUTS; below 1 is the mean-field underdispersion)."""
    a, n = approx_tree["posterior"].to_dataset(), nuts_tree["posterior"].to_dataset()
    names = variables or [v for v in n.data_vars if v in a.data_vars]
    rows = []
    for name in names:
        va = np.asarray(a[name].values).reshape(a[name].shape[0] * a[name].shape[1], -1)
        vn = np.asarray(n[name].values).reshape(n[name].shape[0] * n[name].shape[1], -1)
        for j in range(vn.shape[1]):
            mn, sn = vn[:, j].mean(), vn[:, j].std()
            ma, sa = va[:, j].mean(), va[:, j].std()
            rows.append(
                {
                    "variable": name if vn.shape[1] == 1 else f"{name}[{j}]",
                    "nuts_mean": mn,
                    "nuts_sd": sn,
                    "advi_mean": ma,
                    "advi_sd": sa,
                    "z": (ma - mn) / sn if sn > 0 else 0.0,
                    "sd_ratio": sa / sn if sn > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


__all__ = [
    "MinibatchOptions",
    "MinibatchResult",
    "compare_to_nuts",
    "fit_encoders",
    "fit_minibatch",
]
