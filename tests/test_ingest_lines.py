"""The line guard alone: every line end kept, bad lines replaced by markers, bytes kept exactly."""

from __future__ import annotations

import io
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from skipmodel.ingest.lines import LineGuard

LINE_END = re.compile(rb"(\r|\n)")
COLUMNS = 3


def _read_all(guard: LineGuard, n: int) -> list[bytes]:
    pieces = []
    while piece := guard.read(n):
        pieces.append(piece)
    return pieces


def _is_bad(line: bytes, limit: int) -> bool:
    if len(line) > limit:
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


line_text = st.one_of(
    st.binary(max_size=12),
    st.text(max_size=8).map(lambda t: t.encode("utf-8")),  # multi-byte characters
    st.integers(0, 60).map(lambda k: b"a," * k),  # long lines
    st.sampled_from([b"\xff", b"\xc3", b"ok\xe2\x82", b"\xe2\x82\xac", b"\xc3\xa9,x"]),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(line_text, st.sampled_from([b"\n", b"\r\n", b"\r"])), max_size=30),
    last=line_text,
    limit=st.integers(1, 40),
    extra=st.integers(0, 30),
)
def test_guard_keeps_line_ends_and_replaces_exactly_the_bad_lines(lines, last, limit, extra):
    raw = b"".join(text + end for text, end in lines) + last
    guard = LineGuard(io.BytesIO(raw), columns=COLUMNS, max_line_bytes=limit)
    pieces = _read_all(guard, limit + extra)  # pyarrow reads blocks of at least the limit
    out = b"".join(pieces)

    # pyarrow can cut every block: a line unfinished at a block's start ends inside it
    mid_line = False
    for piece in pieces[:-1]:
        ends = [m.start() for m in LINE_END.finditer(piece)]
        assert ends or not mid_line
        mid_line = not ends or ends[-1] < len(piece) - 1

    want = LINE_END.split(raw)
    got = LINE_END.split(out)
    assert got[1::2] == want[1::2]  # the same line ends, in the same places
    key = 0
    for before, after in zip(want[0::2], got[0::2], strict=True):
        if not _is_bad(before, limit):
            assert after == before
            continue
        marker = f"{guard.token}{key}".encode() + b"," * COLUMNS
        assert after.endswith(marker)
        assert before.startswith(after[: -len(marker)])  # a head handed on before the verdict
        kept = guard.rejects.pop(key)
        assert bytes(kept.kept) == before[:limit]
        assert kept.length == len(before)
        key += 1
    assert not guard.rejects


class _Recording(io.BytesIO):
    """A source that remembers the chunks it handed out."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.chunks: list[bytes] = []

    def read(self, n: int | None = -1, /) -> bytes:
        chunk = super().read(n)
        self.chunks.append(chunk)
        return chunk


def test_clean_ascii_blocks_are_handed_on_unchanged():
    raw = b"a,b,c\n" * 1000 + b"last,line"
    source = _Recording(raw)
    guard = LineGuard(source, columns=COLUMNS, max_line_bytes=64)
    pieces = _read_all(guard, 1000)
    assert b"".join(pieces) == raw
    assert len(pieces) == len(raw) // 1000 + 1
    assert all(p is c for p, c in zip(pieces, source.chunks, strict=False))  # no copy
    assert not guard.rejects


def test_a_line_longer_than_many_blocks_is_one_marker():
    raw = b"a,b\n" + b"x" * 10_000 + b"\nc,d\n"
    guard = LineGuard(io.BytesIO(raw), columns=COLUMNS, max_line_bytes=100)
    pieces = _read_all(guard, 128)
    out = b"".join(pieces)
    assert out == b"a,b\n" + f"{guard.token}0".encode() + b",,,\nc,d\n"
    (line,) = guard.rejects.values()
    assert (bytes(line.kept), line.length) == (b"x" * 100, 10_000)
