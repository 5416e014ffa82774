"""Paths on any filesystem pyarrow opens, behind the ``pathlib`` methods the store uses.

A store's code is written against :class:`pathlib.Path`. :class:`FsPath` is a ``Path`` whose
I/O goes through a :class:`pyarrow.fs.FileSystem` (S3, GCS, HDFS, or the local one), so the
same code reads and writes ``s3://bucket/store``. Only the methods listed here are served by
the filesystem; anything else that would touch the disk (``os.fspath``, ``open()``,
``os.replace``, ``shutil``) raises :class:`TypeError` instead of silently using the local disk:
such calls go through the functions at the end of this module (:func:`replace`,
:func:`rmtree`, :func:`parquet_file`, :func:`write_table`, ...), which take either kind.

An ``FsPath`` pickles with its filesystem, so a Spark task on another host opens the same store.
"""

from __future__ import annotations

import fnmatch
import io
import os
import shutil
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path, PosixPath
from typing import IO, Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from skipmodel.errors import SkipmodelError, first_line

__all__ = [
    "FsPath",
    "parquet_file",
    "parquet_writer",
    "read_schema",
    "renames_atomically",
    "replace",
    "rmtree",
    "write_table",
]


#: errors that are answers (absent, present, a file where a folder was meant), not failures
_ANSWERS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)


@contextmanager
def _io(path: FsPath) -> Iterator[None]:
    """Turn a filesystem's failure (no network, bad credentials, a missing bucket) into one
    line naming the store location; absent files and the like pass through as they are."""
    try:
        yield
    except _ANSWERS:
        raise
    except OSError as exc:
        first = first_line(exc)[:400]
        raise SkipmodelError(
            f"{path.uri}: {first} (check the location, the network and the credentials)"
        ) from None


def _rebuild(fs: pafs.FileSystem, path: str, scheme: str, query: str) -> FsPath:
    return FsPath(path, fs=fs, scheme=scheme, query=query)


