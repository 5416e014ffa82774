"""Columns of the user's own kept in a store beside MSSD's: declared once, typed, recorded.

A store keeps MSSD's session-log columns and, when the first ingest of session logs declares
them (``skipmodel ingest --column NAME:TYPE`` or ``--columns FILE.toml`` with ``[[columns]]``
tables as in a model spec), the user's own columns of those logs: a user segment, a country, an
experiment arm. The declaration is recorded in the manifest (:data:`MANIFEST_KEY`) and fixed
from then on, like the bucket count: a later ingest that omits it reuses it, one that declares
other columns is a one-line error (the parts already written could not hold them).

Types are the words of a model spec's ``[[columns]]`` (``skipmodel.model.UserColumn``):
``number`` (float64), ``boolean`` and ``string`` (dictionary-encoded, like MSSD's categories).
Every user column is nullable: an empty field is null, as for the track features. Only training
session logs (``sessions/``) keep them; the challenge's files (``log_prehistory_*``,
``log_input_*``) never carry user columns and are stored with MSSD's columns only.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.store import schema

__all__ = [
    "MANIFEST_KEY",
    "USER_TYPES",
    "StoredColumn",
    "check_declaration",
    "columns_from_toml",
    "describe",
    "log_schema",
    "parse_column",
    "recorded_columns",
    "settle_declaration",
    "user_fields",
]

#: The manifest's record of the declaration: a list of ``{"name": ..., "type": ...}``.
MANIFEST_KEY = "user_columns"
#: The declared types, as a model spec's ``[[columns]]`` spells them.
USER_TYPES: tuple[str, ...] = ("number", "boolean", "string")
_ARROW_TYPES = {
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.dictionary(pa.int32(), pa.string()),
}
#: Names a user column may not take: MSSD's columns, what the loaders derive (``weekday``, lag
#: columns) and what the store adds (source fingerprint, track row, bucket, challenge order).
RESERVED: frozenset[str] = frozenset(
    {
        *schema.LOG_COLUMNS,
        *schema.TRACK_COLUMNS,
        *schema.INPUT_ORDER_COLUMNS,
        "weekday",
        "source_fingerprint",
        "track_row",
        "session_bucket",
    }
)


@dataclass(frozen=True)
class StoredColumn:
    """One declared user column: its name in the log files' header and its type."""

    name: str
    type: str

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]

    def field(self) -> pa.Field:
        return pa.field(self.name, self.arrow_type, nullable=True)

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


def _check_one(column: StoredColumn, where: str) -> None:
    name = column.name
    if not isinstance(name, str) or not name.isidentifier():
        raise SkipmodelError(f"{where}: {name!r} is not a column name (letters, digits, _)")
    if name in RESERVED or name.startswith(schema.LAG_PREFIXES):
        raise SkipmodelError(
            f"{where}: {name!r} is one of MSSD's or skipmodel's own column names; "
            "declare only your own columns"
        )
    if column.type not in USER_TYPES:
        raise SkipmodelError(
            f"{where}: type of {name!r} must be one of {', '.join(USER_TYPES)}, not {column.type!r}"
        )


def check_declaration(columns: Iterable[StoredColumn]) -> tuple[StoredColumn, ...]:
    """The declared columns, checked (names, types, no name twice), in the given order."""
    out: list[StoredColumn] = []
    for column in columns:
        _check_one(column, "user column")
        if any(c.name == column.name for c in out):
            raise SkipmodelError(f"user column {column.name!r} is declared twice")
        out.append(column)
    return tuple(out)


def parse_column(text: str) -> StoredColumn:
    """``NAME:TYPE`` (``--column my_segment:string``) as a checked :class:`StoredColumn`.

    Examples
    --------
    >>> parse_column("my_segment:string")
    StoredColumn(name='my_segment', type='string')
    """
    name, sep, kind = text.partition(":")
    if not sep:
        raise SkipmodelError(
            f"--column {text!r}: expected NAME:TYPE, TYPE one of {', '.join(USER_TYPES)} "
            f"(e.g. --column {text or 'my_segment'}:string)"
        )
    column = StoredColumn(name.strip(), kind.strip())
    _check_one(column, f"--column {text!r}")
    return column


def columns_from_toml(path: str | os.PathLike[str]) -> tuple[StoredColumn, ...]:
    """The ``[[columns]]`` tables of a TOML file (a model spec's work: its other keys are not
    read). Each table has ``name``, ``type`` (default ``number``, as in a model spec) and
    optionally ``role``, which is the model's business and not stored."""
    where = Path(path)
    try:
        data = tomllib.loads(where.read_text())
    except OSError as exc:
        raise SkipmodelError(f"--columns {where}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SkipmodelError(f"--columns {where}: not TOML ({exc})") from None
    tables = data.get("columns")
    if not isinstance(tables, list) or not tables:
        raise SkipmodelError(
            f"--columns {where}: no [[columns]] tables (name = ..., type = number|boolean|string)"
        )
    out = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise SkipmodelError(f"--columns {where}: columns[{i}] must be a table ([[columns]])")
        unknown = sorted(set(table) - {"name", "type", "role"})
        if unknown:
            raise SkipmodelError(
                f"--columns {where}: columns[{i}] has unknown key(s) {', '.join(unknown)}; "
                "valid: name, type, role"
            )
        column = StoredColumn(table.get("name", ""), table.get("type", "number"))
        _check_one(column, f"--columns {where}: columns[{i}]")
        out.append(column)
    return check_declaration(out)


def recorded_columns(manifest: Mapping[str, Any]) -> tuple[StoredColumn, ...]:
    """The user columns a store keeps, as its manifest records them (none in older stores)."""
    return tuple(StoredColumn(c["name"], c["type"]) for c in manifest.get(MANIFEST_KEY, []))


def user_fields(columns: Sequence[StoredColumn]) -> tuple[pa.Field, ...]:
    """The Arrow fields of the user columns, as stored (all nullable)."""
    return tuple(c.field() for c in columns)


def log_schema(columns: Sequence[StoredColumn] = ()) -> pa.Schema:
    """The schema of a store's session-log parts: MSSD's columns, then the user columns."""
    return pa.schema([*schema.LOG_FIELDS, *user_fields(columns)])


def describe(columns: Sequence[StoredColumn]) -> str:
    """``a:string, b:number`` (``none`` when empty), as the messages show a declaration."""
    return ", ".join(f"{c.name}:{c.type}" for c in columns) or "none"


def settle_declaration(
    manifest: dict[str, Any], given: Sequence[StoredColumn] | None, root: str | os.PathLike[str]
) -> tuple[StoredColumn, ...]:
    """The user columns an ingest into the store of ``manifest`` keeps, recorded in it.

    ``given`` None (nothing declared) reuses the recorded declaration. A declaration is
    recorded while the store holds no session log; after that one that differs from the record
    is a one-line error (the parts written could not hold other columns). ``manifest`` is
    updated in place; the caller writes it.
    """
    recorded = recorded_columns(manifest)
    if given is None:
        return recorded
    given = check_declaration(given)
    if tuple(given) == recorded:
        return recorded
    has_logs = any(e.get("kind") == "log" for e in manifest.get("sources", {}).values())
    if has_logs:
        raise SkipmodelError(
            f"{root} keeps user columns {describe(recorded)}, not {describe(given)}: a store's "
            "user columns are fixed by its first ingest of session logs; ingest with the same "
            "--column declaration (or none, to reuse it), or into a new --store"
        )
    manifest[MANIFEST_KEY] = [c.as_json() for c in given]
    return tuple(given)
