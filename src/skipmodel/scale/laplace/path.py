"""``--method laplace`` as a path of the one fit entry: data in, a run's ``FitResult`` out.

The data are plays (a data frame or Arrow table, held in memory as work-coordinate rows) or a
:class:`~skipmodel.model.data.StoreSample`, streamed from the store every pass: encoders are
fitted in one pass first (exact level counts, as the minibatch path does), and the encoded
rows are cached for the later passes, in chunks sorted by level (in memory while they fit
:data:`CACHE_BYTES`, else on disk).

The run's posterior tree holds ``posterior`` (chain 1 x ``draws``: the hyperparameters, the
intercept and every recorded table under the NUTS run's names) and ``levels`` (the eliminated
pool's per-level mean and sd, ``<label>_effect_mean`` / ``_sd`` over ``<label>``), from which
prediction draws the levels it needs (:class:`skipmodel.model.levels.GaussianLevels`).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import xarray as xr

from skipmodel.errors import SkipmodelError
from skipmodel.model.data import StoreSample, sample_manifest
from skipmodel.model.design import Design, build_design
from skipmodel.model.levels import LEVELS_GROUP
from skipmodel.model.options import FitOptions
from skipmodel.model.spec import ModelSpec
from skipmodel.progress import Progress
from skipmodel.scale.laplace.fit import LaplaceFit, LaplaceOptions, fit_passes
from skipmodel.scale.laplace.sessions import session_batches, whole_sessions
from skipmodel.scale.laplace.structure import (
    ROW_FIELDS,
    LatentModel,
    RowBatch,
    build_latent_model,
    encode_rows,
)
from skipmodel.scale.laplace.tasks import engine_of, engine_passes

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions

#: Encoded store batches are kept in memory up to this many bytes, else spilled to disk.
CACHE_BYTES = 2 * 2**30
#: The cache is written in chunks of about this many bytes, each sorted by level
#: (:meth:`RowBatch.by_level`), in batches of :data:`CACHE_BATCH_ROWS` rows.
SORT_BYTES = 256 * 2**20
CACHE_BATCH_ROWS = 131_072
#: What the run records as its approximation.
APPROXIMATION = (
    "nested Laplace: levels of the largest pool integrated by adaptive Gauss-Hermite quadrature "
    "(9 nodes), sessions (with a session term) likewise per batch, coupled to the tracks by "
    "mean field; the dense effects by a Laplace approximation (Newton passes); hyperparameters "
    "maximised on the marginal, their uncertainty propagated to first order; per-level summary "
    "as mean and sd"
)
DEFAULT_DRAWS = 1000


class StoreRows:
    """A store sample as encoded batches: the first pass reads the store, the later ones a cache
    of the encoded rows (about 4 bytes per gather and per slope value of a row): in memory up to
    ``memory_bytes``, else in ``.npy`` files under a temporary folder (``$TMPDIR``), read back
    batch by batch and removed by :meth:`close`. The cache is written in chunks of
    :data:`SORT_BYTES`, each sorted by level, so the kernel walks the per-level sums in order.
    Memory stays bounded by the budgets, never by the rows."""

    def __init__(
        self,
        data: StoreSample,
        spec: ModelSpec,
        *,
        memory_bytes: int = CACHE_BYTES,
        engine: EngineOptions | None = None,
    ) -> None:
        from skipmodel.load.loaders import iter_batches
        from skipmodel.scale.minibatch import fit_encoders

        self._iter = iter_batches
        self.spec = spec
        self.sample = data.rows_sample(spec)
        self.store = data.store
        self.memory_bytes = memory_bytes
        with Progress("laplace: levels and scalers", unit="plays") as bar:
            self.encoders, self.n_rows = fit_encoders(
                data.store, spec, self.sample, progress=bar, engine=engine
            )
        self.model: LatentModel | None = None
        self._memory: list[RowBatch] = []
        self._pending: list[RowBatch] = []
        self._pending_bytes = 0
        self._size = 0
        self._folder: Path | None = None
        self._files = 0
        self._complete = False
        # sessions get ordinals in store order (a bucket's sessions are contiguous): the next
        # free one, and the id of the last session seen (a batch may continue it)
        self._next_session = 0
        self._last_session: object = None

    def _designs(self) -> Iterator[Design]:
        for batch in self._iter(self.store, self.sample):
            if batch.num_rows:
                yield build_design(self.spec, batch, encoders=self.encoders)

    def first_design(self) -> Design:
        for design in self._designs():
            return design
        raise SkipmodelError(f"the sample of {self.store} is empty; raise the fraction")

    def _keep(self, rows: RowBatch) -> None:
        self._pending.append(rows)
        self._pending_bytes += rows.nbytes
        if self._pending_bytes >= SORT_BYTES:
            self._flush()

    def _flush(self) -> None:
        """The pending rows, sorted by level, into the cache."""
        if not self._pending:
            return
        chunk = RowBatch.concat(self._pending).by_level()
        self._pending, self._pending_bytes = [], 0
        for part in session_batches(chunk, CACHE_BATCH_ROWS):
            self._store(part)

    def _store(self, rows: RowBatch) -> None:
        self._size += rows.nbytes
        if self._folder is None and self._size <= self.memory_bytes:
            self._memory.append(rows)
            return
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="skipmodel-laplace-"))
            for kept in self._memory:
                self._write(kept)
            self._memory = []
        self._write(rows)

    def _write(self, rows: RowBatch) -> None:
        assert self._folder is not None
        for name in rows.fields():
            np.save(self._folder / f"{self._files:06d}_{name}.npy", getattr(rows, name))
        self._files += 1

    def _read(self) -> Iterator[RowBatch]:
        assert self._folder is not None
        assert self.model is not None
        names = ROW_FIELDS if self.model.sessions is None else (*ROW_FIELDS, "session")
        for k in range(self._files):
            # read, not memory-mapped: mapped pages would count in the fit's resident memory
            parts = [np.load(self._folder / f"{k:06d}_{name}.npy") for name in names]
            yield RowBatch(*parts)

    def _encoded(self) -> Iterator[RowBatch]:
        """The store's rows encoded, sessions numbered in store order."""
        assert self.model is not None
        for design in self._designs():
            rows = encode_rows(self.model, design)
            if rows.session is not None:
                rows = self._number_sessions(rows, design)
            yield rows

    def _number_sessions(self, rows: RowBatch, design: Design) -> RowBatch:
        """``rows`` with each session's ordinal in the store instead of its code in the batch
        (a batch's first session continues the previous batch's last one if their ids agree)."""
        assert rows.session is not None
        ids = next(td.coords["session"] for td in design.terms if td.term.kind == "session")
        local = rows.session
        offset = self._next_session
        if self._last_session is not None and len(ids) and ids[local[0]] == self._last_session:
            offset -= 1
        ordinal = local + offset
        self._next_session = int(ordinal.max()) + 1
        self._last_session = ids[local[-1]]
        return RowBatch(rows.codes, rows.values, rows.level, rows.y, ordinal)

    def __call__(self) -> Iterator[RowBatch]:
        assert self.model is not None
        if self._complete:
            yield from self._memory if self._folder is None else self._read()
            return
        for rows in whole_sessions(self._encoded()):
            self._keep(rows)
            yield rows
        self._flush()
        self._complete = True

    @property
    def nbytes(self) -> int:
        """Bytes of the encoded rows (the cache's size)."""
        return self._size

    @property
    def on_disk(self) -> bool:
        return self._folder is not None

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._memory, self._pending = [], []
        self._complete = False


