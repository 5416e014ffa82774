"""One exception type for every user-facing failure: the CLI prints its message as one line.

Failures of the environment rather than of skipmodel (a full disk, a read-only or forbidden
location) are plain :class:`OSError` wherever they happen; :func:`environment_problem` turns
one into the same kind of one-line message.
"""

from __future__ import annotations

import errno
import re


class SkipmodelError(Exception):
    """A problem with the user's input or environment, with an actionable one-line message."""


#: errno values meaning the system refused (not a bug): what happened, what to do.
ENVIRONMENT_ERRNOS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: (
        "no space left on the device",
        "free some space (or write elsewhere) and re-run",
    ),
    errno.EDQUOT: ("disk quota exceeded", "free some space or raise the quota, then re-run"),
    errno.EROFS: ("read-only file system", "use a writable location, then re-run"),
    errno.EACCES: (
        "permission denied",
        "check its permissions (or use another location), then re-run",
    ),
    errno.EPERM: (
        "operation not permitted",
        "check its permissions (or use another location), then re-run",
    ),
}
#: Libraries that wrap the OS error in text only (h5py: ``errno = 28``; Arrow: ``[Errno 28]``).
_ERRNO_IN_TEXT = re.compile(r"\berrno\s*=?\s*(\d+)", re.IGNORECASE)
#: Longest detail quoted from a library's message.
_DETAIL_CHARS = 200


def first_line(exc: BaseException) -> str:
    r"""The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a library's multi-line one.

    Examples
    --------
    >>> first_line(ValueError("bad value\nat line 3"))
    'bad value'
    >>> first_line(OSError())
    'OSError'
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _errno_of(exc: OSError) -> int | None:
    if exc.errno is not None:
        return exc.errno
    found = _ERRNO_IN_TEXT.search(str(exc))
    return int(found.group(1)) if found else None


def environment_problem(exc: BaseException) -> str | None:
    """A one-line message for an OS refusal (full disk, quota, read-only, permissions) that
    caused ``exc`` (itself, or an error it was raised from), naming the path; None if none did.

    Examples
    --------
    >>> environment_problem(OSError(errno.ENOSPC, "No space left on device", "st/manifest.json"))
    'st/manifest.json: no space left on the device; free some space (or write elsewhere) and re-run'
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            code = _errno_of(current)
            if code is not None and code in ENVIRONMENT_ERRNOS:
                what, todo = ENVIRONMENT_ERRNOS[code]
                if current.filename is not None:
                    return f"{current.filename}: {what}; {todo}"
                detail = " ".join(str(current).split())[:_DETAIL_CHARS]
                return f"{what} ({detail}); {todo}"
        current = current.__cause__ or current.__context__
    return None
