"""Held-out metrics and baselines against hand computations on toy data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.report.baselines import fit_baselines
from skipmodel.report.metrics import (
    accuracy,
    average_accuracy,
    brier_score,
    classification_metrics,
    expected_calibration_error,
    log_loss,
    reliability_curve,
    roc_auc,
    second_half_mask,
    sequential_metrics,
)


def brute_force_auc(y: np.ndarray, p: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def official_average_accuracy(submission: list[int], truth: list[int]) -> float:
    """The loop from the challenge's published local-evaluation notebook, re-typed."""
    s, t = 0.0, 0.0
    for c, (x, y) in enumerate(zip(submission, truth, strict=True), start=1):
        if x == y:
            s += 1.0
            t += s / c
    return t / len(truth)


def test_log_loss_and_brier_by_hand() -> None:
    y, p = [1, 0, 1], [0.8, 0.3, 0.6]
    assert log_loss(y, p) == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.6)) / 3)
    assert brier_score(y, p) == pytest.approx((0.04 + 0.09 + 0.16) / 3)
    # a certain miss is clipped to a large finite cost, not infinity
    assert math.isfinite(log_loss([1], [0.0])) and log_loss([1], [0.0]) > 30


def test_accuracy_threshold_is_inclusive() -> None:
    # 0.5 -> skip (right), 0.49 -> no skip (right), 0.7 -> skip (wrong), 0.9 -> skip (right)
    assert accuracy([1, 0, 0, 1], [0.5, 0.49, 0.7, 0.9]) == pytest.approx(0.75)


def test_auc_with_ties_by_hand() -> None:
    # pairs (pos, neg): (.9,.5)=1 (.9,.1)=1 (.5,.5)=1/2 (.5,.1)=1 (.3,.5)=0 (.3,.1)=1 -> 4.5/6
    y = np.array([1, 1, 0, 0, 1])
    p = np.array([0.9, 0.5, 0.5, 0.1, 0.3])
    assert roc_auc(y, p) == pytest.approx(0.75)
    assert brute_force_auc(y, p) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_count_with_heavy_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=60)
    p = rng.integers(0, 4, size=60) / 4  # only 4 distinct scores: lots of ties
    assert roc_auc(y, p) == pytest.approx(brute_force_auc(y, p))


def test_auc_extremes() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_ece_and_reliability_by_hand() -> None:
    # bins of width 0.1: [0,.1) holds .05 (y 0); [.1,.2) holds .15,.15 (y 1,0); [.9,1] holds .95 (y 1)
    y = [0, 1, 0, 1]
    p = [0.05, 0.15, 0.15, 0.95]
    expected = (1 * 0.05 + 2 * 0.35 + 1 * 0.05) / 4
    assert expected_calibration_error(y, p) == pytest.approx(expected)
    curve = reliability_curve(y, p)
    assert curve.count.tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert curve.observed_rate[1] == pytest.approx(0.5)
    assert np.isnan(curve.mean_predicted[5])
    # bin edges: 0.1 goes to the second bin, 1.0 to the last (closed) bin
    edge = reliability_curve([1, 1], [0.1, 1.0])
    assert edge.count[1] == 1 and edge.count[9] == 1
    # perfectly calibrated within bins -> zero
    assert expected_calibration_error([0, 1], [0.5, 0.5], n_bins=2) == pytest.approx(0.0)


def test_classification_metrics_bundle_and_labels() -> None:
    y = [1, 0, 1, 0]
    p = [0.9, 0.2, 0.4, 0.6]
    m = classification_metrics(y, p)
    assert m.n == 4 and m.accuracy == pytest.approx(0.5)
    forced = classification_metrics(y, p, labels=[1, 0, 1, 0])
    assert forced.accuracy == 1.0 and forced.log_loss == m.log_loss


def test_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="0/1"):
        log_loss([2], [0.5])
    with pytest.raises(ValueError, match="within"):
        brier_score([1], [1.5])
    with pytest.raises(ValueError, match="length"):
        roc_auc([1, 0], [0.5])


def test_average_accuracy_worked_examples() -> None:
    # [1,1,1,0,1]: (1/1 + 2/2 + 3/3 + 0 + 4/5) / 5 = 0.76 — a miss contributes nothing
    assert average_accuracy([1, 1, 1, 0, 1]) == pytest.approx(0.76)
    # [0,1,1,1,1]: (0 + 1/2 + 2/3 + 3/4 + 4/5) / 5
    assert average_accuracy([0, 1, 1, 1, 1]) == pytest.approx((0.5 + 2 / 3 + 0.75 + 0.8) / 5)
    assert average_accuracy([1, 1, 1]) == 1.0
    assert average_accuracy([0, 0]) == 0.0


