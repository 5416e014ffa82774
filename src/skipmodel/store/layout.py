"""The store's layout on disk and the few primitives every writer and reader shares.

::

    STORE/
      manifest.json                         inputs, counts read/written/rejected, schema version,
                                            declared user columns (:mod:`.user_columns`)
      sessions/session_bucket=<b>/part-compact-<digest>.parquet   one sorted file per bucket
      sessions/session_bucket=<b>/part-<source fingerprint>.parquet  (before compaction)
      tracks/part-<source fingerprint>.parquet
      rejected/part-<source fingerprint>.parquet   (source, line, raw, reason, raw_bytes)
      challenge/prehistory/session_bucket=<b>/part-<source fingerprint>.parquet
      challenge/input/session_bucket=<b>/part-<source fingerprint>.parquet
      .ingest.lock                          the writer lock (:mod:`skipmodel.store.journal`)
      .staging/<random>/                    a source being staged (only while one is)

Sessions are hive-partitioned by ``session_bucket = stable_hash(session_id) % n_buckets`` (see
:mod:`skipmodel.store.hashing`), so a whole session lives in one bucket and a k % session sample reads
about k % of the bytes. Ingest writes one part per input per bucket, named after the input's
fingerprint, and ends by merging each bucket's parts into one file sorted by session with a
per-row source fingerprint (:mod:`skipmodel.ingest.compact`); an input whose fingerprint is in
the manifest is not written again. Every file appears only complete: written to a temporary
name in the same directory, then renamed (compaction swaps files through a journal).

The WSDM Cup 2019 test set (``log_prehistory_*`` and ``log_input_*`` files) lives under
``challenge/``, bucketed by session with the store's bucket count like ``sessions/`` (a
session's first and second half share a bucket number), so nothing that reads ``sessions/``
(fit, explore, sample, the train/test split) ever sees a challenge session. Prehistory parts have
the session-log schema; input parts have :data:`skipmodel.store.schema.INPUT_SCHEMA`, whose
``input_file``/``input_day``/``input_line`` columns rebuild the files' session order. Compaction
leaves ``challenge/`` alone: one part per input file per bucket, each sorted by session.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skipmodel.errors import SkipmodelError
from skipmodel.store.fspath import FsPath, renames_atomically, replace
from skipmodel.store.location import store_path
from skipmodel.store.parts import part_files
from skipmodel.store.visible import PartView

SESSIONS_DIR = "sessions"
TRACKS_DIR = "tracks"
REJECTED_DIR = "rejected"
CHALLENGE_DIR = "challenge"
MANIFEST_FILE = "manifest.json"
BUCKET_KEY = "session_bucket"
DEFAULT_BUCKETS = 100

_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True)
class StoreLayout:
    """Paths inside a store directory, and which of its part files are committed."""

    root: Path
    #: the manifest's :class:`~skipmodel.store.visible.PartView`, read once (``"view"``)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def parts(self, directory: Path) -> list[Path]:
        """The committed part files of one of the store's folders, in a fixed order: every
        ``part-*.parquet`` under rename commits, those the manifest names under manifest
        commits (:mod:`skipmodel.store.visible`)."""
        view = self.view()
        if view is None:
            return part_files(directory)
        return view.visible(directory)

    def view(self) -> PartView | None:
        """The manifest's view of the part files (None: rename commits, every file counts)."""
        if "view" not in self._cache:
            manifest = self.read_manifest() if self.manifest_path.is_file() else {}
            self._cache["view"] = PartView.of(manifest)
        return self._cache["view"]

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Rewrite the manifest (atomically): under manifest commits this is the commit."""
        atomic_write_json(self.manifest_path, manifest)
        self.remember(manifest)

    def remember(self, manifest: dict[str, Any]) -> None:
        """Take the part files' view from a manifest just read or written (no second read)."""
        self._cache["view"] = PartView.of(manifest)

    @property
    def sessions(self) -> Path:
        return self.root / SESSIONS_DIR

    @property
    def tracks(self) -> Path:
        return self.root / TRACKS_DIR

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED_DIR

    @property
    def challenge(self) -> Path:
        """The challenge's test set: one folder per kind (``prehistory``, ``input``)."""
        return self.root / CHALLENGE_DIR

    def challenge_dir(self, kind: str) -> Path:
        """Folder of one challenge kind, bucketed like :attr:`sessions`."""
        return self.challenge / kind

    def challenge_bucket_dir(self, kind: str, bucket: int) -> Path:
        return self.challenge_dir(kind) / f"{BUCKET_KEY}={bucket}"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    def bucket_dir(self, bucket: int) -> Path:
        return self.sessions / f"{BUCKET_KEY}={bucket}"

    def bucket_dirs(self) -> list[Path]:
        """The session bucket folders present, in name order."""
        return sorted(self.sessions.glob(f"{BUCKET_KEY}=*"))

    def part_folders(self) -> list[Path]:
        """Every folder that holds part files: session buckets, challenge buckets, tracks and
        rejected rows."""
        challenge = sorted(self.challenge.glob(f"*/{BUCKET_KEY}=*"))
        return [*self.bucket_dirs(), *challenge, self.tracks, self.rejected]

    def read_manifest(self) -> dict[str, Any]:
        """The manifest, or a clear error when ``root`` is not a store."""
        if not self.manifest_path.is_file():
            raise SkipmodelError(
                f"{self.root} is not a skipmodel store (no {MANIFEST_FILE}); "
                "create one with 'skipmodel ingest PATH... --store DIR'"
            )
        tries = 5 if isinstance(self.root, FsPath) else 1
        reason = ""
        for attempt in range(tries):
            try:
                return json.loads(self.manifest_path.read_text())
            except json.JSONDecodeError as exc:
                reason = exc.msg
            if attempt + 1 < tries:  # an object store may serve an object being replaced torn
                time.sleep(0.1 * (attempt + 1))
        raise SkipmodelError(
            f"{self.manifest_path} is corrupt ({reason}); re-run 'skipmodel ingest'"
        )


def open_store(root: str | os.PathLike[str]) -> StoreLayout:
    """A store that must already exist (``skipmodel ingest`` creates stores)."""
    layout = StoreLayout(store_path(root))
    layout.remember(layout.read_manifest())
    return layout


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only if the block succeeds.

    On an object store (no rename) ``final`` itself is yielded: an object appears whole when
    its upload completes, and the store's manifest commits say which objects count.
    """
    if isinstance(final, FsPath):
        final.parent.mkdir(parents=True, exist_ok=True)
        if not renames_atomically(final):
            yield final
            return
        moved = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            yield moved
            replace(moved, final)
        finally:
            moved.unlink(missing_ok=True)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; published files get the usual umask-based mode.
        if tmp_path.exists():
            tmp_path.chmod(0o666 & ~_UMASK)
        os.replace(tmp_path, final)
    except OSError as exc:  # a write's error names no file (a full disk): name the one meant
        if exc.filename is None and exc.errno is not None:
            exc.filename = str(final)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(final: Path, text: str) -> None:
    """Write ``text`` to ``final`` so readers see the old file or the whole new one."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)
        if not isinstance(tmp, FsPath):
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())


def atomic_write_json(final: Path, obj: Any) -> None:
    atomic_write_text(final, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")
