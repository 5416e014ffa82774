"""The challenge's whole path: simulate a test set, ingest it apart, fit, write the submission,
score it against the truth — through the CLI, as a participant would."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from skipmodel.cli import main
from skipmodel.load.challenge import load_challenge
from skipmodel.report.submission import read_submission, read_truth, score_submission
from skipmodel.simulate.mssd import simulate


@pytest.fixture(scope="module")
def challenge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("challenge")
    sim = simulate(root / "sim", sessions=400, seed=11, tracks=300, days=2, challenge_fraction=0.25)
    assert sim.test_set is not None and sim.challenge_truth is not None
    store = root / "store"
    paths = [sim.training_set, sim.track_features, sim.test_set]
    assert main(["ingest", *map(str, paths), "--store", str(store), "--buckets", "4"]) == 0
    run = root / "run"
    fit = ["fit", "--store", str(store), "--model", "markov", "--out", str(run)]
    assert main([*fit, "--method", "laplace", "--draws", "100"]) == 0
    return store, run, sim.challenge_truth


def test_ingest_counts_the_challenge_files_apart(
    challenge: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _, truth_file = challenge
    assert (
        main(["ingest", str(store.parent / "sim" / "test_set.tar.gz"), "--store", str(store)]) == 0
    )
    out = capsys.readouterr().out
    assert "challenge prehistory:" in out and "challenge input:" in out
    assert "challenge sessions: 100 to predict; 0 without prehistory, 0 without input" in out


def test_a_submission_follows_log_input_order_and_scores_against_the_truth(
    challenge: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, run, truth_file = challenge
    out = tmp_path / "submission.txt"
    assert main(["predict", str(run), "--challenge", str(store), "--out", str(out)]) == 0
    lines = read_submission(out)
    truth = read_truth(truth_file)
    order = list(pd.unique(truth["session_id"]))  # the truth lists sessions in log_input order
    assert len(lines) == len(order) == 100
    lengths = truth.groupby("session_id", sort=False).size()
    assert [len(line) for line in lines] == [lengths[s] for s in order]
    scores = tmp_path / "scores.json"
    argv = ["evaluate", str(out), "--truth", str(truth_file), "--json", str(scores)]
    assert main(argv) == 0
    got = json.loads(scores.read_text())
    assert "mean average accuracy" in capsys.readouterr().out
    # the model beats the challenge's simple baselines on the same sessions
    plays = load_challenge(store).plays
    last = plays[~plays["is_input"]].groupby("session_id")["skip_2"].last()
    repeat = [str(int(last[s])) * lengths[s] for s in order]
    ones = ["1" * lengths[s] for s in order]
    for baseline in (repeat, ones):
        scored = score_submission(baseline, truth)
        assert got["mean_average_accuracy"] > scored.mean_average_accuracy
    assert got["first_prediction_accuracy"] > 0.55


def test_challenge_and_store_are_one_or_the_other(
    challenge: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, run, _ = challenge
    out = str(tmp_path / "s.txt")
    both = ["predict", str(run), "--store", str(store), "--challenge", str(store), "--out", out]
    assert main(both) == 2
    assert main(["predict", str(run), "--challenge", str(store), "--out", out, "--sequential"]) == 2
    err = capsys.readouterr().err
    assert "give --store DIR (plays) or --challenge STORE" in err and "drop --sequential" in err
    empty = tmp_path / "empty"
    assert main(["predict", str(run), "--challenge", str(empty), "--out", out]) == 2
