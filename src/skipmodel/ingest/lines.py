"""The byte stream pyarrow's CSV reader parses: every line it sees is short, valid UTF-8 text.

pyarrow's streaming reader fails a whole file on one line longer than its block ("straddling
object straddles two block boundaries"), and fails it too when a row it hands to Python is not
UTF-8. :class:`LineGuard` sits between a source and the reader and replaces each line that is
longer than ``max_line_bytes`` or not UTF-8 by a *marker*: a random token, the line's key and
more commas than the header has columns. The reader then passes the marker row, with its
physical line number, to the parser's invalid-row handler, which finds the line's original
bytes (at most ``max_line_bytes`` of them) and length in :attr:`LineGuard.rejects`.

Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as pyarrow splits them. No line end is added or
removed, so physical line numbers stay exact. Quoting plays no part: the parser reads with
quoting off, so a quoted field with a line break in it is two lines here too.

Cost: a block of ASCII text whose lines are all short is handed on as the same ``bytes`` object
after one ``isascii`` check and a few ``rfind`` calls (one per ``max_line_bytes`` of text). Only
a block holding a bad line, or non-ASCII text, is looked at line by line.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from skipmodel.ingest.sources import ReadOnlyStream

_LINE_ENDS = re.compile(rb"([\r\n])")


class ByteSource(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class GuardedLine:
    """A line taken out of the stream: its first ``max_line_bytes`` bytes and its length."""

    kept: bytearray = field(default_factory=bytearray)
    length: int = 0

    def add(self, piece: bytes, limit: int) -> None:
        room = limit - len(self.kept)
        if room > 0:
            self.kept += piece[:room]
        self.length += len(piece)


def _last_line_end(data: bytes, start: int, stop: int) -> int:
    """Index of the last ``\\n`` or ``\\r`` in ``data[start:stop]``, or -1."""
    newline = data.rfind(b"\n", start, stop)
    return max(newline, data.rfind(b"\r", max(newline + 1, start), stop))


class LineGuard(ReadOnlyStream):
    """A read-only binary stream over ``source`` with bad lines replaced by marker rows.

    Parameters
    ----------
    source
        The decompressed CSV bytes (a :class:`~skipmodel.ingest.sources.HashingReader`).
    columns
        Columns of the header: a marker has more fields than that, so it is always an invalid
        row for the reader.
    max_line_bytes
        Longest line handed on, in bytes without its line end. It must not exceed the reader's
        block size, or pyarrow could not cut a block at a line end.
    """

    def __init__(self, source: ByteSource, *, columns: int, max_line_bytes: int) -> None:
        self.source = source
        self.max_line_bytes = max_line_bytes
        #: Prefix of every marker; unique per stream, so no real text can be mistaken for one.
        self.token = f"skipmodel-line-{secrets.token_hex(8)}-"
        #: Lines replaced by markers, by key, until the parser takes them.
        self.rejects: dict[int, GuardedLine] = {}
        self._fill = b"," * columns
        self._keys = 0
        self._head = b""  # the unfinished line's bytes handed on so far
        self._skipping: GuardedLine | None = None  # the unfinished line was replaced
        self._carry = b""  # a UTF-8 sequence cut by the block's end, read again with the next
        self._eof = False

    # -- the stream pyarrow reads -------------------------------------------------------------
    def read(self, n: int = -1) -> bytes:
        """Up to about ``n`` bytes (more when markers outgrow what they replace)."""
        if self._eof:
            return b""
        pieces: list[bytes] = []
        while True:
            raw = self.source.read(n)
            final = not raw
            chunk = self._carry + raw if self._carry else raw
            self._carry = b""
            if not pieces and not final and self._clean(chunk):
                return chunk
            out, has_line_end = self._rewrite(chunk, final=final)
            pieces.append(out)
            self._eof = final
            # pyarrow needs the line that a block continues to end inside that block
            if final or has_line_end:
                return b"".join(pieces)

    def close(self) -> None:
        super().close()
        self.source.close()

    # -- the two paths ------------------------------------------------------------------------
    def _clean(self, chunk: bytes) -> bool:
        """Whether ``chunk`` can go on unchanged (recording its unfinished last line if so)."""
        if self._skipping is not None:
            return False
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return False
        limit, size = self.max_line_bytes, len(chunk)
        start, run = 0, len(self._head)
        while start + limit - run < size:  # the line at start must end inside this window
            end = _last_line_end(chunk, start, start + limit - run + 1)
            if end < 0:
                return False
            start, run = end + 1, 0
        end = _last_line_end(chunk, start, size)
        if end >= 0:
            self._head = chunk[end + 1 :]
        elif start == 0 and self._head:  # a line continued and not ended: let _rewrite gather
            return False
        else:
            self._head = chunk[start:]
        return True

    def _rewrite(self, chunk: bytes, *, final: bool) -> tuple[bytes, bool]:
        """``chunk`` with each bad line replaced by a marker; whether it holds a line end."""
        limit = self.max_line_bytes
        out = bytearray()
        parts = _LINE_ENDS.split(chunk)  # text, line end, text, ..., text
        last = len(parts) - 1
        for i in range(0, len(parts), 2):
            text = parts[i]
            unfinished = i == last and not final  # the line goes on in the next block
            if self._skipping is not None:
                self._skipping.add(text, limit)
                if not unfinished:
                    self._skipping = None
            else:
                self._hand_on(text, out, unfinished=unfinished)
            if i < last:
                out += parts[i + 1]
        return bytes(out), last > 0

    def _hand_on(self, text: bytes, out: bytearray, *, unfinished: bool) -> None:
        """Append one line's ``text`` (or its marker) to ``out``; ``unfinished``: it goes on."""
        limit = self.max_line_bytes
        bad = len(self._head) + len(text) > limit
        if not bad:
            try:
                text.decode("utf-8")
            except UnicodeDecodeError as exc:
                if unfinished and exc.reason == "unexpected end of data":
                    self._carry, text = text[exc.start :], text[: exc.start]
                else:
                    bad = True
        if bad:
            line = GuardedLine()
            line.add(self._head, limit)
            line.add(text, limit)
            key, self._keys = self._keys, self._keys + 1
            self.rejects[key] = line
            out += f"{self.token}{key}".encode() + self._fill
            self._head = b""
            self._skipping = line if unfinished else None
            return
        out += text
        self._head = self._head + text if unfinished else b""
