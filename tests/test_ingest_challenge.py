"""The WSDM Cup 2019 test set (``log_prehistory_*`` / ``log_input_*``): ingested apart from the
training sessions, validated and counted like them, and loaded back whole with its order."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ingest_helpers import store_files
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.ingest.compact import compact
from skipmodel.load import load_challenge, load_pandas, load_table
from skipmodel.load.challenge import challenge_schema, iter_challenge
from skipmodel.store import fspath as fspath_module
from skipmodel.store import journal as store_journal
from skipmodel.store.rejected import read_rejected
from skipmodel.store.schema import LOG_COLUMNS, TRACK_COLUMNS
from store_factory import logs_from_csv, tracks_from_csv, write_store

LOG_HEADER = ",".join(LOG_COLUMNS)
#: The real ``log_input`` files' column order (not the session logs').
INPUT_HEADER = "session_id,track_id_clean,session_position,session_length"
TRACKS = "tf_mini_subset_for_first11sessions.csv"
MINI = "log_mini_first11sessions.csv"


def _log_row(sid: str, pos: int, length: int, track: str, skip: bool, reason: str = "fwdbtn"):
    flag = "true" if skip else "false"
    return (
        f"{sid},{pos},{length},{track},false,{flag},{flag},{'false' if skip else 'true'},"
        f"0,1,0,0,0,0,false,{10 + pos % 3},2018-07-15,true,editorial_playlist,trackdone,{reason}"
    )


def _track_row(track: str, danceability: float) -> str:
    values = {c: "0.5" for c in TRACK_COLUMNS}
    values.update(
        track_id=track,
        release_year="2001",
        key="3",
        mode="major",
        time_signature="4",
        danceability=repr(danceability),
    )
    return ",".join(values[c] for c in TRACK_COLUMNS)


def _skips(sid: str, length: int) -> list[bool]:
    """A fixed, varied skip pattern per session."""
    seed = sum(map(ord, sid))
    return [bool((seed >> (p % 7)) & 1) ^ (p % 3 == 0) for p in range(1, length + 1)]


#: Challenge sessions and their lengths; tracks ``t_<sid>_<pos>``.
CHALLENGE = {"0_c1": 10, "0_c2": 11, "0_c3": 20, "0_c4": 13}
#: The input file's session order: shuffled, neither sorted nor the prehistory's.
INPUT_ORDER = ["0_c3", "0_c1", "0_c4", "0_c2"]
TRAINING = {"0_t1": 10, "0_t2": 12}


def _track(sid: str, pos: int) -> str:
    return f"t_{sid}_{pos}"


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def prehistory_lines(sessions: dict[str, int]) -> list[str]:
    rows = [LOG_HEADER]
    for sid, length in sorted(sessions.items()):
        skips = _skips(sid, length)
        for pos in range(1, length // 2 + 1):
            rows.append(_log_row(sid, pos, length, _track(sid, pos), skips[pos - 1]))
    return rows


def input_lines(sessions: dict[str, int], order: list[str]) -> list[str]:
    rows = [INPUT_HEADER]
    for sid in order:
        length = sessions[sid]
        rows += [f"{sid},{_track(sid, p)},{p},{length}" for p in range(length // 2 + 1, length + 1)]
    return rows


def training_lines(sessions: dict[str, int]) -> list[str]:
    rows = [LOG_HEADER]
    for sid, length in sorted(sessions.items()):
        skips = _skips(sid, length)
        rows += [
            _log_row(sid, p, length, _track(sid, p), skips[p - 1]) for p in range(1, length + 1)
        ]
    return rows


def tracks_lines(sessions: dict[str, int]) -> list[str]:
    rows = [",".join(TRACK_COLUMNS)]
    for sid, length in sorted(sessions.items()):
        rows += [_track_row(_track(sid, p), p / 100) for p in range(1, length + 1)]
    return rows


def write_release(folder: Path, *, day: str = "20180715") -> Path:
    """Training logs, track features and ``test_set/`` as the release lays them out."""
    _write(folder / "training_set" / f"log_0_{day}_000000000000.csv", training_lines(TRAINING))
    _write(folder / "track_features" / "tf_000000000000.csv", tracks_lines(CHALLENGE | TRAINING))
    test_set = folder / "test_set"
    _write(test_set / f"log_prehistory_{day}_000000000000.csv", prehistory_lines(CHALLENGE))
    _write(test_set / f"log_input_{day}_000000000000.csv", input_lines(CHALLENGE, INPUT_ORDER))
    return folder


def _ingest(paths, store: Path, **options):
    return ingest(
        paths if isinstance(paths, list) else [paths],
        store,
        n_buckets=4,
        progress=False,
        **options,
    )


def _plays(store: Path, **options) -> pd.DataFrame:
    return load_challenge(store, **options).plays


# -- classification and separation ------------------------------------------------------------


def test_folder_with_training_and_test_files(tmp_path):
    release = write_release(tmp_path / "release")
    report = _ingest(release, tmp_path / "store")
    kinds = {Path(s.name).name.split("_0000")[0]: s.kind for s in report.sources}
    assert kinds == {
        "log_0_20180715": "log",
        "tf": "tracks",
        "log_prehistory_20180715": "prehistory",
        "log_input_20180715": "input",
    }
    n_pre = sum(n // 2 for n in CHALLENGE.values())
    n_input = sum(n - n // 2 for n in CHALLENGE.values())
    assert (report.prehistory_rows_read, report.prehistory_rows_written) == (n_pre, n_pre)
    assert (report.input_rows_read, report.input_rows_written) == (n_input, n_input)
    assert report.log_rows_written == sum(TRAINING.values())
    manifest = json.loads((tmp_path / "store/manifest.json").read_text())
    totals = manifest["totals"]
    for prefix in ("log", "track", "prehistory", "input"):
        read, written, rejected = (
            totals[f"{prefix}_rows_{w}"] for w in ("read", "written", "rejected")
        )
        assert read == written + rejected
    assert totals["prehistory_rows_written"] == n_pre and totals["input_rows_written"] == n_input
    for entry in manifest["sources"].values():
        assert entry["rows_read"] == entry["rows_written"] + entry["rows_rejected"]
    challenge = manifest["challenge"]
    assert challenge["prehistory_sessions"] == challenge["input_sessions"] == len(CHALLENGE)
    assert challenge["sessions_without_prehistory"] == challenge["sessions_without_input"] == 0
    assert challenge["plays_with_missing_track"] == 0
    assert challenge["integrity"]["input_plays_outside_half"] == 0
    # challenge findings stay out of the training sessions' integrity
    assert set(manifest["integrity"]) >= set(store_journal.INTEGRITY_KEYS)
    assert not any(k.startswith(("input_", "prehistory_")) for k in manifest["integrity"])
    assert list((tmp_path / "store/challenge/prehistory").glob("session_bucket=*/part-*.parquet"))
    assert list((tmp_path / "store/challenge/input").glob("session_bucket=*/part-*.parquet"))


def test_training_readers_never_see_challenge_sessions(tmp_path):
    _ingest(write_release(tmp_path / "release"), tmp_path / "store")
    training = set(load_table(tmp_path / "store").column("session_id").to_pylist())
    assert training == set(TRAINING)
    for split in ("train", "test"):
        part = load_table(tmp_path / "store", split=split, test_fraction=0.5)
        assert not set(part.column("session_id").to_pylist()) & set(CHALLENGE)
    stored = {
        sid
        for f in (tmp_path / "store/sessions").rglob("part-*.parquet")
        for sid in pq.read_table(f, columns=["session_id"]).column(0).to_pylist()
    }
    assert stored == set(TRAINING)
    challenge = load_challenge(tmp_path / "store")
    assert set(challenge.plays["session_id"]) == set(CHALLENGE)
    assert challenge.order == tuple(INPUT_ORDER)
    assert len(challenge.plays) == sum(CHALLENGE.values())


def _pack(files: dict[str, Path], out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        readme = b"not data\n"
        info = tarfile.TarInfo("test_set/README.txt")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
        for member, path in files.items():
            tar.add(path, arcname=member)
    return out


def test_every_input_form_gives_the_same_challenge(tmp_path):
    release = write_release(tmp_path / "release")
    test_set = sorted((release / "test_set").iterdir())
    tracks = release / "track_features" / "tf_000000000000.csv"
    _ingest([release / "test_set", tracks], tmp_path / "from_folder")
    want = load_challenge(tmp_path / "from_folder")

    archive = _pack({f"test_set/{p.name}": p for p in test_set}, tmp_path / "test_set.tar.gz")
    gz_archive = _pack(
        {f"test_set/{p.name}.gz": _gzip(p, tmp_path / "gz" / f"{p.name}.gz") for p in test_set},
        tmp_path / "test_set_gz.tar.gz",
    )
    loose_gz = [_gzip(p, tmp_path / "loose" / f"{p.name}.gz") for p in test_set]
    for name, paths in {
        "tar": [archive, tracks],
        "tar_of_gz": [gz_archive, tracks],
        "csv_gz": [*loose_gz, tracks],
        "csv": [*test_set, tracks],
    }.items():
        report = _ingest(paths, tmp_path / name)
        assert {s.kind for s in report.sources} == {"prehistory", "input", "tracks"}, name
        got = load_challenge(tmp_path / name)
        assert got.order == want.order == tuple(INPUT_ORDER), name
        pd.testing.assert_frame_equal(got.plays, want.plays)


def _gzip(src: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(src.read_bytes(), mtime=0))
    return out


def test_names_and_headers_that_disagree_are_one_line_errors(tmp_path):
    wrong_input = _write(
        tmp_path / "a/log_input_20180715_000000000000.csv", training_lines(TRAINING)
    )
    with pytest.raises(SkipmodelError, match=r"log_input_\*.*not the input header") as err:
        _ingest(wrong_input, tmp_path / "s1")
    assert "\n" not in str(err.value)
    wrong_pre = _write(
        tmp_path / "b/log_prehistory_20180715_000000000000.csv", input_lines(CHALLENGE, INPUT_ORDER)
    )
    with pytest.raises(SkipmodelError, match=r"log_prehistory_\*.*not a session log"):
        _ingest(wrong_pre, tmp_path / "s2")
    # the input header decides whatever the name; its columns may come in any order
    lines = input_lines(CHALLENGE, INPUT_ORDER)
    reordered = ["session_length,session_position,track_id_clean,session_id"] + [
        ",".join(reversed(line.split(","))) for line in lines[1:]
    ]
    plain = _write(tmp_path / "c/second_halves.csv", reordered)
    report = _ingest(plain, tmp_path / "s3")
    assert [s.kind for s in report.sources] == ["input"]
    assert report.input_rows_written == len(lines) - 1


# -- order, validation, idempotence ------------------------------------------------------------


def test_input_order_follows_file_dates_then_first_appearance(tmp_path):
    day1 = {"0_b": 10, "0_z": 12, "0_a": 14}
    day2 = {"0_y": 10, "0_c": 16}
    files = tmp_path / "test_set"
    _write(files / "log_prehistory_20180715_000000000000.csv", prehistory_lines(day1))
    _write(files / "log_prehistory_20180716_000000000000.csv", prehistory_lines(day2))
    early = _write(
        files / "log_input_20180715_000000000000.csv", input_lines(day1, ["0_z", "0_a", "0_b"])
    )
    late = _write(files / "log_input_20180716_000000000000.csv", input_lines(day2, ["0_y", "0_c"]))
    # the later day first, in a call of its own: the order still follows the file dates
    _ingest([late, *files.glob("log_prehistory_*")], tmp_path / "store")
    _ingest([early], tmp_path / "store")
    challenge = load_challenge(tmp_path / "store")
    assert challenge.order == ("0_z", "0_a", "0_b", "0_y", "0_c")
    stored = pq.read_table(tmp_path / "store/challenge/input", partitioning=None)
    assert set(stored.column("input_file").to_pylist()) == {early.name, late.name}
    assert {d.isoformat() for d in stored.column("input_day").to_pylist()} == {
        "2018-07-15",
        "2018-07-16",
    }
    first = stored.filter(pc.equal(stored.column("session_id"), "0_z"))
    assert min(first.column("input_line").to_pylist()) == 2  # the line after the header


def test_bad_input_rows_are_rejected_with_reasons_and_counted(tmp_path):
    lines = input_lines({"0_c1": 10}, ["0_c1"])
    bad = [
        "0_c1,t_x,0,10",  # position below 1
        "0_c1,t_x,12,10",  # position past the length
        ",t_x,7,10",  # empty session id
        '0_c1,"t_x",7,10',  # quoted track id
        "0_c1,t_x,7,ten",  # not an integer
        "0_c1,t_x,7",  # a field short
        "",  # blank line
        "0_c1,t_x,7,200",  # length out of range
    ]
    path = _write(tmp_path / "log_input_20180715_000000000000.csv", [*lines, *bad])
    report = _ingest(path, tmp_path / "store")
    assert report.input_rows_read == len(lines) - 1 + len(bad)
    assert report.input_rows_rejected == len(bad)
    assert report.input_rows_written == len(lines) - 1
    rejected = read_rejected(tmp_path / "store").to_pandas()
    reasons = dict(zip(rejected["line"], rejected["reason"], strict=True))
    first_bad = len(lines) + 1
    assert reasons[first_bad] == "session_position: 0 outside 1..127"
    assert reasons[first_bad + 1] == "session_position 12 > session_length 10"
    assert reasons[first_bad + 2] == "session_id: empty id"
    assert "quote" in reasons[first_bad + 3]
    assert reasons[first_bad + 4] == "session_length: not an integer: 'ten'"
    assert reasons[first_bad + 5].startswith("wrong number of fields: 3 instead of 4")
    assert reasons[first_bad + 6] == "blank line (no fields)"
    assert reasons[first_bad + 7] == "session_length: 200 outside 1..127"
    assert set(rejected["source"]) == {str(path)}


def test_reingesting_the_same_files_changes_nothing(tmp_path):
    release = write_release(tmp_path / "release")
    store = tmp_path / "store"
    _ingest(release, store)
    before = store_files(store)
    manifest = json.loads((store / "manifest.json").read_text())
    again = _ingest(release, store)
    assert set(again.already_ingested) == {s.name for s in again.sources}
    assert again.input_rows_written == sum(n - n // 2 for n in CHALLENGE.values())
    after = store_files(store)
    assert before.keys() == after.keys()
    assert all(before[k].equals(after[k]) for k in before)
    assert json.loads((store / "manifest.json").read_text()) == manifest
    # a copy under another name (and inside an archive) is the same source
    archive = _pack(
        {f"test_set/{p.name}": p for p in sorted((release / "test_set").iterdir())},
        tmp_path / "copy.tar.gz",
    )
    _ingest(archive, store)
    assert store_files(store).keys() == before.keys()


def test_the_same_bytes_as_training_log_and_prehistory_are_two_sources(tmp_path):
    lines = training_lines(TRAINING)
    training = _write(tmp_path / "in/log_0_20180715_000000000000.csv", lines)
    prehistory = _write(tmp_path / "in/log_prehistory_20180715_000000000000.csv", lines)
    report = _ingest([training, prehistory], tmp_path / "store")
    assert not report.already_ingested
    assert report.log_rows_written == report.prehistory_rows_written == len(lines) - 1
    assert set(load_table(tmp_path / "store").column("session_id").to_pylist()) == set(TRAINING)
    assert set(_plays(tmp_path / "store")["session_id"]) == set(TRAINING)


def test_a_crash_during_a_challenge_commit_is_rolled_forward(tmp_path, monkeypatch):
    release = write_release(tmp_path / "release")
    _ingest(release / "test_set", tmp_path / "reference", flush_rows=7)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        if ".staging" in str(src) and "challenge" in str(dst):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # dies between two renames of one source
        return real_replace(src, dst)

    monkeypatch.setattr(fspath_module.os, "replace", flaky_replace)
    with pytest.raises(KeyboardInterrupt):
        _ingest(release / "test_set", tmp_path / "store", flush_rows=7)
    monkeypatch.setattr(fspath_module.os, "replace", real_replace)
    assert len(list((tmp_path / "store/.staging").glob("*/COMMIT.json"))) == 1
    _ingest(release / "test_set", tmp_path / "store", flush_rows=7)
    want, got = store_files(tmp_path / "reference"), store_files(tmp_path / "store")
    assert want.keys() == got.keys()
    assert all(want[k].equals(got[k]) for k in want)
    pd.testing.assert_frame_equal(_plays(tmp_path / "store"), _plays(tmp_path / "reference"))


# -- the loader --------------------------------------------------------------------------------


def test_lags_across_the_half_boundary(tmp_path):
    sid, length = "0_c1", 10
    skips = _skips(sid, length)
    pre = [LOG_HEADER] + [
        _log_row(sid, p, length, _track(sid, p), skips[p - 1], reason=f"r{p}") for p in range(1, 6)
    ]
    given = [INPUT_HEADER] + [f"{sid},{_track(sid, p)},{p},{length}" for p in range(6, 10)]
    given.append(f"{sid},t_unknown,10,{length}")  # a track without features
    folder = tmp_path / "test_set"
    _write(folder / "log_prehistory_20180715_000000000000.csv", pre)
    _write(folder / "log_input_20180715_000000000000.csv", given)
    _write(tmp_path / "tf.csv", tracks_lines({sid: length}))
    _ingest([folder, tmp_path / "tf.csv"], tmp_path / "store")
    frame = _plays(tmp_path / "store")
    assert list(frame.columns) == challenge_schema().names
    plays = frame.set_index("session_position")
    assert list(plays.index) == list(range(1, 11))
    assert list(plays["is_input"]) == [False] * 5 + [True] * 5
    # hand-checked: skips of positions 1..5 are known, 6..10 are not
    assert [bool(v) for v in plays.loc[1:5, "skip_2"]] == skips[:5]
    assert plays.loc[6:, "skip_2"].isna().all() and plays.loc[6:, "date"].isna().all()
    assert plays.loc[6, "prev_skip_2"] == skips[4]  # the last prehistory play
    assert plays.loc[6, "prev2_skip_2"] == skips[3]
    assert plays.loc[6, "prev_hist_user_behavior_reason_end"] == "r5"
    assert pd.isna(plays.loc[7, "prev_skip_2"])  # its predecessor is an input play
    assert plays.loc[7, "prev2_skip_2"] == skips[4]  # two back: still the prehistory
    assert plays.loc[8:, ["prev_skip_2", "prev2_skip_2", "prev_not_skipped"]].isna().all().all()
    assert pd.isna(plays.loc[1, "prev_skip_2"]) and pd.isna(plays.loc[2, "prev2_skip_2"])
    # features: the play's own and the previous track's, whatever half it is in
    assert plays.loc[6, "danceability"] == pytest.approx(0.06)
    assert plays.loc[6, "prev_danceability"] == pytest.approx(0.05)
    assert plays.loc[7, "prev_danceability"] == pytest.approx(0.06)
    assert plays.loc[7, "prev_track_id_clean"] == _track(sid, 6)
    assert pd.isna(plays.loc[10, "danceability"])
    assert plays.loc[10, "prev_danceability"] == pytest.approx(0.09)
    assert pd.isna(plays.loc[6, "weekday"])  # an input play has no date
    assert plays.loc[5, "weekday"] == 6  # 2018-07-15 was a Sunday


def test_sessions_with_one_half_and_wrong_halves_are_counted(tmp_path):
    pre = dict(CHALLENGE)
    given = {"0_c1": 10, "0_c2": 11, "0_only_input": 12}
    folder = tmp_path / "test_set"
    _write(folder / "log_prehistory_20180715_000000000000.csv", prehistory_lines(pre))
    lines = input_lines(given, ["0_only_input", "0_c2", "0_c1"])
    lines.append("0_c1,t_x,3,10")  # an input play of the first half
    _write(folder / "log_input_20180715_000000000000.csv", lines)
    report = _ingest(folder, tmp_path / "store")
    summary = report.challenge
    assert summary["sessions_without_prehistory"] == 1
    assert summary["sessions_without_prehistory_listed"] == ["0_only_input"]
    assert summary["sessions_without_input"] == 2
    assert summary["sessions_without_input_listed"] == ["0_c3", "0_c4"]
    assert summary["plays_with_missing_track"] is None  # no track table yet
    assert summary["integrity"]["input_plays_outside_half"] == 1
    challenge = load_challenge(tmp_path / "store")
    assert challenge.order == ("0_only_input", "0_c2", "0_c1")
    assert challenge.sessions_without_prehistory == ("0_only_input",)
    assert challenge.sessions_without_input == ("0_c3", "0_c4")
    assert challenge.half_mismatch_plays == 1
    assert challenge.duplicate_plays == 2  # position 3 of 0_c1, in both halves
    c1 = challenge.plays[challenge.plays.session_id == "0_c1"].set_index("session_position")
    assert pd.isna(c1.loc[4, "prev_skip_2"])  # position 3 is ambiguous: no lag


def test_subsets_by_fraction_and_by_session(tmp_path):
    many = {f"{k % 10}_s{k:03d}": 10 + k % 11 for k in range(60)}
    order = sorted(many, key=lambda s: s[::-1])
    folder = tmp_path / "test_set"
    _write(folder / "log_prehistory_20180715_000000000000.csv", prehistory_lines(many))
    _write(folder / "log_input_20180715_000000000000.csv", input_lines(many, order))
    _ingest(folder, tmp_path / "store")
    full = load_challenge(tmp_path / "store", features=False, lags=1)
    assert full.order == tuple(order)
    keys = full.plays[["session_id", "session_position"]]
    assert keys.equals(keys.sort_values(["session_id", "session_position"]))  # across buckets
    half = load_challenge(tmp_path / "store", features=False, lags=1, fraction=0.3, seed=5)
    again = load_challenge(tmp_path / "store", features=False, lags=1, fraction=0.3, seed=5)
    pd.testing.assert_frame_equal(half.plays, again.plays)
    assert half.order == again.order
    assert 0 < len(half.order) < len(order)
    assert [s for s in order if s in set(half.order)] == list(half.order)
    assert set(half.plays.session_id) == set(half.order)
    chosen = load_challenge(tmp_path / "store", sessions=[order[3], order[1]])
    assert chosen.order == (order[1], order[3])
    assert set(chosen.plays.session_id) == {order[1], order[3]}
    with pytest.raises(SkipmodelError, match="not in the challenge set"):
        load_challenge(tmp_path / "store", sessions=["0_nope"])
    with pytest.raises(SkipmodelError, match="either sessions= or fraction="):
        load_challenge(tmp_path / "store", sessions=[order[0]], fraction=0.5)
    with pytest.raises(SkipmodelError, match="unknown track feature"):
        load_challenge(tmp_path / "store", features=["loudnesss"])
    with pytest.raises(SkipmodelError, match="lags must be 0, 1 or 2"):
        iter_challenge(tmp_path / "store", lags=3)  # checked before any bucket is read
    tables = list(iter_challenge(tmp_path / "store", features=False, lags=1))
    assert sum(t.num_rows for t in tables) == len(full.plays)


def test_stores_without_challenge_data(tmp_path):
    release = write_release(tmp_path / "release")
    _ingest([release / "training_set", release / "track_features"], tmp_path / "plain")
    manifest = json.loads((tmp_path / "plain/manifest.json").read_text())
    assert "challenge" not in manifest and manifest["totals"]["input_rows_read"] == 0
    with pytest.raises(SkipmodelError, match="holds no challenge data"):
        load_challenge(tmp_path / "plain")
    # a store written before the challenge kinds existed takes challenge files
    old = tmp_path / "old"
    logs = logs_from_csv_text(tmp_path, training_lines(TRAINING))
    write_store(old, logs, n_buckets=4)
    before = load_pandas(old, features=False)
    _ingest(release / "test_set", old)
    pd.testing.assert_frame_equal(load_pandas(old, features=False), before)
    assert load_challenge(old).order == tuple(INPUT_ORDER)


def logs_from_csv_text(tmp_path: Path, lines: list[str]):
    return logs_from_csv(_write(tmp_path / "logs_by_hand.csv", lines))


def test_compaction_leaves_the_challenge_folders_alone(tmp_path):
    release = write_release(tmp_path / "release")
    _ingest(release, tmp_path / "store", compact=False)
    challenge = {
        k: v for k, v in store_files(tmp_path / "store").items() if k.startswith("challenge/")
    }
    assert challenge
    report = compact(tmp_path / "store")
    assert report.buckets_compacted > 0
    after = store_files(tmp_path / "store")
    assert {k: v for k, v in after.items() if k.startswith("challenge/")}.keys() == challenge.keys()
    assert all(after[k].equals(v) for k, v in challenge.items())
    assert all(
        "part-compact-" in k for k in after if k.startswith("sessions/")
    )  # the training buckets were compacted
    assert load_challenge(tmp_path / "store").order == tuple(INPUT_ORDER)


# -- real-format fixtures ----------------------------------------------------------------------


def test_real_excerpt_split_into_halves_loads_back_whole(tmp_path, mssd_dir):
    lines = (mssd_dir / MINI).read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    col = {name: i for i, name in enumerate(header)}
    first = [
        r for r in rows if int(r[col["session_position"]]) <= int(r[col["session_length"]]) // 2
    ]
    second = [r for r in rows if r not in first]
    sessions = list(dict.fromkeys(r[0] for r in second))
    shuffled = [sessions[i] for i in np.random.default_rng(3).permutation(len(sessions))]
    assert shuffled != sorted(shuffled)
    keep = ["session_id", "track_id_clean", "session_position", "session_length"]
    input_rows = [
        ",".join(r[col[c]] for c in keep) for sid in shuffled for r in second if r[0] == sid
    ]
    folder = tmp_path / "test_set"
    _write(
        folder / "log_prehistory_20180715_000000000000.csv",
        [lines[0]] + [",".join(r) for r in first],
    )
    _write(folder / "log_input_20180715_000000000000.csv", [",".join(keep), *input_rows])
    report = _ingest([folder, mssd_dir / TRACKS], tmp_path / "store")
    assert report.prehistory_rows_written == len(first)
    assert report.input_rows_written == len(second)
    assert report.challenge["sessions_without_input"] == 0
    challenge = load_challenge(tmp_path / "store")
    assert challenge.order == tuple(shuffled)
    assert challenge.half_mismatch_plays == challenge.duplicate_plays == 0
    plays = challenge.plays
    assert len(plays) == len(rows)

    # the same sessions whole, as training logs, through the training loader
    write_store(
        tmp_path / "whole",
        logs_from_csv(mssd_dir / MINI),
        tracks_from_csv(mssd_dir / TRACKS),
        n_buckets=4,
    )
    whole = load_pandas(tmp_path / "whole", lags=2)
    key = ["session_id", "session_position"]
    plays = plays.sort_values(key).reset_index(drop=True)
    whole = whole.sort_values(key).reset_index(drop=True)
    assert (plays[key] == whole[key]).all().all()
    known = ~plays["is_input"]
    unknown_outcome = plays["is_input"]
    for name in whole.columns:
        got, want = plays[name], whole[name]
        if name in LOG_COLUMNS and name not in keep:
            # an input play reveals none of its log columns but the four
            assert got[unknown_outcome].isna().all(), name
            _same(got[known], want[known], name)
        elif (
            name.startswith(("prev_", "prev2_"))
            and name.split("_", 1)[1] in LOG_COLUMNS
            and name != "prev_track_id_clean"
        ):
            # a lagged log column is known when its source play is a prehistory play
            k = 2 if name.startswith("prev2_") else 1
            source_known = ~plays["is_input"].groupby(plays["session_id"]).shift(k, fill_value=True)
            _same(got[source_known], want[source_known], name)
            assert got[~source_known].isna().all(), name
        else:  # the keys, features, weekday of known dates and the previous track
            rows = known if name == "weekday" else slice(None)
            _same(got[rows], want[rows], name)


def _same(got: pd.Series, want: pd.Series, name: str) -> None:
    got = got.reset_index(drop=True).astype(object)
    want = want.reset_index(drop=True).astype(object)
    assert got.isna().equals(want.isna()), name
    both = ~got.isna()
    assert (got[both] == want[both]).all(), name
