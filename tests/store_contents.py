"""A store's committed contents, read as its readers do (the part files it names), so stores
under rename and manifest commits compare equal when they hold the same data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from skipmodel.store.fspath import parquet_file
from skipmodel.store.layout import StoreLayout
from skipmodel.store.location import store_path

#: manifest fields that name how a source was written, not what it holds
_HOW = ("ingested_at", "run", "seq")


def committed(store: Any) -> dict[str, pa.Table]:
    """Each folder's committed part files, concatenated in read order, by folder."""
    layout = StoreLayout(store_path(store))
    out = {}
    root = str(layout.root).rstrip("/")
    for folder in layout.part_folders():
        files = layout.parts(folder)
        if files:
            key = str(folder)[len(root) :].lstrip("/")
            out[key] = pa.concat_tables([parquet_file(f).read() for f in files])
    return out


def manifest_facts(store: Any) -> dict[str, Any]:
    """The manifest without what only says how the store was written."""
    manifest = StoreLayout(store_path(store)).read_manifest()
    facts = {k: manifest[k] for k in ("n_buckets", "totals", "integrity", "skipped")}
    compaction = dict(manifest.get("compaction") or {})
    compaction.pop("files", None)
    facts["compaction"] = compaction
    facts["sources"] = {
        fp: {k: v for k, v in e.items() if k not in _HOW} for fp, e in manifest["sources"].items()
    }
    return facts


def assert_same_contents(got: Any, want: Any) -> None:
    a, b = committed(got), committed(want)
    assert a.keys() == b.keys()
    for key in b:
        assert a[key].equals(b[key]), key
    assert manifest_facts(got) == manifest_facts(want)


def files_on_disk(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
