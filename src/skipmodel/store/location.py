"""Where a store lives: a folder, given as a path or a ``file://`` URI.

Every ``--store`` (and every Python function taking a store) accepts both; a ``file://`` URI is
turned into the path it names. Stores on other filesystems (``s3://``, ``gs://``, ``hdfs://``)
are not supported yet and refused in one line: the store's commit protocol relies on atomic
renames and a lock file, which object stores do not give.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from skipmodel.errors import SkipmodelError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def store_path(location: str | os.PathLike[str]) -> Path:
    """The folder of a store given as a path or a ``file://`` URI.

    Examples
    --------
    >>> store_path("file:///data/store")
    PosixPath('/data/store')
    >>> store_path("data/store")
    PosixPath('data/store')
    """
    text = os.fspath(location)
    found = _SCHEME.match(text)
    if found is None:
        return Path(text)
    if found[1].lower() == "file":
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise SkipmodelError(
                f"{text}: a file:// URI names a folder on this host (file:///path); "
                f"{parsed.netloc!r} is not this host"
            )
        return Path(unquote(parsed.path))
    raise SkipmodelError(
        f"{text}: stores on {found[1]}:// are not supported yet; give a local folder or a "
        "file:// URI (a shared filesystem mounted on every Spark worker will do)"
    )
