"""What a valid MSSD text field is: the column rules, the row limits and the checks of ids,
categories and floats that :mod:`skipmodel.ingest.parse` applies.

Ids (``session_id``, ``track_id_clean``, ``track_id``) and category values are bounded, not
matched against MSSD's exact format, so data of the same shape loads: at most
:data:`MAX_ID_BYTES` bytes, not empty (ids), no control character (C0, DEL, C1) and no quote.
Lines are at most :data:`MAX_LINE_BYTES` long. Both limits are :class:`RowLimits`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.store import schema
from skipmodel.store.arrays import bool_np, np_array, np_view, str_array
from skipmodel.store.user_columns import StoredColumn

#: Longest line accepted, in bytes without its line end (an MSSD row is ~200); a longer line is
#: rejected whole, its first MAX_LINE_BYTES bytes kept. Never more than the block size.
MAX_LINE_BYTES = 1 << 20


#: Longest id or category value accepted, in bytes (MSSD ids are 38 to 40).
MAX_ID_BYTES = 256


INT_TEXT = re.compile(r"-?[0-9]+")


#: What no id or category value may hold: control characters (C0, DEL, C1) and quotes.
_BAD_TEXT = r'[\x00-\x1f\x7f-\x9f"]'


_BAD_TEXT_RE = re.compile(_BAD_TEXT)


QUOTES_UNSUPPORTED = "quoted fields are not supported"


DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


FLOAT_TEXT = re.compile(
    r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)", re.I
)


TRUE_TEXT = {"true", "1"}


FALSE_TEXT = {"false", "0"}


EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class ColumnRule:
    """How one text column becomes its store type: ``kind`` and an inclusive integer domain."""

    name: str
    kind: str  # id | int | bool | flag | date | category | float | text
    lo: int | None = None
    hi: int | None = None
    nullable: bool = False


def _int_rule(name: str, lo: int, hi: int, *, nullable: bool = False) -> ColumnRule:
    return ColumnRule(name, "int", lo, hi, nullable)


LOG_RULES: tuple[ColumnRule, ...] = (
    ColumnRule("session_id", "id"),
    _int_rule("session_position", 1, 127),
    _int_rule("session_length", 1, 127),
    ColumnRule("track_id_clean", "id"),
    *(ColumnRule(c, "bool") for c in schema.SKIP_OUTCOMES),
    *(ColumnRule(c, "flag") for c in schema.LOG_INT_FLAGS),
    _int_rule("hist_user_behavior_n_seekfwd", 0, 32767),
    _int_rule("hist_user_behavior_n_seekback", 0, 32767),
    ColumnRule("hist_user_behavior_is_shuffle", "bool"),
    _int_rule("hour_of_day", 0, 23),
    ColumnRule("date", "date"),
    ColumnRule("premium", "bool"),
    ColumnRule("context_type", "category"),
    ColumnRule("hist_user_behavior_reason_start", "category"),
    ColumnRule("hist_user_behavior_reason_end", "category"),
)


_TRACK_INTS = {"release_year": (0, 32767), "key": (0, 11), "time_signature": (0, 5)}


TRACK_RULES: tuple[ColumnRule, ...] = tuple(
    ColumnRule("track_id", "id")
    if f.name == "track_id"
    else ColumnRule(f.name, "category", nullable=True)
    if f.name == "mode"
    else _int_rule(f.name, *_TRACK_INTS[f.name], nullable=True)
    if f.name in _TRACK_INTS
    else ColumnRule(f.name, "float", nullable=True)
    for f in schema.TRACK_FIELDS
)


#: A challenge ``log_input_*`` row: the same rules as those columns of a session log.
INPUT_RULES: tuple[ColumnRule, ...] = tuple(r for r in LOG_RULES if r.name in schema.INPUT_COLUMNS)

assert [r.name for r in LOG_RULES] == list(schema.LOG_COLUMNS)
assert [r.name for r in TRACK_RULES] == list(schema.TRACK_COLUMNS)
assert [r.name for r in INPUT_RULES] == list(schema.INPUT_COLUMNS)

#: Rules and parsed types of each source kind (a challenge prehistory is a session log; an
#: input's order columns are added by the parser, :data:`~skipmodel.store.schema.INPUT_SCHEMA`).
KINDS = {
    "log": (LOG_RULES, schema.LOG_SCHEMA),
    "prehistory": (LOG_RULES, schema.LOG_SCHEMA),
    "input": (
        INPUT_RULES,
        pa.schema(f for f in schema.INPUT_FIELDS if f.name in schema.INPUT_COLUMNS),
    ),
    "tracks": (TRACK_RULES, schema.TRACK_SCHEMA),
}


def user_rules(columns: Sequence[StoredColumn]) -> tuple[ColumnRule, ...]:
    """Rules of the declared user columns (all nullable: an empty field is null, as for the
    track features): ``number`` a float, ``boolean`` a boolean, ``string`` a text value bounded
    like a category (``text``: dictionary-encoded, no limit on distinct values)."""
    kinds = {"number": "float", "boolean": "bool", "string": "text"}
    return tuple(ColumnRule(c.name, kinds[c.type], nullable=True) for c in columns)


@dataclass(frozen=True)
class RowLimits:
    """The longest line and the longest id or category value accepted, in bytes."""

    max_line_bytes: int = MAX_LINE_BYTES
    max_id_bytes: int = MAX_ID_BYTES

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_id_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SkipmodelError(f"{name} must be a positive number of bytes, not {value!r}")


DEFAULT_LIMITS = RowLimits()


def text_problem(name: str, text: str, max_bytes: int) -> str | None:
    """Why ``text`` cannot be an id or category value of column ``name`` (None if it can)."""
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return f"{name}: {size:,} bytes, over the limit of {max_bytes} for an id or category"
    bad = _BAD_TEXT_RE.search(text)
    if bad is None:
        return None
    if bad[0] == '"':
        return f"{name}: quote character ({QUOTES_UNSUPPORTED})"
    return f"{name}: control character {bad[0]!r}"


def _maybe_bad_bytes(col: pa.Array) -> bool:
    """Whether ``col``'s text may hold a control character or a quote: one pass over its bytes.

    False means none. True (a byte outside ``#``..``~``: a control, a space, ``!``, a quote,
    DEL, or any byte of a non-ASCII character, which may be a C1 control) sends the column to
    the per-value check.
    """
    _, offsets, data = col.buffers()
    if data is None or len(col) == 0:
        return False
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(col) + 1, offset=4 * col.offset)
    text = np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[-1]]
    # bytes 0x23..0x7e shift to 0..0x5b; the others wrap round to 0x5c and above
    return bool(text.size) and int((text - np.uint8(0x23)).max()) >= 0x7F - 0x23


def convert_id(
    rule: ColumnRule, col: pa.Array, max_bytes: int
) -> tuple[pa.Array, np.ndarray | None, Callable[[np.ndarray], Any]]:
    """The id column as is, with its rows that are empty, too long or hold a bad character."""
    if len(col) == 0:
        return col, None, lambda rows: None
    lengths = pc.binary_length(col)
    shortest, longest = (v.as_py() for v in pc.min_max(lengths).values())
    suspect = _maybe_bad_bytes(col)
    if shortest > 0 and longest <= max_bytes and not suspect:
        return col, None, lambda rows: None  # the common case: three vector passes
    sizes = np_view(lengths)
    bad = (sizes == 0) | (sizes > max_bytes)
    if suspect:
        bad |= bool_np(pc.match_substring_regex(col, _BAD_TEXT))
    if not bad.any():
        return col, None, lambda rows: None
    msgs = np.full(len(col), None, dtype=object)
    for i in np.flatnonzero(bad):
        text = col[i].as_py()
        problem = text_problem(rule.name, text, max_bytes) if text else f"{rule.name}: empty id"
        msgs[i] = problem or f"{rule.name}: not a valid id"
    return col, bad, lambda rows: msgs[rows]


def convert_float(
    rule: ColumnRule, col: pa.Array
) -> tuple[pa.Array, np.ndarray | None, Callable[[np.ndarray], Any]]:
    nulled = pc.if_else(pc.equal(pc.binary_length(col), 0), pa.scalar(None, pa.string()), col)
    try:
        return nulled.cast(pa.float64()), None, lambda rows: None
    except pa.ArrowInvalid:
        pass
    out = np.zeros(len(col), dtype=np.float64)
    null = np.zeros(len(col), dtype=bool)
    bad = np.zeros(len(col), dtype=bool)
    msgs = np.full(len(col), None, dtype=object)
    for i, text in enumerate(col.to_pylist()):
        if text == "":
            null[i] = True
        elif FLOAT_TEXT.fullmatch(text):
            out[i] = float(text)
        else:
            bad[i] = True
            null[i] = True
            msgs[i] = f"{rule.name}: not a number: {text[:40]!r}"
    return pa.array(out, mask=null), bad, lambda rows: msgs[rows]


def convert_text(
    rule: ColumnRule, col: pa.Array, max_bytes: int
) -> tuple[pa.Array, np.ndarray | None, Callable[[np.ndarray], Any]]:
    """A user string column dictionary-encoded (``dictionary<int32, string>``), an empty field
    null; a value over ``max_bytes`` or holding a control character or a quote rejects its row.
    Each distinct value is checked once."""
    enc = pc.dictionary_encode(col)
    values = enc.dictionary.to_pylist()
    idx = np_view(enc.indices).astype(np.int64, copy=False)
    msgs = np.array(
        [None if v == "" else text_problem(rule.name, v, max_bytes) for v in values] + [None],
        dtype=object,
    )[:-1]
    kept = [i for i, v in enumerate(values) if v != ""]
    recode = np.full(len(values) + 1, -1, dtype=np.int64)
    recode[kept] = np.arange(len(kept))
    codes = recode[idx] if len(idx) else np.zeros(0, dtype=np.int64)
    null = codes < 0
    arr = pa.DictionaryArray.from_arrays(
        np_array(np.where(null, 0, codes).astype(np.int32), null if null.any() else None),
        str_array([values[i] for i in kept]),
    )
    bad_u = np.array([m is not None for m in msgs], dtype=bool)
    if not bad_u.any():
        return arr, None, lambda rows: None
    return arr, bad_u[idx], lambda rows: msgs[idx[rows]]
