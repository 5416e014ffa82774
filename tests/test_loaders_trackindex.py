"""The indexed track lookup (full passes) gives exactly the probe's rows (small samples)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skipmodel.load.tracks import TrackFeatures, id_hash

_IDS = st.text(alphabet="ab\u00e9\x00-", max_size=19)


def _features(ids: list[str | None]) -> TrackFeatures:
    table = pa.table(
        {"track_id": pa.array(ids, type=pa.string()), "energy": np.arange(len(ids), dtype=float)}
    )
    return TrackFeatures(table)


@settings(max_examples=150, deadline=None)
@given(st.lists(_IDS, max_size=30), st.lists(_IDS, max_size=40))
def test_index_matches_probe(stored, wanted):
    probe = _features(stored).rows_of(pa.array(wanted, type=pa.string()))
    indexed_tracks = _features(stored)
    assert indexed_tracks.build_index()
    indexed = indexed_tracks.rows_of(pa.array(wanted, type=pa.string()))
    assert indexed.to_pylist() == probe.to_pylist()
    # and both are right: first stored row of the id, null when unknown
    first = {}
    for row, track in enumerate(stored):
        first.setdefault(track, row)
    assert indexed.to_pylist() == [first.get(w) for w in wanted]


def test_index_handles_sliced_chunked_and_null_ids():
    tracks = _features(["t_1", None, "t_22222222", "t_1", "", "t_3"])
    assert tracks.build_index()
    wanted = pa.chunked_array([["x", "t_3"], ["t_1", "", "t_22222222", "t_4"]])
    assert tracks.rows_of(wanted).to_pylist() == [None, 5, 0, 4, 2, None]
    sliced = pa.array(["zz", "t_3", "t_1"]).slice(1)
    assert tracks.rows_of(sliced).to_pylist() == [5, 0]


def test_index_refuses_a_hash_collision(monkeypatch):
    import skipmodel.load.tracks as tj

    monkeypatch.setattr(tj, "id_hash", lambda values: np.zeros(len(values), dtype=np.uint64))
    tracks = _features(["a", "b"])
    assert not tracks.build_index()  # falls back to probing
    assert tracks.rows_of(pa.array(["b", "a", "c"])).to_pylist() == [1, 0, None]


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 40])
def test_id_hash_depends_only_on_the_string(n):
    text = "x" * n
    alone = id_hash(pa.array([text]))
    among = id_hash(pa.array(["y" * 13, text, "z" * 50]).slice(1))
    assert alone[0] == among[0]
    assert id_hash(pa.array([text, "w" * 70]))[0] == alone[0]
    assert id_hash(pa.array([text + "\x00"]))[0] != alone[0]
