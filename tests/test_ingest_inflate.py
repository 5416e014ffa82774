"""The optional fast inflate (python-isal) changes speed only: without it the store is the same."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingest_helpers import gzip_copy, pack_tar

# A child process that ingests with python-isal importable or hidden (``sys.modules`` entry None
# makes ``import isal`` fail as if it were not installed) and prints what it used.
_CHILD = r"""
import json, sys
if sys.argv[1] == "hidden":
    sys.modules["isal"] = None
from skipmodel.ingest import sources as ingest_sources
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
out = {"isal": ingest_sources._igzip is not None}
try:
    report = ingest(sys.argv[3:], sys.argv[2], progress=False)
    out["rows"] = report.log_rows_written
except SkipmodelError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def _ingest(mode: str, store: Path, *inputs: Path) -> dict:
    cmd = [sys.executable, "-c", _CHILD, mode, str(store), *map(str, inputs)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _digests(store: Path) -> dict[str, str]:
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*.parquet"))
    }


def _counts(store: Path) -> dict:
    manifest = json.loads((store / "manifest.json").read_text())
    for entry in manifest["sources"].values():
        entry.pop("ingested_at")
    return manifest


def test_store_is_identical_without_isal(tmp_path, mssd_dir):
    pytest.importorskip("isal")
    log = gzip_copy(mssd_dir / "mssd_trainset_partial_rows_1180.csv", tmp_path / "log_1.csv.gz")
    archive = pack_tar([mssd_dir / "log_mini_first11sessions.csv"], tmp_path / "set.tar.gz")
    fast = _ingest("default", tmp_path / "fast", log, archive)
    slow = _ingest("hidden", tmp_path / "slow", log, archive)
    assert fast == {"isal": True, "rows": 1180 + 201}
    assert slow == {"isal": False, "rows": 1180 + 201}
    assert _digests(tmp_path / "fast") == _digests(tmp_path / "slow")
    assert len(_digests(tmp_path / "fast")) > 2
    assert _counts(tmp_path / "fast") == _counts(tmp_path / "slow")


@pytest.mark.parametrize("mode", ["default", "hidden"])
def test_truncated_gzip_is_one_error_with_either_inflate(tmp_path, mssd_dir, mode):
    gz = gzip_copy(mssd_dir / "mssd_trainset_partial_rows_1180.csv", tmp_path / "log.csv.gz")
    gz.write_bytes(gz.read_bytes()[:-20])  # cut inside the data: no trailer
    out = _ingest(mode, tmp_path / "s", gz)
    assert "log.csv.gz: truncated or corrupt compressed data" in out["error"]
    assert "\n" not in out["error"]
    assert not list((tmp_path / "s").rglob("*.parquet"))


def test_log_ingest_does_not_import_pandas(tmp_path, mssd_dir):
    # pyarrow's NumPy/scalar conversions import pandas (~0.3 s CPU per ingest); the log path
    # avoids them. Track-feature files still may: they are small.
    code = (
        "import sys\n"
        "from skipmodel.ingest import ingest\n"
        f"ingest([{str(mssd_dir / 'mssd_trainset_partial_rows_1180.csv')!r}], "
        f"{str(tmp_path / 's')!r}, progress=False, flush_rows=300)\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
