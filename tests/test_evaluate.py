"""WSDM Cup 2019 submissions: writing, reading, scoring, and ``skipmodel evaluate``.

The scores are checked against hand computations. AA of one session with T predictions is
``(1/T) * sum_i A(i) * L(i)``: L(i) is 1 when prediction i is right, A(i) the accuracy of the
first i predictions.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.report.metrics import second_half_mask
from skipmodel.report.submission import (
    read_session_order,
    read_submission,
    read_truth,
    score_submission,
    write_submission,
)

# Three sessions' second halves, as a 3-column truth (no session_length: every row is scored).
#   a: truth 1 1 0 1, predicted 1 0 0 1 -> L = 1 0 1 1, A = 1, 1/2, 2/3, 3/4
#      AA = (1 + 0 + 2/3 + 3/4) / 4 = 29/48; first prediction right
#   b: truth 0 0 1,   predicted 1 1 0   -> all wrong: AA = 0; first wrong
#   c: truth 1,       predicted 1       -> one play, right: AA = 1; first right
# mean AA = (29/48 + 0 + 1) / 3 = 77/144; first-prediction accuracy = 2/3
TRUTH_ROWS = [
    ("a", 7, "true"),
    ("a", 8, "true"),
    ("a", 9, "false"),
    ("a", 10, "true"),
    ("b", 5, "false"),
    ("b", 6, "false"),
    ("b", 7, "true"),
    ("c", 10, "true"),
]
LINES = ["1001", "110", "1"]
MEAN_AA = 77 / 144
FIRST = 2 / 3


def write_csv(path: Path, header: str, rows: list[tuple[object, ...]]) -> Path:
    text = header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)
    path.write_text(text)
    return path


@pytest.fixture
def truth_csv(tmp_path: Path) -> Path:
    # rows of a session out of position order on purpose: the reader sorts them
    rows = [TRUTH_ROWS[1], TRUTH_ROWS[0], *TRUTH_ROWS[2:]]
    return write_csv(tmp_path / "truth.csv", "session_id,session_position,skip_2", rows)


def log_rows() -> list[tuple[object, ...]]:
    """A session log: s1 has 5 plays (second half 3, 4, 5), s2 has 2 (second half: play 2).

    The first halves' outcomes are the opposite of what the predictions below say, so scoring
    them by mistake would change the result.
    """
    return [
        ("s1", 1, 5, "t_x", "True", 0),
        ("s1", 2, 5, "t_y", "True", 0),
        ("s1", 3, 5, "t_z", "False", 0),
        ("s1", 4, 5, "t_x", "True", 1),
        ("s1", 5, 5, "t_y", "False", 0),
        ("s2", 1, 2, "t_z", "false", 0),
        ("s2", 2, 2, "t_x", "1", 0),
    ]


LOG_HEADER = "session_id,session_position,session_length,track_id_clean,skip_2,context_switch"
# s1: truth 0 1 0, predicted 0 0 0 -> L = 1 0 1, A = 1, 1/2, 2/3: AA = (1 + 0 + 2/3) / 3 = 5/9
# s2: truth 1, predicted 1 -> AA = 1. Mean AA = (5/9 + 1) / 2 = 7/9; first predictions both right.
LOG_LINES = ["000", "1"]


# --- scoring, by hand ----------------------------------------------------------------------


def test_hand_computed_scores(truth_csv: Path) -> None:
    scores = score_submission(LINES, read_truth(truth_csv))
    assert scores.n_sessions == 3
    assert scores.n_plays == 8
    assert scores.mean_average_accuracy == pytest.approx(MEAN_AA)
    assert scores.first_prediction_accuracy == pytest.approx(FIRST)


def test_truth_frame_in_session_then_position_order(truth_csv: Path) -> None:
    truth = read_truth(truth_csv)
    assert list(truth.columns) == ["session_id", "session_position", "skip_2"]
    assert list(pd.unique(truth["session_id"])) == ["a", "b", "c"]
    assert truth["session_position"].tolist()[:4] == [7, 8, 9, 10]
    assert truth["skip_2"].dtype == bool
    assert truth["skip_2"].tolist() == [r[2] == "true" for r in TRUTH_ROWS]


def test_truth_from_session_log_keeps_second_half(tmp_path: Path) -> None:
    log = write_csv(tmp_path / "log.csv", LOG_HEADER, log_rows())
    truth = read_truth(log)
    assert list(zip(truth["session_id"], truth["session_position"], strict=True)) == [
        ("s1", 3),
        ("s1", 4),
        ("s1", 5),
        ("s2", 2),
    ]
    scores = score_submission(LOG_LINES, truth)
    assert scores.mean_average_accuracy == pytest.approx(7 / 9)
    assert scores.first_prediction_accuracy == 1.0


def test_truth_from_gzipped_log_in_two_files(tmp_path: Path) -> None:
    rows = log_rows()
    text = LOG_HEADER + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows[:5])
    first = tmp_path / "log_a.csv.gz"
    first.write_bytes(gzip.compress(text.encode()))
    second = write_csv(tmp_path / "log_b.csv", LOG_HEADER, rows[5:])
    truth = read_truth([first, second])
    assert list(pd.unique(truth["session_id"])) == ["s1", "s2"]
    assert score_submission(LOG_LINES, truth).mean_average_accuracy == pytest.approx(7 / 9)


def test_order_reorders_the_lines(tmp_path: Path, truth_csv: Path) -> None:
    # log_input files list the sessions as c, a, b (each play a row; first appearance counts)
    order_file = write_csv(
        tmp_path / "log_input_20180918_000000000000.csv",
        "session_id,track_id_clean,session_position,session_length",
        [("c", "t_1", 10, 10), ("a", "t_2", 7, 10), ("a", "t_3", 8, 10), ("b", "t_4", 5, 7)],
    )
    order = read_session_order(order_file)
    assert order == ["c", "a", "b"]
    truth = read_truth(truth_csv)
    reordered = [LINES[2], LINES[0], LINES[1]]
    scores = score_submission(reordered, truth, order=order)
    assert scores.mean_average_accuracy == pytest.approx(MEAN_AA)
    assert scores.first_prediction_accuracy == pytest.approx(FIRST)
    with pytest.raises(SkipmodelError, match="line 1 .session 'c'. has 4 predictions"):
        score_submission(LINES, truth, order=order)


# --- errors --------------------------------------------------------------------------------


def test_wrong_line_count(truth_csv: Path) -> None:
    with pytest.raises(SkipmodelError, match="2 lines but there are 3 sessions"):
        score_submission(LINES[:2], read_truth(truth_csv))


def test_wrong_line_length_names_line_session_and_lengths(truth_csv: Path) -> None:
    with pytest.raises(SkipmodelError) as exc:
        score_submission(["1001", "11", "1"], read_truth(truth_csv))
    message = str(exc.value)
    assert "line 2" in message and "'b'" in message
    assert "has 2 predictions" in message and "has 3 second-half plays" in message
    assert "\n" not in message


def test_bad_characters_in_lines_passed_directly(truth_csv: Path) -> None:
    with pytest.raises(SkipmodelError, match="line 2 holds characters other than 0 and 1"):
        score_submission(["1001", "1x0", "1"], read_truth(truth_csv))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"1001\n1x0\n1\n", "line 2 holds 'x'"),
        (b"1001\n110\n1 \n", "line 3 holds ' '"),
        (b"1001\n\n1\n", "line 2 is empty"),
        (b"1001\n110\n1\n\n", "line 4 is empty"),
        (b"", "the submission is empty"),
        (b"\n", "the submission is empty"),
        (b"10\xff1\n", "line 1 holds"),
    ],
)
def test_read_submission_rejects(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "submission.txt"
    path.write_bytes(content)
    with pytest.raises(SkipmodelError, match=needle):
        read_submission(path)


def test_read_submission_accepts_crlf_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "submission.txt"
    path.write_bytes(b"1001\r\n110\r\n1")
    assert read_submission(path) == LINES


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SkipmodelError, match="no such submission file"):
        read_submission(tmp_path / "nope.txt")
    with pytest.raises(SkipmodelError, match="no such file"):
        read_truth(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("header", "rows", "needle"),
    [
        ("session_id,skip_2", [("a", "true")], "no column 'session_position'"),
        ("session_id,session_position,skip_2", [("a", 1, "maybe")], "skip_2 is 'maybe'"),
        ("session_id,session_position,skip_2", [("a", 1, "")], "skip_2 is None"),
        ("session_id,session_position,skip_2", [("a", "x", "true")], "cannot be read as CSV"),
        ("session_id,session_position,skip_2", [("a", 1, "1"), ("a", 1, "0")], "position 1 twice"),
        ("session_id,session_position,session_length,skip_2", [("a", 1, 4, "1")], "no second-half"),
        ("session_id,session_position,skip_2", [], "no second-half plays"),
    ],
)
def test_read_truth_rejects(
    tmp_path: Path, header: str, rows: list[tuple[object, ...]], needle: str
) -> None:
    with pytest.raises(SkipmodelError, match=needle):
        read_truth(write_csv(tmp_path / "truth.csv", header, rows))


def test_empty_truth_file(tmp_path: Path) -> None:
    (tmp_path / "truth.csv").write_text("")
    with pytest.raises(SkipmodelError, match="empty file"):
        read_truth(tmp_path / "truth.csv")


def test_order_and_truth_must_hold_the_same_sessions(truth_csv: Path) -> None:
    truth = read_truth(truth_csv)
    with pytest.raises(SkipmodelError, match="truth session 'c' is not in the session order"):
        score_submission(LINES[:2], truth, order=["a", "b"])
    with pytest.raises(SkipmodelError, match="session 'd' of the order has no outcomes"):
        score_submission([*LINES, "1"], truth, order=["a", "b", "c", "d"])
    with pytest.raises(SkipmodelError, match="lists session 'a' twice"):
        score_submission(LINES, truth, order=["a", "b", "a"])


# --- writing -------------------------------------------------------------------------------


def perfect_predictions() -> pd.DataFrame:
    frame = pd.DataFrame(TRUTH_ROWS, columns=["session_id", "session_position", "skip_2"])
    # shuffled rows and probabilities rather than labels: the writer sorts and thresholds
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return frame.assign(p_skip=frame["skip_2"].map({"true": 0.9, "false": 0.2}))


def test_round_trip_perfect_predictions(tmp_path: Path, truth_csv: Path) -> None:
    path = tmp_path / "out" / "submission.txt"
    assert write_submission(path, perfect_predictions(), ["a", "b", "c"]) == 3
    assert path.read_text() == "1101\n001\n1\n"
    assert [p.name for p in path.parent.iterdir()] == ["submission.txt"]  # no temporary left
    scores = score_submission(read_submission(path), read_truth(truth_csv))
    assert (scores.mean_average_accuracy, scores.first_prediction_accuracy) == (1.0, 1.0)


def test_write_submission_thresholds_at_one_half_and_takes_labels(tmp_path: Path) -> None:
    ids = {"session_id": ["x", "x", "y"], "session_position": [2, 1, 1]}
    probabilities = pd.DataFrame({**ids, "p_skip": [0.5, 0.49999, 1.0]})
    write_submission(tmp_path / "p.txt", probabilities, ["y", "x"])
    assert (tmp_path / "p.txt").read_text() == "1\n01\n"
    labels = pd.DataFrame({**ids, "p_skip": [True, False, True]})
    write_submission(tmp_path / "b.txt", labels, ["y", "x"])
    assert (tmp_path / "b.txt").read_text() == "1\n01\n"


def with_nan_probability(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(p_skip=frame["p_skip"].where(frame.index != 0))


def with_repeated_play(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame[frame["session_id"] == "a"].iloc[[0]]], ignore_index=True)


@pytest.mark.parametrize(
    ("order", "change", "needle"),
    [
        (["a", "b", "c", "z"], None, r"session 'z' \(line 4\) has no predictions"),
        (["a", "b"], None, "predictions for session 'c', which is not in the session order"),
        (["a", "b", "c"], with_nan_probability, "p_skip must be a probability"),
        (["a", "b", "c"], with_repeated_play, "session 'a' has two predictions for position"),
        (["a", "b", "a"], None, "lists session 'a' twice"),
    ],
)
def test_write_submission_rejects(
    tmp_path: Path,
    order: list[str],
    change: Callable[[pd.DataFrame], pd.DataFrame] | None,
    needle: str,
) -> None:
    frame = perfect_predictions()
    if change is not None:
        frame = change(frame)
    path = tmp_path / "submission.txt"
    with pytest.raises(SkipmodelError, match=needle):
        write_submission(path, frame, order)
    assert not path.exists()
    assert not list(tmp_path.iterdir())  # no temporary left behind either


def test_write_submission_needs_p_skip(tmp_path: Path) -> None:
    frame = perfect_predictions().drop(columns="p_skip")
    with pytest.raises(SkipmodelError, match="lack column 'p_skip'"):
        write_submission(tmp_path / "s.txt", frame, ["a", "b", "c"])


# --- the CLI -------------------------------------------------------------------------------


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write_csv(tmp_path / "log.csv", LOG_HEADER, log_rows())
    submission = tmp_path / "submission.txt"
    submission.write_text("\n".join(LOG_LINES) + "\n")
    scores_json = tmp_path / "scores.json"
    assert main(["evaluate", str(submission), "--truth", str(log), "--json", str(scores_json)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == (
        "mean average accuracy 0.7778, first-prediction accuracy 1.0000 (2 sessions, 4 plays)"
    )
    saved = json.loads(scores_json.read_text())
    assert saved["mean_average_accuracy"] == pytest.approx(7 / 9)
    assert (saved["n_sessions"], saved["n_plays"]) == (2, 4)


def test_cli_with_order(
    tmp_path: Path, truth_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order_file = write_csv(
        tmp_path / "log_input.csv", "session_id,session_position", [("b", 5), ("c", 10), ("a", 7)]
    )
    submission = tmp_path / "submission.txt"
    submission.write_text(f"{LINES[1]}\n{LINES[2]}\n{LINES[0]}\n")
    args = ["evaluate", str(submission), "--truth", str(truth_csv), "--order", str(order_file)]
    assert main(args) == 0
    assert f"mean average accuracy {MEAN_AA:.4f}" in capsys.readouterr().out


def test_cli_truth_in_two_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = "session_id,session_position,skip_2"
    first = write_csv(tmp_path / "t1.csv", header, TRUTH_ROWS[:4])
    second = write_csv(tmp_path / "t2.csv", header, TRUTH_ROWS[4:])
    submission = tmp_path / "submission.txt"
    submission.write_text("\n".join(LINES))
    args = ["evaluate", "--truth", str(first), "--truth", str(second), str(submission)]
    assert main(args) == 0
    assert "(3 sessions, 8 plays)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "truth_name", "needle"),
    [
        ("1001\n110\n", "truth.csv", "2 lines but there are 3 sessions"),
        ("1001\n110\n11\n", "truth.csv", "line 3 (session 'c') has 2 predictions"),
        ("1001\n1?0\n1\n", "truth.csv", "line 2 holds '?'"),
        ("", "truth.csv", "the submission is empty"),
        ("1001\n110\n1\n", "missing.csv", "no such file"),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path,
    truth_csv: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    truth_name: str,
    needle: str,
) -> None:
    submission = tmp_path / "submission.txt"
    submission.write_text(content)
    assert main(["evaluate", str(submission), "--truth", str(tmp_path / truth_name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skipmodel evaluate: error: ")
    assert needle in err
    assert err.count("\n") == 1


def test_cli_missing_submission(
    tmp_path: Path, truth_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path / "none.txt"), "--truth", str(truth_csv)]) == 2
    assert "no such submission file" in capsys.readouterr().err


# --- the challenge's baseline on real MSSD rows ---------------------------------------------


def test_repeat_last_skip_baseline_is_a_valid_submission(
    mssd_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each second-half play predicted as the session's last first-half skip_2 (the challenge's
    published baseline, 0.537 / 0.742 on the test set) scores without complaint."""
    log_path = mssd_dir / "log_mini_first11sessions.csv"
    log = pd.read_csv(
        log_path, usecols=["session_id", "session_position", "session_length", "skip_2"]
    )
    second = second_half_mask(log["session_position"], log["session_length"])
    last_first_half = (
        log[~second].sort_values("session_position").groupby("session_id")["skip_2"].last()
    )
    plays = log[second].copy()
    plays["p_skip"] = plays["session_id"].map(last_first_half)
    order = list(pd.unique(plays["session_id"]))
    submission = tmp_path / "baseline.txt"
    assert write_submission(submission, plays, order) == 11
    assert main(["evaluate", str(submission), "--truth", str(log_path)]) == 0
    out = capsys.readouterr().out
    assert "(11 sessions," in out
    scores = score_submission(read_submission(submission), read_truth(log_path))
    assert 0.0 < scores.mean_average_accuracy < 1.0
    assert scores.n_plays == int(second.sum())
