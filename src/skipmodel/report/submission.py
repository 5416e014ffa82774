"""WSDM Cup 2019 skip-prediction submissions: write, read, and score against known outcomes.

A submission is a text file with one line per test session, in the order the sessions first
appear in the challenge's ``log_input`` files; each line is a string of ``0``/``1`` predictions
of ``skip_2`` for that session's second-half plays (``2 * session_position > session_length``)
in position order. The scores are :func:`~skipmodel.report.metrics.sequential_metrics`' mean
average accuracy and first-prediction accuracy.

The truth is read from a CSV with ``session_id, session_position, skip_2`` (extra columns are
ignored) or a whole session log; when the file has ``session_length`` only the second-half rows
are kept. ``skip_2`` may be spelled ``true``/``false`` in any case or ``1``/``0``. Everything is
vectorised (the challenge has ~3.1 million test sessions): no per-play Python loops.

Examples
--------
>>> truth = read_truth("test_truth.csv")                                    # doctest: +SKIP
>>> order = read_session_order(sorted(Path("test_set").glob("log_input_*.csv")))  # doctest: +SKIP
>>> score_submission(read_submission("submission.txt"), truth, order=order)  # doctest: +SKIP
SequentialMetrics(n_sessions=..., n_plays=..., mean_average_accuracy=..., ...)
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from skipmodel.errors import SkipmodelError, first_line
from skipmodel.report.metrics import SequentialMetrics, second_half_mask, sequential_metrics
from skipmodel.store.layout import atomic_path

__all__ = [
    "TRUTH_COLUMNS",
    "read_session_order",
    "read_submission",
    "read_truth",
    "score_submission",
    "write_submission",
]

#: Columns of the frame :func:`read_truth` returns.
TRUTH_COLUMNS: tuple[str, ...] = ("session_id", "session_position", "skip_2")
#: Accepted spellings of ``skip_2`` (compared in lower case).
_TRUE_TEXT = ("true", "1")
_FALSE_TEXT = ("false", "0")
#: Types the CSV columns are read as (no inference: a stray value is an error, not a string column).
_COLUMN_TYPES: dict[str, pa.DataType] = {
    "session_id": pa.string(),
    "skip_2": pa.string(),
    "session_position": pa.int64(),
    "session_length": pa.int64(),
}
_GZIP_MAGIC = b"\x1f\x8b"
_ZERO, _ONE, _NEWLINE = ord("0"), ord("1"), ord("\n")

PathLike = str | os.PathLike[str]


# --- writing ---------------------------------------------------------------------------------


def write_submission(path: PathLike, predictions: pd.DataFrame, order: Sequence[str]) -> int:
    """Write a submission file: one line of 0/1 per session of ``order``, plays in position order.

    Parameters
    ----------
    path
        The file to write; written to a temporary file beside it, then renamed into place.
    predictions
        One row per predicted play: ``session_id``, ``session_position`` and ``p_skip``, the skip
        probability (hard labels work too: 0/1 or bool). A play is written ``1`` when
        ``p_skip >= 0.5``, the convention of :mod:`skipmodel.report.metrics`; for another
        threshold pass ``p_skip=(p >= threshold)``.
    order
        Session ids in the order of the lines, normally :func:`read_session_order` of the
        challenge's ``log_input`` files.

    Returns
    -------
    int
        The number of lines written (``len(order)``).

    Raises
    ------
    SkipmodelError
        A session of ``order`` has no predictions, a prediction's session is not in ``order``, a
        play is predicted twice, ``p_skip`` is missing or not a probability, or ``order`` lists
        a session twice.
    """
    for column in ("session_id", "session_position", "p_skip"):
        if column not in predictions.columns:
            raise SkipmodelError(
                f"predictions lack column {column!r} (need session_id, session_position, p_skip)"
            )
    order_index = _order_index(order, what="the session order")
    rank = order_index.get_indexer(predictions["session_id"].astype(str).to_numpy())
    if (rank < 0).any():
        stray = predictions["session_id"].to_numpy()[np.flatnonzero(rank < 0)[0]]
        raise SkipmodelError(
            f"predictions for session {stray!r}, which is not in the session order "
            f"({int((rank < 0).sum())} predicted plays in such sessions); predict the test "
            "sessions only"
        )
    p_skip = pd.to_numeric(predictions["p_skip"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(p_skip).all() or (p_skip < 0).any() or (p_skip > 1).any():
        raise SkipmodelError("p_skip must be a probability in [0, 1] (or 0/1) for every play")
    position = predictions["session_position"].to_numpy(dtype=np.int64)
    rows = np.lexsort((position, rank))
    rank, position = rank[rows], position[rows]
    repeated = (rank[1:] == rank[:-1]) & (position[1:] == position[:-1])
    if repeated.any():
        session = order_index[rank[1:][repeated][0]]
        raise SkipmodelError(
            f"session {session!r} has two predictions for position {position[1:][repeated][0]}"
        )
    per_session = np.bincount(rank, minlength=len(order_index))
    if (per_session == 0).any():
        line = int(np.flatnonzero(per_session == 0)[0])
        raise SkipmodelError(
            f"session {order_index[line]!r} (line {line + 1}) has no predictions; "
            f"{int((per_session == 0).sum())} session(s) of the order lack predictions"
        )
    # Row j of session r lands at byte j + r: each earlier session ends with one newline.
    text = np.full(rank.size + len(order_index), _NEWLINE, dtype=np.uint8)
    text[np.arange(rank.size) + rank] = np.where(p_skip[rows] >= 0.5, _ONE, _ZERO)
    final = Path(path)
    with atomic_path(final) as tmp, open(tmp, "wb") as fh:
        fh.write(text.tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    return len(order_index)


# --- reading ---------------------------------------------------------------------------------


def read_submission(path: PathLike) -> list[str]:
    """Lines of a submission file, checked: only ``0``/``1``, no empty line, not empty.

    A final newline is optional and Windows line ends (``\\r\\n``) are accepted.

    Raises
    ------
    SkipmodelError
        The file is missing or empty, or a line is empty or holds another character (the
        message names the line number).
    """
    raw = _read_bytes(Path(path), what="submission")
    raw = raw.replace(b"\r\n", b"\n")
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if not raw:
        raise SkipmodelError(f"{path}: the submission is empty (expected one line per session)")
    data = np.frombuffer(raw, dtype=np.uint8)
    bad = (data != _ZERO) & (data != _ONE) & (data != _NEWLINE)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        line = int(np.count_nonzero(data[:at] == _NEWLINE)) + 1
        shown = raw[at : at + 1].decode("latin-1")
        raise SkipmodelError(
            f"{path}: line {line} holds {shown!r}; a line may hold only 0 and 1 (one per play)"
        )
    breaks = np.flatnonzero(data == _NEWLINE)
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks, data.size]
    empty = np.flatnonzero(ends == starts)
    if empty.size:
        raise SkipmodelError(
            f"{path}: line {int(empty[0]) + 1} is empty; every session needs its predictions"
        )
    return raw.decode("ascii").split("\n")


def read_truth(path_or_paths: PathLike | Sequence[PathLike]) -> pd.DataFrame:
    """Known ``skip_2`` outcomes of the second halves, in session order.

    Parameters
    ----------
    path_or_paths
        One file or several (read in the order given): a CSV with ``session_id,
        session_position, skip_2`` (other columns ignored) or a session log (``.csv`` or
        ``.csv.gz``, MSSD columns). When a file has ``session_length``, only the second-half
        rows (``2 * session_position > session_length``) are kept.

    Returns
    -------
    pandas.DataFrame
        ``session_id`` (str), ``session_position`` (int64), ``skip_2`` (bool); sessions in the
        order of their first appearance, plays in position order within a session. The session
        order is therefore ``pd.unique(truth["session_id"])``.

    Raises
    ------
    SkipmodelError
        A file is missing, lacks a column, holds a value that is not an integer (positions) or a
        boolean (``skip_2``), has no second-half rows, or repeats a play.
    """
    paths = _as_paths(path_or_paths)
    tables = []
    for path in paths:
        columns = _header(path)
        missing = [c for c in TRUTH_COLUMNS if c not in columns]
        if missing:
            raise SkipmodelError(
                f"{path}: no column {', '.join(map(repr, missing))} in the header; the truth "
                "needs session_id, session_position, skip_2 (or a whole session log)"
            )
        has_length = "session_length" in columns
        wanted = [*TRUTH_COLUMNS, "session_length"] if has_length else list(TRUTH_COLUMNS)
        table = _read_csv(path, wanted)
        skip_2 = _parse_bool(path, table.column("skip_2"))
        position = _int_column(path, table, "session_position")
        frame = pd.DataFrame(
            {
                "session_id": table.column("session_id").to_numpy(zero_copy_only=False),
                "session_position": position,
                "skip_2": skip_2,
            }
        )
        if has_length:
            length = _int_column(path, table, "session_length")
            frame = frame[second_half_mask(position, length)]
        tables.append(frame)
    frame = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    if frame.empty:
        where = paths[0] if len(paths) == 1 else f"{len(paths)} truth files"
        raise SkipmodelError(f"{where}: no second-half plays to score against")
    codes, _ = pd.factorize(frame["session_id"], sort=False)
    position = frame["session_position"].to_numpy()
    rows = np.lexsort((position, codes))
    frame = frame.iloc[rows].reset_index(drop=True)
    codes, position = codes[rows], position[rows]
    repeated = (codes[1:] == codes[:-1]) & (position[1:] == position[:-1])
    if repeated.any():
        at = int(np.flatnonzero(repeated)[0]) + 1
        raise SkipmodelError(
            f"truth: session {frame['session_id'].iat[at]!r} has position "
            f"{int(position[at])} twice; each play must appear once"
        )
    return frame


def read_session_order(path_or_paths: PathLike | Sequence[PathLike]) -> list[str]:
    """Session ids in the order of their first appearance in CSV files (read in the order given).

    Meant for the challenge's ``log_input_*.csv`` files, whose order defines a submission's
    lines; any CSV with a ``session_id`` column works (``.csv.gz`` too).
    """
    ids = []
    for path in _as_paths(path_or_paths):
        if "session_id" not in _header(path):
            raise SkipmodelError(f"{path}: no column 'session_id' in the header")
        ids.append(_read_csv(path, ["session_id"]).column("session_id"))
    combined = pa.chunked_array([c for column in ids for c in column.chunks], type=pa.string())
    order = pd.unique(combined.to_numpy())
    if order.size == 0:
        raise SkipmodelError("the session order files hold no sessions")
    return [str(s) for s in order]


# --- scoring ---------------------------------------------------------------------------------


def score_submission(
    lines: Sequence[str], truth: pd.DataFrame, *, order: Sequence[str] | None = None
) -> SequentialMetrics:
    """Score submission lines against known outcomes: line k predicts the k-th session.

    Parameters
    ----------
    lines
        One string of ``0``/``1`` per session (:func:`read_submission`).
    truth
        ``session_id, session_position, skip_2`` of the predicted plays (:func:`read_truth`).
    order
        Session ids in the order of the lines (:func:`read_session_order` of the ``log_input``
        files); by default the order of first appearance in ``truth``. It must list the truth's
        sessions exactly.

    Returns
    -------
    SequentialMetrics
        Mean average accuracy and first-prediction accuracy over the sessions.

    Raises
    ------
    SkipmodelError
        The number of lines differs from the number of sessions, a line's length differs from
        its session's number of second-half plays, a line holds a character other than 0/1, or
        ``order`` and the truth disagree on the sessions.
    """
    for column in TRUTH_COLUMNS:
        if column not in truth.columns:
            raise SkipmodelError(f"truth lacks column {column!r}")
    codes, sessions = pd.factorize(truth["session_id"].astype(str), sort=False)
    if order is None:
        rank = codes
        order_index = pd.Index(sessions)
    else:
        order_index = _order_index(order, what="--order")
        to_rank = order_index.get_indexer(sessions)
        if (to_rank < 0).any():
            raise SkipmodelError(
                f"truth session {sessions[np.flatnonzero(to_rank < 0)[0]]!r} is not in the "
                f"session order ({int((to_rank < 0).sum())} such sessions); check --order"
            )
        if len(order_index) > len(sessions):
            extra = order_index[~order_index.isin(sessions)][0]
            raise SkipmodelError(
                f"session {extra!r} of the order has no outcomes in the truth "
                f"({len(order_index) - len(sessions)} such sessions)"
            )
        rank = to_rank[codes]
    n_sessions = len(order_index)
    if len(lines) != n_sessions:
        raise SkipmodelError(
            f"the submission has {len(lines):,} lines but there are {n_sessions:,} sessions; "
            "write one line per session, in the order of the log_input files"
        )
    expected = np.bincount(rank, minlength=n_sessions)
    got = np.fromiter(map(len, lines), dtype=np.int64, count=n_sessions)
    wrong = np.flatnonzero(got != expected)
    if wrong.size:
        k = int(wrong[0])
        raise SkipmodelError(
            f"line {k + 1} (session {order_index[k]!r}) has {got[k]} predictions but the session "
            f"has {expected[k]} second-half plays ({wrong.size:,} line(s) have the wrong length)"
        )
    data = np.frombuffer("".join(lines).encode("utf-8", errors="replace"), dtype=np.uint8)
    if data.size != int(got.sum()) or ((data != _ZERO) & (data != _ONE)).any():
        bad_line = next(k for k, line in enumerate(lines) if line.strip("01"))
        raise SkipmodelError(f"line {bad_line + 1} holds characters other than 0 and 1")
    predicted = (data == _ONE).astype(np.int8)
    # Truth rows in line order, then position order: the k-th prediction of line r is then the
    # k-th row of session r.
    position = truth["session_position"].to_numpy(dtype=np.int64)
    rows = np.lexsort((position, rank))
    outcome = truth["skip_2"].to_numpy()[rows]
    try:
        y = np.asarray(outcome, dtype=np.int8)
    except (TypeError, ValueError):
        raise SkipmodelError("truth's skip_2 must be boolean or 0/1") from None
    return sequential_metrics(rank[rows], position[rows], y, predicted)


# --- helpers ---------------------------------------------------------------------------------


def _as_paths(path_or_paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(path_or_paths, str | os.PathLike):
        return [Path(path_or_paths)]
    paths = [Path(p) for p in path_or_paths]
    if not paths:
        raise SkipmodelError("no files given")
    return paths


def _order_index(order: Sequence[str], *, what: str) -> pd.Index:
    index = pd.Index([str(s) for s in order], dtype=object)
    if index.empty:
        raise SkipmodelError(f"{what} lists no sessions")
    if index.has_duplicates:
        raise SkipmodelError(f"{what} lists session {index[index.duplicated()][0]!r} twice")
    return index


def _read_bytes(path: Path, *, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SkipmodelError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise SkipmodelError(f"{path}: is a folder, not a {what} file") from None


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except FileNotFoundError:
        raise SkipmodelError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SkipmodelError(f"{path}: is a folder, not a CSV file") from None


def _header(path: Path) -> list[str]:
    """Column names of a CSV's first line (files are told apart by header, not column order)."""
    try:
        if _is_gzip(path):
            with gzip.open(path, "rb") as fh:
                first = fh.readline()
        else:
            with open(path, "rb") as raw:
                first = raw.readline()
    except (OSError, EOFError) as exc:  # a damaged gzip stream
        raise SkipmodelError(f"{path}: cannot be read ({exc})") from None
    if not first.strip():
        raise SkipmodelError(f"{path}: empty file (expected a CSV header)")
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff")
    return [name.strip() for name in text.rstrip("\r\n").split(",")]


