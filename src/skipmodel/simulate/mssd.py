"""``skipmodel simulate``: MSSD-format session logs and track features from a known model.

Writes, in ``OUT/``:

- ``training_set.tar.gz`` with ``training_set/log_<k>_<yyyymmdd>_000000000000.csv`` (k = 0..9
  per day, as the release has them), in the real text format;
- ``track_features.tar.gz`` with ``track_features/tf_<nnnnnnnnnnnn>.csv``;
- ``truth.json``, every true parameter (see :mod:`skipmodel.simulate.sessions` for the skip
  model and :mod:`skipmodel.simulate.tracks` for the feature DAG), and
  ``truth_tracks.parquet`` with each track's true random intercept and play count (every
  simulated play, challenge sessions included);
- with ``session_sd`` S > 0, ``truth_sessions.parquet``: per session (file order, challenge
  sessions included) ``session_id``, its true ``propensity`` (the logit-scale intercept of every
  play of the session, drawn normal(0, S²)), ``challenge`` (held out in the test set), ``plays``
  and ``skip_2`` (its count of skipped plays). With S = 0 it is not written (and one left by an
  earlier run is removed), and every other file is byte for byte what it was before sessions
  had propensities; ``truth.json`` gains only the keys named below. Beside it
  ``truth_plays.parquet``: per play (challenge plays included) ``session_id``,
  ``session_position`` and the true skip_2 ``logit`` it was drawn from (propensity included), so
  a benchmark can score predictions against the true probabilities.

With ``challenge_fraction`` F > 0, a share F of the sessions is left out of the training logs and
written in the WSDM Cup 2019 test set's layout instead (see :mod:`skipmodel.simulate.challenge`
for the split and the orders):

- ``test_set.tar.gz`` with, per day that has challenge sessions, the pair
  ``test_set/log_prehistory_<yyyymmdd>_000000000000.csv`` (first halves, every log column, the
  training logs' header) and ``test_set/log_input_<yyyymmdd>_000000000000.csv`` (second halves,
  header ``session_id,track_id_clean,session_position,session_length``, sessions in a seeded
  shuffled order);
- ``challenge_truth.csv`` (``session_id,session_position,skip_2``), beside the archive so that
  ingesting ``test_set.tar.gz`` never meets it: every second-half play, sessions in the order of
  the ``log_input`` files taken in name (= date) order, positions ascending.

Challenge sessions are drawn with the same seed from the same simulated plays, so the training,
prehistory and input plays of any F together are exactly the plays of F = 0. With F = 0 neither
file is written (and one left by an earlier run in ``OUT/`` is removed).

The output is byte-for-byte identical for the same arguments (fixed tar and gzip times).

``truth.json`` keys
-------------------
``arguments``
    The call's arguments (sessions, seed, tracks, start_date, days, files_per_day,
    challenge_fraction, session_sd, structure: the preset's name).
``skip_model``
    ``formula`` (the linear predictor in these key names), ``reference`` (what the intercept
    means; how each effect is centred), ``intercept``, ``weekday_effect`` (Mon..Sun, sum 0),
    ``hour_effect`` ("0".."23", smooth, cyclic, sum 0), ``position_effect`` ("1".."20", smooth,
    mean 0), ``context_type_effect`` (sum 0), ``premium_effect`` and ``shuffle_effect`` (for
    true), ``markov`` (``prev_skip_2``; ``no_previous`` at position 1), ``danceability``
    (``main_effect``, ``prev_x_current``, ``abs_change`` on ``z`` standardised with the
    recorded ``standardise_mean``/``standardise_sd``), ``smooth_effects`` (per feature: ``x``,
    ``scale``, ``grid`` and ``effect`` on it), ``track_effect`` (``sd``; the values are in
    ``truth_tracks.parquet``), ``session_effect`` (``sd``; with sd > 0 the values are in
    ``truth_sessions.parquet`` and ``formula`` ends in the session term), ``no_effect_columns``,
    ``structure`` (the :class:`~skipmodel.simulate.structure.Structure` used: track-effect
    distribution, Zipf exponent and offset, duration form, session-length mix and shares, the
    effect sizes it replaced).
``track_feature_dag``
    ``scale``, ``nodes`` (name, log_scale, analysis-scale mean and sd, clipped fraction),
    ``edges`` (from, to, weight on the standardised and on the analysis scale),
    ``independent_features``, ``cpdag_edges`` (from, to, type ``-->``/``---``) and
    ``implied_correlation`` (names, matrix).
``empirical``
    Realised counts and rates of this run over every simulated play, challenge sessions
    included (sessions, plays, tracks played, training log files, skip rates), and the split:
    ``training_sessions``, ``training_plays``, ``challenge_sessions``, ``prehistory_plays``,
    ``input_plays`` (training + prehistory + input plays = plays) and ``test_set_files``;
    ``session_propensity_sd`` (the population sd of the drawn propensities, 0 when S = 0) and
    ``session_skip_2_rate_sd`` (the sd over sessions of each session's skip_2 rate, which a
    propensity spreads out).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skipmodel.errors import SkipmodelError
from skipmodel.progress import Progress
from skipmodel.simulate.challenge import (
    ChallengeWriter,
    challenge_count,
    choose_challenge_sessions,
)
from skipmodel.simulate.files import (
    csv_bytes,
    format_floats,
    tar_gz_writer,
    uuid4_strings,
    write_tar_gz,
)
from skipmodel.simulate.sessions import (
    Plays,
    SessionPlan,
    TrueEffects,
    draw_propensity,
    effects_truth,
    make_catalogue,
    plan_sessions,
    simulate_plays,
)
from skipmodel.simulate.structure import Structure, get_structure
from skipmodel.simulate.tracks import dag_truth, simulate_track_features, track_feature_table
from skipmodel.store.layout import atomic_path
from skipmodel.store.schema import (
    CONTEXT_TYPES,
    LOG_COLUMNS,
    REASONS_END,
    REASONS_START,
    SKIP_OUTCOMES,
    TRACK_COLUMNS,
)

__all__ = ["SimulationResult", "TrueEffects", "simulate"]

TRUTH_VERSION = 1
TF_ROWS_PER_FILE = 50_000
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` wrote and a few headline numbers.

    ``n_sessions`` and ``n_plays`` count every simulated session and play; with a challenge
    fraction, ``n_training_plays + n_prehistory_plays + n_input_plays == n_plays``.
    ``test_set`` and ``challenge_truth`` are None when no challenge set was written, and
    ``truth_sessions`` when the session sd is 0.
    """

    out: Path
    training_set: Path
    track_features: Path
    truth: Path
    truth_tracks: Path
    n_sessions: int
    n_plays: int
    n_tracks: int
    n_log_files: int
    skip_2_rate: float
    seconds: float
    test_set: Path | None = None
    challenge_truth: Path | None = None
    n_challenge_sessions: int = 0
    n_training_plays: int = 0
    n_prehistory_plays: int = 0
    n_input_plays: int = 0
    n_test_files: int = 0
    session_sd: float = 0.0
    truth_sessions: Path | None = None


