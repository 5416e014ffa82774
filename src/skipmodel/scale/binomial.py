"""The skip model on covariate cells: same terms and priors, Binomial likelihood.

The design of the cells is built by the model's own design builder
(:func:`skipmodel.model.design.build_design`) from the cells' key columns, with encoders
(centring, scaling, level maps, smooth boxes) fitted on the *rows* the cells stand for — so the
parametrisation is the one a row-level fit would choose — and ``trials`` / ``skips`` attached; the
model's builder then picks its Binomial likelihood (:data:`skipmodel.model.build.LIKELIHOODS`).

Row weights for the encoders: up to ``ENCODER_ROWS`` rows the cells are expanded back to their
rows (exact); above, a multinomial sample of that many rows is expanded. Either way every level
map and pooled parametrisation is then recomputed from the cells' exact trial and skip counts (so
``min_count`` pooling is exact, every level present is known, and a small pool's centring reads
its levels' skips as a row-level fit's does). The likelihood is exact whatever the encoders are; they only set the
scale on which the priors act.

Examples
--------
>>> cells = aggregate(store, spec, bins={"danceability": 20})     # doctest: +SKIP
>>> result = fit(spec, cells, draws=500)   # skipmodel.model.fit   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import gammaln

from skipmodel.errors import SkipmodelError
from skipmodel.model.bases import pooled_parametrization
from skipmodel.model.build import build_model
from skipmodel.model.design import Design, build_design
from skipmodel.model.encoders import Encoders, level_map
from skipmodel.model.fitting import FitResult, sample_model
from skipmodel.model.options import FitOptions
from skipmodel.model.spec import ModelSpec
from skipmodel.model.terms import LevelSource, kind_of
from skipmodel.scale.aggregate import Cells, apply_binning

#: Rows expanded from the cells to fit the encoders (exact below this many rows).
ENCODER_ROWS = 1_000_000


def _expand(cells: Cells, *, max_rows: int, seed: int) -> pd.DataFrame:
    """Rows standing for the cells: all of them, or a multinomial sample of ``max_rows``."""
    trials = cells.trials
    if trials.sum() <= max_rows:
        repeat = trials
    else:
        rng = np.random.default_rng(seed)
        repeat = rng.multinomial(max_rows, trials / trials.sum())
    idx = np.repeat(np.arange(cells.n_cells), repeat)
    keys = cells.table.select(list(cells.key_columns)).take(pa.array(idx))
    return keys.to_pandas()


def _exact_levels(spec: ModelSpec, cells: Cells, enc: Encoders) -> None:
    """Recompute every level map (and pooled parametrisations) from exact trial counts."""
    frame = cells.keys_frame()
    trials = pd.Series(cells.trials)
    skips = pd.Series(cells.skips)
    rate = float(cells.skips.sum() / max(cells.trials.sum(), 1))
    sources = {s.key: s for t in spec.terms for s in kind_of(t).level_sources(t)}
    for key, lm in list(enc.levels.items()):
        source = sources.get(key, LevelSource(key, (lm.column,)))
        labels = source.labels(frame).to_numpy()
        counts = trials.groupby(labels).sum()
        enc.levels[key] = level_map(lm.column, counts, min_count=source.min_count)
        if source.pooled:
            skipped = skips.groupby(labels).sum()
            thick = counts >= source.min_count
            kept = counts[thick]
            order = sorted(str(v) for v in kept.index)
            per_level = [int(kept[v]) for v in order]
            per_level_skips = [float(skipped[v]) for v in order]
            if len(kept) < len(counts):
                per_level.append(int(counts[~thick].sum()))
                per_level_skips.append(float(skipped[~thick].sum()))
            enc.settings[key] = pooled_parametrization(
                "auto",
                np.asarray(per_level),
                rate,
                spec.priors.group_sigma,
                skips=np.asarray(per_level_skips),
            )


def cell_encoders(
    spec: ModelSpec, cells: Cells, *, max_rows: int = ENCODER_ROWS, seed: int = 0
) -> Encoders:
    """Encoders fitted on the rows the cells stand for (see the module notes)."""
    rows = _expand(cells, max_rows=max_rows, seed=seed)
    enc = build_design(spec, rows, require_outcome=False).encoders
    # exact counts, and the skips per level the pooled parametrisation reads (the rows carry no
    # outcome)
    _exact_levels(spec, cells, enc)
    return enc


def cells_design(spec: ModelSpec, cells: Cells, *, encoders: Encoders | None = None) -> Design:
    """The Binomial design of ``cells``: one observation per cell, ``trials`` and ``skips``."""
    if cells.outcome != spec.outcome:
        raise SkipmodelError(
            f"cells count {cells.outcome!r} but the model's outcome is {spec.outcome!r}"
        )
    enc = encoders if encoders is not None else cell_encoders(spec, cells)
    design = build_design(spec, cells.keys_frame(), encoders=enc, require_outcome=False)
    for td in design.terms:
        for name, codes in td.codes.items():
            if name != "unseen" and (codes < 0).any():
                raise SkipmodelError(
                    f"cells hold a level of {td.name}.{name} the encoders do not know; "
                    "fit the encoders on these cells"
                )
    return dataclasses.replace(design, outcome=cells.skips, trials=cells.trials, row_ids=None)


def rows_design(
    spec: ModelSpec, rows: pa.Table | pd.DataFrame, cells: Cells, *, encoders: Encoders
) -> Design:
    """The row-level (Bernoulli) design of the same *binned* model, for comparisons."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows)
    return build_design(spec, apply_binning(table, cells.binning), encoders=encoders)


def log_binomial_constant(cells: Cells) -> float:
    """``sum log C(trials, skips)``: Binomial logp over cells minus Bernoulli logp over rows."""
    n, k = cells.trials.astype(float), cells.skips.astype(float)
    return float(np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))


def fit_cells(
    spec: ModelSpec,
    cells: Cells,
    options: FitOptions,
    manifest: dict[str, Any] | None = None,
    *,
    encoders: Encoders | None = None,
) -> FitResult:
    """The cells path of :func:`skipmodel.model.fitting.fit`: ``spec`` on ``cells``, Binomial.

    Call ``fit(spec, cells, ...)``, which resolves ``options`` and refuses those the cells path
    does not read; this runs the model's sampler with them. The manifest records rows, cells, the
    binning and ``likelihood = "binomial"``; ``n_rows`` is the number of plays.
    """
    design = cells_design(spec, cells, encoders=encoders)
    model = build_model(design)
    tree, diagnostics = sample_model(model, options)
    info = {
        **(manifest or {}),
        "n_rows": int(cells.n_rows),
        "n_cells": int(cells.n_cells),
        "likelihood": "binomial",
        "aggregation_seconds": cells.seconds,
        "binning": [dataclasses.asdict(b) for b in cells.binning],
        "outcome": spec.outcome,
        "outcome_rate": float(cells.skips.sum() / max(cells.trials.sum(), 1)),
        "coords_sizes": {k: len(v) for k, v in design.coords.items()},
    }
    return FitResult(spec, design.encoders, tree, diagnostics, options, info)


__all__ = [
    "ENCODER_ROWS",
    "cell_encoders",
    "cells_design",
    "fit_cells",
    "log_binomial_constant",
    "rows_design",
]