def _read_csv(path: Path, columns: list[str]) -> pa.Table:
    types = {c: _COLUMN_TYPES[c] for c in columns}
    convert = pacsv.ConvertOptions(
        include_columns=columns, column_types=types, strings_can_be_null=True
    )
    try:
        with pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None) as src:
            return pacsv.read_csv(src, convert_options=convert)
    except (pa.ArrowException, OSError, EOFError) as exc:
        raise SkipmodelError(f"{path}: cannot be read as CSV ({first_line(exc)})") from None


def _column_problem(path: Path, column: pa.ChunkedArray, bad: np.ndarray, name: str) -> str:
    at = int(np.flatnonzero(bad)[0])
    value = column[at].as_py()
    return (
        f"{path}: data row {at + 1}: {name} is {value!r}"
        f" ({int(bad.sum()):,} bad value(s) in the column)"
    )


def _int_column(path: Path, table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if column.null_count:
        bad = column.is_null().to_numpy(zero_copy_only=False)
        raise SkipmodelError(_column_problem(path, column, bad, name) + "; expected an integer")
    return column.to_numpy().astype(np.int64, copy=False)


def _parse_bool(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    lowered = pc.utf8_lower(column)
    is_true = pc.is_in(lowered, value_set=pa.array(_TRUE_TEXT)).to_numpy(zero_copy_only=False)
    is_false = pc.is_in(lowered, value_set=pa.array(_FALSE_TEXT)).to_numpy(zero_copy_only=False)
    bad = ~(is_true | is_false)
    if bad.any():
        raise SkipmodelError(
            _column_problem(path, column, bad, "skip_2") + "; expected true/false or 1/0"
        )
    return is_true
