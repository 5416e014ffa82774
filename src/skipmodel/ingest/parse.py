"""Parsing and validating MSSD CSV text into typed Arrow batches, row-exactly.

What a source holds is told by its header (:func:`sniff_header`): session logs, track features,
or the challenge's ``log_input_*`` second halves (four columns; each valid row also gets the
file's name and day and its line, which rebuild the files' session order); a session log named
``log_prehistory_*`` is the challenge's first halves, parsed exactly like a training log.

The text is read with pyarrow's streaming CSV reader with every column as ``string`` (no type
inference), quoting off, and empty lines kept (they become rows of empty fields, rejected as
blank lines). Between the source and the reader, :class:`~skipmodel.ingest.lines.LineGuard`
replaces every line longer than :data:`~skipmodel.ingest.rules.MAX_LINE_BYTES` or not UTF-8 by
a marker row, so no line can fail a block; the parser rejects it with its original bytes. Rows
with the wrong number of fields (markers included) are captured by ``invalid_row_handler`` with
their text and physical line number.

Quoting is not honoured: MSSD never quotes, so one physical line is one row and the raw text of
a row is its fields joined by commas. A ``"`` is an ordinary character that no kept column
accepts, so a row holding one is rejected (the reason names the column; extra columns of the
header are checked too), and a quoted field with a line break in it is two physical lines, two
rows read, both rejected. A header with a ``"`` in it is a one-line error.

Ids (``session_id``, ``track_id_clean``, ``track_id``) and category values are bounded, not
matched against MSSD's exact format, so data of the same shape loads: at most
:data:`~skipmodel.ingest.rules.MAX_ID_BYTES` bytes, not empty (ids), no control character (C0,
DEL, C1) and no quote. The column rules and field checks live in :mod:`skipmodel.ingest.rules`.

Typing is vectorised and strict. Low-cardinality columns (booleans, small ints, dates,
categories) are dictionary-encoded, each distinct text value is parsed once in Python, and the
typed column is a NumPy ``take``; high-cardinality floats are cast by Arrow, with a per-value
fallback only for the batches where the fast cast fails. A row that fails any check is rejected
with the first failing column's reason; it never fails the batch.

Accepted spellings (documented in ``data/README.md``): booleans ``true``/``false`` in any case and
``1``/``0``; 0/1 flag columns (:data:`skipmodel.store.schema.LOG_INT_FLAGS`) only ``0``/``1``; integers
as plain decimal digits with an optional ``-`` (no ``+``, spaces, decimals or hex); dates
``YYYY-MM-DD``; floats as Arrow parses them (``1.5``, ``-2e-3``, ``nan``, ``inf``); an empty
track-feature value is null.

User columns (:mod:`skipmodel.store.user_columns`) declared for the store are kept from a
training log's header after MSSD's columns, nullable like the track features: ``number`` read as
a float, ``boolean`` as a boolean, ``string`` checked like a category value (no limit on distinct
values) and dictionary-encoded. Other header columns are not kept; the parser lists them
(:attr:`SourceParser.ignored_columns`) for the manifest.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from skipmodel.errors import SkipmodelError
from skipmodel.ingest.lines import LineGuard
from skipmodel.ingest.rules import (
    DATE_TEXT,
    DEFAULT_LIMITS,
    EPOCH,
    FALSE_TEXT,
    INT_TEXT,
    KINDS,
    QUOTES_UNSUPPORTED,
    TRUE_TEXT,
    ColumnRule,
    RowLimits,
    convert_float,
    convert_id,
    convert_text,
    text_problem,
    user_rules,
)
from skipmodel.ingest.sources import HashingReader, base_name, file_day
from skipmodel.store import schema
from skipmodel.store.arrays import bool_np, int_np, np_array, np_view, str_array
from skipmodel.store.schema import REJECTED_SCHEMA
from skipmodel.store.user_columns import StoredColumn, describe, log_schema

#: Bytes of decompressed text per parsed block (~18,000 MSSD log rows). pyarrow's streaming
#: reader reads up to 32 blocks ahead in the background, so this also bounds that memory.
BLOCK_SIZE = 4 << 20
HEAD_BYTES = 1 << 16
#: Distinct values a category column may take inside one source (its store type is int8-coded).
MAX_CATEGORIES = 127

_BLANK = "blank line (no fields)"


#: Base-name prefixes of the challenge's test-set files (compared in lower case).
PREHISTORY_PREFIX = "log_prehistory_"
INPUT_PREFIX = "log_input_"
#: Session-log columns a challenge input file never has: any of them makes a header a log's.
_LOG_ONLY = frozenset(schema.LOG_COLUMNS) - frozenset(schema.INPUT_COLUMNS)


def challenge_name(name: str) -> str | None:
    """``"prehistory"`` or ``"input"`` when a source's file name is the challenge's, else None."""
    base = base_name(name).lower()
    if base.startswith(PREHISTORY_PREFIX):
        return "prehistory"
    if base.startswith(INPUT_PREFIX):
        return "input"
    return None


def sniff_header(reader: HashingReader) -> tuple[str, list[str]]:
    """Decide from the first line (and the file name) what ``reader`` holds.

    Returns ``(kind, columns)``. The kind is ``"tracks"`` for a track-feature header; for a
    session-log header, ``"prehistory"`` when the file is named ``log_prehistory_*`` (the
    challenge's first halves have the training logs' header: only the name tells them apart),
    else ``"log"``; ``"input"`` for the challenge's second-half header (``session_id``,
    ``track_id_clean``, ``session_position``, ``session_length`` in any order, no other
    session-log column), whatever the name. A name and a header that disagree (``log_input_*``
    without the input header, ``log_prehistory_*`` without the session-log header) are a one-line
    :class:`SkipmodelError`, as are empty, binary, non-comma-separated and unknown files.
    """
    name = reader.name
    head = reader.peek_head(HEAD_BYTES)
    if not head.strip():
        raise SkipmodelError(f"{name}: empty file; expected a CSV with a header row")
    if b"\x00" in head:
        raise SkipmodelError(f"{name}: binary content, not a CSV text file")
    end = head.find(b"\n")
    if end < 0 and len(head) >= HEAD_BYTES:
        raise SkipmodelError(f"{name}: no line break in the first 64 KiB; not a CSV file")
    line = head if end < 0 else head[:end]
    try:
        text = line.decode("utf-8").lstrip("\ufeff").rstrip("\r")
    except UnicodeDecodeError:
        raise SkipmodelError(f"{name}: header is not UTF-8 text; not a CSV file") from None
    if '"' in text:
        raise SkipmodelError(
            f"{name}: quoted header {text[:60]!r}; {QUOTES_UNSUPPORTED} "
            "(MSSD files are unquoted): write the CSV without quotes"
        )
    columns = text.split(",")
    if len(columns) < 2:
        raise SkipmodelError(
            f"{name}: not comma-separated (header {text[:60]!r}); MSSD files are comma-separated"
        )
    named = challenge_name(name)
    is_input = set(schema.INPUT_COLUMNS) <= set(columns) and not _LOG_ONLY & set(columns)
    if named == "input" and not is_input:
        raise SkipmodelError(
            f"{name}: named like a challenge input file (log_input_*) but its header "
            f"{text[:60]!r} is not the input header ({', '.join(schema.INPUT_COLUMNS)}, any "
            "order); rename the file or fix its header"
        )
    if named == "prehistory" and ("session_id" not in columns or is_input):
        raise SkipmodelError(
            f"{name}: named like a challenge prehistory file (log_prehistory_*) but its header "
            f"{text[:60]!r} is not a session log's; rename the file or fix its header"
        )
    if is_input:
        kind, expected = "input", schema.INPUT_COLUMNS
    elif "session_id" in columns:
        kind, expected = named or "log", schema.LOG_COLUMNS
    elif "track_id" in columns:
        kind, expected = "tracks", schema.TRACK_COLUMNS
    else:
        raise SkipmodelError(
            f"{name}: unknown header {text[:60]!r}; expected session-log columns "
            f"({', '.join(schema.LOG_COLUMNS[:4])}, ...) or track-feature columns "
            f"({', '.join(schema.TRACK_COLUMNS[:3])}, ...)"
        )
    missing = [c for c in expected if c not in columns]
    if missing:
        what = "track-feature" if kind == "tracks" else "session-log"
        raise SkipmodelError(f"{name}: {what} file misses required columns: {', '.join(missing)}")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise SkipmodelError(f"{name}: duplicate columns in header: {', '.join(dupes)}")
    return kind, columns


@dataclass
class ParsedBatch:
    """Typed valid rows (schema order; category columns as int8 codes) and the rejected rows."""

    valid: pa.Table
    rejected: pa.Table | None
    n_read: int


@dataclass
class _ColumnCache:
    """Parsed value and error message of each distinct text seen in a low-cardinality column."""

    values: dict[str, tuple[Any, str | None]] = field(default_factory=dict)


@dataclass
class SourceParser:
    """Streams one source's rows as :class:`ParsedBatch` es, numbering every line.

    ``limits`` bound a line (capped at ``block_size``) and an id or category value; rows over
    them are rejected with the reason. ``user_columns`` are the store's declared user columns
    (:mod:`skipmodel.store.user_columns`): a training log keeps them after MSSD's columns,
    typed, and must have them in its header; other kinds ignore them. Header columns that are
    neither kept nor declared are :attr:`ignored_columns`.
    """

    reader: HashingReader
    kind: str
    columns: list[str]
    block_size: int = BLOCK_SIZE
    limits: RowLimits = DEFAULT_LIMITS
    categories: dict[str, list[str]] = field(default_factory=dict)
    user_columns: tuple[StoredColumn, ...] = ()
    #: (line, raw text, raw bytes, reason) of the rows the CSV reader could not split
    _invalid: list[tuple[int, str, bytes, str]] = field(default_factory=list)
    _invalid_data_idx: list[int] = field(default_factory=list)
    _n_valid_seen: int = 0
    _n_invalid_done: int = 0
    _caches: dict[str, _ColumnCache] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rules, self.schema = KINDS[self.kind]
        if self.kind == "log" and self.user_columns:
            missing = [c for c in self.user_columns if c.name not in self.columns]
            if missing:
                raise SkipmodelError(
                    f"{self.reader.name}: declared user column(s) "
                    f"{', '.join(c.name for c in missing)} not in the header; the store keeps "
                    f"{describe(self.user_columns)}: add them to the file (empty fields are "
                    "null) or ingest it into another --store"
                )
            self.rules = (*self.rules, *user_rules(self.user_columns))
            self.schema = log_schema(self.user_columns)
        self.categories = {r.name: [] for r in self.rules if r.kind == "category"}
        self._codes: dict[str, dict[str, int]] = {c: {} for c in self.categories}
        kept = {r.name for r in self.rules}
        self._extra_columns = [c for c in self.columns if c not in kept]
        self._guard = LineGuard(
            self.reader,
            columns=len(self.columns),
            max_line_bytes=min(self.limits.max_line_bytes, self.block_size),
        )

    @property
    def ignored_columns(self) -> list[str]:
        """Header columns not kept: neither MSSD's for this kind nor declared user columns."""
        return list(self._extra_columns)

    def _on_invalid(self, row: Any) -> str:
        number = row.number if row.number is not None else -1
        text = (row.text or "").rstrip("\r")
        token = self._guard.token
        at = text.find(token)
        if at >= 0:  # a line the guard took out: too long, or not UTF-8
            key = int(text[at + len(token) :].split(",", 1)[0])
            line = self._guard.rejects.pop(key)
            raw = bytes(line.kept)
            limit = self._guard.max_line_bytes
            if line.length > limit:
                reason = (
                    f"line too long: {line.length:,} bytes, over the limit of {limit:,} "
                    f"(raw keeps its first {limit:,})"
                )
            else:
                reason = "not UTF-8 text (invalid bytes)"
            self._invalid.append((number, raw.decode("utf-8", "replace"), raw, reason))
        else:
            got, want = row.actual_columns, row.expected_columns
            reason = f"wrong number of fields: {got} instead of {want}"
            if '"' in text:
                reason += f" ({QUOTES_UNSUPPORTED})"
            self._invalid.append((number, text, text.encode("utf-8"), reason))
        # data index = physical line - 2 (line 1 is the header)
        self._invalid_data_idx.append(number - 2)
        return "skip"

    def batches(self) -> Generator[ParsedBatch]:
        read_options = pacsv.ReadOptions(
            column_names=self.columns, skip_rows=1, use_threads=False, block_size=self.block_size
        )
        parse_options = pacsv.ParseOptions(
            quote_char=False, ignore_empty_lines=False, invalid_row_handler=self._on_invalid
        )
        convert_options = pacsv.ConvertOptions(
            column_types={c: pa.string() for c in self.columns},
            check_utf8=False,  # the LineGuard only hands on valid UTF-8
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
            true_values=[],
            false_values=[],
        )
        stream = pacsv.open_csv(
            pa.PythonFile(self._guard, mode="r"),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        # Parse the next block in a thread (pyarrow releases the GIL) while this one is typed
        # and written: line numbers stay exact because invalid rows are recorded with their
        # physical line by the parser, and later blocks' invalid rows never shift earlier rows.
        handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def produce() -> None:
            try:
                while not stop.is_set():
                    try:
                        batch = stream.read_next_batch()
                    except StopIteration:
                        handoff.put(("end", None))
                        return
                    handoff.put(("batch", batch))
            except BaseException as exc:  # handed to the consumer, raised there
                handoff.put(("error", exc))

        producer = threading.Thread(target=produce, name="csv-parse", daemon=True)
        producer.start()
        try:
            while True:
                what, item = handoff.get()
                if what == "end":
                    break
                if what == "error":
                    raise item
                yield self._process(item)
        finally:
            stop.set()
            while producer.is_alive():  # unblock and reap the parser before streams close
                try:
                    handoff.get_nowait()
                except queue.Empty:
                    producer.join(0.01)
        if len(self._invalid) > self._n_invalid_done:  # invalid rows after the last batch
            yield self._process(pa.RecordBatch.from_pylist([], schema=stream.schema))

    # -- line numbers -----------------------------------------------------------------------
    def _valid_lines(self, n: int) -> np.ndarray:
        """1-based physical line of the next ``n`` valid rows, skipping invalid rows' lines."""
        v = np.arange(self._n_valid_seen, self._n_valid_seen + n, dtype=np.int64)
        d = np.asarray(self._invalid_data_idx, dtype=np.int64)
        valid_before = d - np.arange(len(d), dtype=np.int64)
        shift = np.searchsorted(valid_before, v, side="right")
        self._n_valid_seen += n
        return v + 2 + shift

    def _invalid_table(self, source: str) -> pa.Table | None:
        end = len(self._invalid)  # the parser thread may append meanwhile
        new = self._invalid[self._n_invalid_done : end]
        self._n_invalid_done = end
        if not new:
            return None
        return pa.table(
            {
                "source": [source] * len(new),
                "line": [n for n, _, _, _ in new],
                "raw": [t for _, t, _, _ in new],
                "reason": [r for _, _, _, r in new],
                "raw_bytes": [b for _, _, b, _ in new],
            },
            schema=REJECTED_SCHEMA,
        )

    # -- typing ------------------------------------------------------------------------------
    def _process(self, batch: pa.RecordBatch) -> ParsedBatch:
        n = batch.num_rows
        lines = self._valid_lines(n)
        bad = np.zeros(n, dtype=bool)
        reasons = np.full(n, None, dtype=object)
        typed: dict[str, pa.Array] = {}
        for rule in self.rules:
            col = batch.column(rule.name)
            arr, col_bad, col_reasons = self._convert(rule, col)
            typed[rule.name] = arr
            if col_bad is not None and col_bad.any():
                first = col_bad & ~bad
                reasons[first] = col_reasons(first)
                bad |= col_bad
        if self.kind in schema.SESSION_KINDS and n:
            pos = int_np(typed["session_position"])
            length = int_np(typed["session_length"])
            over = (pos > length) & ~bad
            if over.any():
                reasons[over] = [
                    f"session_position {p} > session_length {q}"
                    for p, q in zip(pos[over], length[over], strict=True)
                ]
                bad |= over
        for name in self._extra_columns:  # not kept, but a quote in one rejects the row too
            quoted = bool_np(pc.match_substring(batch.column(name), '"'))
            fresh = quoted & ~bad
            reasons[fresh] = f"{name}: quote character ({QUOTES_UNSUPPORTED})"
            bad |= quoted
        # a blank line has every field empty, so only look when its first field can be empty
        if n and pc.min(pc.binary_length(batch.column(0))).as_py() == 0:
            widths = np.zeros(n, dtype=np.int64)
            for c in batch.columns:
                widths += np_view(pc.binary_length(c))
            blank = widths == 0
            if blank.any():
                reasons[blank] = _BLANK
                bad |= blank
        arrays = [typed[f.name] for f in self.rules]
        names = [r.name for r in self.rules]
        valid = pa.Table.from_arrays(arrays, names=names)
        rejected = self._invalid_table(self.reader.name)
        n_read = n + (0 if rejected is None else rejected.num_rows)
        if bad.any():
            valid = valid.filter(pa.array(~bad))
            bad_idx = np.nonzero(bad)[0]
            sub = batch.take(pa.array(bad_idx))
            joined = pc.binary_join_element_wise(*sub.columns, ",")
            raw = pa.array(
                [
                    "" if reasons[i] == _BLANK else r
                    for i, r in zip(bad_idx, joined.to_pylist(), strict=True)
                ],
                pa.string(),
            )
            row_rejects = pa.table(
                {
                    "source": [self.reader.name] * len(bad_idx),
                    "line": lines[bad_idx],
                    "raw": raw,
                    "reason": list(reasons[bad_idx]),
                    "raw_bytes": raw.cast(pa.binary()),  # the guard let only UTF-8 through
                },
                schema=REJECTED_SCHEMA,
            )
            rejected = (
                row_rejects if rejected is None else pa.concat_tables([rejected, row_rejects])
            )
            if rejected.num_rows > 1:
                rejected = rejected.sort_by("line")
        if self.kind == "input":
            valid = self._with_input_order(valid, lines[~bad] if bad.any() else lines)
        return ParsedBatch(valid, rejected, n_read)

    def _with_input_order(self, valid: pa.Table, lines: np.ndarray) -> pa.Table:
        """A challenge input's rows with the file's name and day and each row's line, which
        rebuild the order of the ``log_input`` files (:data:`~skipmodel.store.schema.INPUT_SCHEMA`)."""
        n = valid.num_rows
        day = file_day(self.reader.name)
        day_value = None if day is None else (dt.date.fromisoformat(day) - EPOCH).days
        file_codes = np_array(np.zeros(n, dtype=np.int32))
        days = np_array(np.full(n, day_value or 0, dtype=np.int32), np.full(n, day is None))
        order = {
            "input_file": pa.DictionaryArray.from_arrays(
                file_codes, str_array([base_name(self.reader.name)])
            ),
            "input_day": days.view(pa.date32()),
            "input_line": np_array(lines.astype(np.int64)),
        }
        for name, column in order.items():
            valid = valid.append_column(schema.INPUT_SCHEMA.field(name), column)
        return valid

    def _convert(
        self, rule: ColumnRule, col: pa.Array
    ) -> tuple[pa.Array, np.ndarray | None, Callable[[np.ndarray], Any]]:
        if rule.kind == "id":
            return convert_id(rule, col, self.limits.max_id_bytes)
        if rule.kind == "float":
            return convert_float(rule, col)
        if rule.kind == "text":
            return convert_text(rule, col, self.limits.max_id_bytes)
        fast = self._convert_fast(rule, col)
        if fast is not None:
            return fast, None, lambda rows: None
        return self._convert_lowcard(rule, col)

    def _convert_fast(self, rule: ColumnRule, col: pa.Array) -> pa.Array | None:
        """Arrow's own cast when every value is clean (the common case), else None."""
        if rule.kind not in ("bool", "flag", "int", "date") or len(col) == 0:
            return None
        if rule.kind in ("bool", "date"):  # Arrow's parse is exactly the accepted spelling
            try:
                return col.cast(self.schema.field(rule.name).type)
            except pa.ArrowInvalid:
                return None
        lengths = pc.binary_length(col)
        shortest, longest = pc.min_max(lengths).values()
        if shortest.as_py() == 0:
            return None  # empty values: nullable ints need the per-value path
        store_type = self.schema.field(rule.name).type
        text = col
        try:
            if rule.kind in ("bool", "date"):
                return text.cast(store_type)
            if rule.kind == "flag" and longest.as_py() != 1:
                return None
            ints = text.cast(pa.int16() if rule.kind == "flag" else store_type)
        except pa.ArrowInvalid:
            return None
        lo, hi = (0, 1) if rule.kind == "flag" else (rule.lo, rule.hi)
        low, high = (v.as_py() for v in pc.min_max(ints).values())
        if low < lo or high > hi:
            return None
        # Arrow also parses "0x1F"; such text is at least 3 bytes long
        if longest.as_py() >= 3 and pc.any(pc.match_substring(col, "x", ignore_case=True)).as_py():
            return None
        return ints.cast(pa.bool_()) if rule.kind == "flag" else ints

    def _convert_lowcard(
        self, rule: ColumnRule, col: pa.Array
    ) -> tuple[pa.Array, np.ndarray | None, Callable[[np.ndarray], Any]]:
        cache = self._caches.setdefault(rule.name, _ColumnCache())
        if len(cache.values) > 100_000:
            cache.values.clear()
        enc = pc.dictionary_encode(col)
        idx = np_view(enc.indices)
        uniq = enc.dictionary.to_pylist()
        parsed = []
        for u in uniq:
            hit = cache.values.get(u)
            if hit is None:
                hit = self._parse_one(rule, u)
                cache.values[u] = hit
            parsed.append(hit)
        msgs = np.array([m for _, m in parsed] + [None], dtype=object)[:-1]
        ok_u = np.array([m is None for m in msgs], dtype=bool)
        null_u = np.array([v is None for v, _ in parsed], dtype=bool)
        fill = 0
        vals = [fill if v is None else v for v, _ in parsed]
        np_type = {"int": np.int64, "bool": np.bool_, "flag": np.bool_, "date": np.int32}
        store_type = self.schema.field(rule.name).type
        if rule.kind == "category":
            np_vals = np.array(vals or [0], dtype=np.int8)
            out_np = np_vals[idx] if len(idx) else np.zeros(0, np.int8)
            mask = null_u[idx] if null_u.any() else None
            arr = np_array(out_np.astype(np.int8, copy=False), mask)
        else:
            np_vals = np.array(vals or [0], dtype=np_type[rule.kind])
            out_np = np_vals[idx] if len(idx) else np.zeros(0, np_vals.dtype)
            mask = null_u[idx] if null_u.any() else None
            if rule.kind == "date":
                arr = np_array(out_np.astype(np.int32, copy=False), mask).view(pa.date32())
            else:
                arr = np_array(out_np, mask).cast(store_type, safe=False)
        bad = None if ok_u.all() else ~ok_u[idx]
        return arr, bad, lambda rows: msgs[idx[rows]]

    def _parse_one(self, rule: ColumnRule, text: str) -> tuple[Any, str | None]:
        shown = text[:40]
        if text == "":
            if rule.nullable:
                return None, None
            return None, f"{rule.name}: empty value"
        kind = rule.kind
        if kind == "bool":
            low = text.lower()
            if low in TRUE_TEXT:
                return True, None
            if low in FALSE_TEXT:
                return False, None
            return None, f"{rule.name}: not a boolean (true/false): {shown!r}"
        if kind == "flag":
            if text in ("0", "1"):
                return text == "1", None
            return None, f"{rule.name}: not a 0/1 flag: {shown!r}"
        if kind == "int":
            if not INT_TEXT.fullmatch(text):
                return None, f"{rule.name}: not an integer: {shown!r}"
            value = int(text)
            if not (rule.lo <= value <= rule.hi):  # type: ignore[operator]
                return None, f"{rule.name}: {value} outside {rule.lo}..{rule.hi}"
            return value, None
        if kind == "date":
            try:
                if not DATE_TEXT.fullmatch(text):
                    raise ValueError
                return (dt.date.fromisoformat(text) - EPOCH).days, None
            except ValueError:
                return None, f"{rule.name}: not a YYYY-MM-DD date: {shown!r}"
        if kind == "category":
            problem = text_problem(rule.name, text, self.limits.max_id_bytes)
            if problem is not None:
                return None, problem
            codes = self._codes[rule.name]
            code = codes.get(text)
            if code is None:
                if len(codes) >= MAX_CATEGORIES:
                    return (
                        None,
                        f"{rule.name}: more than {MAX_CATEGORIES} distinct values in one file",
                    )
                code = codes[text] = len(codes)
                self.categories[rule.name].append(text)
            return code, None
        raise AssertionError(kind)  # pragma: no cover
