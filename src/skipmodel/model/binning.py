"""Equal-width binning of continuous columns: the rule a cells fit records and prediction replays.

A model fitted on covariate cells (:mod:`skipmodel.scale.aggregate`) is a model of *binned*
columns: its encoders and effects are on bin midpoints. The run records each :class:`BinSpec`
(``data.json``'s ``binning``), and :func:`bin_plays` bins new plays the same way before
prediction. The rule lives here, below both the aggregation (which bins while it counts) and
prediction (which bins what it predicts), so neither imports the other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.model.encoders import as_numbers
from skipmodel.store.schema import LAG_PREFIXES


def lag_base(column: str) -> tuple[str, bool]:
    """``prev_danceability`` -> (``danceability``, lagged)."""
    for prefix in LAG_PREFIXES:
        if column.startswith(prefix):
            return column[len(prefix) :], True
    return column, False


@dataclass(frozen=True)
class BinSpec:
    """Equal-width bins of a continuous column (and of its lag columns ``prev_<column>``).

    ``bins`` bins over ``[lo, hi]`` on the raw scale, or on ``log(x + 1e-10)`` when ``log``; a
    value becomes its bin's midpoint (back on the raw scale); values outside the range fall in
    the end bins; nulls stay null.
    """

    column: str
    bins: int
    lo: float
    hi: float
    log: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.bins, int) or isinstance(self.bins, bool) or self.bins < 1:
            raise SkipmodelError(f"bins for {self.column!r}: expected a positive integer")
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.hi > self.lo):
            raise SkipmodelError(f"bins for {self.column!r}: need a range lo < hi")

    def applies_to(self, column: str) -> bool:
        return lag_base(column)[0] == self.column

    def midpoints(self) -> np.ndarray:
        width = (self.hi - self.lo) / self.bins
        mid = self.lo + (np.arange(self.bins) + 0.5) * width
        return np.exp(mid) - 1e-10 if self.log else mid

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Each value replaced by its bin's midpoint (float64; NaN stays NaN)."""
        x = np.asarray(values, dtype=np.float64)
        t = np.log(np.clip(x, 0, None) + 1e-10) if self.log else x
        with np.errstate(invalid="ignore"):
            idx = np.floor((t - self.lo) / (self.hi - self.lo) * self.bins)
        idx = np.clip(np.nan_to_num(idx, nan=0), 0, self.bins - 1).astype(np.int64)
        return np.where(np.isnan(x), np.nan, self.midpoints()[idx])


def apply_binning(table: pa.Table | pa.RecordBatch, binning: Sequence[BinSpec]) -> pa.Table:
    """``table`` with each binned column (and its lag columns) replaced by bin midpoints."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    for column in table.column_names:
        for b in binning:
            if b.applies_to(column):
                values = table.column(column).to_numpy(zero_copy_only=False)
                binned = pa.array(b.apply(values.astype(np.float64)), from_pandas=True)
                table = table.set_column(table.schema.get_field_index(column), column, binned)
    return table


def bin_plays(frame: pd.DataFrame, binning: Sequence[BinSpec]) -> pd.DataFrame:
    """A copy of ``frame`` with each binned column (and its lags) replaced by bin midpoints."""
    out = frame.copy(deep=False)
    for column in frame.columns:
        for b in binning:
            if b.applies_to(column):
                out[column] = b.apply(as_numbers(frame[column], column))
    return out


def run_binning(manifest: dict[str, Any]) -> tuple[BinSpec, ...]:
    """The binning a fitted run's rows went through (aggregated fits; empty otherwise).

    A model fitted on cells is a model of the *binned* columns: its encoders and effects are on
    bin midpoints, so new plays are binned the same way before prediction.
    """
    return tuple(BinSpec(**b) for b in manifest.get("binning", ()))


__all__ = ["BinSpec", "apply_binning", "bin_plays", "lag_base", "run_binning"]
