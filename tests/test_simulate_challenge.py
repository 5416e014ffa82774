"""skipmodel simulate --challenge-fraction: the WSDM Cup 2019 test set's layout, with its truth."""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from skipmodel.cli import main
from skipmodel.simulate.challenge import input_order
from skipmodel.simulate.mssd import SimulationResult, simulate
from skipmodel.store.schema import LOG_COLUMNS

INPUT_HEADER = ["session_id", "track_id_clean", "session_position", "session_length"]
TRUTH_HEADER = ["session_id", "session_position", "skip_2"]
ARGS = {"sessions": 240, "seed": 7, "tracks": 400, "days": 3}


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    lines = list(csv.reader(io.StringIO(data.decode())))
    return lines[0], lines[1:]


def _by_kind(members: dict[str, bytes], kind: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(day, header, rows) of the test-set files of one kind, in file-name order."""
    out = []
    for name in sorted(members):
        m = re.fullmatch(rf"test_set/log_{kind}_(\d{{8}})_000000000000\.csv", name)
        if m:
            out.append((m.group(1), *_rows(members[name])))
    return out


def _session_order(rows: list[list[str]]) -> list[str]:
    """Session ids in order of first appearance, checking each session's rows are contiguous."""
    order: list[str] = []
    for r in rows:
        if not order or order[-1] != r[0]:
            assert r[0] not in order, f"session {r[0]} is split"
            order.append(r[0])
    return order


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(tmp_path_factory.mktemp("held"), challenge_fraction=0.25, **ARGS)


@pytest.fixture(scope="module")
def test_members(held: SimulationResult) -> dict[str, bytes]:
    assert held.test_set is not None
    return _members(held.test_set)


@pytest.fixture(scope="module")
def training_rows(held: SimulationResult) -> list[list[str]]:
    return [r for data in _members(held.training_set).values() for r in _rows(data)[1]]


@pytest.fixture(scope="module")
def truth_rows(held: SimulationResult) -> list[list[str]]:
    assert held.challenge_truth is not None
    header, rows = _rows(held.challenge_truth.read_bytes())
    assert header == TRUTH_HEADER
    return rows


def test_layout_names_and_headers(held: SimulationResult, test_members: dict[str, bytes]) -> None:
    assert held.test_set == held.out / "test_set.tar.gz"
    assert held.challenge_truth == held.out / "challenge_truth.csv"
    assert sorted(p.name for p in held.out.iterdir()) == [
        "challenge_truth.csv",
        "test_set.tar.gz",
        "track_features.tar.gz",
        "training_set.tar.gz",
        "truth.json",
        "truth_tracks.parquet",
    ]
    with tarfile.open(held.test_set) as tar:
        assert tar.getmembers()[0].name == "test_set" and tar.getmembers()[0].isdir()
    pre, inp = _by_kind(test_members, "prehistory"), _by_kind(test_members, "input")
    # one pair per day, nothing else in the archive
    assert [d for d, *_ in pre] == [d for d, *_ in inp] == ["20180715", "20180716", "20180717"]
    assert len(test_members) == 2 * len(pre) == held.n_test_files
    training_header = next(iter(_members(held.training_set).values())).split(b"\n")[0]
    for _, header, rows in pre:
        assert header == list(LOG_COLUMNS) == training_header.decode().split(",")
        assert rows and all(len(r) == len(LOG_COLUMNS) for r in rows)
    for _, header, rows in inp:
        assert header == INPUT_HEADER
        assert rows and all(len(r) == len(INPUT_HEADER) for r in rows)
    for data in test_members.values():
        assert data.endswith(b"\n") and b'"' not in data and b"\r" not in data


def test_split_is_at_half_the_length(test_members: dict[str, bytes]) -> None:
    sessions: dict[str, dict[str, list[int]]] = {}
    lengths: dict[str, int] = {}
    for kind, pos_col, len_col in (("prehistory", 1, 2), ("input", 2, 3)):
        for _, _, rows in _by_kind(test_members, kind):
            for r in rows:
                sessions.setdefault(r[0], {"prehistory": [], "input": []})[kind].append(
                    int(r[pos_col])
                )
                assert lengths.setdefault(r[0], int(r[len_col])) == int(r[len_col])
    assert len(sessions) == 60  # round(0.25 * 240)
    for sid, halves in sessions.items():
        half = lengths[sid] // 2
        assert halves["prehistory"] == list(range(1, half + 1)), sid
        assert halves["input"] == list(range(half + 1, lengths[sid] + 1)), sid
        assert 10 <= lengths[sid] <= 20  # so neither half is ever empty


def test_prehistory_sorted_and_input_shuffled(
    test_members: dict[str, bytes], truth_rows: list[list[str]]
) -> None:
    input_order_all: list[str] = []
    for (_, _, pre), (_, _, inp) in zip(
        _by_kind(test_members, "prehistory"), _by_kind(test_members, "input"), strict=True
    ):
        pre_order, inp_order = _session_order(pre), _session_order(inp)
        assert pre_order == sorted(pre_order)
        assert sorted(inp_order) == pre_order  # the same sessions on both sides of a day
        assert inp_order != pre_order  # a submission must follow the input's own order
        input_order_all += inp_order
    assert input_order_all != sorted(input_order_all)
    # the truth lists the input plays in the input's order, row for row
    inputs = [r for _, _, rows in _by_kind(test_members, "input") for r in rows]
    assert _session_order(truth_rows) == input_order_all
    assert [(r[0], r[1]) for r in truth_rows] == [(r[0], r[2]) for r in inputs]
    assert {r[2] for r in truth_rows} == {"true", "false"}


def test_no_challenge_session_trains_and_every_play_counts(
    held: SimulationResult,
    test_members: dict[str, bytes],
    training_rows: list[list[str]],
    truth_rows: list[list[str]],
) -> None:
    pre = [r for _, _, rows in _by_kind(test_members, "prehistory") for r in rows]
    inp = [r for _, _, rows in _by_kind(test_members, "input") for r in rows]
    challenge = {r[0] for r in inp}
    training = {r[0] for r in training_rows}
    assert not challenge & training
    assert len(challenge) + len(training) == ARGS["sessions"] == held.n_sessions
    assert held.n_challenge_sessions == len(challenge) == 60
    assert held.n_training_plays == len(training_rows)
    assert held.n_prehistory_plays == len(pre)
    assert held.n_input_plays == len(inp) == len(truth_rows)
    assert len(training_rows) + len(pre) + len(inp) == held.n_plays
    truth = json.loads(held.truth.read_text())
    assert truth["arguments"]["challenge_fraction"] == 0.25
    empirical = truth["empirical"]
    assert empirical["plays"] == held.n_plays and empirical["sessions"] == ARGS["sessions"]
    assert (empirical["training_sessions"], empirical["challenge_sessions"]) == (180, 60)
    assert (
        empirical["training_plays"] + empirical["prehistory_plays"] + empirical["input_plays"]
        == empirical["plays"]
    )
    assert empirical["test_set_files"] == held.n_test_files


def test_the_same_plays_as_without_a_challenge(
    held: SimulationResult,
    test_members: dict[str, bytes],
    training_rows: list[list[str]],
    truth_rows: list[list[str]],
    tmp_path: Path,
) -> None:
    """The challenge only routes plays: with F = 0 the same seed gives the same plays."""
    plain = simulate(tmp_path / "plain", **ARGS)
    assert plain.test_set is None and plain.challenge_truth is None
    assert plain.n_plays == held.n_plays and plain.n_training_plays == plain.n_plays

    def key(r: list[str]) -> tuple[str, ...]:  # the id's k prefix differs; the uuid does not
        return (r[0].split("_", 1)[1], *r[1:])

    everything = {key(r) for data in _members(plain.training_set).values() for r in _rows(data)[1]}
    pre = [r for _, _, rows in _by_kind(test_members, "prehistory") for r in rows]
    assert {key(r) for r in training_rows + pre} <= everything
    # the truth is exactly the plain run's second halves of the challenge sessions
    skip_2 = LOG_COLUMNS.index("skip_2")
    held_uuids = {r[0].split("_", 1)[1] for r in truth_rows}
    plain_second = {
        (r[0], r[1], r[skip_2])
        for r in everything
        if r[0] in held_uuids and 2 * int(r[1]) > int(r[2])
    }
    assert {(r[0].split("_", 1)[1], r[1], r[2]) for r in truth_rows} == plain_second
    assert len(truth_rows) == len(plain_second)


def test_same_seed_same_bytes(held: SimulationResult, tmp_path: Path) -> None:
    again = simulate(tmp_path / "again", challenge_fraction=0.25, **ARGS)
    other = simulate(tmp_path / "other", challenge_fraction=0.25, **{**ARGS, "seed": 8})
    for name in ("training_set.tar.gz", "test_set.tar.gz", "challenge_truth.csv", "truth.json"):
        assert (held.out / name).read_bytes() == (again.out / name).read_bytes(), name
        assert (held.out / name).read_bytes() != (other.out / name).read_bytes(), name


def test_zero_fraction_writes_no_test_set_and_clears_a_stale_one(tmp_path: Path) -> None:
    small = {"sessions": 40, "seed": 1, "tracks": 100, "days": 2}
    first = simulate(tmp_path, challenge_fraction=0.5, **small)
    assert first.test_set is not None and first.test_set.is_file()
    assert first.n_challenge_sessions == 20
    second = simulate(tmp_path, **small)
    assert second.test_set is None and second.n_challenge_sessions == 0
    assert not (tmp_path / "test_set.tar.gz").exists()
    assert not (tmp_path / "challenge_truth.csv").exists()
    truth = json.loads(second.truth.read_text())
    assert truth["arguments"]["challenge_fraction"] == 0.0
    assert truth["empirical"]["challenge_sessions"] == truth["empirical"]["test_set_files"] == 0


def test_small_fractions_keep_one_session_on_each_side(tmp_path: Path) -> None:
    small = {"sessions": 10, "seed": 2, "tracks": 60, "days": 1}
    tiny = simulate(tmp_path / "tiny", challenge_fraction=0.001, **small)
    assert tiny.n_challenge_sessions == 1 and tiny.n_test_files == 2
    most = simulate(tmp_path / "most", challenge_fraction=0.99, **small)
    assert most.n_challenge_sessions == 9
    (log,) = _members(most.training_set).values()
    assert len(Counter(r[0] for r in _rows(log)[1])) == 1


def test_input_order_is_never_sorted() -> None:
    for n in (2, 3, 5):
        for seed in range(200):
            order = input_order(np.random.default_rng(seed), n)
            assert sorted(order) == list(range(n)) and list(order) != list(range(n))
    assert list(input_order(np.random.default_rng(0), 1)) == [0]


@pytest.mark.parametrize("value", ["-0.1", "1", "1.5", "nan", "inf"])
def test_cli_rejects_a_bad_fraction_in_one_line(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    argv = ["simulate", "--out", str(out), "--sessions", "20", "--tracks", "60"]
    assert main([*argv, "--challenge-fraction", value]) == 2
    err = capsys.readouterr().err.strip()
    assert "--challenge-fraction must be in [0, 1)" in err and "\n" not in err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_cli_one_session_cannot_be_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--out", str(tmp_path), "--sessions", "1", "--challenge-fraction", "0.5"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "at least 2 sessions" in err and "\n" not in err


def test_cli_prints_the_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--out", str(tmp_path), "--sessions", "30", "--tracks", "100"]
    assert main([*argv, "--days", "2", "--challenge-fraction", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "challenge: 6 sessions held out" in printed
    assert re.search(r"test_set\.tar\.gz \([24] files\)", printed)
    assert "challenge_truth.csv" in printed
    numbers = r"([\d,]+) training \+ ([\d,]+) prehistory \+ ([\d,]+) input = ([\d,]+)"
    m = re.search(numbers, printed)
    assert m is not None
    parts = [int(g.replace(",", "")) for g in m.groups()]
    assert sum(parts[:3]) == parts[3]
