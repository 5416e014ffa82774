"""End to end through the real ingest: the loaders read what ``skipmodel ingest`` writes."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skipmodel.cli import main
from skipmodel.load.loaders import load_pandas, load_table
from store_factory import logs_from_csv, tracks_from_csv, write_store

ingest_module = pytest.importorskip("skipmodel.ingest")

EXCERPTS = ("mssd_trainset_partial_rows_1180.csv", "log_mini_first11sessions.csv")
TRACKS = "tf_mini_subset_for_first11sessions.csv"


def _rows(table: pa.Table) -> Counter:
    return Counter(tuple(row.values()) for row in table.to_pylist())


@pytest.mark.parametrize("compact", [False, True])
def test_ingested_excerpts_load_like_a_hand_built_store(tmp_path, mssd_dir, compact):
    # the 1,180-row excerpt cut mid-session into two source files: ingest writes one part per
    # source, so that session's rows sit in two part files of its bucket (until compaction
    # merges the bucket into one sorted file)
    lines = (mssd_dir / EXCERPTS[0]).read_text().splitlines(keepends=True)
    sid = [line.split(",")[0] for line in lines]
    cut = next(i for i in range(600, len(lines) - 1) if sid[i] == sid[i + 1])
    halves = [tmp_path / "first.csv", tmp_path / "second.csv"]
    halves[0].write_text("".join(lines[: cut + 1]))
    halves[1].write_text("".join(lines[:1] + lines[cut + 1 :]))
    paths = [*halves, mssd_dir / EXCERPTS[1], mssd_dir / TRACKS]
    ingest_module.ingest(
        paths, tmp_path / "ingested", n_buckets=4, progress=False, flush_rows=97, compact=compact
    )
    split_session = sid[cut]
    holders = [
        f
        for f in (tmp_path / "ingested/sessions").rglob("part-*.parquet")
        if split_session in pq.read_table(f, columns=["session_id"]).column(0).to_pylist()
    ]
    assert len(holders) == (1 if compact else 2)
    logs = pa.concat_tables([logs_from_csv(mssd_dir / name) for name in EXCERPTS])
    write_store(tmp_path / "by_hand", logs, tracks_from_csv(mssd_dir / TRACKS), n_buckets=4)

    got = load_table(tmp_path / "ingested", lags=2)
    want = load_table(tmp_path / "by_hand", lags=2)
    assert got.num_rows == 1180 + 201
    assert got.schema == want.schema
    assert _rows(got) == _rows(want)

    frame = load_pandas(tmp_path / "ingested", features=("danceability",), lags=1)
    # the play right after the cut knows the play right before it (in the other file)
    before, after = (int(lines[i].split(",")[1]) for i in (cut, cut + 1))
    split = frame[frame.session_id == split_session].set_index("session_position")
    assert after == before + 1
    assert split.loc[after, "prev_skip_2"] == split.loc[before, "skip_2"]
    assert split.loc[after, "prev_track_id_clean"] == split.loc[before, "track_id_clean"]
    mini = frame[
        frame.session_id.isin(set(logs_from_csv(mssd_dir / EXCERPTS[1])["session_id"].to_pylist()))
    ]
    assert mini.danceability.notna().all()
    assert mini.prev_skip_2.isna().sum() == 11  # position 1 of each of the 11 complete sessions


def test_simulate_ingest_sample_chain(tmp_path, capsys):
    simulate = pytest.importorskip("skipmodel.simulate.mssd")
    simulate.simulate(tmp_path / "demo", sessions=150, seed=3, days=2, files_per_day=2)
    ingest_module.ingest([tmp_path / "demo"], tmp_path / "store", n_buckets=8, progress=False)
    out = tmp_path / "sample.parquet"
    argv = ["sample", "--store", str(tmp_path / "store"), "--out", str(out), "--fraction", "0.5"]
    assert main(argv) == 0
    assert "rows of" in capsys.readouterr().out
    full = load_pandas(tmp_path / "store", features=("danceability",), lags=1)
    assert full.session_id.nunique() == 150
    # simulated sessions are complete: every play after the first has its previous play
    later = full[full.session_position > 1]
    assert later.prev_skip_2.notna().all() and later.prev_danceability.notna().all()
    assert full[full.session_position == 1].prev_skip_2.isna().all()
    previous = full.set_index(["session_id", "session_position"]).skip_2
    keys = list(zip(later.session_id, later.session_position - 1, strict=True))
    assert (previous.loc[keys].to_numpy() == later.prev_skip_2.to_numpy(dtype=bool)).all()
