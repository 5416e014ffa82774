"""Stores given as paths or file:// URIs; other filesystems refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.store.location import store_path


def test_paths_and_file_uris():
    assert store_path("data/store") == Path("data/store")
    assert store_path(Path("/x/y")) == Path("/x/y")
    assert store_path("file:///tmp/a%20store") == Path("/tmp/a store")
    assert store_path("file://localhost/tmp/s") == Path("/tmp/s")
    with pytest.raises(SkipmodelError, match="not this host"):
        store_path("file://otherhost/tmp/s")


@pytest.mark.parametrize("uri", ["s3://bucket/store", "gs://b/s", "hdfs://nn:8020/s"])
def test_other_filesystems_are_refused(uri):
    with pytest.raises(SkipmodelError, match="not supported yet; give a local folder or a file://"):
        store_path(uri)


def test_every_store_option_takes_a_file_uri(tmp_path, mssd_dir, capsys):
    store = tmp_path / "store"
    log = mssd_dir / "log_mini_first11sessions.csv"
    assert main(["ingest", str(log), "--store", f"file://{store}", "--quiet"]) == 0
    assert (store / "manifest.json").is_file()
    assert main(["compact", f"--store=file://{store}"]) == 0
    assert main(["compact", "--store", "s3://bucket/store"]) == 2
    assert "s3:// are not supported yet" in capsys.readouterr().err
