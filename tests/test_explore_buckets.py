"""The whole-bucket log pass (``loaders.iter_buckets`` + ``BucketPlays``) gives exactly the
numbers of the loader-batch pass, on stores with missing and duplicated positions, tracks
without features, sessions split over parts, compacted or not."""

from __future__ import annotations

import numpy as np
import pytest

from skipmodel.explore import ExploreOptions, compute, kernels, passes, plays
from skipmodel.explore.passes import StoreSources
from skipmodel.ingest.compact import compact_store
from skipmodel.store.layout import open_store
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
    from skipmodel.simulate.mssd import simulate

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


def _fused_and_numpy(monkeypatch, sources_of, options) -> list[dict[str, object]]:
    found = []
    for fused in (True, False):
        monkeypatch.setattr(plays, "FUSED", fused)
        result = compute(sources_of(), options)
        result.log.transitions_total = result.transitions.total
        found.append(_numbers(result))
    return found


@pytest.mark.parametrize(("day_hour_cells", "candidates_after"), [(None, None), (8, 1)])
def test_compiled_loop_gives_the_numpy_numbers(
    tmp_path, monkeypatch, day_hour_cells, candidates_after
):
    """The compiled whole-bucket loops (:mod:`skipmodel.explore.kernels`) against the per-view
    NumPy accumulators, with the file-day rule (a compacted, simulated store: stray dates,
    several files a day) and the session rule. ``day_hour_cells`` = 8 sends every bucket's
    calendar through the NumPy fallback for dates spread too widely; ``candidates_after`` = 1
    fixes the transition candidates after the first bucket, so the plays per track and the
    transitions of the others are counted by the compiled loop."""
    from skipmodel.explore.plays import TransitionSpill
    from skipmodel.ingest import ingest
    from skipmodel.simulate.mssd import simulate

    if day_hour_cells is not None:
        monkeypatch.setattr(plays, "MAX_DAY_HOUR_CELLS", day_hour_cells)
    if candidates_after is not None:
        monkeypatch.setattr(TransitionSpill, "CANDIDATE_AFTER", candidates_after)
        tracks_pass = []
        original = plays.count_tracks_and_transitions
        monkeypatch.setattr(
            plays,
            "count_tracks_and_transitions",
            lambda log, b: tracks_pass.append(original(log, b)) or tracks_pass[-1],
        )
    sim = simulate(tmp_path / "sim", sessions=300, seed=9, days=3, files_per_day=2)
    ingest([sim.training_set, sim.track_features], tmp_path / "store", n_buckets=3, progress=False)
    options = ExploreOptions(top_tracks=10, bins=4, min_count=1)
    for rule in (True, False):
        with_kernel, with_numpy = _fused_and_numpy(
            monkeypatch,
            lambda rule=rule: StoreSources(open_store(tmp_path / "store"), file_day_rule=rule),
            options,
        )
        assert with_kernel["rows"] > 0 and with_kernel["day_hour"][0]
        assert with_kernel == with_numpy, rule
    if candidates_after is not None:
        assert any(tracks_pass)  # the compiled per-track pass ran


def test_compiled_pair_count_matches_brute_force(monkeypatch):
    """The transitions replay ranks both tracks of each pair among the top N by a slot table;
    with 2-bit slots most top hashes share a slot and go by binary search instead."""
    from skipmodel.explore.accumulators import TopTracks

    rng = np.random.default_rng(3)
    universe = rng.integers(0, 2**63, size=40, dtype=np.uint64)
    pairs = universe[rng.integers(0, 40, size=(5000, 2))]
    top_hashes = universe[:12]
    rank = {int(h): r for r, h in enumerate(top_hashes)}
    expected = np.zeros(12 * 12, dtype=np.int64)
    for a, b in pairs:
        if int(a) in rank and int(b) in rank:
            expected[rank[int(a)] * 12 + rank[int(b)]] += 1
    # 16 bits: a slot each; 4 bits: other hashes land in top hashes' slots; 2: all shared
    for bits in (16, 4, 2):
        monkeypatch.setattr(TopTracks, "SLOT_BITS", bits)
        top = TopTracks(top_hashes)
        assert (bits == 2) == bool((top.slots == -2).any())  # shared slots exercised
        counts = np.zeros(12 * 12, dtype=np.int64)
        kernels.count_top_pairs(pairs[:, 0], pairs[:, 1], top, counts)
        np.testing.assert_array_equal(counts, expected)
        assert expected.sum() > 0


@pytest.mark.parametrize(
    ("after", "candidates", "again_expected"),
    [(1, 12, True), (1, 1000, False), (40, 12, None), (10**9, 12, False)],
)
def test_transition_candidates_give_exact_counts(
    tmp_path, monkeypatch, after, candidates, again_expected
):
    """Transitions are spilled until ``after`` of them, then counted among the candidates (the
    most played tracks so far). 12 candidates for a top 10 fixed after the first bucket miss
    some of the top 10, and the counts come from a second pass; 1000 hold every track seen.
    Whatever the path, the counts are those of the spill alone."""
    from skipmodel.explore.plays import TransitionSpill

    rng = np.random.default_rng(5)
    logs = random_logs(rng, 200, n_tracks=60, missing=0.1, duplicate=0.02)
    tracks = random_tracks(rng, 60, coverage=0.8, duplicates=2)
    compact_store(write_store(tmp_path, logs, tracks, n_buckets=4, n_parts=1, rng=rng))
    options = ExploreOptions(top_tracks=10, bins=4, min_count=1)

    def counts() -> dict[str, object]:  # every number, transition counts and per track too
        found = compute(StoreSources(open_store(tmp_path)), options)
        found.log.transitions_total = found.transitions.total
        return _numbers(found)

    reference = counts()  # the defaults: everything spilled on a store this small
    monkeypatch.setattr(TransitionSpill, "CANDIDATE_AFTER", after)
    monkeypatch.setattr(TransitionSpill, "MIN_CANDIDATES", candidates)
    monkeypatch.setattr(TransitionSpill, "CANDIDATE_FACTOR", 1)
    fixed = []
    fix = TransitionSpill._fix
    monkeypatch.setattr(TransitionSpill, "_fix", lambda self, h: fixed.append(1) or fix(self, h))
    again = []
    original = passes._count_transitions_again
    monkeypatch.setattr(
        passes, "_count_transitions_again", lambda *a: again.append(1) or original(*a)
    )
    assert counts() == reference
    assert sum(map(sum, reference["transition_counts"])) > 0
    assert bool(fixed) == (after < 10**9)
    if again_expected is not None:
        assert bool(again) == again_expected
