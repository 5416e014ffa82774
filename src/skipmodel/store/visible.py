"""Which part files of a store are its contents: all of them (rename commits), or those its
manifest names (manifest commits, the protocol for object stores).

A store records its commit protocol in ``manifest.json`` (``"commit"``, see
:mod:`skipmodel.store.journal`):

- ``rename`` (local folders, HDFS; the default there): a file is written under a temporary name
  and renamed into place when committed, so every ``part-*.parquet`` in a folder is the store's.
- ``manifest`` (S3, GCS and the other object stores, which have no atomic rename): a writer puts
  each part straight at a name of its own run (``part-<run>[-k].parquet``, 32 hex digits) and the
  commit is the manifest's rewrite naming that run under its source (``"run"``, with the commit's
  sequence number ``"seq"``). A compacted bucket file is named in ``compaction.files`` with the
  last sequence number it merged (``[name, through]``): it replaces that bucket's parts of
  sources committed up to ``through``. A file the manifest does not name is invisible, whatever
  a killed writer left behind; the next writer deletes it.

:class:`PartView` answers the question for one manifest, in the order readers rely on: sorted
by the name the file would have under rename commits (``part-<fingerprint>[-k].parquet``), so
ties such as duplicate track rows resolve the same way under both protocols.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A part written under manifest commits: its run id and its flush suffix.
RUN_PART = re.compile(r"^part-([0-9a-f]{32})(-\d+)?\.parquet$")
COMMIT_RENAME = "rename"
COMMIT_MANIFEST = "manifest"
COMMITS = (COMMIT_RENAME, COMMIT_MANIFEST)
#: Name prefix of a compacted bucket file (:mod:`skipmodel.store.format` names it too).
COMPACT_PREFIX = "part-compact-"


def commit_of(manifest: Mapping[str, Any]) -> str:
    """A store's commit protocol (stores written before it was recorded: ``rename``)."""
    return str(manifest.get("commit", COMMIT_RENAME))


@dataclass(frozen=True)
class PartView:
    """The committed part files of a store under manifest commits."""

    #: run id -> (source fingerprint, commit sequence number), for every committed source
    runs: Mapping[str, tuple[str, int]]
    #: session bucket folder name -> (compacted file, last sequence number it merged)
    compacted: Mapping[str, tuple[str, int]]
    #: the last commit's sequence number (0: none yet)
    last: int = 0

    @classmethod
    def of(cls, manifest: Mapping[str, Any]) -> PartView | None:
        """The view of ``manifest``; None for a store under rename commits (all files count)."""
        if commit_of(manifest) != COMMIT_MANIFEST:
            return None
        runs = {
            entry["run"]: (fp, int(entry["seq"]))
            for fp, entry in manifest["sources"].items()
            if "run" in entry
        }
        files = (manifest.get("compaction") or {}).get("files", {})
        last = max((seq for _, seq in runs.values()), default=0)
        return cls(runs, {b: (str(f[0]), int(f[1])) for b, f in files.items()}, last)

    def next_seq(self) -> int:
        return self.last + 1

    def source_of(self, name: str) -> str | None:
        """The fingerprint of the committed source a run part belongs to (None: not committed)."""
        found = RUN_PART.match(name)
        run = self.runs.get(found[1]) if found else None
        return None if run is None else run[0]

    def visible(self, directory: Path) -> list[Path]:
        """The committed files among ``directory``'s parts, in rename-commit name order."""
        compact = None
        if directory.parent.name == "sessions":
            compact = self.compacted.get(directory.name)
        if compact is not None and compact[1] >= self.last:
            return [directory / compact[0]]  # nothing committed since: no listing needed
        keyed = []
        for path in directory.glob("part-*.parquet"):
            name = path.name
            if name.startswith(COMPACT_PREFIX):
                if compact is not None and name == compact[0]:
                    keyed.append((name, path))
                continue
            found = RUN_PART.match(name)
            run = self.runs.get(found[1]) if found else None
            if found is None or run is None:
                continue
            if compact is not None and run[1] <= compact[1]:
                continue  # merged into the bucket's compacted file
            keyed.append((f"part-{run[0]}{found[2] or ''}.parquet", path))
        return [path for _, path in sorted(keyed)]
