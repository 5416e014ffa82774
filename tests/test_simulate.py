"""skipmodel simulate: the files read like the real release, byte for byte in style."""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from skipmodel.cli import main
from skipmodel.simulate.mssd import simulate
from skipmodel.store.schema import (
    CONTEXT_TYPES,
    LOG_COLUMNS,
    LOG_INT_FLAGS,
    REASONS_END,
    REASONS_START,
    SKIP_OUTCOMES,
    TRACK_COLUMNS,
    WEEKDAYS,
)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
PY_FLOAT = re.compile(r"^-?\d+\.\d+(e-\d\d)?$")  # Python repr of a float64 in the value ranges
LOG_BOOLS = (*SKIP_OUTCOMES, "hist_user_behavior_is_shuffle", "premium")


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    lines = list(csv.reader(io.StringIO(data.decode())))
    return lines[0], lines[1:]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(out, sessions=400, seed=3, tracks=1500, days=7)
    return out


@pytest.fixture(scope="module")
def logs(sim: Path) -> dict[str, bytes]:
    return _members(sim / "training_set.tar.gz")


def test_layout_and_member_names(sim: Path, logs: dict[str, bytes]) -> None:
    assert sorted(p.name for p in sim.iterdir()) == [
        "track_features.tar.gz",
        "training_set.tar.gz",
        "truth.json",
        "truth_tracks.parquet",
    ]
    days = Counter()
    for name in logs:
        m = re.fullmatch(r"training_set/log_(\d)_(\d{8})_000000000000\.csv", name)
        assert m, name
        days[m.group(2)] += 1
    assert sorted(days) == [f"201807{d}" for d in range(15, 22)]
    assert max(days.values()) == 10  # k = 0..9 per day, as the release has
    tf = _members(sim / "track_features.tar.gz")
    assert list(tf) == ["track_features/tf_000000000000.csv"]


def test_headers_equal_the_real_files(sim: Path, logs: dict[str, bytes], mssd_dir: Path) -> None:
    real_log = (mssd_dir / "log_mini_first11sessions.csv").read_bytes().split(b"\n")[0]
    real_tf = (mssd_dir / "tf_mini_subset_for_first11sessions.csv").read_bytes().split(b"\n")[0]
    for data in logs.values():
        assert data.split(b"\n")[0] == real_log
    tf = next(iter(_members(sim / "track_features.tar.gz").values()))
    assert tf.split(b"\n")[0] == real_tf
    assert real_log.decode().split(",") == list(LOG_COLUMNS)
    assert real_tf.decode().split(",") == list(TRACK_COLUMNS)


def test_log_rows_have_the_real_text_format(logs: dict[str, bytes], mssd_dir: Path) -> None:
    _, real = _rows((mssd_dir / "log_mini_first11sessions.csv").read_bytes())
    col = {c: i for i, c in enumerate(LOG_COLUMNS)}
    n_rows = 0
    for name, data in logs.items():
        k, day = re.search(r"log_(\d)_(\d{8})", name).groups()
        header, rows = _rows(data)
        assert data.endswith(b"\n") and b'"' not in data and b"\r" not in data
        for row in rows + (real if n_rows == 0 else []):  # the regexes also accept real rows
            assert len(row) == len(LOG_COLUMNS)
            assert re.fullmatch(rf"\d+_{UUID}", row[col["session_id"]]), row
            assert re.fullmatch(rf"t_{UUID}", row[col["track_id_clean"]])
            for c in LOG_BOOLS:
                assert row[col[c]] in ("true", "false"), (c, row[col[c]])
            for c in LOG_INT_FLAGS:
                assert row[col[c]] in ("0", "1"), (c, row[col[c]])
            assert re.fullmatch(r"20\d\d-\d\d-\d\d", row[col["date"]])
            assert 0 <= int(row[col["hour_of_day"]]) <= 23
            assert int(row[col["hist_user_behavior_n_seekfwd"]]) >= 0
            assert row[col["context_type"]] in CONTEXT_TYPES
            assert row[col["hist_user_behavior_reason_start"]] in REASONS_START
            assert row[col["hist_user_behavior_reason_end"]] in REASONS_END
        assert {r[0].split("_")[0] for r in rows} == {k}
        dates = Counter(r[col["date"]] for r in rows)
        assert dates.most_common(1)[0][0].replace("-", "") == day
        n_rows += len(rows)
    assert n_rows > 400 * 10


def test_sessions_are_complete_sorted_and_nested(logs: dict[str, bytes]) -> None:
    col = {c: i for i, c in enumerate(LOG_COLUMNS)}
    lengths, all_false, total = Counter(), 0, 0
    for data in logs.values():
        _, rows = _rows(data)
        ids = [r[0] for r in rows]
        assert ids == sorted(ids)
        sessions: dict[str, list[list[str]]] = {}
        for r in rows:
            sessions.setdefault(r[0], []).append(r)
        for plays in sessions.values():
            length = int(plays[0][col["session_length"]])
            assert 10 <= length <= 20
            assert [int(p[col["session_position"]]) for p in plays] == list(range(1, length + 1))
            assert {p[col["session_length"]] for p in plays} == {str(length)}
            lengths[length] += 1
        for r in rows:
            s1, s2, s3, ns = (r[col[c]] == "true" for c in SKIP_OUTCOMES)
            assert (not s1 or s2) and (not s2 or s3) and not (ns and s3)
            all_false += not (s3 or ns)
            total += 1
    assert 0.35 < lengths[20] / sum(lengths.values()) < 0.65  # about half have 20 plays
    assert 0.003 < all_false / total < 0.06  # a few percent with all four flags false