def fit_laplace_path(
    spec: ModelSpec, data: Any, options: FitOptions, manifest: dict[str, Any]
) -> Any:
    """Fit ``spec`` by nested Laplace; the model layer's ``FitResult``."""
    from skipmodel.model.fitting import FitResult

    start = time.perf_counter()
    engine = LaplaceOptions(draws=options.draws or DEFAULT_DRAWS, seed=options.seed)
    cache: dict[str, Any] = {}
    if isinstance(data, StoreSample):
        rows = StoreRows(data, spec, engine=engine_of(options))  # the levels: tasks on Spark
        try:
            design = rows.first_design()
            model = build_latent_model(design)
            rows.model = model
            encoders, n_rows = rows.encoders, rows.n_rows
            manifest = {**manifest, **sample_manifest(data.store, rows.sample)}
            passes = engine_passes(options, data.store, rows.sample, spec, encoders, model)
            result = fit_passes(model, passes or rows, engine, n_rows=n_rows)
            cache = {"bytes": rows.nbytes, "on_disk": rows.on_disk}
            if passes is not None:  # no cache: every pass re-reads the store on the executors
                cache = {"bytes": 0, "on_disk": False, "engine": "spark: re-read per pass"}
        finally:
            rows.close()
        rate: dict[str, float] = {}  # the passes do not sum the outcome
    else:
        if options.engine not in (None, "local"):
            raise SkipmodelError("--engine spark fits a store sample (--store), not plays")
        frame = data.to_pandas() if isinstance(data, pa.Table) else data
        design = build_design(spec, frame)
        model = build_latent_model(design)
        batch = encode_rows(model, design).by_level()
        encoders, n_rows = design.encoders, batch.n_rows
        rate = {"outcome_rate": float(batch.y.mean())}

        def source() -> Iterator[RowBatch]:
            return session_batches(batch, CACHE_BATCH_ROWS)

        result = fit_passes(model, source, engine, n_rows=n_rows)
        cache = {"bytes": batch.nbytes, "on_disk": False}
    tree = posterior_tree(result, design, engine)
    seconds = time.perf_counter() - start
    diagnostics = {**laplace_diagnostics(result, seconds), "row_cache": cache}
    info = {
        **manifest,
        "n_rows": int(result.n_rows),
        "outcome": spec.outcome,
        **rate,
        "likelihood": "bernoulli",
        "approximation": APPROXIMATION,
        "coords_sizes": {k: len(v) for k, v in design.coords.items()},
    }
    resolved = FitOptions(
        inference=options.inference,
        method="laplace",
        seed=options.seed,
        draws=engine.draws,
        engine=options.engine,
        spark_master=options.spark_master,
    )
    return FitResult(spec, encoders, tree, diagnostics, resolved, info)


