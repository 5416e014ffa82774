"""Finding and opening the inputs of ``skipmodel ingest``, without unpacking anything to disk.

An input PATH is a ``.tar.gz``/``.tgz``/``.tar`` archive (streamed member by member under
``tarfile`` mode ``r|``, inflated in a thread of its own by python-isal when installed, else by
Arrow's gzip stream), a directory (walked recursively, sorted,
archives inside included), a ``.csv`` or a ``.csv.gz`` file. Each CSV becomes a
:class:`CsvSource`: a display name (the path, or ``archive!member`` inside an archive) and a
one-shot decompressed byte stream wrapped in a :class:`HashingReader`, which digests every byte
it hands out. The source's *fingerprint* is the SHA-256 of the decompressed content's size, its
first and last MiB and the Adler-32 of all of it (a full SHA-256 would cost a fifth of the
parse time). It names the store's part files, so the same data ingested again (from the same
file, or the same CSV packed differently) overwrites its own parts.

Files that are not CSVs (a README inside an archive or a folder), empty files (0 bytes; an
empty decompressed stream is caught by the pipeline) and link members of an archive (symbolic or
hard links: never followed) are yielded as :class:`SkippedInput` so the manifest can list them
with the reason; they are not errors. Explicit PATH arguments with an unknown extension are
errors.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import pyarrow as pa

from skipmodel.errors import SkipmodelError

try:  # optional: ISA-L inflate and Adler-32 (python-isal), about 3x faster than zlib's
    from isal import igzip as _igzip
    from isal import igzip_threaded as _igzip_threaded
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - exercised by the fallback test with isal hidden
    _igzip = _igzip_threaded = _isal_zlib = None  # type: ignore[assignment]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
CSV_SUFFIXES = (".csv", ".csv.gz")
#: Errors a broken compressed stream raises while being read.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    tarfile.TarError,
    OSError,
    *(() if _isal_zlib is None else (cast("type[BaseException]", _isal_zlib.error),)),
)
_adler32 = zlib.adler32 if _isal_zlib is None else _isal_zlib.adler32

#: Why a file or member of 0 bytes is skipped (the pipeline adds the decompressed cases).
EMPTY_FILE = "empty file: 0 bytes"
#: Bytes at each end of a source that enter its fingerprint in full.
FINGERPRINT_EDGE = 1 << 20
_FILE_DAY = re.compile(r"log_(?:\d+|prehistory|input)_(\d{4})(\d{2})(\d{2})")


def _has_suffix(name: str, suffixes: tuple[str, ...]) -> bool:
    lower = name.lower()
    return any(lower.endswith(s) for s in suffixes)


def base_name(name: str) -> str:
    """A source's file name without folders or archive: ``a.tgz!test_set/x.csv`` -> ``x.csv``."""
    return Path(name.split("!")[-1]).name


def file_day(name: str) -> str | None:
    """The day in an MSSD log file name as ISO, or None: ``log_3_20180715_000000000000.csv``,
    and the challenge's ``log_prehistory_20180715_...`` and ``log_input_20180715_...``."""
    m = _FILE_DAY.search(base_name(name))
    return f"{m[1]}-{m[2]}-{m[3]}" if m else None


class ReadOnlyStream:
    """What pyarrow asks of a read-only, forward-only binary stream besides ``read``.

    :class:`HashingReader` and :class:`~skipmodel.ingest.lines.LineGuard` are such streams.
    """

    closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


