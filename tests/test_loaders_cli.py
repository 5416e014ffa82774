"""``skipmodel sample``: the Parquet it writes and its one-line errors."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from skipmodel.cli import main
from skipmodel.load.loaders import load_table, output_schema
from store_factory import random_logs, random_tracks, write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("store")
    write_store(root, random_logs(rng, 80, missing=0.1), random_tracks(rng), n_buckets=4)
    return root


def test_sample_writes_contract_columns(store, tmp_path, capsys):
    out = tmp_path / "sample.parquet"
    args = ["sample", "--store", str(store), "--out", str(out), "--fraction", "0.5", "--seed", "3"]
    assert main([*args, "--split", "train", "--lags", "2"]) == 0
    table = pq.read_table(out)
    want = load_table(store, fraction=0.5, seed=3, split="train", lags=2)
    assert table.schema.names == output_schema(lags=2).names
    assert table.equals(want.cast(table.schema))
    printed = capsys.readouterr().out
    n_sessions = len(set(want.column("session_id").to_pylist()))
    assert f"wrote {want.num_rows:,} rows of {n_sessions:,} sessions" in printed
    for name in (
        "prev_skip_2",
        "prev_track_id_clean",
        "prev_danceability",
        "prev2_not_skipped",
        "weekday",
        "danceability",
    ):
        assert name in table.column_names
    assert [p.name for p in tmp_path.iterdir()] == ["sample.parquet"]  # no temp files left


def test_sample_columns_dates_and_features(store, tmp_path):
    out = tmp_path / "s.parquet"
    argv = [
        "sample",
        "--store",
        str(store),
        "--out",
        str(out),
        "--columns",
        "skip_2,weekday,energy",
        "--from",
        "2018-07-16",
        "--to",
        "2018-07-17",
        "--lags",
        "1",
    ]
    assert main(argv) == 0
    table = pq.read_table(out)
    assert table.column_names == [
        "session_id",
        "session_position",
        "session_length",
        "track_id_clean",
        "skip_2",
        "weekday",
        "energy",
        "prev_skip_1",
        "prev_skip_2",
        "prev_skip_3",
        "prev_not_skipped",
        "prev_hist_user_behavior_reason_end",
        "prev_track_id_clean",
        "prev_energy",
    ]
    assert table.num_rows > 0
    assert set(table.column("weekday").to_pylist()) <= {0, 1}  # 2018-07-16 Mon, 17 Tue


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--fraction", "0"], "fraction must be in (0, 1]"),
        (["--columns", "skip_2,nope"], "unknown column(s) 'nope' in --columns; valid: session_id"),
        (["--from", "yesterday"], "from date 'yesterday' is not a date"),
        (["--test-fraction", "2"], "test_fraction must be in (0, 1)"),
    ],
)
def test_sample_bad_input_is_one_line(store, tmp_path, capsys, extra, needle):
    out = tmp_path / "s.parquet"
    assert main(["sample", "--store", str(store), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and err.startswith("skipmodel sample: error:")
    assert not out.exists()


def test_sample_not_a_store(tmp_path, capsys):
    assert main(["sample", "--store", str(tmp_path), "--out", str(tmp_path / "s.parquet")]) == 2
    err = capsys.readouterr().err
    assert "is not a skipmodel store" in err and err.count("\n") == 1
