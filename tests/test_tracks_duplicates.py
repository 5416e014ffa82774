"""One duplicate rule for every reader of the tracks table: a track id stored twice counts once.

The store is ingested from two track CSVs that share an id (the second file's row has other
values), the first of which also holds another id twice. Each id's first row in the store's
part-file order must be the only one the loaders' join, explore's track views, cpdag's
correlation and scale's binning see; the later rows carry a danceability far outside the
others, so counting them anywhere would show.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skipmodel.cpdag.corr import STORE_TRANSFORMS, correlation_from_store
from skipmodel.explore import ExploreOptions, compute
from skipmodel.explore.passes import StoreSources
from skipmodel.ingest import ingest
from skipmodel.load.loaders import load_pandas, load_table
from skipmodel.load.tracks import TrackFeatures, TrackTable, first_rows, load_tracks
from skipmodel.model.spec import Fixed, Markov, ModelSpec
from skipmodel.scale.aggregate import aggregate, resolve_binning
from skipmodel.simulate.mssd import simulate
from skipmodel.store.layout import open_store
from skipmodel.store.parts import part_files
from skipmodel.store.schema import TRACK_NUMERIC_FEATURES

#: The value the later (ignored) copies carry: far outside the simulated range.
OUTLIER = "7.5"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("duplicates")
    sim = simulate(root / "sim", sessions=200, seed=11, tracks=60, days=2)
    with tarfile.open(sim.track_features) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".csv"))
        text = tar.extractfile(member).read()  # type: ignore[union-attr]
    tracks = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False)
    within, across = tracks.iloc[0].copy(), tracks.iloc[1].copy()
    within["danceability"] = across["danceability"] = OUTLIER
    folder = root / "track_features"
    folder.mkdir()
    # the same id twice in one file, and an id of that file again in a second file
    pd.concat([tracks, within.to_frame().T]).to_csv(folder / "tf_000000000000.csv", index=False)
    across.to_frame().T.to_csv(folder / "tf_000000000001.csv", index=False)
    ingest([sim.training_set, folder], root / "store", n_buckets=4, progress=False)
    return root / "store"


def _first_rows(store: Path) -> pd.DataFrame:
    """The rule, by hand: every stored row in part-file order, each id's first kept."""
    files = part_files(open_store(store).tracks)
    assert len(files) == 2
    stored = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    assert stored["track_id"].duplicated().sum() == 2
    assert (stored["danceability"] == float(OUTLIER)).sum() == 2
    return stored.drop_duplicates("track_id", keep="first").reset_index(drop=True)


def test_the_duplicates_are_the_later_rows(store: Path) -> None:
    first = _first_rows(store)
    # whichever file sorts first, the outlier copies come later: they never count
    assert (first["danceability"] < float(OUTLIER)).all()
    table = TrackTable(open_store(store))
    assert table.stored_rows == len(first) + 2
    assert table.n_tracks == len(first)
    got = table.table(["track_id", "danceability"]).to_pandas()
    pd.testing.assert_frame_equal(got, first[["track_id", "danceability"]])


def test_loaders_join_each_play_to_the_first_row(store: Path) -> None:
    first = _first_rows(store).set_index("track_id")
    frame = load_pandas(store, features=("danceability",), lags=0)
    duplicated = pq.read_table(part_files(open_store(store).tracks)[0]).to_pandas()
    played = set(frame["track_id_clean"])
    assert played >= set(duplicated["track_id"][duplicated["track_id"].duplicated()])
    want = first.loc[frame["track_id_clean"], "danceability"].to_numpy()
    np.testing.assert_array_equal(frame["danceability"].to_numpy(), want)
    manifest = open_store(store).read_manifest()
    assert len(frame) == manifest["totals"]["log_rows_written"]


def test_explore_counts_each_track_once(store: Path) -> None:
    first = _first_rows(store)
    results = compute(StoreSources(open_store(store)), ExploreOptions(top_tracks=5))
    assert results.tracks is not None
    assert results.tracks.tracks == len(first)
    for feature in TRACK_NUMERIC_FEATURES:
        scale = results.scales[feature]
        x = first[feature].dropna().to_numpy(dtype=float)
        inside = x[x >= scale.edges[0]] if scale.log else x
        want, _ = np.histogram(inside, bins=scale.edges)
        np.testing.assert_array_equal(results.tracks.histograms[feature].counts, want, feature)
    assert results.scales["danceability"].edges[-1] == first["danceability"].max()
    assert results.tracks.by_duration.sums[:, 0].sum() == len(first)


def test_cpdag_correlates_each_track_once(store: Path) -> None:
    first = _first_rows(store)
    result = correlation_from_store(store)
    assert result.n == result.rows_read == len(first)
    values = first[list(result.names)].to_numpy(dtype=float)
    logged = [result.names.index(c) for c in STORE_TRANSFORMS.log]
    values[:, logged] = np.log(values[:, logged] + STORE_TRANSFORMS.log_offset)
    np.testing.assert_allclose(result.corr, np.corrcoef(values, rowvar=False), atol=1e-10)


def test_scale_bins_and_cells_count_each_track_once(store: Path) -> None:
    first = _first_rows(store)
    (bins,) = resolve_binning(store, {"danceability": 3})
    assert (bins.lo, bins.hi) == (first["danceability"].min(), first["danceability"].max())
    spec = ModelSpec(
        name="dup", terms=(Markov(features=("danceability",)), Fixed(columns=("premium",)))
    )
    cells = aggregate(store, spec, bins={"danceability": 3}, progress=False)
    assert cells.binning == (bins,)
    assert cells.trials.sum() == cells.n_rows == load_table(store, cells.sample).num_rows


def test_the_lookup_and_the_mask_follow_one_rule() -> None:
    ids = ["b", "a", None, "b", "c", "a", "", None, ""]
    keep = first_rows(lambda: [pa.array(ids[:4]), pa.array(ids[4:])])
    assert keep.tolist() == [True, True, True, False, True, False, True, True, False]
    features = TrackFeatures(pa.table({"track_id": pa.array(ids, pa.string())}))
    wanted = pa.array(["a", "b", "c", "", "z", None])
    assert features.rows_of(wanted).to_pylist() == [1, 0, 4, 6, None, None]
    assert features.build_index()
    assert features.rows_of(wanted).to_pylist() == [1, 0, 4, 6, None, None]


def test_a_hash_collision_never_drops_a_track(monkeypatch: pytest.MonkeyPatch) -> None:
    import skipmodel.load.tracks as tracks_module

    monkeypatch.setattr(
        tracks_module, "id_hash", lambda values: np.zeros(len(values), dtype=np.uint64)
    )
    keep = first_rows(lambda: [pa.array(["x", "y", "x", "z"])])
    assert keep.tolist() == [True, True, False, True]


def test_load_tracks_keeps_every_stored_row(store: Path) -> None:
    # row numbers are positions in the stored table (compacted track rows refer to them)
    stored = load_tracks(open_store(store), ["danceability"])
    assert stored.num_rows == TrackTable(open_store(store)).stored_rows
