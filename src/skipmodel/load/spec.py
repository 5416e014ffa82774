"""What a loader reads: :class:`SampleSpec`, validated into a :class:`ReadPlan` of the columns to
read and emit, and the Arrow schema of its output (:func:`output_schema`).

The reading itself is :mod:`skipmodel.load.loaders`; this module decides only *what*, so a
wrong option fails before any file is opened.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.load.lags import LAG1_EXTRA, LAG_OUTCOMES, lag_column_names
from skipmodel.load.sampling import check_test_fraction
from skipmodel.store.layout import StoreLayout
from skipmodel.store.location import store_path
from skipmodel.store.schema import LOG_COLUMNS, LOG_SCHEMA, TRACK_COLUMNS, TRACK_SCHEMA
from skipmodel.store.user_columns import recorded_columns, user_fields

#: Log columns present in every output, whatever the projection.
KEY_COLUMNS: tuple[str, ...] = (
    "session_id",
    "session_position",
    "session_length",
    "track_id_clean",
)
#: Derived calendar column (Monday = 0), emitted when ``date`` is projected or asked for by name.
WEEKDAY = "weekday"
#: Track features joined by default: everything but the id.
TRACK_FEATURES: tuple[str, ...] = tuple(c for c in TRACK_COLUMNS if c != "track_id")
DEFAULT_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class SampleSpec:
    """What to load from a store.

    Parameters
    ----------
    fraction : float, default 1.0
        Share of sessions, in (0, 1]; chosen by seeded hash (see :mod:`skipmodel.load.sampling`).
    seed : int, default 0
        Sample seed: same seed, same sessions on every machine.
    split : {"train", "test"} or None
        Keep only training or only held-out sessions (``is_test_session``); None keeps both.
    test_fraction : float, default 0.2
        Share of sessions held out, in (0, 1).
    date_range : (from, to) or None
        Inclusive bounds on ``date`` (``datetime.date`` or ISO string; either may be None).
        Applied per row, after lags are computed.
    columns : sequence of str or None
        Session-log columns to return (None = all, the store's user columns included);
        ``session_id``, ``session_position``, ``session_length`` and ``track_id_clean`` are
        always returned. ``"weekday"`` may be named to get the weekday without the date, and a
        user column the store keeps (``skipmodel ingest --column``) by its name.
    features : sequence of str or bool, default True
        Track features joined on ``track_id_clean`` (True = all, False = none).
    lags : int, default 1
        0, 1 or 2 levels of lag columns.
    lag_features : sequence of str or bool, default True
        Track features copied from the previous play as ``prev_<feature>`` (True = the joined
        ``features``).
    batch_rows : int, default 65536
        Target rows per record batch; a batch is larger only when one session is.
    track_ids : {"string", "dictionary"}, default "string"
        Type of ``track_id_clean`` and ``prev_track_id_clean``: plain strings, or
        ``dictionary<int32, string>`` arrays whose dictionary is shared by every batch of a
        bucket (no string is copied per row; a consumer can work on the dictionary once).
    """

    fraction: float = 1.0
    seed: int = 0
    split: Literal["train", "test"] | None = None
    test_fraction: float = 0.2
    date_range: tuple[date | str | None, date | str | None] | None = None
    columns: Sequence[str] | None = None
    features: Sequence[str] | bool = True
    lags: int = 1
    lag_features: Sequence[str] | bool = True
    batch_rows: int = DEFAULT_BATCH_ROWS
    track_ids: Literal["string", "dictionary"] = "string"

    def __post_init__(self) -> None:
        # Freeze sequences so the spec is hashable and cannot change under a running loader.
        for name in ("columns", "features", "lag_features"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif value is not None and not isinstance(value, bool):
                object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True)
class ReadPlan:
    """A validated spec turned into the columns to read and emit."""

    log_read: tuple[str, ...]
    log_out: tuple[str, ...]
    weekday: bool
    features: tuple[str, ...]
    lag_features: tuple[str, ...]
    track_read: tuple[str, ...]
    lags: int
    split: str | None
    test_fraction: float
    date_from: date | None
    date_to: date | None
    batch_rows: int
    dictionary_ids: bool = False
    #: also read the per-row source fingerprint of compacted buckets (``iter_buckets``)
    read_sources: bool = False
    #: the store's track files, as compaction records them with its track rows
    tracks_signature: str | None = None
    #: the store's user columns to read and emit (:mod:`skipmodel.store.user_columns`)
    user: tuple[pa.Field, ...] = ()

    @property
    def user_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.user)

    @property
    def out_names(self) -> list[str]:
        return [
            *self.log_out,
            *([WEEKDAY] if self.weekday else []),
            *self.user_names,
            *self.features,
            *lag_column_names(self.lags, self.lag_features),
        ]


def _parse_date(value: date | str | None, label: str) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise SkipmodelError(f"{label} date {value!r} is not a date; use YYYY-MM-DD") from None


def _check_names(names: Sequence[str], valid: Sequence[str], what: str) -> None:
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise SkipmodelError(
            f"unknown {what} {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )


#: The spec of the loaders' defaults: every session, all columns, features and lags.
DEFAULT_SPEC = SampleSpec()


def store_user_fields(store: str | os.PathLike[str]) -> tuple[pa.Field, ...]:
    """The user columns ``store`` keeps, as Arrow fields (none when it is not a store: opening
    it then says so)."""
    layout = StoreLayout(store_path(store))
    if not layout.manifest_path.is_file():
        return ()
    return user_fields(recorded_columns(layout.read_manifest()))


def read_plan(spec: SampleSpec, user: Sequence[pa.Field] = ()) -> ReadPlan:
    """Validate ``spec`` (a one-line error per bad option) and turn it into a :class:`ReadPlan`.

    ``user``: the store's user columns (:func:`store_user_fields`); all of them are read when
    ``spec.columns`` is None, else those it names."""
    user_names = tuple(f.name for f in user)
    if spec.columns is None:
        wanted = (*LOG_COLUMNS, WEEKDAY, *user_names)
    else:
        _check_names(spec.columns, (*LOG_COLUMNS, WEEKDAY, *user_names), "column(s)")
        wanted = tuple(spec.columns)
    log_out = tuple(c for c in LOG_COLUMNS if c in KEY_COLUMNS or c in wanted)
    weekday = WEEKDAY in wanted or "date" in wanted

    if spec.features is True:
        features: tuple[str, ...] = TRACK_FEATURES
    elif spec.features is False:
        features = ()
    else:
        _check_names(spec.features, TRACK_FEATURES, "track feature(s)")
        features = tuple(c for c in TRACK_FEATURES if c in spec.features)

    if not isinstance(spec.lags, int | np.integer) or spec.lags not in (0, 1, 2):
        raise SkipmodelError(f"lags must be 0, 1 or 2, got {spec.lags!r}")
    lags = int(spec.lags)
    if lags == 0 or spec.lag_features is False:
        lag_features: tuple[str, ...] = ()
    elif spec.lag_features is True:
        lag_features = features
    else:
        _check_names(spec.lag_features, TRACK_FEATURES, "lag feature(s)")
        lag_features = tuple(c for c in TRACK_FEATURES if c in spec.lag_features)

    if spec.split not in (None, "train", "test"):
        raise SkipmodelError(f"split must be 'train', 'test' or None, got {spec.split!r}")
    test_fraction = check_test_fraction(spec.test_fraction)
    date_from = date_to = None
    if spec.date_range is not None:
        try:
            lo, hi = spec.date_range
        except (TypeError, ValueError):
            raise SkipmodelError(
                "date_range must be a pair (from, to); use None for open"
            ) from None
        date_from, date_to = _parse_date(lo, "from"), _parse_date(hi, "to")
        if date_from and date_to and date_from > date_to:
            raise SkipmodelError(f"date range is empty: from {date_from} is after to {date_to}")
    if not isinstance(spec.batch_rows, int | np.integer) or spec.batch_rows < 1:
        raise SkipmodelError(f"batch_rows must be a positive integer, got {spec.batch_rows!r}")
    if spec.track_ids not in ("string", "dictionary"):
        raise SkipmodelError(f"track_ids must be 'string' or 'dictionary', got {spec.track_ids!r}")

    needed = set(log_out)
    if weekday or spec.date_range is not None:
        needed.add("date")
    if lags >= 1:
        needed.update(LAG_OUTCOMES, LAG1_EXTRA)
    return ReadPlan(
        log_read=tuple(c for c in LOG_COLUMNS if c in needed),
        log_out=log_out,
        weekday=weekday,
        features=features,
        lag_features=lag_features,
        track_read=tuple(c for c in TRACK_FEATURES if c in features or c in lag_features),
        lags=lags,
        split=spec.split,
        test_fraction=test_fraction,
        date_from=date_from,
        date_to=date_to,
        batch_rows=int(spec.batch_rows),
        dictionary_ids=spec.track_ids == "dictionary",
        user=tuple(f for f in user if f.name in wanted),
    )


def resolve_spec(spec: SampleSpec, overrides: dict[str, Any]) -> SampleSpec:
    """``spec`` with ``overrides`` (SampleSpec field names) applied; unknown names fail."""
    if not isinstance(spec, SampleSpec):
        raise SkipmodelError(f"spec must be a SampleSpec, got {type(spec).__name__}")
    fields = [f.name for f in dataclasses.fields(SampleSpec)]
    _check_names(list(overrides), fields, "SampleSpec option(s)")
    return dataclasses.replace(spec, **overrides) if overrides else spec


def output_schema(
    spec: SampleSpec = DEFAULT_SPEC,
    *,
    store: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> pa.Schema:
    """The Arrow schema of every batch :func:`iter_batches` yields for ``spec`` (with a
    ``store``: its user columns included)."""
    user = () if store is None else store_user_fields(store)
    return plan_schema(read_plan(resolve_spec(spec, overrides), user))


def plan_schema(plan: ReadPlan) -> pa.Schema:
    """The Arrow schema of the batches read with ``plan``."""
    fields = [log_field(c, plan.dictionary_ids) for c in plan.log_out]
    if plan.weekday:
        fields.append(pa.field(WEEKDAY, pa.int8(), nullable=False))
    fields += plan.user
    fields += [TRACK_SCHEMA.field(c).with_nullable(True) for c in plan.features]
    for name in lag_column_names(plan.lags, plan.lag_features):
        base = name.split("_", 1)[1]
        source = (
            log_field(base, plan.dictionary_ids)
            if base in LOG_COLUMNS
            else TRACK_SCHEMA.field(base)
        )
        fields.append(pa.field(name, source.type, nullable=True))
    return pa.schema(fields)


#: Session and track ids are read from Parquet as dictionary indices (one dictionary per
#: bucket), so finding sessions, the sort, the track join and the lag copy move integers
#: instead of strings; the ids are decoded to strings only for output (unless asked not to).
TRACK_ID_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def log_field(name: str, dictionary_ids: bool, *, reading: bool = False) -> pa.Field:
    """The field of log column ``name`` as emitted (``reading``: as read from Parquet)."""
    field = LOG_SCHEMA.field(name)
    if (dictionary_ids and name == "track_id_clean") or (reading and name == "session_id"):
        return field.with_type(TRACK_ID_DICTIONARY)
    return field