class FsPath(PosixPath):
    """A path ``path`` (as the filesystem spells it: ``bucket/key`` on S3) on ``fs``; ``scheme``
    and ``query`` are those of the URI it was opened from (for messages and records)."""

    fs: pafs.FileSystem
    scheme: str
    query: str

    def __init__(
        self, *segments: Any, fs: pafs.FileSystem, scheme: str = "", query: str = ""
    ) -> None:
        super().__init__(*segments)
        self.fs = fs
        self.scheme = scheme or fs.type_name
        self.query = query

    def with_segments(self, *segments: Any) -> FsPath:
        return type(self)(*segments, fs=self.fs, scheme=self.scheme, query=self.query)

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (self.fs, str(self), self.scheme, self.query)

    def absolute(self) -> FsPath:
        return self

    def resolve(self, strict: bool = False) -> FsPath:
        return self

    def __fspath__(self) -> str:
        raise TypeError(
            f"{self.uri} is served by pyarrow.fs ({self.scheme}): use skipmodel.store.fspath"
        )

    def __repr__(self) -> str:
        return f"FsPath({self.uri!r})"

    @property
    def bare_uri(self) -> str:
        """The path as other engines name it: ``s3://bucket/key`` (a plain path on the local
        filesystem), without pyarrow's options."""
        text = str(self)
        if self.scheme == "local":
            return text
        return f"{self.scheme}://{text if self.scheme == 'hdfs' else text.lstrip('/')}"

    @property
    def uri(self) -> str:
        """The URI :func:`~skipmodel.store.location.store_path` opens again: :attr:`bare_uri`
        with pyarrow's options (``?endpoint_override=...``), also for messages."""
        query = f"?{self.query}" if self.query and self.scheme != "local" else ""
        return self.bare_uri + query

    # -- queries -----------------------------------------------------------------------------
    def _info(self) -> pafs.FileInfo:
        with _io(self):
            return self.fs.get_file_info(str(self))

    def exists(self, *, follow_symlinks: bool = True) -> bool:
        return self._info().type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self._info().type == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self._info().type == pafs.FileType.File

    def _listing(self, recursive: bool) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(str(self), allow_not_found=True, recursive=recursive)
        try:
            with _io(self):
                return self.fs.get_file_info(selector)
        except (NotADirectoryError, FileNotFoundError):
            return []

    def iterdir(self) -> Generator[FsPath]:
        for info in sorted(self._listing(False), key=lambda i: i.path):
            yield self.with_segments(info.path)

    def glob(self, pattern: str, *, case_sensitive: bool | None = None) -> Generator[FsPath]:
        """Entries matching ``pattern`` (``*`` within a name, ``**`` any depth), as ``Path``."""
        parts = pattern.split("/")
        deep = len(parts) > 1
        base = str(self).rstrip("/")
        for info in sorted(self._listing(deep), key=lambda i: i.path):
            rel = info.path[len(base) :].lstrip("/").split("/")
            if _match(rel, parts):
                yield self.with_segments(info.path)

    def rglob(self, pattern: str, *, case_sensitive: bool | None = None) -> Generator[FsPath]:
        yield from self.glob(f"**/{pattern}")

    # -- changes -----------------------------------------------------------------------------
    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        if not exist_ok and self.exists():
            raise FileExistsError(f"{self.uri} exists")
        with _io(self):
            self.fs.create_dir(str(self), recursive=True)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            with _io(self):
                self.fs.delete_file(str(self))
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmdir(self) -> None:
        if self._listing(False):
            raise OSError(f"{self.uri}: directory not empty")
        with _io(self):
            self.fs.delete_dir(str(self))

    def open(  # type: ignore[override]
        self, mode: str = "r", buffering: int = -1, encoding: str | None = None, **_: Any
    ) -> IO[Any]:
        if mode not in ("r", "rb", "w", "wb"):
            raise ValueError(f"FsPath.open: mode {mode!r} is not supported")
        with _io(self):
            raw: Any = (
                self.fs.open_input_stream(str(self))
                if mode.startswith("r")
                else self.fs.open_output_stream(str(self))
            )
        return raw if "b" in mode else io.TextIOWrapper(raw, encoding=encoding or "utf-8")

    def read_bytes(self) -> bytes:
        """The file's bytes, whole: an object replaced while it is read (S3 reads its size,
        then its bytes) is read again until its size and time agree before and after."""
        data = b""
        for attempt in range(8):
            before = self._info()
            with _io(self), self.fs.open_input_stream(str(self)) as fh:
                data = bytes(fh.read())
            after = self._info()
            same = (before.size, before.mtime) == (after.size, after.mtime)
            if same and len(data) == after.size:
                return data
            time.sleep(0.05 * (attempt + 1))
        return data

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")

    def write_bytes(self, data: Any) -> int:
        with _io(self), self.fs.open_output_stream(str(self)) as fh:
            fh.write(bytes(data))
        return len(data)

    def write_text(
        self,
        data: str,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> int:
        return self.write_bytes(data.encode(encoding or "utf-8", errors or "strict"))


def _match(rel: list[str], parts: list[str]) -> bool:
    """Whether a relative path (split) matches a glob pattern (split) with ``**`` segments."""
    if not parts:
        return not rel
    if parts[0] == "**":
        return any(_match(rel[i:], parts[1:]) for i in range(len(rel) + 1))
    return bool(rel) and fnmatch.fnmatchcase(rel[0], parts[0]) and _match(rel[1:], parts[1:])


def renames_atomically(path: Path) -> bool:
    """Whether ``path``'s filesystem renames a file atomically (a local disk, HDFS), so the
    store's rename commits and temporary files serve; object stores do not."""
    return not isinstance(path, FsPath) or path.fs.type_name in ("local", "hdfs")


def replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` (atomic on a local disk and HDFS; a copy on object
    stores, where the store's commit protocol does not rely on it)."""
    if isinstance(source, FsPath):
        with _io(source):
            source.fs.move(str(source), str(target))
    else:
        os.replace(source, target)


def rmtree(path: Path) -> None:
    """Delete a folder and everything in it; absent is fine."""
    if isinstance(path, FsPath):
        if path.exists():
            with _io(path):
                path.fs.delete_dir(str(path))
    else:
        shutil.rmtree(path, ignore_errors=True)


def parquet_file(path: Path, **options: Any) -> pq.ParquetFile:
    if isinstance(path, FsPath):
        with _io(path):
            return pq.ParquetFile(path.fs.open_input_file(str(path)), **options)
    return pq.ParquetFile(path, **options)


def read_schema(path: Path) -> pa.Schema:
    if isinstance(path, FsPath):
        with _io(path):
            return pq.read_schema(str(path), filesystem=path.fs)
    return pq.read_schema(path)


def write_table(table: pa.Table, path: Path, **options: Any) -> None:
    if isinstance(path, FsPath):
        with _io(path):
            pq.write_table(table, str(path), filesystem=path.fs, **options)
    else:
        pq.write_table(table, path, **options)


def parquet_writer(path: Path, schema: pa.Schema, **options: Any) -> pq.ParquetWriter:
    if isinstance(path, FsPath):
        with _io(path):
            return pq.ParquetWriter(str(path), schema, filesystem=path.fs, **options)
    return pq.ParquetWriter(path, schema, **options)
