"""Explore's passes as engine tasks (one per track file, one per bucket), run here by the local
engine, give the numbers of the passes in one process."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skipmodel.engine import EngineOptions
from skipmodel.explore import ExploreOptions, compute
from skipmodel.explore.passes import StoreSources
from skipmodel.explore.tasks import BucketTask, EngineTasks, log_pass_of_bucket
from skipmodel.explore.transitions import TransitionSpill
from skipmodel.ingest.compact import compact_store
from skipmodel.store.layout import open_store
from store_factory import random_logs, random_tracks, write_store
from test_explore_buckets import _numbers


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    rng = np.random.default_rng(5)
    logs = random_logs(rng, 200, n_tracks=70, missing=0.1, duplicate=0.03)
    tracks = random_tracks(rng, 70, coverage=0.8, duplicates=3)
    compact_store(write_store(root, logs, tracks, n_buckets=4, n_parts=2, rng=rng, track_parts=3))
    return root


def track_numbers(results) -> dict[str, object]:
    """Everything the track passes produce."""
    tracks = results.tracks
    out: dict[str, object] = {
        "scales": {f: (s.edges.tolist(), s.log) for f, s in results.scales.items()},
        "tracks": tracks.tracks,
        "duration": (tracks.by_duration.keys.tolist(), tracks.by_duration.sums.tolist()),
        "order_values": [None if np.isnan(v) else v for v in results.transitions.order_values],
    }
    for feature, hist in tracks.histograms.items():
        out[feature] = (hist.counts.tolist(), hist.below, hist.above, hist.missing)
    return out


def run(store, tasks: bool, **options: object) -> object:
    opts = ExploreOptions(top_tracks=10, bins=4, min_count=1, order_by="energy", **options)
    sources = StoreSources(open_store(store), file_day_rule=False)
    found = compute(
        sources, opts, tasks=EngineTasks(EngineOptions("local"), sources) if tasks else None
    )
    found.log.transitions_total = found.transitions.total
    return found


def test_tasks_give_the_numbers_of_one_process(store):
    one, tasks = run(store, False), run(store, True)
    assert one.log.overview.rows > 0 and one.transitions.total > 0
    assert _numbers(tasks) == _numbers(one)
    assert track_numbers(tasks) == track_numbers(one)
    assert tasks.transitions.labels == one.transitions.labels


def test_tasks_of_a_sample(store):
    one, tasks = run(store, False, fraction=0.6, seed=3), run(store, True, fraction=0.6, seed=3)
    assert one.log.overview.rows > 0 and _numbers(tasks) == _numbers(one)


def test_a_bucket_result_pickles_whole(store, tmp_path):
    """A task's result carries its transitions, not a path on the executor's disk."""
    options = ExploreOptions(top_tracks=10, bins=4, min_count=1)
    task = BucketTask(str(store), 1.0, 0, False, options, None, 0)
    part = log_pass_of_bucket(task)
    spill = part.transitions
    assert spill is not None and spill.transitions > 0
    assert spill._file.closed and spill._carried is not None
    copy = pickle.loads(pickle.dumps(part)).transitions
    assert copy.path != spill.path and copy.spilled == spill.spilled
    assert np.fromfile(copy.path, dtype=np.uint64).tobytes() == spill._carried
    merged = TransitionSpill(str(tmp_path))
    merged.merge(spill)  # a carried spill merges in this process too (the local engine)
    merged._file.flush()
    assert np.fromfile(merged.path, dtype=np.uint64).tobytes() == spill._carried
    for s in (copy, merged):
        s.close()
