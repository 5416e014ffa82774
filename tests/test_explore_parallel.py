"""Explore in worker processes gives the numbers and files of one process, whatever the count."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.explore import VIEWS, ExploreOptions, compute, drawing, explore, parallel, passes
from skipmodel.explore.passes import StoreSources
from skipmodel.explore.plays import LogPass, TransitionSpill
from skipmodel.ingest.compact import compact_store
from skipmodel.load.loaders import SampleSpec, iter_buckets
from skipmodel.store.layout import open_store
from store_factory import random_logs, random_tracks, write_store
from test_explore_buckets import _numbers


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    rng = np.random.default_rng(11)
    logs = random_logs(rng, 240, n_tracks=80, missing=0.1, duplicate=0.03)
    tracks = random_tracks(rng, 80, coverage=0.8, duplicates=3)
    compact_store(write_store(root, logs, tracks, n_buckets=5, n_parts=2, rng=rng))
    return root


def _run(store, jobs: int) -> dict[str, object]:
    options = ExploreOptions(top_tracks=12, bins=4, min_count=1, jobs=jobs)
    found = compute(StoreSources(open_store(store), file_day_rule=False), options)
    found.log.transitions_total = found.transitions.total
    return _numbers(found)


def test_workers_give_the_numbers_of_one_process(store, monkeypatch):
    # two processes share the log pass too (by default only from three on)
    monkeypatch.setattr(passes, "LOG_PASS_MIN_WORKERS", 2)
    one = _run(store, 1)
    assert one["rows"] > 0 and one["transitions"] > 0
    for jobs in (2, 3, 7):  # 7 > the 5 buckets: one shard per bucket
        assert _run(store, jobs) == one, jobs
    assert {1, 2, 6} <= set(parallel._POOLS)  # the workers ran (no silent fallback)


def test_workers_write_the_same_files(store, tmp_path):
    written = {}
    for jobs in (1, 2):
        out = explore(store, tmp_path / f"out{jobs}", ExploreOptions(min_count=1, jobs=jobs))
        written[jobs] = {
            p.name: p.read_bytes() for p in sorted(out.index.parent.iterdir()) if p.suffix == ".csv"
        }
        assert len(out.images) == 7 and all(p.stat().st_size > 10_000 for p in out.images.values())
    assert written[1].keys() == written[2].keys() and len(written[1]) >= 7
    for name in written[1]:
        assert written[1][name] == written[2][name], name


def test_claims_split_the_sample_into_disjoint_whole_buckets(store, tmp_path):
    spec = SampleSpec(columns=["session_id"], features=False, lags=0)
    every = sorted(b.table.num_rows for b in iter_buckets(store, spec))
    assert [b.table.num_rows for b in iter_buckets(store, spec, schedule=lambda b: b[1::2])] == [
        n for n in (b.table.num_rows for b in iter_buckets(store, spec))
    ][1::2]
    for n in (2, 3):
        claims = parallel.Claims(str(tmp_path / f"claims{n}"))
        (tmp_path / f"claims{n}").mkdir()
        walks = [iter_buckets(store, spec, schedule=claims.schedule(i, n)) for i in range(n)]
        seen: list[list[int]] = [[] for _ in range(n)]
        # interleave the participants, as concurrent processes would
        while any(walks):
            for i, walk in enumerate(walks):
                if walk is not None:
                    bucket = next(walk, None)
                    if bucket is None:
                        walks[i] = None
                    else:
                        seen[i].append(bucket.table.num_rows)
        assert sorted(sum(seen, [])) == every
        assert all(seen)  # everyone got work


def test_transition_spill_travels_as_its_file(tmp_path):
    spill = TransitionSpill(str(tmp_path))
    spill._file.write(np.arange(4, dtype=np.uint64).tobytes())
    spill.transitions = 2
    copy = pickle.loads(pickle.dumps(spill))
    assert copy.path == spill.path and copy.transitions == 2
    copy._file.write(np.arange(4, 6, dtype=np.uint64).tobytes())  # appends
    copy._file.flush()
    assert np.fromfile(copy.path, dtype=np.uint64).tolist() == [0, 1, 2, 3, 4, 5]
    copy.close()
    spill.close()


def test_jobs_must_not_be_negative(tmp_path, capsys):
    with pytest.raises(SkipmodelError, match="--jobs"):
        ExploreOptions(jobs=-1)
    assert main(["explore", "--store", str(tmp_path), "--out", str(tmp_path), "--jobs", "-2"]) != 0
    assert "--jobs" in capsys.readouterr().err


def test_relative_paths_after_a_change_of_directory(store, tmp_path, monkeypatch):
    # the workers keep the directory they started in; the paths they get must not depend on it
    explore(store, tmp_path / "first", ExploreOptions(views=("seasonality",), jobs=2))
    monkeypatch.chdir(store.parent)
    out = explore(store.name, "rel-out", ExploreOptions(min_count=1, jobs=2))
    assert (store.parent / "rel-out" / "seasonality.png").is_file()
    assert out.summary.rows > 0


def test_track_views_are_ready_before_the_log_pass(store, monkeypatch):
    """``compute(on_tracks=...)`` hands over the histograms and duration sums before reading
    the log, so a worker can draw them meanwhile; their numbers are those of the final result."""
    events: list[str] = []
    update = LogPass.update
    monkeypatch.setattr(LogPass, "update", lambda self, b: events.append("log") or update(self, b))
    early: list[object] = []

    def on_tracks(results) -> None:
        events.append("tracks")
        early.append(results)

    options = ExploreOptions(min_count=1)
    final = compute(StoreSources(open_store(store)), options, on_tracks=on_tracks)
    assert events[0] == "tracks" and events.count("tracks") == 1 and "log" in events
    (partial,) = early
    assert partial.tracks is final.tracks and partial.log.overview.rows == 0
    assert final.tracks.tracks > 0 and final.transitions.labels  # labels from the later pass


def test_early_views_are_drawn_by_a_worker(store, tmp_path):
    options = ExploreOptions(min_count=1, jobs=2)
    early = drawing.EarlyViews(tmp_path / "out")
    results = compute(StoreSources(open_store(store)), options, on_tracks=early.start)
    assert early.names == ["feature_histograms", "feature_by_duration"] and early.futures
    drawn = drawing.draw_views(results, tmp_path / "out", early)
    assert [d.name for d in drawn] == list(options.views)
    assert all(d.image.is_file() for d in drawn)


@pytest.mark.parametrize(
    ("max_rows", "schedule", "depth"), [(10**9, False, 2), (1, False, 1), (10**9, True, 1)]
)
def test_read_ahead_depth(store, monkeypatch, max_rows, schedule, depth):
    """Two buckets are read ahead, one when the store's buckets are large (memory) or the
    buckets are claimed by several processes (claim no more than needed)."""
    from skipmodel.load import loaders

    seen: list[int] = []
    original = loaders._read_ahead
    monkeypatch.setattr(
        loaders,
        "_read_ahead",
        lambda jobs, tracks, d=1: seen.append(d) or original(jobs, tracks, d),
    )
    monkeypatch.setattr(loaders, "READ_AHEAD_MAX_ROWS", max_rows)
    spec = SampleSpec(columns=["session_id"], features=False, lags=0)
    rows = sum(
        b.table.num_rows
        for b in iter_buckets(store, spec, schedule=(lambda b: b) if schedule else None)
    )
    assert rows > 0 and seen == [depth]


def test_without_worker_processes_the_work_runs_here(store, tmp_path, monkeypatch):
    def cannot_start(size):
        raise OSError("no processes here")

    monkeypatch.setattr(parallel, "pool", cannot_start)
    monkeypatch.setattr(passes, "LOG_PASS_MIN_WORKERS", 2)
    out = explore(store, tmp_path / "out", ExploreOptions(min_count=1, jobs=2))
    assert sorted(out.images) == sorted(VIEWS)
    assert all(path.is_file() for path in out.images.values())


def test_a_dead_worker_is_a_one_line_error():
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    dead: Future[object] = Future()
    dead.set_exception(BrokenProcessPool("killed"))
    with pytest.raises(SkipmodelError, match="re-run with --jobs 1"):
        parallel.results([dead], 1)