def test_track_features_text_and_domains(sim: Path, logs: dict[str, bytes], mssd_dir: Path):
    header, rows = _rows(next(iter(_members(sim / "track_features.tar.gz").values())))
    _, real = _rows((mssd_dir / "tf_mini_subset_for_first11sessions.csv").read_bytes())
    col = {c: i for i, c in enumerate(header)}
    ints = {"release_year", "key", "time_signature"}
    floats = [c for c in TRACK_COLUMNS if c not in ints | {"track_id", "mode"}]
    for row in rows + real:  # the same text rules hold for the real excerpt
        assert re.fullmatch(rf"t_{UUID}", row[0])
        assert row[col["mode"]] in ("major", "minor")
        for c in ints:
            assert re.fullmatch(r"\d+", row[col[c]]), (c, row[col[c]])
        for c in floats:
            assert PY_FLOAT.match(row[col[c]]), (c, row[col[c]])
    assert len(rows) == 1500
    v = {
        c: np.array([float(r[col[c]]) for r in rows])
        for c in header
        if c not in ("track_id", "mode")
    }
    assert 150 < np.median(v["duration"]) < 300
    assert np.all((v["release_year"] >= 1950) & (v["release_year"] <= 2018))
    assert (
        np.mean(v["us_popularity_estimate"] >= 90) > 0.95
        and v["us_popularity_estimate"].max() <= 100
    )
    for c in ("acousticness", "danceability", "energy", "valence", "instrumentalness", "liveness"):
        assert v[c].min() >= 0 and v[c].max() <= 1, c
    assert v["loudness"].max() <= 0
    assert set(np.unique(v["key"])) <= set(range(12))
    assert set(np.unique(v["time_signature"])) <= set(range(6))
    assert np.mean(v["time_signature"] == 4) > 0.8
    assert 0.55 < np.mean([r[col["mode"]] == "major" for r in rows]) < 0.72
    assert 50 < np.median(v["tempo"]) < 200
    for i in range(8):
        assert np.abs(v[f"acoustic_vector_{i}"]).max() <= 1
    # every played track is in the features table
    ids = {r[0] for r in rows}
    played = {r[3] for data in logs.values() for r in _rows(data)[1]}
    assert played <= ids


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a", sessions=60, seed=11, tracks=200, days=2)
    b = simulate(tmp_path / "b", sessions=60, seed=11, tracks=200, days=2)
    c = simulate(tmp_path / "c", sessions=60, seed=12, tracks=200, days=2)
    for name in ("training_set.tar.gz", "track_features.tar.gz", "truth.json"):
        assert (a.out / name).read_bytes() == (b.out / name).read_bytes(), name
        assert (a.out / name).read_bytes() != (c.out / name).read_bytes(), name
    assert pq.read_table(a.truth_tracks).equals(pq.read_table(b.truth_tracks))


def test_truth_json_keys(sim: Path) -> None:
    truth = json.loads((sim / "truth.json").read_text())
    model = truth["skip_model"]
    assert list(model["weekday_effect"]) == list(WEEKDAYS)
    assert abs(sum(model["weekday_effect"].values())) < 1e-12
    hours = model["hour_effect"]
    assert list(hours) == [str(h) for h in range(24)]
    assert abs(sum(hours.values())) < 1e-9
    steps = np.abs(np.diff([*hours.values(), hours["0"]]))
    # smooth and cyclic: the step 23 -> 0 is no larger than the steps within the day
    assert steps.max() < 0.15 and steps[-1] <= steps[:-1].max()
    assert list(model["position_effect"]) == [str(p) for p in range(1, 21)]
    assert list(model["context_type_effect"]) == list(CONTEXT_TYPES)
    assert abs(sum(model["context_type_effect"].values())) < 1e-12
    for key in ("intercept", "premium_effect", "shuffle_effect"):
        assert isinstance(model[key], float)
    assert set(model["markov"]) >= {"prev_skip_2", "no_previous"}
    assert set(model["danceability"]) >= {"prev_x_current", "abs_change", "standardise_sd"}
    for smooth in model["smooth_effects"].values():
        assert len(smooth["grid"]) == len(smooth["effect"]) > 10
    assert model["track_effect"]["sd"] > 0
    dag = truth["track_feature_dag"]
    assert {e["type"] for e in dag["cpdag_edges"]} <= {"-->", "---"}
    assert len(dag["edges"]) >= 10 and len(dag["nodes"]) >= 10
    tracks = pq.read_table(sim / "truth_tracks.parquet")
    assert tracks.column_names == ["track_id", "intercept", "plays"]
    assert tracks.num_rows == truth["arguments"]["tracks"]
    assert sum(tracks["plays"].to_pylist()) == truth["empirical"]["plays"]


def test_cli_simulate_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["simulate", "--out", str(out), "--sessions", "30", "--tracks", "100"]) == 0
    assert "30 sessions" in capsys.readouterr().out
    assert (out / "truth.json").is_file()
    assert main(["simulate", "--out", str(out), "--start-date", "15/07/2018"]) == 2
    err = capsys.readouterr().err.strip()
    assert "YYYY-MM-DD" in err and "\n" not in err
    assert main(["simulate", "--out", str(out), "--sessions", "0"]) == 2
    (tmp_path / "file").write_text("x")
    assert main(["simulate", "--out", str(tmp_path / "file"), "--sessions", "5"]) == 2


def test_true_effects_are_validated() -> None:
    from skipmodel.simulate.mssd import TrueEffects

    with pytest.raises(ValueError, match="weekday must sum to zero"):
        TrueEffects(weekday=(0.1, 0, 0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="hour needs 24 values"):
        TrueEffects(hour=(0.0,) * 23)
    with pytest.raises(ValueError, match="track_sd"):
        TrueEffects(track_sd=-1.0)