def posterior_tree(fit: LaplaceFit, design: Design, options: LaplaceOptions) -> xr.DataTree:
    """The run's DataTree: ``posterior`` draws under the NUTS names, ``levels`` summary."""
    model = fit.model
    phi, c = fit.draws(options.draws, options.seed)
    coords = design.coords
    data: dict[str, Any] = {}
    used: dict[str, Any] = {}
    for h, j in zip(model.hypers, range(phi.shape[1]), strict=True):
        data[h.name] = (("chain", "draw"), np.exp(phi[:, j])[None, :])
    for name, view in model.views.items():
        if view.dims is None or view.block not in model.blocks:
            continue
        values = model.table(c, name)
        if view.dims == ():
            values = values[:, 0]
        for dim, size in zip(view.dims, values.shape[1:], strict=True):
            used[dim] = (
                list(coords[dim])
                if dim in coords and len(coords[dim]) == size
                else (list(range(size)))
            )
        data[name] = (("chain", "draw", *view.dims), values[None, ...])
    posterior = xr.Dataset(data, coords={"chain": [0], "draw": np.arange(options.draws), **used})
    children = {"posterior": xr.DataTree(posterior)}
    if model.levels is not None and model.levels_label is not None:
        label = model.levels_label
        names = coords.get(label)
        levels = xr.Dataset(
            {
                f"{label}_effect_mean": ((label,), fit.level_mean),
                f"{label}_effect_sd": ((label,), fit.level_sd),
            },
            coords={label: [str(v) for v in names]} if names is not None else None,
            attrs={"variable": f"{label}_effect", "approximation": "gaussian"},
        )
        children[LEVELS_GROUP] = xr.DataTree(levels)
    return xr.DataTree(children=children)


def laplace_diagnostics(fit: LaplaceFit, seconds: float) -> dict[str, Any]:
    """What a Laplace run records instead of MCMC diagnostics."""
    sd = np.sqrt(np.diag(fit.theta_cov)) if fit.log_theta.size else np.zeros(0)
    return {
        "method": "laplace",
        "seconds": seconds,
        "passes": len(fit.passes),
        "converged": bool(fit.converged),
        "pass_seconds": [p.seconds for p in fit.passes],
        "max_step_sd": [None if np.isnan(p.max_step_sd) else p.max_step_sd for p in fit.passes],
        "halved_steps": int(sum(p.halved for p in fit.passes)),
        "hessian_condition": fit.condition,
        "n_levels": int(fit.model.n_levels),
        "n_dense": int(fit.model.q),
        "hyper_mode": {
            h.name: float(np.exp(v)) for h, v in zip(fit.model.hypers, fit.log_theta, strict=True)
        },
        "hyper_log_sd": {h.name: float(s) for h, s in zip(fit.model.hypers, sd, strict=True)},
    }


__all__ = [
    "APPROXIMATION",
    "StoreRows",
    "fit_laplace_path",
    "laplace_diagnostics",
    "posterior_tree",
]
