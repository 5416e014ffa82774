"""skipmodel simulate --session-sd: a per-session propensity (the listener's mood) on the logit."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from skipmodel.cli import main
from skipmodel.simulate.mssd import SimulationResult, TrueEffects, simulate
from skipmodel.simulate.plays import toy_plays
from skipmodel.simulate.sessions import (
    draw_propensity,
    make_catalogue,
    plan_sessions,
    simulate_plays,
)
from skipmodel.simulate.tracks import simulate_track_features

ARGS = {"sessions": 2000, "seed": 4, "tracks": 2000, "days": 2, "files_per_day": 3}
SESSION_COLUMNS = ["session_id", "propensity", "challenge", "plays", "skip_2"]

# Content hashes of the files the simulator wrote for these calls before sessions had
# propensities (recorded with the code of commit 2d856a4). Archives are hashed decompressed and
# parquet files by their values, so a zlib or pyarrow upgrade alone does not break the check;
# truth.json is hashed with the keys the session propensity added taken out again.
BEFORE_PROPENSITY = {
    "a": (
        {"sessions": 300, "seed": 3, "days": 2, "files_per_day": 3},
        {
            "track_features.tar.gz": "4f5b9527d6e9f81c",
            "training_set.tar.gz": "105d24465f6a58bf",
            "truth.json": "24514b55ad5778ee",
            "truth_tracks.parquet": "af33d5df24f44509",
        },
    ),
    "b": (
        {"sessions": 300, "seed": 5, "days": 3, "files_per_day": 2, "challenge_fraction": 0.2},
        {
            "challenge_truth.csv": "2843e34da6239e25",
            "test_set.tar.gz": "126b6f8520fe4fd1",
            "track_features.tar.gz": "6ee136ca6e53a539",
            "training_set.tar.gz": "77f10774228d22b4",
            "truth.json": "f7ea5e7f281679ae",
            "truth_tracks.parquet": "c652b20c0632ee40",
        },
    ),
}
TOY_BEFORE_PROPENSITY = "9f7ae45c8bffb6f1"  # sha256 of toy_plays(30, seed=2).to_csv()
NEW_TRUTH_KEYS = {
    "arguments": ("session_sd", "structure"),
    "skip_model": ("session_effect", "structure"),
    "empirical": ("session_propensity_sd", "session_skip_2_rate_sd"),
}


def _content_hash(path: Path) -> str:
    if path.name.endswith(".tar.gz"):
        data = gzip.decompress(path.read_bytes())
    elif path.suffix == ".parquet":
        table = pq.read_table(path)
        parts = [",".join(table.column_names).encode()]
        for column in table.columns:
            values = column.to_numpy()
            text = values.dtype == object
            parts.append("\n".join(map(str, values)).encode() if text else values.tobytes())
        data = b"\0".join(parts)
    elif path.name == "truth.json":
        truth = json.loads(path.read_text())
        for section, keys in NEW_TRUTH_KEYS.items():
            for key in keys:
                truth[section].pop(key)
        data = (json.dumps(truth, indent=1, allow_nan=False) + "\n").encode()
    else:
        data = path.read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _skips_per_session(archive: Path, kind: str = "log_") -> tuple[Counter[str], Counter[str]]:
    """(plays, skip_2 plays) per session id over the CSV members whose name has ``kind``."""
    plays: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    for name, data in _members(archive).items():
        if kind not in name:
            continue
        for row in csv.DictReader(io.StringIO(data.decode())):
            plays[row["session_id"]] += 1
            skips[row["session_id"]] += row["skip_2"] == "true"
    return plays, skips


def _session_rates(result: SimulationResult) -> np.ndarray:
    plays, skips = _skips_per_session(result.training_set)
    return np.array([skips[s] / plays[s] for s in plays])


@pytest.fixture(scope="module")
def calm(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(tmp_path_factory.mktemp("calm"), **ARGS)


@pytest.fixture(scope="module")
def moody(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(tmp_path_factory.mktemp("moody"), session_sd=0.8, **ARGS)


@pytest.mark.parametrize("case", sorted(BEFORE_PROPENSITY))
def test_zero_sd_writes_the_files_of_before(case: str, tmp_path: Path) -> None:
    kwargs, expected = BEFORE_PROPENSITY[case]
    result = simulate(tmp_path, session_sd=0.0, **kwargs)
    assert result.truth_sessions is None
    assert {p.name: _content_hash(p) for p in sorted(tmp_path.iterdir())} == expected
    truth = json.loads(result.truth.read_text())
    assert truth["skip_model"]["session_effect"]["sd"] == 0.0
    assert truth["empirical"]["session_propensity_sd"] == 0.0
    assert "session_propensity" not in truth["skip_model"]["formula"]


def test_toy_plays_default_is_unchanged() -> None:
    digest = hashlib.sha256(toy_plays(30, seed=2).to_csv().encode()).hexdigest()
    assert digest[:16] == TOY_BEFORE_PROPENSITY
    assert toy_plays(30, seed=2, session_sd=0.0).equals(toy_plays(30, seed=2))


def test_same_seed_same_bytes_and_only_the_outcomes_move(
    moody: SimulationResult, calm: SimulationResult, tmp_path: Path
) -> None:
    again = simulate(tmp_path, session_sd=0.8, **ARGS)
    for name in ("training_set.tar.gz", "track_features.tar.gz", "truth.json"):
        assert (again.out / name).read_bytes() == (moody.out / name).read_bytes(), name
    assert pq.read_table(again.truth_sessions).equals(pq.read_table(moody.truth_sessions))
    # Tracks and the session plan come from other streams than the propensity.
    assert (calm.track_features.read_bytes()) == moody.track_features.read_bytes()
    moody_plays, _ = _skips_per_session(moody.training_set)
    calm_plays, _ = _skips_per_session(calm.training_set)
    assert moody_plays == calm_plays
    assert calm.training_set.read_bytes() != moody.training_set.read_bytes()


def test_truth_records_the_sd_and_every_session(moody: SimulationResult) -> None:
    truth = json.loads(moody.truth.read_text())
    assert truth["arguments"]["session_sd"] == 0.8
    effect = truth["skip_model"]["session_effect"]
    assert effect["sd"] == 0.8 and "truth_sessions.parquet" in effect["values"]
    assert "session_propensity[session_id]" in truth["skip_model"]["formula"]
    sessions = pq.read_table(moody.truth_sessions)
    assert sessions.column_names == SESSION_COLUMNS
    assert sessions.num_rows == ARGS["sessions"]
    propensity = sessions["propensity"].to_numpy()
    empirical_sd = truth["empirical"]["session_propensity_sd"]
    assert empirical_sd == pytest.approx(propensity.std(), rel=1e-12)
    # the sd of a normal sample's sd is about sd / sqrt(2 n)
    assert abs(empirical_sd - 0.8) < 4 * 0.8 / np.sqrt(2 * ARGS["sessions"])
    assert abs(propensity.mean()) < 4 * 0.8 / np.sqrt(ARGS["sessions"])
    # plays and skips per session are those of the logs
    plays, skips = _skips_per_session(moody.training_set)
    ids = sessions["session_id"].to_pylist()
    assert set(ids) == set(plays) and len(set(ids)) == len(ids)
    assert sessions["plays"].to_pylist() == [plays[s] for s in ids]
    assert sessions["skip_2"].to_pylist() == [skips[s] for s in ids]
    assert sum(sessions["skip_2"].to_pylist()) == round(moody.skip_2_rate * moody.n_plays)
    assert not any(sessions["challenge"].to_pylist())


def test_truth_plays_hold_every_plays_true_logit(moody: SimulationResult) -> None:
    plays = pq.read_table(moody.truth.parent / "truth_plays.parquet").to_pandas()
    assert len(plays) == moody.n_plays
    assert not plays.duplicated(["session_id", "session_position"]).any()
    truth = json.loads(moody.truth.read_text())
    assert plays["logit"].mean() == pytest.approx(truth["empirical"]["mean_true_logit"])
    # the skip rate is the mean true probability, to binomial noise
    p = 1 / (1 + np.exp(-plays["logit"].to_numpy()))
    assert abs(p.mean() - moody.skip_2_rate) < 4 * np.sqrt(0.25 / len(p))
    # per session, the plays' logits move with the session's propensity
    sessions = pq.read_table(moody.truth_sessions).to_pandas().set_index("session_id")
    mean_logit = plays.groupby("session_id")["logit"].mean()
    propensity = sessions.loc[mean_logit.index, "propensity"]
    assert np.corrcoef(mean_logit, propensity)[0, 1] > 0.7


def test_sessions_with_a_higher_propensity_skip_more(
    moody: SimulationResult, calm: SimulationResult
) -> None:
    calm_rates, moody_rates = _session_rates(calm), _session_rates(moody)
    # over-dispersed across sessions: measured about 0.17 without and 0.24 with sd 0.8
    assert moody_rates.std() > 1.2 * calm_rates.std()
    calm_sd = json.loads(calm.truth.read_text())["empirical"]["session_skip_2_rate_sd"]
    moody_sd = json.loads(moody.truth.read_text())["empirical"]["session_skip_2_rate_sd"]
    assert calm_sd == pytest.approx(calm_rates.std()) and moody_sd > 1.2 * calm_sd
    sessions = pq.read_table(moody.truth_sessions).to_pandas()
    rate = sessions["skip_2"] / sessions["plays"]
    assert np.corrcoef(sessions["propensity"], rate)[0, 1] > 0.5
    # a simple logistic check across propensity quartiles: the pooled log-odds of a skip rise
    # with the propensity, about one unit per unit (measured 0.96: the mix of the other effects
    # flattens it, the Markov term steepens it)
    quartile = np.digitize(
        sessions["propensity"], np.quantile(sessions["propensity"], [0.25, 0.5, 0.75])
    )
    pooled = sessions.groupby(quartile)[["skip_2", "plays"]].sum()
    p = pooled["skip_2"] / pooled["plays"]
    log_odds = np.log(p / (1 - p)).to_numpy()
    mean_propensity = sessions.groupby(quartile)["propensity"].mean().to_numpy()
    assert np.all(np.diff(log_odds) > 0)
    slope = np.polyfit(mean_propensity, log_odds, 1)[0]
    assert 0.7 < slope < 2.0


def test_the_propensity_enters_the_logit_of_every_play() -> None:
    rng = np.random.default_rng(0)
    features, _ = simulate_track_features(rng, 300)
    catalogue = make_catalogue(
        rng,
        danceability=features["danceability"],
        duration=features["duration"],
        popularity=features["us_popularity_estimate"],
        track_sd=0.5,
    )
    plan = plan_sessions(rng, 50, first_day=17_727, days=1, files_per_day=1)
    propensity = draw_propensity(np.random.default_rng(1), 50, 0.8)
    effects = TrueEffects(session_sd=0.8)
    # Same stream: the first plays see the same draws up to their skip, so their logits differ
    # by exactly the session's propensity (later plays follow different outcomes).
    plain = simulate_plays(np.random.default_rng(2), plan, catalogue, effects)
    moody = simulate_plays(
        np.random.default_rng(2), plan, catalogue, effects, propensity=propensity
    )
    first = plain.position == 1
    assert np.allclose(moody.logit[first] - plain.logit[first], propensity, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="one value per session"):
        simulate_plays(rng, plan, catalogue, effects, propensity=propensity[:-1])


def test_challenge_halves_share_their_session(moody: SimulationResult, tmp_path: Path) -> None:
    held = simulate(tmp_path, session_sd=0.8, challenge_fraction=0.2, **ARGS)
    sessions = pq.read_table(held.truth_sessions).to_pandas()
    alone = pq.read_table(moody.truth_sessions).to_pandas()
    # the same sessions, propensities and outcomes as without a challenge set; ids differ only
    # in the k of training files that lost sessions, so compare the uuids
    assert (
        sessions["session_id"].str.split("_").str[1] == alone["session_id"].str.split("_").str[1]
    ).all()
    for column in ("propensity", "plays", "skip_2"):
        assert sessions[column].equals(alone[column]), column
    assert sessions["challenge"].sum() == held.n_challenge_sessions == 400
    # and each challenge session's skips are its prehistory's plus its second half's
    _, before = _skips_per_session(held.test_set, "log_prehistory_")
    after: Counter[str] = Counter()
    with held.challenge_truth.open() as f:
        for row in csv.DictReader(f):
            after[row["session_id"]] += int(row["skip_2"] in ("1", "true"))
    challenge = sessions[sessions["challenge"]]
    assert set(challenge["session_id"]) == set(after)
    for sid, skips in zip(challenge["session_id"], challenge["skip_2"], strict=True):
        assert before[sid] + after[sid] == skips


def test_effects_carry_the_sd_and_zero_removes_a_stale_table(tmp_path: Path) -> None:
    small = {"sessions": 40, "seed": 1, "tracks": 100, "days": 1}
    result = simulate(tmp_path, effects=TrueEffects(session_sd=0.5), **small)
    assert result.session_sd == 0.5 and result.truth_sessions is not None
    assert result.truth_sessions.is_file()
    assert (tmp_path / "truth_plays.parquet").is_file()
    simulate(tmp_path, **small)  # default effects: sd 0
    assert not (tmp_path / "truth_sessions.parquet").exists()
    assert not (tmp_path / "truth_plays.parquet").exists()
    with pytest.raises(ValueError, match="session_sd"):
        TrueEffects(session_sd=-0.1)
    with pytest.raises(ValueError, match="session_sd"):
        TrueEffects(session_sd=float("nan"))


def test_toy_plays_session_sd() -> None:
    calm, moody = toy_plays(400, seed=1), toy_plays(400, seed=1, session_sd=0.8)
    assert moody.equals(toy_plays(400, seed=1, session_sd=0.8))
    assert calm["session_id"].equals(moody["session_id"])
    assert calm["track_id_clean"].equals(moody["track_id_clean"])
    calm_sd = calm.groupby("session_id")["skip_2"].mean().std()
    moody_sd = moody.groupby("session_id")["skip_2"].mean().std()
    assert moody_sd > 1.2 * calm_sd
    with pytest.raises(ValueError, match="session_sd"):
        toy_plays(5, session_sd=-1.0)


@pytest.mark.parametrize("value", ["-0.5", "nan", "inf", "-inf"])
def test_cli_rejects_a_bad_sd_in_one_line(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    argv = ["simulate", "--out", str(out), "--sessions", "20", "--tracks", "60"]
    assert main([*argv, f"--session-sd={value}"]) == 2  # "=": argparse takes -inf for an option
    err = capsys.readouterr().err.strip()
    assert "--session-sd must be finite and >= 0" in err and "\n" not in err
    assert not out.exists()


def test_cli_session_sd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--out", str(tmp_path), "--sessions", "30", "--tracks", "100"]
    assert main([*argv, "--session-sd", "0.8", "--challenge-fraction", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "session propensity sd 0.8" in printed and "truth_sessions.parquet" in printed
    assert pq.read_table(tmp_path / "truth_sessions.parquet").num_rows == 30
    assert json.loads((tmp_path / "truth.json").read_text())["arguments"]["session_sd"] == 0.8
