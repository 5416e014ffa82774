"""Simulator structures (issue 21): each preset's data have the property it advertises, and the
default structure is the simulator as it was."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.simulate.mssd import SimulationResult, simulate
from skipmodel.simulate.sessions import TrueEffects, plan_sessions
from skipmodel.simulate.structure import (
    MIXTURE_COMPONENTS,
    STRUCTURES,
    Structure,
    get_structure,
    length_shares,
    track_intercepts,
)

ARGS: dict[str, Any] = {
    "sessions": 1_500,
    "seed": 4,
    "tracks": 2_000,
    "days": 2,
    "files_per_day": 2,
}


def _sim(tmp_path_factory: pytest.TempPathFactory, name: str) -> SimulationResult:
    return simulate(tmp_path_factory.mktemp(name), structure=name, **ARGS)


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimulationResult]:
    return {name: _sim(tmp_path_factory, name) for name in STRUCTURES}


def _plays(result: SimulationResult) -> dict[str, np.ndarray]:
    """session_id, session_position, session_length and skip_2 of every training play."""
    columns = ("session_id", "session_position", "session_length", "skip_2")
    parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    with tarfile.open(result.training_set) as tar:
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                table = pacsv.read_csv(io.BytesIO(data.read()))
                for c in columns:
                    parts[c].append(table.column(c).to_numpy(zero_copy_only=False))
    return {c: np.concatenate(v) for c, v in parts.items()}


def _after_skip_contrast(result: SimulationResult) -> float:
    """P(skip_2 | previous play skipped) - P(skip_2 | previous not skipped)."""
    p = _plays(result)
    order = np.lexsort((p["session_position"], p["session_id"]))
    sid, pos, skip = p["session_id"][order], p["session_position"][order], p["skip_2"][order]
    later = pos[1:] > 1
    assert (sid[1:][later] == sid[:-1][later]).all()
    prev, now = skip[:-1][later], skip[1:][later]
    return float(now[prev].mean() - now[~prev].mean())


def _truth(result: SimulationResult) -> dict:
    return json.loads(result.truth.read_text())


def _tracks(result: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(result.truth_tracks)
    return table.column("intercept").to_numpy(), table.column("plays").to_numpy()


def _kurtosis(x: np.ndarray) -> float:
    z = (x - x.mean()) / x.std()
    return float((z**4).mean())


def _skewness(x: np.ndarray) -> float:
    z = (x - x.mean()) / x.std()
    return float((z**3).mean())


def test_default_structure_is_the_simulator_as_it_was(tmp_path: Path) -> None:
    small = {**ARGS, "sessions": 100, "tracks": 300}
    given = simulate(tmp_path / "given", structure="default", **small)
    omitted = simulate(tmp_path / "omitted", **small)
    for name in ("training_set.tar.gz", "track_features.tar.gz", "truth_tracks.parquet"):
        assert (given.out / name).read_bytes() == (omitted.out / name).read_bytes(), name
    truth = json.loads(omitted.truth.read_text())
    assert truth["arguments"]["structure"] == "default"
    assert truth["skip_model"]["structure"]["track_distribution"] == "normal"
    assert truth["skip_model"]["track_effect"]["distribution"] == "normal(0, sd) per track"


@pytest.mark.parametrize("name", ["student_t", "mixture", "normal"])
def test_track_intercepts_have_the_asked_sd(name: str) -> None:
    x = track_intercepts(np.random.default_rng(0), 400_000, 0.5, Structure(track_distribution=name))
    assert x.std() == pytest.approx(0.5, rel=0.03)
    assert abs(x.mean()) < 0.01


def test_student_t_intercepts_are_heavy_tailed_and_the_mixture_is_skewed() -> None:
    rng = np.random.default_rng(1)
    t = track_intercepts(rng, 200_000, 0.5, Structure(track_distribution="student_t"))
    normal = track_intercepts(rng, 200_000, 0.5, Structure())
    mix = track_intercepts(rng, 200_000, 0.5, Structure(track_distribution="mixture"))
    assert _kurtosis(normal) == pytest.approx(3.0, abs=0.1)
    assert _kurtosis(t) > 6  # infinite in theory for 3 df
    assert abs(_skewness(normal)) < 0.05
    assert _skewness(mix) > 0.5
    # the often-skipped cluster: a fifth of the tracks around +1.6 sd
    share, high = MIXTURE_COMPONENTS[1]
    assert np.mean(mix > 0.5 * 0.8) == pytest.approx(share, abs=0.03)
    assert np.median(mix[mix > 0.5 * 0.8]) == pytest.approx(0.5 * high, abs=0.1)


def test_heavy_structure_data(sims: dict[str, SimulationResult]) -> None:
    heavy, default = sims["heavy"], sims["default"]
    intercept, plays = _tracks(heavy)
    _, default_plays = _tracks(default)
    assert _kurtosis(intercept) > 6
    # plays per track: a heavier head and more unplayed tracks than the default power law

    def top_share(p: np.ndarray) -> float:
        return float(np.sort(p)[::-1][: len(p) // 100].sum() / p.sum())

    assert top_share(plays) > top_share(default_plays) + 0.05
    assert np.mean(plays == 0) > 3 * np.mean(default_plays == 0)
    # uniform session lengths: about 1/11 of sessions at 20 (the MSSD mix has about 0.53)
    p = _plays(heavy)
    first = p["session_position"] == 1
    assert np.mean(p["session_length"][first] == 20) == pytest.approx(1 / 11, abs=0.03)
    truth = _truth(heavy)
    assert truth["arguments"]["structure"] == "heavy"
    assert truth["skip_model"]["markov"]["prev_skip_2"] == 1.6
    assert "Student-t" in truth["skip_model"]["track_effect"]["distribution"]


def test_mixture_structure_data(sims: dict[str, SimulationResult]) -> None:
    mixture = sims["mixture"]
    intercept, _ = _tracks(mixture)
    assert _skewness(intercept) > 0.4
    truth = _truth(mixture)
    # a step in duration: the true effect takes three values on the grid (short, middle, long)
    effect = np.round(truth["skip_model"]["smooth_effects"]["duration"]["effect"], 9)
    values = np.unique(effect)
    assert len(values) == 3
    assert values.max() - values.min() == pytest.approx(0.7, abs=1e-6)
    # short sessions: shares fall by 0.7 per play, so the mean length is about 12
    p = _plays(mixture)
    first = p["session_position"] == 1
    assert p["session_length"][first].mean() == pytest.approx(12.1, abs=0.3)
    assert truth["skip_model"]["structure"]["length_mix"] == "short"
    assert truth["skip_model"]["markov"]["prev_skip_2"] == 2.5


def test_strong_structure_has_a_stronger_previous_skip_effect(
    sims: dict[str, SimulationResult],
) -> None:
    strong, default = _after_skip_contrast(sims["strong"]), _after_skip_contrast(sims["default"])
    assert strong > default + 0.1
    truth = _truth(sims["strong"])["skip_model"]
    assert truth["markov"]["prev_skip_2"] == 2.0
    assert truth["danceability"]["abs_change"] == 0.8
    assert truth["structure"]["effects"]["markov_prev_skip_2"] == 2.0


def test_structure_effects_replace_those_given() -> None:
    strong = STRUCTURES["strong"].apply(TrueEffects(markov_prev_skip_2=0.0, premium=0.1))
    assert strong.markov_prev_skip_2 == 2.0
    assert strong.premium == 0.1


@pytest.mark.parametrize("mix", ["mssd", "uniform", "short"])
def test_length_mix_draws_its_shares(mix: str) -> None:
    plan = plan_sessions(
        np.random.default_rng(0), 40_000, first_day=0, days=1, files_per_day=1, length_mix=mix
    )
    shares = length_shares(mix)
    for n, share in shares.items():
        assert np.mean(plan.length == n) == pytest.approx(share, abs=0.01)


def test_unknown_structure_is_refused() -> None:
    with pytest.raises(SkipmodelError, match="not a structure; use one of default, strong"):
        get_structure("heavvy")
    with pytest.raises(ValueError, match="length_mix"):
        Structure(length_mix="long")


def test_cli_structure_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skipmodel.cli import main

    out = tmp_path / "sim"
    args = ["simulate", "--out", str(out), "--sessions", "60", "--tracks", "300", "--days", "1"]
    assert main([*args, "--structure", "mixture"]) == 0
    assert "structure mixture" in capsys.readouterr().out
    truth = json.loads((out / "truth.json").read_text())
    assert truth["arguments"]["structure"] == "mixture"
    assert truth["skip_model"]["structure"]["duration_form"] == "step"
    with pytest.raises(SystemExit) as exc:
        main([*args, "--structure", "wild"])
    assert exc.value.code == 2
