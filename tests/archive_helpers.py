"""Packing test archives member by member: empty members, links and folders among the CSVs."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Member:
    """One tar member: a file with ``data``, or a ``symlink``/``hardlink`` to ``target``, or a
    ``dir``."""

    name: str
    data: bytes = b""
    kind: str = "file"
    target: str = ""


def pack_members(members: Iterable[Member], out: Path, *, mode: str = "w:gz") -> Path:
    with tarfile.open(out, mode) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
                continue
            info.type = {
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "dir": tarfile.DIRTYPE,
            }[m.kind]
            info.linkname = m.target
            tar.addfile(info)
    return out
