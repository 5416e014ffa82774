"""``skipmodel explore`` end to end on a small store written in the contract layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from explore_data import make_log, make_tracks
from skipmodel.cli import main
from skipmodel.explore import VIEWS
from skipmodel.store.hashing import session_bucket
from skipmodel.store.layout import StoreLayout
from skipmodel.store.schema import LOG_SCHEMA, TRACK_SCHEMA

N_BUCKETS = 4


def write_store(root: Path, log: pd.DataFrame, tracks: pd.DataFrame | None) -> Path:
    """A store as ``skipmodel ingest`` lays it out (constant values for unused columns); no
    tracks table for ``tracks=None`` (logs ingested without track features)."""
    layout = StoreLayout(root)
    n = len(log)
    full = log.copy()
    for field in LOG_SCHEMA:
        if field.name in full:
            continue
        if pa.types.is_boolean(field.type):
            full[field.name] = False
        elif pa.types.is_integer(field.type):
            full[field.name] = 0
        else:
            full[field.name] = "trackdone" if "reason" in field.name else "catalog"
    table = pa.Table.from_pandas(
        full[list(LOG_SCHEMA.names)], schema=LOG_SCHEMA, preserve_index=False
    )
    buckets = session_bucket(table.column("session_id"), N_BUCKETS)
    for b in range(N_BUCKETS):
        part = table.filter(pa.array(buckets == b)).sort_by(
            [("session_id", "ascending"), ("session_position", "ascending")]
        )
        layout.bucket_dir(b).mkdir(parents=True)
        pq.write_table(part, layout.bucket_dir(b) / "part-test.parquet", compression="zstd")
    if tracks is not None:
        layout.tracks.mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(tracks, schema=TRACK_SCHEMA, preserve_index=False),
            layout.tracks / "part-test.parquet",
        )
    manifest = {
        "schema_version": 1,
        "n_buckets": N_BUCKETS,
        "sources": {},
        "totals": {"log_rows_read": n + 3, "log_rows_written": n, "log_rows_rejected": 3},
        "integrity": {"dates_far_from_file_day": 17},
    }
    layout.manifest_path.write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(5)
    tracks = make_tracks(30, rng)
    log = make_log(rng, sessions=70, tracks=30, days=15)
    return write_store(tmp_path_factory.mktemp("store"), log, tracks), log


@pytest.fixture(scope="module")
def explored(store, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    root, _ = store
    out = tmp_path_factory.mktemp("explore")
    code = main(
        [
            "explore",
            "--store",
            str(root),
            "--out",
            str(out),
            "--top-tracks",
            "10",
            "--min-count",
            "5",
            "--bins",
            "5",
        ]
    )
    assert code == 0
    return out


def test_cli_writes_every_view_with_tables_and_gallery(explored: Path) -> None:
    for view in VIEWS:
        png = explored / f"{view}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", view
        assert list(explored.glob(f"{view}*.csv")), view
    assert (explored / "summary.txt").is_file() and (explored / "summary.json").is_file()


def test_gallery_is_self_contained(explored: Path) -> None:
    html = (explored / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and not [r for r in refs if r.startswith(("http:", "https:", "//"))]
    assert "<script" not in html and "@import" not in html
    for ref in refs:
        assert (explored / ref).is_file(), ref
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert len(captions) == len(VIEWS)
    for caption in captions:  # each says on how many plays or tracks it stands
        assert re.search(r"\d[\d,]* (plays|tracks|transitions)", caption), caption
    # the summary is at the top, with the store's rejected and integrity counts
    assert html.index("summary") < html.index("<figure")
    assert "log rows rejected 3" in html and "dates far from file day 17" in html


def test_cli_numbers_match_pandas_through_the_real_loader(store, explored: Path) -> None:  # noqa: ANN001
    _, log = store
    season = pd.read_csv(explored / "seasonality.csv")
    hour = season[season["panel"] == "hour"].set_index("level")
    want = log.groupby("hour_of_day")["skip_2"].agg(["size", "sum"])
    np.testing.assert_array_equal(hour.loc[want.index, "n"], want["size"])
    np.testing.assert_array_equal(hour.loc[want.index, "skipped"], want["sum"])
    summary = json.loads((explored / "summary.json").read_text())
    assert summary["rows"] == len(log) and summary["sessions"] == log["session_id"].nunique()
    assert summary["tracks_played"] == log["track_id_clean"].nunique()
    # transitions through the loader's lag column: adjacent positions of one session only
    counts = pd.read_csv(explored / "transitions_counts.csv")
    ranked = pd.read_csv(explored / "transitions_tracks.csv")
    top = set(ranked["track_id"])
    nxt = log.shift(-1)
    adjacent = (nxt["session_id"] == log["session_id"]) & (
        nxt["session_position"] == log["session_position"] + 1
    )
    pairs = pd.DataFrame({"a": log["track_id_clean"], "b": nxt["track_id_clean"]})[adjacent]
    assert counts["count"].sum() == int((pairs["a"].isin(top) & pairs["b"].isin(top)).sum())


def test_cli_options_and_one_line_errors(
    store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # noqa: ANN001
    root, _ = store
    out = tmp_path / "some"
    code = main(
        [
            "explore",
            "--store",
            str(root),
            "--out",
            str(out),
            "--views",
            "seasonality,previous_outcome",
            "--skip",
            "not_skipped",
            "--fraction",
            "0.5",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["previous_outcome.png", "seasonality.png"]
    assert "not_skipped" in (out / "index.html").read_text()
    capsys.readouterr()
    assert main(["explore", "--store", str(root), "--out", str(out), "--views", "histogramz"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "histogramz" in err and "feature_histograms" in err
    assert main(["explore", "--store", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "not a skipmodel store" in capsys.readouterr().err
    assert main(["explore", "--store", str(root), "--out", str(out), "--fraction", "0.0001"]) == 2
    assert "holds no plays" in capsys.readouterr().err


@pytest.mark.parametrize("tracks", ["absent", "unmatched"])
def test_views_needing_track_features_are_skipped_with_the_reason(
    tracks: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # logs ingested without track features (a documented way to build a store), or a tracks
    # table that matches none of the played tracks: the other views are still drawn
    rng = np.random.default_rng(7)
    log = make_log(rng, sessions=40, tracks=20, days=10)
    table = None
    if tracks == "unmatched":
        table = make_tracks(20, rng)
        table["track_id"] = "other_" + table["track_id"]
    root = write_store(tmp_path / "store", log, table)
    out = tmp_path / "out"
    out.mkdir()  # an earlier run's files of the views now skipped go; the user's file stays
    for name in ("memory_in_chains.png", "memory_in_chains.csv", "feature_histograms_outside.csv"):
        (out / name).write_text("earlier")
    (out / "notes.txt").write_text("mine")
    args = ["--top-tracks", "10", "--min-count", "5", "--bins", "5"]
    code = main(["explore", "--store", str(root), "--out", str(out), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    skipped = {"memory_in_chains"}
    if tracks == "absent":
        skipped |= {"feature_histograms", "feature_by_duration"}
    drawn = [v for v in VIEWS if v not in skipped]
    lines = captured.out.splitlines()
    for view in skipped:  # one line each on the console, saying why and what to do
        (line,) = [x for x in lines if x.startswith(f"Skipped view {view}: ")]
        assert "track features" in line and "ingest" in line, line
    assert f"wrote {len(drawn)} views" in lines[-1] and f"{len(skipped)} skipped" in lines[-1]
    # the drawn views complete, nothing of the skipped ones, no temporary files left
    names = {p.name for p in out.iterdir()}
    assert "notes.txt" in names
    assert {n for n in names if n.endswith(".png")} == {f"{v}.png" for v in drawn}
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    assert not [n for n in names if n.startswith(tuple(skipped))]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["skipped_views"]) == skipped
    text = (out / "summary.txt").read_text()
    html = (out / "index.html").read_text()
    for view in skipped:
        assert f"Skipped view {view}: " in text and f'id="{view}"' in html
    assert len(re.findall(r"<figcaption>", html)) == len(drawn)
    assert len(re.findall(r"not drawn</h2>", html)) == len(skipped)
    # the transitions' ranks still map to track ids: the log's, as the tracks table lacks them
    ranked = pd.read_csv(out / "transitions_tracks.csv")
    assert len(ranked) == 10 and set(ranked["track_id"]) <= set(log["track_id_clean"])


def test_a_full_disk_is_a_one_line_error_naming_the_file(
    store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # noqa: ANN001
    import errno

    from skipmodel.store import layout

    def full(fd: int) -> None:  # what a full disk raises: no file name in the error
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(layout.os, "fsync", full)
    root, _ = store
    out = tmp_path / "out"
    args = ["--views", "seasonality", "--jobs", "1"]
    assert main(["explore", "--store", str(root), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error" not in err
    # the file being written (in the hidden folder explore moves into place at the end)
    written = re.escape(str(out)) + r"/\.explore-[^/]+/summary\.txt"
    assert re.fullmatch(
        rf"skipmodel explore: error: {written}: no space left on the device; "
        r"free some space \(or write elsewhere\) and re-run",
        err,
    ), err
    assert not out.exists()  # nothing half-written is left


def test_a_failed_explore_leaves_no_files(
    store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # noqa: ANN001
    root, _ = store
    out = tmp_path / "new"
    no_plays = ["--fraction", "0.0001"]  # fails after the track views were handed to a worker
    assert main(["explore", "--store", str(root), "--out", str(out), *no_plays]) == 2
    assert "holds no plays" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["explore", "--store", str(root), "--out", str(out), *no_plays]) == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
