"""The whole-bucket log pass (``loaders.iter_buckets`` + ``BucketPlays``) gives exactly the
numbers of the loader-batch pass, on stores with missing and duplicated positions, tracks
without features, sessions split over parts, compacted or not."""

from __future__ import annotations

import numpy as np
import pytest

from skipmodel.explore import ExploreOptions, compute, passes
from skipmodel.explore.passes import StoreSources
from skipmodel.ingest_compact import compact_store
from skipmodel.store import open_store
from store_factory import random_logs, random_tracks, write_store


def _numbers(results) -> dict[str, object]:
    log = results.log
    out: dict[str, object] = {
        "rows": log.overview.rows,
        "sessions": log.overview.sessions,
        "outcomes": log.overview.outcome_sums.tolist(),
        "days": (log.overview.first_day, log.overview.last_day),
        "without_features": log.overview.without_features,
        "strays": log.calendar.session_strays,
        "chains_without_previous": log.chains.without_previous,
        "transitions": log.transitions_total,
        "transition_counts": results.transitions.counts.tolist(),
        "top_labels": results.transitions.labels,
    }
    for name, sums in (
        ("hour", log.calendar.by_hour),
        ("position", log.calendar.by_position),
        ("day_hour", log.calendar.by_day_hour),
        ("previous", log.previous.sums),
        ("chains", log.chains.sums),
    ):
        out[name] = (sums.keys.tolist(), sums.sums.tolist())
    log.tracks._compact()
    out["track_counts"] = (log.tracks.hashes.tolist(), log.tracks.counts.tolist())
    return out


@pytest.mark.parametrize(
    ("seed", "n_parts", "compact", "slice_rows"),
    [(1, 3, False, 1 << 20), (2, 1, False, 1 << 20), (3, 3, True, 1 << 20), (4, 2, True, 37)],
)
def test_bucket_pass_equals_batch_pass(tmp_path, monkeypatch, seed, n_parts, compact, slice_rows):
    # slice_rows: buckets reduced in pieces of whole sessions (as large real buckets are)
    monkeypatch.setattr(passes, "SLICE_ROWS", slice_rows)
    rng = np.random.default_rng(seed)
    logs = random_logs(
        rng,
        150,
        n_tracks=60,
        missing=0.15,
        duplicate=0.04,
        dates=("2018-07-15", "2018-07-16", "2018-06-01"),
    )
    tracks = random_tracks(rng, 60, coverage=0.7, duplicates=5)
    layout = write_store(tmp_path, logs, tracks, n_buckets=4, n_parts=n_parts, rng=rng)
    if compact:
        compact_store(layout)
    options = ExploreOptions(top_tracks=10, bins=4, min_count=1)
    results = {}
    for whole in (True, False):
        sources = StoreSources(open_store(tmp_path), whole_buckets=whole, file_day_rule=False)
        found = compute(sources, options)
        found.log.transitions_total = found.transitions.total
        results[whole] = _numbers(found)
    assert results[True]["rows"] == logs.num_rows
    assert results[True]["without_features"] > 0  # tracks without features are covered
    assert results[True] == results[False]


def test_explore_flags_the_dates_ingest_flags_once_compacted(tmp_path):
    """Ingest counts plays more than a day from their file's day; a compacted store keeps
    each row's source, so explore excludes exactly those plays (and says so)."""
    from skipmodel.ingest import ingest
    from skipmodel.simulate import simulate

    sim = simulate(tmp_path / "sim", sessions=400, seed=5, days=3, files_per_day=2)
    paths = [sim.training_set, sim.track_features]
    ingest(paths, tmp_path / "packed", n_buckets=3, progress=False)
    ingest(paths, tmp_path / "raw", n_buckets=3, progress=False, compact=False)
    far = open_store(tmp_path / "packed").read_manifest()["integrity"]["dates_far_from_file_day"]
    assert far > 0  # the simulator writes stray dates, as real files have
    options = ExploreOptions(views=("seasonality",))
    packed = compute(StoreSources(open_store(tmp_path / "packed")), options).log.calendar
    assert packed.file_day_strays == far
    assert packed.session_strays == packed.session_rule_rows == 0
    # without the per-row source (uncompacted store) the session rules stand in
    raw = compute(StoreSources(open_store(tmp_path / "raw")), options).log.calendar
    assert raw.file_day_strays == 0 and raw.session_rule_rows > 0
    assert raw.by_hour.sums.tolist() == packed.by_hour.sums.tolist()
