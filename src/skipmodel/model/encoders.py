"""The one level and label rule, and everything a design learns from the fitted data.

* **Label rule** (:func:`as_text`, :func:`level_label`): a categorical value becomes its text;
  booleans (and text that reads only ``True`` / ``False``) are lower-case ``true`` / ``false``;
  a null is ``__missing__``. A level map, the cells' exact counts and the minibatch stream's
  counts all label levels this way, so they agree on what a level is.
* **Rare-level rule** (:func:`level_map`): levels with fewer than ``min_count`` plays share one
  level ``__other__``; the rest are kept, sorted.
* **Value rule** (:func:`as_numbers`, :func:`as_flags`, :func:`as_dates`): a column read as
  numbers, true / false or dates keeps its nulls as missing, but a value that is none of these
  (``"yes"`` in a lag flag, ``"abc"`` in a feature) is refused in one line naming the column and
  the value, never read as missing.

:class:`Encoders` (level maps, scalers, per-term settings, and the effects the report draws) is
JSON-serialisable and passed back to encode new plays the way the fitted ones were.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError

OTHER = "__other__"
MISSING = "__missing__"
UNSEEN = -1


@dataclass(frozen=True)
class LevelMap:
    """Levels of a categorical column: kept levels, the rare ones pooled into ``__other__``."""

    column: str
    levels: tuple[str, ...]
    rare: tuple[str, ...] = ()

    def encode(self, values: pd.Series) -> np.ndarray:
        """Integer codes; rare levels -> ``__other__``; levels never seen -> ``UNSEEN`` (-1)."""
        if isinstance(values.dtype, pd.CategoricalDtype):
            # Categorical (Arrow dictionary) columns: encode the categories present once, take.
            cat_codes = values.cat.codes.to_numpy()  # -1 for null
            present = np.unique(cat_codes)
            categories = values.cat.categories
            names = pd.Series([None if c < 0 else categories[c] for c in present], dtype=object)
            lookup = np.full(len(categories) + 1, UNSEEN, dtype=np.int32)  # last slot: null
            lookup[present] = self._encode_text(as_text(names))
            return lookup[cat_codes]
        fast = arrow_text(values)
        if fast is not None:
            # One hash lookup against kept + rare levels; a rare level's index is past the kept.
            codes = pc.index_in(fast, value_set=self._known_array).fill_null(UNSEEN)
            out = codes.to_numpy(zero_copy_only=False).astype(np.int32)
            if self.rare:
                out[out >= len(self.levels)] = self.levels.index(OTHER)
            return out
        return self._encode_text(as_text(values))

    def _encode_text(self, text: pd.Series) -> np.ndarray:
        codes = pd.Index(self.levels).get_indexer(text).astype(np.int32)
        if self.rare:
            is_rare = pd.Index(self.rare).get_indexer(text) >= 0
            codes[is_rare] = self.levels.index(OTHER)
        return codes

    @functools.cached_property
    def _known_array(self) -> pa.Array:
        return pa.array((*self.levels, *self.rare), type=pa.string())


@dataclass(frozen=True)
class Scaler:
    """``(f(x) - center) / scale`` with ``f = log(x + 1e-10)`` when ``log``."""

    center: float
    scale: float
    log: bool = False

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.log:
            x = np.log(np.clip(x, 0, None) + 1e-10)
        return (x - self.center) / self.scale

    @classmethod
    def fit(cls, x: np.ndarray, *, log: bool = False, scale: bool = True) -> Scaler:
        """Centre on the mean; divide by the sd unless ``scale`` is False (0/1 flags)."""
        raw = cls(0.0, 1.0, log).transform(x)
        raw = raw[np.isfinite(raw)]
        if raw.size == 0:
            return cls(0.0, 1.0, log)
        sd = float(raw.std()) if scale else 1.0
        return cls(float(raw.mean()), sd if sd > 0 else 1.0, log)


@dataclass
class Encoders:
    """Everything learnt from the fitted data, keyed by a name unique within the spec.

    ``effects``: per posterior variable, the term kind and how the report draws it (recorded
    when the encoders are fitted; empty for runs fitted before, whose report guesses it).
    """

    levels: dict[str, LevelMap] = field(default_factory=dict)
    scalers: dict[str, Scaler] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    effects: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": {k: asdict(v) for k, v in self.levels.items()},
            "scalers": {k: asdict(v) for k, v in self.scalers.items()},
            "settings": self.settings,
            "effects": self.effects,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Encoders:
        levels = {
            k: LevelMap(v["column"], tuple(v["levels"]), tuple(v["rare"]))
            for k, v in data["levels"].items()
        }
        scalers = {k: Scaler(**v) for k, v in data["scalers"].items()}
        settings = json.loads(json.dumps(data["settings"]))
        effects = {k: dict(v) for k, v in data.get("effects", {}).items()}
        return cls(levels, scalers, settings, effects)


def arrow_text(values: pd.Series) -> pa.Array | None:
    """A text column as Arrow strings with nulls as ``__missing__`` (what :func:`as_text` gives,
    without a Python object per row), or None when the column is not plain text or its values
    read as booleans (``as_text`` lower-cases those)."""
    if not (pd.api.types.is_string_dtype(values.dtype) and values.dtype != object):
        return None
    arr = pa.array(values, from_pandas=True)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return None
    arr = pc.fill_null(arr.cast(pa.string()), MISSING)
    if len(arr) and pc.all(pc.is_in(arr, value_set=_BOOL_TEXT)).as_py():
        return None
    return arr


_BOOL_TEXT = pa.array(["True", "False", MISSING])


def as_text(values: pd.Series) -> pd.Series:
    """Level labels of a column (the label rule of the module notes), as Python strings."""
    text = values.astype("string").fillna(MISSING)
    if pd.api.types.is_bool_dtype(values.dtype) or set(text.unique()) <= {"True", "False", MISSING}:
        text = text.str.lower().replace("__missing__", MISSING)
    return text.astype(object)


def level_label(value: Any) -> str:
    """The label of one value (a Python scalar, e.g. from Arrow's ``value_counts``): the rule of
    :func:`as_text` for a single value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def joint_text(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Labels of the combinations of ``columns``: each column's label, joined by ``" × "``."""
    parts = [as_text(frame[c]).astype(str) for c in columns]
    out = parts[0]
    for part in parts[1:]:
        out = out + PAIR_SEPARATOR + part
    return out.astype(object)


#: Joins the labels of a combination of columns (:func:`joint_text`).
PAIR_SEPARATOR = " × "


def level_map(column: str, counts: Mapping[Any, int], *, min_count: int = 1) -> LevelMap:
    """The rare-level rule: levels with at least ``min_count`` plays kept (sorted), the others
    pooled into ``__other__`` (the last level, present only when some level is rare).

    Examples
    --------
    >>> level_map("context_type", {"radio": 5, "charts": 1}, min_count=2).levels
    ('radio', '__other__')
    """
    kept = sorted(str(v) for v, c in counts.items() if c >= min_count)
    rare = sorted(str(v) for v, c in counts.items() if c < min_count)
    return LevelMap(column, (*kept, OTHER) if rare else tuple(kept), tuple(rare))


#: Text read as true / false in a flag column (after trimming, in any case).
FLAG_TEXT = {"true": True, "false": False}


def _refuse_values(values: pd.Series, bad: np.ndarray, column: str, wanted: str) -> None:
    """Raise naming ``column``, its first ``bad`` value and how many more there are."""
    where = np.flatnonzero(bad)
    if where.size == 0:
        return
    value = values.iloc[where[0]]
    value = value.item() if isinstance(value, np.generic) else value
    n_more = where.size - 1
    more = f" (and {n_more} more row{'s' if n_more > 1 else ''})" if n_more else ""
    raise SkipmodelError(f"column {column!r} must hold {wanted}; found {value!r}{more}")


def as_numbers(values: pd.Series, column: str) -> np.ndarray:
    """The value rule for numbers: float64, NaN where missing; text that does not read as a
    number is refused naming ``column`` (numbers written as text, ``"0.5"``, are read)."""
    numbers = pd.to_numeric(values, errors="coerce")
    _refuse_values(
        values, numbers.isna().to_numpy() & values.notna().to_numpy(), column, "numbers or nulls"
    )
    return np.asarray(numbers.to_numpy(dtype=np.float64, na_value=np.nan))


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        return FLAG_TEXT.get(value.strip().lower(), value)
    return value


def _is_flag(value: Any) -> bool:
    if isinstance(value, bool | int | float | np.number):
        return bool(np.isnan(value) or value in (0, 1))
    return value is None or value is pd.NA or value is pd.NaT


def as_flags(values: pd.Series, column: str) -> pd.Series:
    """The value rule for true / false: pandas' nullable ``boolean`` from booleans, 0 / 1 and the
    text ``true`` / ``false`` (any case), missing kept; any other value is refused naming
    ``column``."""
    try:
        return values.astype("boolean")
    except (TypeError, ValueError):
        pass
    mapped = values.astype(object).map(_flag)
    bad = ~mapped.map(_is_flag).to_numpy(dtype=bool)
    _refuse_values(values, bad, column, "true / false (or 1 / 0) or nulls")
    # element by element: pandas refuses a mix such as True and 1.0 in one object column
    flags = [None if pd.isna(v) else bool(v) for v in mapped]
    return pd.Series(pd.array(flags, dtype="boolean"), index=values.index)


def as_dates(values: pd.Series, column: str) -> pd.Series:
    """The value rule for dates: datetimes, NaT where missing; a value that does not read as a
    date is refused naming ``column``."""
    dates = pd.to_datetime(values, errors="coerce")
    _refuse_values(values, (dates.isna() & values.notna()).to_numpy(), column, "dates or nulls")
    return dates


__all__ = [
    "MISSING",
    "OTHER",
    "PAIR_SEPARATOR",
    "FLAG_TEXT",
    "UNSEEN",
    "Encoders",
    "LevelMap",
    "Scaler",
    "arrow_text",
    "as_dates",
    "as_flags",
    "as_numbers",
    "as_text",
    "joint_text",
    "level_label",
    "level_map",
]
