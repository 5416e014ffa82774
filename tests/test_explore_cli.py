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


def write_store(root: Path, log: pd.DataFrame, tracks: pd.DataFrame) -> Path:
    """A store as ``skipmodel ingest`` lays it out (constant values for unused columns)."""
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