# --- tables ---------------------------------------------------------------------------------


def _take_plays(plays: Plays, rows: np.ndarray) -> Plays:
    """The plays at ``rows`` (indices or a mask); ``session`` still indexes the day's plan."""
    return Plays(**{f.name: getattr(plays, f.name)[rows] for f in fields(Plays)})


def _log_table(plays: Plays, rows: slice, session_ids: pa.Array, track_ids: pa.Array) -> pa.Table:
    """One log file's rows in the real column order and text types."""

    def labels(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
        return pa.array(list(names), pa.string()).take(pa.array(codes[rows]))

    columns = {
        "session_id": session_ids.take(pa.array(plays.session[rows])),
        "session_position": pa.array(plays.position[rows]),
        "session_length": pa.array(plays.length[rows]),
        "track_id_clean": track_ids.take(pa.array(plays.track[rows])),
        "skip_1": pa.array(plays.skip_1[rows]),
        "skip_2": pa.array(plays.skip_2[rows]),
        "skip_3": pa.array(plays.skip_3[rows]),
        "not_skipped": pa.array(plays.not_skipped[rows]),
        "context_switch": pa.array(plays.context_switch[rows]),
        "no_pause_before_play": pa.array(plays.no_pause[rows]),
        "short_pause_before_play": pa.array(plays.short_pause[rows]),
        "long_pause_before_play": pa.array(plays.long_pause[rows]),
        "hist_user_behavior_n_seekfwd": pa.array(plays.seekfwd[rows]),
        "hist_user_behavior_n_seekback": pa.array(plays.seekback[rows]),
        "hist_user_behavior_is_shuffle": pa.array(plays.shuffle[rows]),
        "hour_of_day": pa.array(plays.hour[rows]),
        "date": pa.array(plays.date[rows], pa.int32()).cast(pa.date32()),
        "premium": pa.array(plays.premium[rows]),
        "context_type": labels(CONTEXT_TYPES, plays.context),
        "hist_user_behavior_reason_start": labels(REASONS_START, plays.reason_start),
        "hist_user_behavior_reason_end": labels(REASONS_END, plays.reason_end),
    }
    assert tuple(columns) == LOG_COLUMNS
    return pa.table(columns)


def _tf_text_table(table: pa.Table) -> pa.Table:
    """Float columns as ``repr``-style text so the file reads like the release's."""
    arrays = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_floating(col.type):
            arrays.append(format_floats(col.to_numpy()))
        else:
            arrays.append(col.combine_chunks())
    return pa.Table.from_arrays(arrays, names=table.column_names)


# --- the public API -------------------------------------------------------------------------


def _parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise SkipmodelError(f"--start-date {value!r} is not a date; use YYYY-MM-DD") from None


def simulate(
    out: str | Path,
    *,
    sessions: int = 20_000,
    seed: int = 0,
    tracks: int | None = None,
    start_date: str | dt.date = "2018-07-15",
    days: int = 7,
    files_per_day: int = 10,
    effects: TrueEffects | None = None,
    challenge_fraction: float = 0.0,
    session_sd: float | None = None,
    structure: str | Structure = "default",
) -> SimulationResult:
    """Simulate MSSD-format session logs and track features with a known skip model.

    Parameters
    ----------
    out
        Output directory (created if needed); existing outputs of a previous run are replaced.
    sessions
        Number of listening sessions (each 10..20 plays, about 16.5 on average).
    seed
        Seed of every random draw; the same arguments give the same bytes.
    tracks
        Size of the track catalogue; default ``clip(2 * sessions, 1000, 200000)``.
    start_date, days
        The log files cover ``days`` consecutive days from ``start_date`` (7 days give every
        weekday).
    files_per_day
        Log files per day (``log_0_..`` to ``log_9_..`` in the release); fewer when a day has
        fewer sessions than files.
    effects
        The true skip model; default :class:`TrueEffects()`.
    challenge_fraction
        Share of the sessions, in [0, 1), written as the challenge's test set
        (``test_set.tar.gz`` and ``challenge_truth.csv``, see the module docstring) instead of
        into the training logs: ``round(F * sessions)`` sessions, at least 1 when F > 0 and at
        most ``sessions - 1``, chosen from the seed.
    session_sd
        Sd S of the per-session propensity, a logit-scale intercept drawn normal(0, S²) for
        each session and added to the skip logit of each of its plays (challenge halves
        included); finite and >= 0. None takes ``effects.session_sd`` (0 for the default
        effects: no propensity, the same files as without it). The intercept is not
        re-calibrated: the marginal skip rate moves with S. The values are written to
        ``truth_sessions.parquet`` when S > 0.
    structure
        How the data are shaped: a preset of :data:`skipmodel.simulate.structure.STRUCTURES`
        (``default``, ``strong``, ``heavy``, ``mixture``) or a
        :class:`~skipmodel.simulate.structure.Structure`: the track-effect distribution, the
        plays-per-track power law, the duration effect's form, the session-length mix, and
        effect sizes that replace those of ``effects``. ``default`` writes the same files as
        without it.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> result = simulate("data/demo", sessions=2000, seed=1)  # doctest: +SKIP
    >>> result.n_plays  # doctest: +SKIP
    33087
    >>> held = simulate("data/demo", sessions=2000, seed=1, challenge_fraction=0.1)  # doctest: +SKIP
    >>> held.n_challenge_sessions, held.test_set.name  # doctest: +SKIP
    (200, 'test_set.tar.gz')
    >>> moody = simulate("data/demo", sessions=2000, session_sd=0.8)  # doctest: +SKIP
    >>> moody.truth_sessions.name  # doctest: +SKIP
    'truth_sessions.parquet'
    """
    started = time.perf_counter()
    if sessions < 1:
        raise SkipmodelError(f"--sessions must be at least 1, got {sessions}")
    if days < 1:
        raise SkipmodelError(f"--days must be at least 1, got {days}")
    if not 1 <= files_per_day <= 1000:
        raise SkipmodelError(f"files per day must be 1..1000, got {files_per_day}")
    n_tracks = int(np.clip(2 * sessions, 1000, 200_000)) if tracks is None else tracks
    if n_tracks < 50:
        raise SkipmodelError(f"--tracks must be at least 50, got {n_tracks}")
    if seed < 0:
        raise SkipmodelError(f"--seed must be >= 0, got {seed}")
    n_challenge = challenge_count(challenge_fraction, sessions)
    first = _parse_date(start_date)
    shape = get_structure(structure)
    effects = shape.apply(effects if effects is not None else TrueEffects())
    if session_sd is not None:
        if not (np.isfinite(session_sd) and session_sd >= 0):  # also rejects NaN
            raise SkipmodelError(f"--session-sd must be finite and >= 0, got {session_sd}")
        effects = replace(effects, session_sd=float(session_sd))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SkipmodelError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)

    # A fifth stream for the challenge split and a sixth for the session propensities leave
    # the first four (and so every play at session sd 0) as they are without them.
    rng_tracks, rng_ids, rng_plan, rng_plays, rng_challenge, rng_mood = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    )
    # Tracks: features from the DAG, ids, random intercepts, play weights.
    features, clipped = simulate_track_features(rng_tracks, n_tracks)
    track_ids = pa.array(np.char.add(b"t_", uuid4_strings(rng_ids, n_tracks)).astype(str))
    catalogue = make_catalogue(
        rng_tracks,
        danceability=features["danceability"],
        duration=features["duration"],
        popularity=features["us_popularity_estimate"],
        track_sd=effects.track_sd,
        structure=shape,
    )

    # Sessions: day and file, then sorted by id within each file as the release is.
    first_day = (first - _EPOCH).days
    plan = plan_sessions(
        rng_plan,
        sessions,
        first_day=first_day,
        days=days,
        files_per_day=files_per_day,
        length_mix=shape.length_mix,
    )
    uuids = uuid4_strings(rng_ids, sessions)
    order = np.lexsort((uuids, plan.file_k, plan.day))
    plan = SessionPlan(*(getattr(plan, f)[order] for f in SessionPlan._fields()))
    uuids = uuids[order]
    # Drawn in file order, whatever the challenge split: a challenge session's two halves are
    # one simulated session and share its propensity.
    propensity = draw_propensity(rng_mood, sessions, effects.session_sd)
    is_challenge = choose_challenge_sessions(rng_challenge, sessions, n_challenge)
    # Compact the k's used by training sessions on each day to 0..m-1 so no file is empty;
    # a challenge session keeps its drawn k in its id (it belongs to no training file).
    file_code = plan.day.astype(np.int64) * files_per_day + plan.file_k
    used, train_rank = np.unique(file_code[~is_challenge], return_inverse=True)
    day_of_used = used // files_per_day
    k_of_used = np.arange(len(used)) - np.searchsorted(day_of_used, day_of_used)
    file_rank = np.full(sessions, -1, dtype=np.int64)
    file_rank[~is_challenge] = train_rank
    k = np.where(is_challenge, plan.file_k, k_of_used[np.maximum(file_rank, 0)])
    session_ids = pa.array(
        np.char.add(np.char.add(k.astype("S4"), b"_"), uuids).astype(str), pa.string()
    )

    # Sessions are simulated one day at a time (memory bounded by a day's plays) and written
    # as one CSV per (day, k), and for challenge sessions as one file pair per day.
    day_bounds = np.searchsorted(plan.day, np.arange(days + 1))
    plays_per_track = np.zeros(n_tracks, dtype=np.int64)
    skips_per_session = np.zeros(sessions, dtype=np.int64)
    sums = dict.fromkeys(("plays", *SKIP_OUTCOMES, "logit"), 0.0)
    n_training_plays = 0
    true_logits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    training_set = out / "training_set.tar.gz"
    test_set = out / "test_set.tar.gz" if n_challenge else None
    challenge_truth = out / "challenge_truth.csv" if n_challenge else None
    held_out: ChallengeWriter | None = None
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(Progress("simulate", unit="sessions", total=sessions))
        add_training = stack.enter_context(tar_gz_writer(training_set, "training_set"))
        if test_set is not None and challenge_truth is not None:
            held_out = stack.enter_context(
                ChallengeWriter(test_set, challenge_truth, rng_challenge)
            )
        for d in range(days):
            lo, hi = int(day_bounds[d]), int(day_bounds[d + 1])
            if lo == hi:
                continue
            day_plan = SessionPlan(*(getattr(plan, f)[lo:hi] for f in SessionPlan._fields()))
            plays = simulate_plays(
                rng_plays, day_plan, catalogue, effects, propensity=propensity[lo:hi]
            )
            plays_per_track[:] += np.bincount(plays.track, minlength=n_tracks)
            skips_per_session[lo:hi] = np.bincount(
                plays.session, weights=plays.skip_2, minlength=hi - lo
            ).astype(np.int64)
            sums["plays"] += len(plays.position)
            sums["logit"] += float(plays.logit.sum())
            if effects.session_sd > 0:
                true_logits.append((lo + plays.session, plays.position, plays.logit))
            for outcome in SKIP_OUTCOMES:
                sums[outcome] += int(getattr(plays, outcome).sum())
            day_ids = session_ids.slice(lo, hi - lo)
            date = _EPOCH + dt.timedelta(days=int(first_day + d))
            row_challenge = is_challenge[lo + plays.session]
            if held_out is not None and row_challenge.any():
                held = _take_plays(plays, row_challenge)
                held_out.add_day(date, _log_table(held, slice(None), day_ids, track_ids))
                plays = _take_plays(plays, ~row_challenge)
            n_training_plays += len(plays.position)
            # Training rows are in file order: sessions are sorted by (day, k, id).
            row_file = file_rank[lo + plays.session]
            files = np.unique(row_file)
            if len(files):
                row_bounds = np.searchsorted(row_file, np.append(files, files[-1] + 1))
                for f, r_lo, r_hi in zip(files, row_bounds[:-1], row_bounds[1:], strict=True):
                    table = _log_table(plays, slice(r_lo, r_hi), day_ids, track_ids)
                    add_training(
                        f"log_{k_of_used[f]}_{date:%Y%m%d}_000000000000.csv", csv_bytes(table)
                    )
            bar.advance(hi - lo)
    if not n_challenge:  # outputs of an earlier run with a challenge set would contradict truth
        (out / "test_set.tar.gz").unlink(missing_ok=True)
        (out / "challenge_truth.csv").unlink(missing_ok=True)
    if effects.session_sd == 0:  # nor would an earlier run's session propensities
        (out / "truth_sessions.parquet").unlink(missing_ok=True)
    n_plays = int(sums["plays"])
    split = {  # empty when no challenge set is written
        "challenge_sessions": 0 if held_out is None else held_out.n_sessions,
        "prehistory_plays": 0 if held_out is None else held_out.n_prehistory_plays,
        "input_plays": 0 if held_out is None else held_out.n_input_plays,
        "test_set_files": 0 if held_out is None else held_out.n_files,
    }
    assert split["challenge_sessions"] == n_challenge
    assert n_training_plays + split["prehistory_plays"] + split["input_plays"] == n_plays

    # Track features: the whole catalogue, TF_ROWS_PER_FILE rows per file.
    tf = track_feature_table(track_ids, features)
    assert tuple(tf.column_names) == TRACK_COLUMNS
    tf_files = (
        (f"tf_{i:012d}.csv", csv_bytes(_tf_text_table(tf.slice(lo, TF_ROWS_PER_FILE))))
        for i, lo in enumerate(range(0, n_tracks, TF_ROWS_PER_FILE))
    )
    track_features = out / "track_features.tar.gz"
    n_tf_files = write_tar_gz(track_features, "track_features", tf_files)

    # Truth.
    truth_tracks = out / "truth_tracks.parquet"
    with atomic_path(truth_tracks) as tmp:
        pq.write_table(
            pa.table(
                {
                    "track_id": track_ids,
                    "intercept": pa.array(catalogue.intercept),
                    "plays": pa.array(plays_per_track),
                }
            ),
            tmp,
            compression="zstd",
        )
    truth_sessions = out / "truth_sessions.parquet" if effects.session_sd > 0 else None
    if truth_sessions is not None:
        with atomic_path(truth_sessions) as tmp:
            pq.write_table(
                pa.table(
                    {
                        "session_id": session_ids,
                        "propensity": pa.array(propensity),
                        "challenge": pa.array(is_challenge),
                        "plays": pa.array(plan.length.astype(np.int8)),
                        "skip_2": pa.array(skips_per_session.astype(np.int8)),
                    }
                ),
                tmp,
                compression="zstd",
            )
    truth_plays = out / "truth_plays.parquet"
    if truth_sessions is None:
        truth_plays.unlink(missing_ok=True)
    else:
        session_of, position_of, logit_of = (
            np.concatenate(x) for x in zip(*true_logits, strict=True)
        )
        with atomic_path(truth_plays) as tmp:
            pq.write_table(
                pa.table(
                    {
                        "session_id": session_ids.take(pa.array(session_of)),
                        "session_position": pa.array(position_of.astype(np.int8)),
                        "logit": pa.array(logit_of),
                    }
                ),
                tmp,
                compression="zstd",
            )
    skip_2_rate = sums["skip_2"] / n_plays
    truth = {
        "truth_version": TRUTH_VERSION,
        "generator": "skipmodel.simulate.mssd",
        "arguments": {
            "sessions": sessions,
            "seed": seed,
            "tracks": n_tracks,
            "start_date": first.isoformat(),
            "days": days,
            "files_per_day": files_per_day,
            "challenge_fraction": float(challenge_fraction),
            "session_sd": effects.session_sd,
            "structure": shape.name,
        },
        "skip_model": {**effects_truth(effects, catalogue), "structure": shape.truth()},
        "track_feature_dag": dag_truth(clipped),
        "empirical": {
            "sessions": sessions,
            "plays": n_plays,
            "tracks_played": int((plays_per_track > 0).sum()),
            "log_files": len(used),
            "tf_files": n_tf_files,
            **{f"{o}_rate": sums[o] / n_plays for o in SKIP_OUTCOMES},
            "mean_true_logit": sums["logit"] / n_plays,
            "training_sessions": sessions - n_challenge,
            "training_plays": n_training_plays,
            **split,
            "session_propensity_sd": float(propensity.std()),
            "session_skip_2_rate_sd": float((skips_per_session / plan.length).std()),
        },
    }
    truth_path = out / "truth.json"
    with atomic_path(truth_path) as tmp:
        tmp.write_text(json.dumps(truth, indent=1, allow_nan=False) + "\n")
    return SimulationResult(
        out=out,
        training_set=training_set,
        track_features=track_features,
        truth=truth_path,
        truth_tracks=truth_tracks,
        n_sessions=sessions,
        n_plays=n_plays,
        n_tracks=n_tracks,
        n_log_files=len(used),
        skip_2_rate=skip_2_rate,
        seconds=time.perf_counter() - started,
        test_set=test_set,
        challenge_truth=challenge_truth,
        n_challenge_sessions=n_challenge,
        n_training_plays=n_training_plays,
        n_prehistory_plays=split["prehistory_plays"],
        n_input_plays=split["input_plays"],
        n_test_files=split["test_set_files"],
        session_sd=effects.session_sd,
        truth_sessions=truth_sessions,
    )
