"""The fast paths of a full pass (read-ahead thread, track index) change nothing in the output."""

from __future__ import annotations

import numpy as np
import pytest

import skipmodel.load.loaders as loaders
from skipmodel.load.loaders import iter_batches, load_table
from skipmodel.load.tracks import TrackFeatures
from store_factory import random_logs, random_tracks, write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("store")
    logs = random_logs(rng, 400, n_tracks=50, missing=0.05, duplicate=0.02)
    write_store(root, logs, random_tracks(rng, 40), n_buckets=6, n_parts=3, rng=rng)
    return root


@pytest.mark.parametrize("split", [None, "test"])
def test_read_ahead_and_sequential_passes_agree(store, monkeypatch, split):
    spec = {"lags": 2, "split": split, "batch_rows": 97}
    monkeypatch.setattr(loaders, "READ_AHEAD", True)
    ahead = [b for b in iter_batches(store, **spec)]
    monkeypatch.setattr(loaders, "READ_AHEAD", False)
    sequential = [b for b in iter_batches(store, **spec)]
    assert [b.num_rows for b in ahead] == [b.num_rows for b in sequential]
    assert all(a.equals(b) for a, b in zip(ahead, sequential, strict=True))


def test_index_and_probe_passes_agree(store, monkeypatch):
    # some plays have no features (40 of 50 tracks stored): both ways must leave them null
    indexed = load_table(store, lags=1)
    monkeypatch.setattr(TrackFeatures, "build_index", lambda self: False)
    probed = load_table(store, lags=1)
    assert indexed.equals(probed)
    assert 0 < indexed.column("danceability").null_count < indexed.num_rows


def test_stopping_early_does_not_hang(store):
    batches = iter_batches(store, batch_rows=50)
    first = next(batches)
    batches.close()  # the read-ahead thread is joined, nothing left running
    assert first.num_rows > 0
