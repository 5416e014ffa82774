"""Where a store lives: a local folder (a path or a ``file://`` URI), or any filesystem pyarrow
opens (``s3://``, ``gs://``, ``hdfs://``, ...).

Every ``--store`` (and every Python function taking a store) accepts all of these. A path or
``file://`` URI is a :class:`pathlib.Path`; another URI is opened with
:meth:`pyarrow.fs.FileSystem.from_uri` (its query string is pyarrow's options, such as
``?endpoint_override=host:port&scheme=http`` for an S3-compatible server; credentials come from
the environment as pyarrow reads them) and is an :class:`~skipmodel.store.fspath.FsPath`, which
pickles with its filesystem so Spark tasks on other hosts open the same store. How writes are
committed on each kind of filesystem is :mod:`skipmodel.store.journal`'s.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from skipmodel.errors import SkipmodelError, first_line
from skipmodel.store.fspath import FsPath

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def store_path(location: str | os.PathLike[str]) -> Path:
    """The folder of a store given as a path, a ``file://`` URI or another filesystem's URI.

    Examples
    --------
    >>> store_path("file:///data/store")
    PosixPath('/data/store')
    >>> store_path("data/store")
    PosixPath('data/store')
    """
    if isinstance(location, FsPath):
        return location
    text = os.fspath(location)
    found = _SCHEME.match(text)
    if found is None:
        return Path(text)
    scheme = found[1].lower()
    if scheme == "file":
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise SkipmodelError(
                f"{text}: a file:// URI names a folder on this host (file:///path); "
                f"{parsed.netloc!r} is not this host"
            )
        return Path(unquote(parsed.path))
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SkipmodelError(
            f"{text}: pyarrow cannot open this store location ({first_line(exc)}); give a local "
            "folder, a file:// URI or a URI pyarrow.fs opens (s3://, gs://, hdfs://), with its "
            "credentials in the environment"
        ) from None
    query = urlparse(text).query
    return FsPath(path.rstrip("/") or "/", fs=fs, scheme=scheme, query=query)


def location_text(root: str | os.PathLike[str]) -> str:
    """``root`` as text that :func:`store_path` opens again in another process or on another
    host (a Spark task, a run's record): a local path made absolute, a URI for other
    filesystems."""
    path = store_path(root)
    return path.uri if isinstance(path, FsPath) else str(path.resolve())