class HashingReader(ReadOnlyStream):
    """A read-only binary stream that hashes and counts what it returns.

    ``peek_head`` reads ahead once (for header sniffing); the bytes are replayed by ``read``.
    A stream error is remembered in ``error`` so the caller can name it even when a C++ reader
    (pyarrow) wrapped it in its own exception.

    Bytes are handed on as they are: lines that are not UTF-8 (or too long) are the parser's
    :class:`~skipmodel.ingest.lines.LineGuard`'s to reject, with their original bytes.
    """

    def __init__(self, raw: BinaryIO, name: str, closers: tuple[BinaryIO, ...] = ()) -> None:
        self.raw = raw
        self.closers = (raw, *closers)
        self.name = name
        self.nbytes = 0
        self._adler = 1
        self._first = b""
        self._last = b""
        self._before_last = b""
        self.error: BaseException | None = None
        self._head = b""

    def _raw_read(self, n: int) -> bytes:
        try:
            return self.raw.read(n)
        except STREAM_ERRORS as exc:
            self.error = exc
            raise

    def peek_head(self, n: int) -> bytes:
        """The first ``n`` bytes (fewer at end of stream), without consuming them."""
        while len(self._head) < n:
            chunk = self._raw_read(n - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0 or n >= len(self._head):
                out, self._head = self._head, b""
                if n is not None and n > len(out):
                    out += self._raw_read(n - len(out))
                elif n is None or n < 0:
                    out += self._raw_read(-1)
            else:
                out, self._head = self._head[:n], self._head[n:]
        else:
            out = self._raw_read(-1 if n is None else n)
        self._digest(out)
        return out

    def close_all(self) -> None:
        """Close the underlying streams (the file, and the gzip layer over it)."""
        for stream in self.closers:
            stream.close()

    def _digest(self, out: bytes) -> None:
        self.nbytes += len(out)
        self._adler = _adler32(out, self._adler)
        if len(self._first) < FINGERPRINT_EDGE:
            self._first += out[: FINGERPRINT_EDGE - len(self._first)]
        if out:
            edge = self._last[-FINGERPRINT_EDGE:]
            self._before_last = (self._before_last + edge)[-FINGERPRINT_EDGE:]
            self._last = out

    def fingerprint(self, salt: str = "") -> str:
        """24 hex digits of SHA-256 over the content's size, first and last MiB and Adler-32.

        A ``salt`` (the source kind, for kinds told by file name rather than content) enters the
        digest, so the same bytes as two kinds are two sources; without one the digest is the
        one stores have always recorded.
        """
        tail = (self._before_last + self._last)[-FINGERPRINT_EDGE:]
        sha = hashlib.sha256(b"%d:%d:" % (self.nbytes, self._adler))
        sha.update(self._first)
        sha.update(tail)
        if salt:
            sha.update(b"kind:" + salt.encode())
        return sha.hexdigest()[:24]


@dataclass(frozen=True)
class CsvSource:
    """One CSV to ingest: ``open()`` returns its decompressed bytes, once."""

    name: str
    open: Callable[[], HashingReader]


@dataclass(frozen=True)
class SkippedInput:
    """A file or archive member that is not a CSV (listed in the manifest, not an error)."""

    name: str
    reason: str


def check_paths(paths: list[Path]) -> None:
    """Fail early, before any work, on paths that do not exist or cannot be inputs."""
    if not paths:
        raise SkipmodelError("no input PATH given; pass .tar.gz, .csv, .csv.gz files or folders")
    for p in paths:
        if not p.exists():
            raise SkipmodelError(f"{p}: no such file or directory")
        if p.is_file() and not _has_suffix(p.name, ARCHIVE_SUFFIXES + CSV_SUFFIXES):
            raise SkipmodelError(
                f"{p}: unsupported input type; expected a .csv, .csv.gz, .tar.gz, .tgz file "
                "or a directory"
            )


def _open_gzip(path: Path) -> BinaryIO:
    """A decompressed stream of a gzip file, inflated ahead in a thread of its own.

    With python-isal, ISA-L inflates in a background thread (GIL released) while the caller
    parses; without it, Arrow's gzip stream inflates in C++. Both check the trailer's CRC.
    """
    if _igzip_threaded is not None:
        return _igzip_threaded.open(path, "rb", threads=1)  # type: ignore[no-any-return]
    return pa.input_stream(str(path), compression="gzip")  # type: ignore[return-value]


def _open_file(path: Path) -> HashingReader:
    gzipped = path.name.lower().endswith(".gz")
    stream = _open_gzip(path) if gzipped else pa.input_stream(str(path))
    return HashingReader(stream, str(path))  # type: ignore[arg-type]


def _file_input(path: Path) -> CsvSource | SkippedInput:
    try:
        size = path.stat().st_size
    except OSError as exc:  # a broken symbolic link inside a walked folder
        return SkippedInput(str(path), f"cannot be read ({exc.strerror})")
    if size == 0:
        return SkippedInput(str(path), EMPTY_FILE)
    return CsvSource(str(path), functools.partial(_open_file, path))


def _not_regular_reason(member: tarfile.TarInfo) -> str:
    """Why a member that is neither a file nor a folder is skipped."""
    if member.issym():
        return f"symbolic link (to {member.linkname!r}): links are not followed"
    if member.islnk():
        return f"hard link (to {member.linkname!r}): links are not followed"
    return "not a regular file (device, FIFO or other special member)"


def _iter_archive(path: Path) -> Iterator[CsvSource | SkippedInput]:
    """Members of an archive, streamed: each must be consumed before the next is produced."""
    plain = path.name.lower().endswith(".tar")
    last = "(start of archive)"
    try:
        with (
            pa.input_stream(str(path)) if plain else _open_gzip(path) as fh,
            tarfile.open(fileobj=fh, mode="r|") as tar,  # type: ignore[call-overload]
        ):
            for member in tar:
                last = member.name
                if member.isdir():
                    continue
                name = f"{path}!{member.name}"
                if not member.isfile():
                    yield SkippedInput(name, _not_regular_reason(member))
                    continue
                base = Path(member.name).name
                if base.startswith("._") or not _has_suffix(member.name, CSV_SUFFIXES):
                    yield SkippedInput(name, "not a .csv/.csv.gz member")
                    continue
                if member.size == 0:
                    yield SkippedInput(name, EMPTY_FILE)
                    continue
                fobj = tar.extractfile(member)
                if fobj is None:  # pragma: no cover - isfile() members always have data
                    continue

                def opener(fobj: IO[bytes] = fobj, name: str = name) -> HashingReader:
                    raw: IO[bytes] = fobj
                    if name.lower().endswith(".gz"):
                        gz = gzip if _igzip is None else _igzip
                        raw = gz.GzipFile(fileobj=fobj, mode="rb")  # type: ignore[assignment]
                    return HashingReader(raw, name)  # type: ignore[arg-type]

                yield CsvSource(name, opener)
    except STREAM_ERRORS as exc:
        raise SkipmodelError(
            f"{path}: archive is truncated or corrupt after member {last!r} ({exc}); "
            "sources before it were ingested, nothing of the broken member was written"
        ) from None


def iter_inputs(
    paths: list[Path], *, exclude: Path | None = None
) -> Iterator[CsvSource | SkippedInput]:
    """Every CSV (and every skipped non-CSV) under ``paths``, in a deterministic order.

    ``exclude`` (the store being written) is never walked into, so ``ingest data --store
    data/store`` does not list the store's own files.
    """
    skip = exclude.resolve() if exclude is not None else None
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if (Path(root) / d).resolve() != skip)
                for f in sorted(files):
                    child = Path(root) / f
                    if _has_suffix(f, ARCHIVE_SUFFIXES):
                        yield from _iter_archive(child)
                    elif _has_suffix(f, CSV_SUFFIXES):
                        yield _file_input(child)
                    else:
                        yield SkippedInput(str(child), "not a .csv/.csv.gz/.tar.gz file")
        elif _has_suffix(p.name, ARCHIVE_SUFFIXES):
            yield from _iter_archive(p)
        else:
            yield _file_input(p)
