"""Stores given as paths, file:// URIs or URIs pyarrow.fs opens; a location it cannot open is
refused in one line."""

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


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("nosuch://b/s", "Unrecognized filesystem type"),
        ("s3://b/s?no_such_option=1", "Unexpected query parameter"),
    ],
)
def test_locations_pyarrow_cannot_open_are_refused_in_one_line(uri, reason):
    with pytest.raises(SkipmodelError, match="pyarrow cannot open this store location") as err:
        store_path(uri)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_every_store_option_takes_a_file_uri(tmp_path, mssd_dir, capsys):
    store = tmp_path / "store"
    log = mssd_dir / "log_mini_first11sessions.csv"
    assert main(["ingest", str(log), "--store", f"file://{store}", "--quiet"]) == 0
    assert (store / "manifest.json").is_file()
    assert main(["compact", f"--store=file://{store}"]) == 0
    assert main(["compact", "--store", "nosuch://bucket/store"]) == 2
    assert "pyarrow cannot open this store location" in capsys.readouterr().err