def test_sequential_metrics_worked_example_in_any_row_order() -> None:
    # session a: truth 1 1 0 0 1, predicted 1 1 0 1 1 -> correct 1 1 1 0 1 -> AA 0.76
    # session b: truth 0 0 1 1 1, predicted 1 0 1 1 1 -> correct 0 1 1 1 1 -> AA 0.54333
    rows = pd.DataFrame(
        {
            "session_id": ["a"] * 5 + ["b"] * 5,
            "position": [6, 7, 8, 9, 10] * 2,
            "y": [1, 1, 0, 0, 1, 0, 0, 1, 1, 1],
            "pred": [1, 1, 0, 1, 1, 1, 0, 1, 1, 1],
        }
    ).sample(frac=1.0, random_state=3)  # order must not matter
    m = sequential_metrics(rows["session_id"], rows["position"], rows["y"], rows["pred"])
    assert m.n_sessions == 2 and m.n_plays == 10
    assert m.mean_average_accuracy == pytest.approx((0.76 + (0.5 + 2 / 3 + 0.75 + 0.8) / 5) / 2)
    assert m.first_prediction_accuracy == pytest.approx(0.5)


def test_sequential_metrics_match_official_loop_on_random_sessions() -> None:
    rng = np.random.default_rng(7)
    frames, subs, truths = [], [], []
    for s in range(40):
        t = int(rng.integers(5, 11))
        truth = rng.integers(0, 2, t).tolist()
        sub = rng.integers(0, 2, t).tolist()
        subs.append(sub)
        truths.append(truth)
        frames.append(
            pd.DataFrame({"s": f"s{s:02d}", "pos": np.arange(t) + 11, "y": truth, "p": sub})
        )
    rows = pd.concat(frames)
    m = sequential_metrics(rows["s"], rows["pos"], rows["y"], rows["p"])
    official = np.mean([official_average_accuracy(a, b) for a, b in zip(subs, truths, strict=True)])
    first = np.mean([a[0] == b[0] for a, b in zip(subs, truths, strict=True)])
    assert m.mean_average_accuracy == pytest.approx(official)
    assert m.first_prediction_accuracy == pytest.approx(first)


def test_second_half_is_the_challenges() -> None:
    # length 10 -> positions 6..10; length 11 -> 6..11 (ceil(11/2) = 6 predictions)
    assert second_half_mask(np.arange(1, 11), 10).sum() == 5
    assert np.flatnonzero(second_half_mask(np.arange(1, 12), 11))[0] + 1 == 6
    assert second_half_mask(np.arange(1, 12), 11).sum() == 6


# --- baselines ----------------------------------------------------------------------------


@pytest.fixture
def toy_train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "session_id": ["s1"] * 4 + ["s2"] * 4,
            "session_position": [1, 2, 3, 4] * 2,
            "track_id_clean": ["a", "a", "b", "c", "a", "b", "b", "c"],
            "skip_2": [1, 1, 0, 1, 1, 0, 0, 0],
            "prev_skip_2": [None, 1, 1, 0, None, 1, 0, 0],
        }
    )


def test_baselines_fit_by_hand(toy_train: pd.DataFrame) -> None:
    b = fit_baselines(toy_train, prior_plays=2.0)
    assert b.overall_rate == pytest.approx(4 / 8)
    # track a: 3 skips in 3 plays -> (3 + 2 * .5) / (3 + 2) = .8 ; track b: 0/3 -> 1/5
    assert b.track_rate["a"] == pytest.approx(0.8)
    assert b.track_rate["b"] == pytest.approx(0.2)
    # after a skip (rows 2,3,6): outcomes 1,0,0 ; after no skip (4,7,8): 1,0,0 ; first plays: 1,1
    assert b.rate_after_skip == pytest.approx(1 / 3)
    assert b.rate_after_no_skip == pytest.approx(1 / 3)
    assert b.rate_first_play == pytest.approx(1.0)


def test_baselines_predict_rows(toy_train: pd.DataFrame) -> None:
    b = fit_baselines(toy_train, prior_plays=2.0)
    test = pd.DataFrame(
        {"track_id_clean": ["a", "zzz"], "skip_2": [1, 0], "prev_skip_2": [None, 1.0]}
    )
    overall, track, repeat = b.predict_rows(test)
    assert overall.p_skip.tolist() == [0.5, 0.5]
    assert track.p_skip.tolist() == pytest.approx([0.8, 0.5])  # unseen track -> overall rate
    assert repeat.label.tolist() == [1.0, 1.0]  # no previous play -> first-play rate (1.0) label
    assert repeat.p_skip.tolist() == pytest.approx([1.0, 1 / 3])


def test_baselines_second_half_repeats_last_first_half_outcome(toy_train: pd.DataFrame) -> None:
    b = fit_baselines(toy_train)
    test = pd.DataFrame(
        {
            "session_id": ["t"] * 5,
            "session_position": [1, 2, 3, 4, 5],
            "session_length": [5] * 5,
            "track_id_clean": ["a"] * 5,
            "skip_2": [0, 1, 0, 1, 1],
            "prev_skip_2": [None, 0, 1, 0, 1],
        }
    )
    half = second_half_mask(test["session_position"], test["session_length"])
    preds = b.predict_second_half(test, half)
    repeat = preds[2]
    assert len(repeat.label) == 3
    assert repeat.label.tolist() == [1.0, 1.0, 1.0]  # position 2 (last of first half) skipped


def test_baselines_need_their_columns(toy_train: pd.DataFrame) -> None:
    with pytest.raises(SkipmodelError, match="prev_skip_1"):
        fit_baselines(toy_train.assign(skip_1=1), outcome="skip_1")
    with pytest.raises(SkipmodelError, match="prior_plays"):
        fit_baselines(toy_train, prior_plays=-1)
