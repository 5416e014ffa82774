"""Simulated listening sessions: plays drawn position by position from a known skip model.

(Over 500 lines: the model's constants, its truth and the one draw loop read best side by side.)

The skip model (logit of ``P(skip_2)``) uses only what is known before the play starts (the
leakage rule in DESIGN.md; :data:`FORMULA` spells it in ``truth.json``'s key names)::

    logit P(skip_2) = intercept
        + weekday_effect[weekday(date)] + hour_effect[hour_of_day] + position_effect[position]
        + context_type_effect[context_type] + premium_effect * premium
        + shuffle_effect * is_shuffle
        + markov_prev_skip_2 * prev_skip_2            (positions >= 2)
        + markov_no_previous                          (position 1 only)
        + danceability_main * z_now
        + danceability_prev_x_now * z_prev * z_now    (positions >= 2)
        + danceability_abs_change * |z_now - z_prev|  (positions >= 2)
        + f_duration(log duration) + f_popularity(us_popularity_estimate)
        + track_intercept[track]
        + session_propensity[session]                 (every play of the session)

with ``z = (danceability - mean) / sd`` on the catalogue's danceability mean and sd. The other
session columns (pauses, context_switch, reason_start) have no effect on skipping.
``skip_1``, ``skip_3``, ``not_skipped``, ``reason_end`` and the seek counts are then derived from
``skip_2`` with extra randomness, matching the published log_mini frequencies.

The session propensity (the listener's mood) is a logit-scale intercept per session drawn
normal(0, ``session_sd``²); it enters every play of the session, and through the Markov term
the outcomes that follow. ``session_sd = 0`` (the default) leaves it out. The intercept is not
re-calibrated for it: every effect keeps its conditional meaning (at propensity 0), and the
marginal skip rate moves with ``session_sd`` (a logit-normal mix; ``truth.json["empirical"]``
records the realised rates).

Sessions are simulated vectorised over sessions, looping over positions 1..20.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from skipmodel.simulate.structure import (
    LENGTH_MIXES,
    STRUCTURES,
    Structure,
    step_duration_curve,
    track_intercepts,
)
from skipmodel.store.schema import CONTEXT_TYPES, REASONS_END, REASONS_START, WEEKDAYS

#: The true linear predictor in the key names of ``truth.json["skip_model"]``.
FORMULA = (
    "logit P(skip_2) = intercept + weekday_effect[weekday(date)] + hour_effect[hour_of_day]"
    " + position_effect[session_position] + context_type_effect[context_type]"
    " + premium_effect * premium + shuffle_effect * hist_user_behavior_is_shuffle"
    " + markov.prev_skip_2 * prev_skip_2 (positions >= 2) + markov.no_previous (position 1)"
    " + danceability.main_effect * z + danceability.prev_x_current * z_prev * z"
    " + danceability.abs_change * |z - z_prev| (z_prev terms at positions >= 2)"
    " + smooth_effects.duration(log(duration))"
    " + smooth_effects.us_popularity_estimate(us_popularity_estimate)"
    " + track_intercept[track_id_clean] (truth_tracks.parquet; sd track_effect.sd)"
)
#: The session term of the linear predictor, appended to :data:`FORMULA` when its sd is > 0.
SESSION_FORMULA = (
    " + session_propensity[session_id] (every play; truth_sessions.parquet; sd session_effect.sd)"
)

# --- Published log_mini frequencies (../shared/fixtures/mssd/full_log_mini_stats.json) ---------
_CONTEXT_ROWS = {"user_collection": 67430, "catalog": 38263, "editorial_playlist": 35663,
                 "radio": 21107, "personalized_playlist": 2976, "charts": 2441}  # fmt: skip
_P_PREMIUM = 136053 / 167880
_P_SHUFFLE = 51830 / 167880
_P_SKIP1_GIVEN_SKIP2 = 70762 / 86824
_P_SKIP3_GIVEN_NOT_SKIP2 = (108850 - 86824) / 81056
_P_DONE_GIVEN_NOT_SKIP3 = 55884 / (167880 - 108850)
_P_SEEKFWD = 1 - 163216 / 167880
_P_SEEKBACK = 1 - 162705 / 167880

# reason_end given the skip pattern (rows: skip_2, skip_3 only, not_skipped, all false).
_REASON_END_P = {
    "skip_2": {"fwdbtn": 0.76, "backbtn": 0.15, "endplay": 0.079, "logout": 0.005,
               "remote": 0.0059, "clickrow": 0.0001},
    "skip_3_only": {"fwdbtn": 0.56, "endplay": 0.29, "backbtn": 0.13, "logout": 0.012,
                    "remote": 0.008},
    "not_skipped": {"trackdone": 0.975, "endplay": 0.02, "logout": 0.003, "remote": 0.002},
    "all_false": {"endplay": 0.5, "fwdbtn": 0.3, "backbtn": 0.1, "trackdone": 0.1},
}  # fmt: skip
# reason_start of the next play given this play's reason_end (the release's pattern).
_NEXT_START = {"fwdbtn": "fwdbtn", "trackdone": "trackdone", "backbtn": "backbtn",
               "endplay": "clickrow", "logout": "appload", "remote": "remote",
               "clickrow": "clickrow"}  # fmt: skip
_FIRST_START_P = {"clickrow": 0.42, "appload": 0.2, "trackdone": 0.2, "fwdbtn": 0.08,
                  "backbtn": 0.04, "playbtn": 0.03, "remote": 0.02, "trackerror": 0.005,
                  "endplay": 0.005}  # fmt: skip
_P_START_NOISE = 0.004  # reason_start replaced by a rare value (playbtn, remote, trackerror, ...)
# Pause patterns (no, short, long) before a play, from the real excerpts.
_PAUSES = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=np.int8)
_PAUSE_P_FIRST = np.array([0.45, 0.15, 0.15, 0.25])
_PAUSE_P_LATER = np.array([0.80, 0.13, 0.04, 0.03])
_P_CONTEXT_SWITCH = 0.035
_P_OLDER_DATE = 0.01  # sessions carrying an older date than their file's day
MAX_LENGTH = 20
_TRACK_DISTRIBUTION_TEXT = {
    "normal": "normal(0, sd) per track",
    "student_t": "Student-t per track (structure.track_df degrees of freedom), scaled to sd",
    "mixture": "two-component normal mixture per track (80 % at -0.4 sd, 20 % at +1.6 sd, "
    "component sd 0.6 sd), sd as given",
}


def _hour_curve(hours: np.ndarray) -> np.ndarray:
    """A smooth cyclic curve over 0..23 with mean zero (two harmonics)."""
    angle = 2 * np.pi * hours / 24
    return 0.25 * np.cos(angle - 2 * np.pi * 22 / 24) + 0.08 * np.sin(2 * angle)


def _position_curve(positions: np.ndarray) -> np.ndarray:
    """Skipping rises smoothly over the session, centred to mean zero over 1..20."""
    grid = np.arange(1, MAX_LENGTH + 1)

    def raw(p: np.ndarray) -> np.ndarray:
        return 0.35 * (1 - np.exp(-(p - 1) / 5.0))

    return raw(positions) - raw(grid).mean()


def duration_curve(log_duration: np.ndarray) -> np.ndarray:
    """Uncentred smooth effect of log duration: very short and very long tracks are skipped."""
    z = np.clip((log_duration - np.log(220.0)) / 0.3, -4.0, 4.0)
    return 0.12 * z**2 - 0.15 * z


def popularity_curve(popularity: np.ndarray) -> np.ndarray:
    """Uncentred smooth effect of us_popularity_estimate: the most popular are skipped less."""
    return -0.6 * np.tanh((popularity - 97.5) / 1.5)


@dataclass(frozen=True)
class TrueEffects:
    """The true skip model (logit scale); see the module docstring for the formula.

    Weekday, hour, position and context-type effects must sum to zero over their levels (so
    the intercept is the logit at their average level). ``dataclasses.replace`` makes variants,
    e.g. ``TrueEffects(markov_prev_skip_2=0.0)`` for data without the Markov effect.
    """

    intercept: float = -0.15
    weekday: tuple[float, ...] = (-0.12, -0.08, -0.04, 0.0, 0.06, 0.14, 0.04)
    hour: tuple[float, ...] = field(
        default_factory=lambda: tuple(float(v) for v in _hour_curve(np.arange(24)))
    )
    position: tuple[float, ...] = field(
        default_factory=lambda: tuple(
            float(v) for v in _position_curve(np.arange(1, MAX_LENGTH + 1))
        )
    )
    context_type: tuple[float, ...] = (-0.35, 0.05, 0.15, 0.30, 0.0, -0.15)  # CONTEXT_TYPES order
    premium: float = -0.30
    shuffle: float = 0.35
    markov_prev_skip_2: float = 1.0
    markov_no_previous: float = 0.2
    danceability_main: float = -0.15
    danceability_prev_x_now: float = -0.25
    danceability_abs_change: float = 0.30
    smooth_scale: float = 1.0  # multiplies f_duration and f_popularity (0 switches them off)
    track_sd: float = 0.5
    session_sd: float = 0.0  # sd of the per-session propensity (0: none)

    def __post_init__(self) -> None:
        for name, values, n in (
            ("weekday", self.weekday, 7),
            ("hour", self.hour, 24),
            ("position", self.position, MAX_LENGTH),
            ("context_type", self.context_type, len(CONTEXT_TYPES)),
        ):
            if len(values) != n:
                raise ValueError(f"TrueEffects.{name} needs {n} values, got {len(values)}")
            # the intercept's meaning in truth.json relies on these centrings
            if abs(sum(values)) > 1e-9:
                raise ValueError(f"TrueEffects.{name} must sum to zero, sums to {sum(values)}")
        if self.track_sd < 0:
            raise ValueError("TrueEffects.track_sd must be >= 0")
        if not (np.isfinite(self.session_sd) and self.session_sd >= 0):
            raise ValueError(
                f"TrueEffects.session_sd must be finite and >= 0, got {self.session_sd}"
            )


@dataclass(frozen=True)
class Catalogue:
    """What the session simulator needs to know about the tracks (index-aligned arrays)."""

    danceability: np.ndarray
    log_duration: np.ndarray
    popularity: np.ndarray
    intercept: np.ndarray  # track random intercepts
    play_weight: np.ndarray  # Zipf-like popularity weights (sum 1)
    similar_order: np.ndarray  # tracks sorted by danceability (for within-session stickiness)
    dance_mean: float
    dance_sd: float
    duration_offset: float  # mean of duration_curve over the catalogue (centring)
    popularity_offset: float
    duration_form: str = "smooth"  # the structure's duration effect: "smooth" or "step"
    track_distribution: str = "normal"  # of the intercepts (for truth.json)

    def duration(self, log_duration: np.ndarray) -> np.ndarray:
        """The uncentred duration effect of the catalogue's structure."""
        if self.duration_form == "step":
            return step_duration_curve(log_duration)
        return duration_curve(log_duration)


def make_catalogue(
    rng: np.random.Generator,
    *,
    danceability: np.ndarray,
    duration: np.ndarray,
    popularity: np.ndarray,
    track_sd: float,
    zipf_exponent: float | None = None,
    structure: Structure | None = None,
) -> Catalogue:
    """Track intercepts and play weights; the Zipf rank follows popularity (plus noise).

    ``structure`` (default: the default structure) sets the intercepts' distribution, the play
    weights' power law (``zipf_exponent``, when given, replaces the structure's) and the
    duration effect.
    """
    structure = STRUCTURES["default"] if structure is None else structure
    if zipf_exponent is None:
        zipf_exponent = structure.zipf_exponent
    n = len(danceability)
    log_duration = np.log(duration)
    rank_score = popularity + rng.normal(0.0, 1.0, n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-rank_score, kind="stable")] = np.arange(n)
    weight = 1.0 / (rank + structure.zipf_offset) ** zipf_exponent
    intercept = track_intercepts(rng, n, track_sd, structure)
    return Catalogue(
        danceability=danceability,
        log_duration=log_duration,
        popularity=popularity,
        intercept=intercept,
        play_weight=weight / weight.sum(),
        similar_order=np.argsort(danceability, kind="stable"),
        dance_mean=float(danceability.mean()),
        dance_sd=float(danceability.std()),
        duration_offset=float(
            (step_duration_curve if structure.duration_form == "step" else duration_curve)(
                log_duration
            ).mean()
        ),
        popularity_offset=float(popularity_curve(popularity).mean()),
        duration_form=structure.duration_form,
        track_distribution=structure.track_distribution,
    )


def draw_propensity(rng: np.random.Generator, n_sessions: int, session_sd: float) -> np.ndarray:
    """Per-session logit-scale propensities, ``session_sd`` times one standard normal each.

    One draw per session whatever the sd, so for one stream a larger sd scales the same
    listeners' moods rather than drawing new ones.
    """
    return session_sd * rng.standard_normal(n_sessions)


@dataclass(frozen=True)
class SessionPlan:
    """Session-level draws, in file order: the file (day, k) each session belongs to."""

    day: np.ndarray  # day index 0..days-1 of the file
    file_k: np.ndarray  # k of log_<k>_<date>
    length: np.ndarray
    start_date: np.ndarray  # days since epoch of the first play
    start_minute: np.ndarray  # minute of day of the first play

    @classmethod
    def _fields(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


def _categorical(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    cdf = np.cumsum(probs / probs.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(probs) - 1)


def _labels_p(table: Mapping[str, float], labels: tuple[str, ...]) -> np.ndarray:
    return np.array([table.get(x, 0.0) for x in labels])


def plan_sessions(
    rng: np.random.Generator,
    n_sessions: int,
    *,
    first_day: int,
    days: int,
    files_per_day: int,
    length_mix: str = "mssd",
) -> SessionPlan:
    """Assign sessions to days and files; draw lengths (in the shares of ``length_mix``, see
    :mod:`skipmodel.simulate.structure`), start dates and start minutes."""
    day = rng.integers(0, days, n_sessions)
    file_k = rng.integers(0, files_per_day, n_sessions)
    shares = LENGTH_MIXES[length_mix]  # relative weights: _categorical normalises
    lengths = np.array(list(shares))
    length = lengths[_categorical(rng, np.array(list(shares.values()), float), n_sessions)]
    older = rng.random(n_sessions) < _P_OLDER_DATE
    back = np.minimum(1 + rng.geometric(0.12, n_sessions), 65)
    start_date = first_day + day - np.where(older, back, 0)
    hour_p = np.exp(0.9 * np.cos(2 * np.pi * (np.arange(24) - 17) / 24))
    start_hour = _categorical(rng, hour_p, n_sessions)
    start_minute = start_hour * 60 + rng.integers(0, 60, n_sessions)
    return SessionPlan(day, file_k, length, start_date, start_minute)


@dataclass
class Plays:
    """Row arrays (one entry per play), sessions in plan order, positions ascending."""

    session: np.ndarray
    position: np.ndarray
    length: np.ndarray
    track: np.ndarray
    skip_1: np.ndarray
    skip_2: np.ndarray
    skip_3: np.ndarray
    not_skipped: np.ndarray
    context_switch: np.ndarray
    no_pause: np.ndarray
    short_pause: np.ndarray
    long_pause: np.ndarray
    seekfwd: np.ndarray
    seekback: np.ndarray
    shuffle: np.ndarray
    hour: np.ndarray
    date: np.ndarray  # days since epoch
    premium: np.ndarray
    context: np.ndarray  # codes into CONTEXT_TYPES
    reason_start: np.ndarray  # codes into REASONS_START
    reason_end: np.ndarray  # codes into REASONS_END
    logit: np.ndarray  # the true linear predictor of skip_2 (kept for tests, not written)


def simulate_plays(
    rng: np.random.Generator,
    plan: SessionPlan,
    catalogue: Catalogue,
    effects: TrueEffects,
    *,
    propensity: np.ndarray | None = None,
    stickiness: float = 0.35,
    neighbourhood: int = 25,
) -> Plays:
    """Simulate every play, looping over positions and vectorised over sessions.

    ``propensity`` holds one logit-scale intercept per session of ``plan`` (see
    :func:`draw_propensity`), added to the skip logit of each of its plays; None adds nothing.
    """
    n = len(plan.length)
    if propensity is not None and propensity.shape != (n,):
        raise ValueError(f"propensity needs one value per session ({n}), got {propensity.shape}")
    n_tracks = len(catalogue.danceability)
    offsets = np.concatenate([[0], np.cumsum(plan.length)])
    n_rows = int(offsets[-1])
    rows = {
        name: np.zeros(n_rows, dtype=dt)
        for name, dt in (
            ("track", np.int64), ("skip_1", bool), ("skip_2", bool), ("skip_3", bool),
            ("not_skipped", bool), ("context_switch", np.int8), ("no_pause", np.int8),
            ("short_pause", np.int8), ("long_pause", np.int8), ("seekfwd", np.int16),
            ("seekback", np.int16), ("shuffle", bool), ("hour", np.int8), ("date", np.int32),
            ("premium", bool), ("context", np.int8), ("reason_start", np.int8),
            ("reason_end", np.int8), ("logit", np.float64),
        )
    }  # fmt: skip
    weekday_eff = np.asarray(effects.weekday)
    hour_eff = np.asarray(effects.hour)
    position_eff = np.asarray(effects.position)
    context_eff = np.asarray(effects.context_type)
    context_p = _labels_p(_CONTEXT_ROWS, CONTEXT_TYPES)
    end_p = {k: _labels_p(v, REASONS_END) for k, v in _REASON_END_P.items()}
    first_start_p = _labels_p(_FIRST_START_P, REASONS_START)
    next_start = np.array([REASONS_START.index(_NEXT_START[r]) for r in REASONS_END])
    rare_starts = np.array([REASONS_START.index(r) for r in ("playbtn", "remote", "trackerror")])
    track_cdf = np.cumsum(catalogue.play_weight)
    rank_in_similar = np.empty(n_tracks, dtype=np.int64)
    rank_in_similar[catalogue.similar_order] = np.arange(n_tracks)
    d_mean, d_sd = catalogue.dance_mean, catalogue.dance_sd

    # Session state carried from play to play.
    context = _categorical(rng, context_p, n)
    premium = rng.random(n) < _P_PREMIUM
    shuffle = rng.random(n) < _P_SHUFFLE
    minute = plan.start_minute.astype(np.float64)
    prev_track = np.zeros(n, dtype=np.int64)
    prev_skip = np.zeros(n, dtype=bool)
    prev_end = np.zeros(n, dtype=np.int64)

    for pos in range(1, MAX_LENGTH + 1):
        live = np.nonzero(plan.length >= pos)[0]
        m = len(live)
        at = offsets[live] + pos - 1
        # Context switches (a new context, sometimes a new shuffle setting) before this play.
        switch = rng.random(m) < (_P_CONTEXT_SWITCH if pos > 1 else 0.02)
        if switch.any():
            s_idx = live[switch]
            context[s_idx] = _categorical(rng, context_p, len(s_idx))
            # a new context sometimes comes with a fresh shuffle setting (same marginal share)
            redraw = s_idx[rng.random(len(s_idx)) < 0.3]
            shuffle[redraw] = rng.random(len(redraw)) < _P_SHUFFLE
        # Track: a Zipf-like draw, or (sticky) a track of similar danceability to the last one.
        track = np.minimum(np.searchsorted(track_cdf, rng.random(m), side="right"), n_tracks - 1)
        if pos > 1:
            sticky = rng.random(m) < stickiness
            step = rng.integers(-neighbourhood, neighbourhood + 1, m)
            near = np.clip(rank_in_similar[prev_track[live]] + step, 0, n_tracks - 1)
            track = np.where(sticky, catalogue.similar_order[near], track)
        # Clock: hour and date of this play.
        day_shift, minute_of_day = np.divmod(minute[live], 24 * 60)
        hour = (minute_of_day // 60).astype(np.int64)
        date = plan.start_date[live] + day_shift.astype(np.int64)
        weekday = (date + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0

        # The skip model: pre-play information only.
        z_now = (catalogue.danceability[track] - d_mean) / d_sd
        logit = (
            effects.intercept
            + weekday_eff[weekday]
            + hour_eff[hour]
            + position_eff[pos - 1]
            + context_eff[context[live]]
            + effects.premium * premium[live]
            + effects.shuffle * shuffle[live]
            + effects.danceability_main * z_now
            + effects.smooth_scale
            * (
                catalogue.duration(catalogue.log_duration[track])
                - catalogue.duration_offset
                + popularity_curve(catalogue.popularity[track])
                - catalogue.popularity_offset
            )
            + catalogue.intercept[track]
        )
        if pos == 1:
            logit = logit + effects.markov_no_previous
        else:
            z_prev = (catalogue.danceability[prev_track[live]] - d_mean) / d_sd
            logit = (
                logit
                + effects.markov_prev_skip_2 * prev_skip[live]
                + effects.danceability_prev_x_now * z_prev * z_now
                + effects.danceability_abs_change * np.abs(z_now - z_prev)
            )
        if propensity is not None:
            logit = logit + propensity[live]
        skip_2 = rng.random(m) < 1.0 / (1.0 + np.exp(-logit))

        # Outcomes derived from skip_2 with extra randomness.
        skip_1 = skip_2 & (rng.random(m) < _P_SKIP1_GIVEN_SKIP2)
        skip_3 = skip_2 | (rng.random(m) < _P_SKIP3_GIVEN_NOT_SKIP2)
        not_skipped = ~skip_3 & (rng.random(m) < _P_DONE_GIVEN_NOT_SKIP3)
        kind = np.where(skip_2, 0, np.where(skip_3, 1, np.where(not_skipped, 2, 3)))
        reason_end = np.empty(m, dtype=np.int64)
        for code, key in enumerate(("skip_2", "skip_3_only", "not_skipped", "all_false")):
            sel = kind == code
            reason_end[sel] = _categorical(rng, end_p[key], int(sel.sum()))
        if pos == 1:
            reason_start = _categorical(rng, first_start_p, m)
        else:
            reason_start = next_start[prev_end[live]]
            noisy = rng.random(m) < _P_START_NOISE
            reason_start[noisy] = rng.choice(rare_starts, int(noisy.sum()))
        pause = _PAUSES[_categorical(rng, _PAUSE_P_FIRST if pos == 1 else _PAUSE_P_LATER, m)]
        seek_rate = np.where(skip_2, 0.5, 1.5)  # seeking is likelier in plays that go on
        seekfwd = np.where(
            rng.random(m) < _P_SEEKFWD * seek_rate, np.minimum(rng.zipf(2.3, m), 60), 0
        )
        seekback = np.where(
            rng.random(m) < _P_SEEKBACK * seek_rate, np.minimum(rng.zipf(2.1, m), 151), 0
        )

        for name, values in (
            ("track", track), ("skip_1", skip_1), ("skip_2", skip_2), ("skip_3", skip_3),
            ("not_skipped", not_skipped), ("context_switch", switch), ("no_pause", pause[:, 0]),
            ("short_pause", pause[:, 1]), ("long_pause", pause[:, 2]), ("seekfwd", seekfwd),
            ("seekback", seekback), ("shuffle", shuffle[live]), ("hour", hour), ("date", date),
            ("premium", premium[live]), ("context", context[live]),
            ("reason_start", reason_start), ("reason_end", reason_end), ("logit", logit),
        ):  # fmt: skip
            rows[name][at] = values

        # Advance the clock: the played part of the track plus a short gap.
        played = np.where(skip_2, rng.uniform(3.0, 30.0, m), np.exp(catalogue.log_duration[track]))
        minute[live] += (played + rng.exponential(5.0, m)) / 60.0
        prev_track[live] = track
        prev_skip[live] = skip_2
        prev_end[live] = reason_end

    session = np.repeat(np.arange(n), plan.length)
    position = (np.arange(n_rows) - offsets[session] + 1).astype(np.int8)
    return Plays(
        session=session,
        position=position,
        length=np.repeat(plan.length, plan.length).astype(np.int8),
        **rows,
    )


def effects_truth(effects: TrueEffects, catalogue: Catalogue) -> dict[str, object]:
    """The skip-model section of ``truth.json`` (named levels, curves on grids)."""

    def grid(x: np.ndarray) -> np.ndarray:
        low, high = np.quantile(x, [0.005, 0.995])
        return np.linspace(float(low), float(high), 41)

    log_dur_grid = grid(catalogue.log_duration)
    pop_grid = grid(catalogue.popularity)
    scale = effects.smooth_scale
    return {
        "outcome": "skip_2",
        "link": "logit",
        "formula": FORMULA + (SESSION_FORMULA if effects.session_sd > 0 else ""),
        "reference": {
            "intercept": "the logit at premium false, shuffle false, a previous play with "
            "skip_2 false, danceability z = 0 (and z_prev = 0), track intercept 0; "
            "weekday, hour and context_type effects sum to zero over their levels, the "
            "position effect has mean zero over 1..20, each smooth effect has mean zero "
            "over the track catalogue",
            "weekday": "of the play's date (Monday = Mon); hour_of_day of the play",
        },
        "intercept": effects.intercept,
        "weekday_effect": dict(zip(WEEKDAYS, effects.weekday, strict=True)),
        "hour_effect": {str(h): v for h, v in enumerate(effects.hour)},
        "position_effect": {str(p + 1): v for p, v in enumerate(effects.position)},
        "context_type_effect": dict(zip(CONTEXT_TYPES, effects.context_type, strict=True)),
        "premium_effect": effects.premium,
        "shuffle_effect": effects.shuffle,
        "markov": {
            "prev_skip_2": effects.markov_prev_skip_2,
            "no_previous": effects.markov_no_previous,
            "reference": "previous play present with skip_2 false",
            "note": "no_previous applies at position 1 only, so only its sum with "
            "position_effect['1'] is identifiable",
        },
        "danceability": {
            "standardise_mean": catalogue.dance_mean,
            "standardise_sd": catalogue.dance_sd,
            "standardisation": "z = (danceability - standardise_mean) / standardise_sd, "
            "mean and population sd over the whole track catalogue (track_features file)",
            "main_effect": effects.danceability_main,
            "prev_x_current": effects.danceability_prev_x_now,
            "abs_change": effects.danceability_abs_change,
        },
        "smooth_effects": {
            "duration": {
                "scale": "log",
                "x": "log(duration)",
                "centring": "mean over the track catalogue is zero",
                "grid": log_dur_grid.tolist(),
                "effect": (
                    scale * (catalogue.duration(log_dur_grid) - catalogue.duration_offset)
                ).tolist(),
            },
            "us_popularity_estimate": {
                "scale": "identity",
                "x": "us_popularity_estimate",
                "centring": "mean over the track catalogue is zero",
                "grid": pop_grid.tolist(),
                "effect": (
                    scale * (popularity_curve(pop_grid) - catalogue.popularity_offset)
                ).tolist(),
            },
        },
        "track_effect": {
            "sd": effects.track_sd,
            "distribution": _TRACK_DISTRIBUTION_TEXT[catalogue.track_distribution],
            "values": "truth_tracks.parquet (track_id, intercept, plays)",
        },
        "session_effect": {
            "sd": effects.session_sd,
            "distribution": "normal(0, sd) per session (the listener's mood), on the logit "
            "scale, added to every play of the session",
            "calibration": "none: the intercept and every other effect are conditional on "
            "propensity 0, so the marginal skip rate moves with sd (see empirical)",
            "values": "truth_sessions.parquet (session_id, propensity, challenge, plays, skip_2)"
            if effects.session_sd > 0
            else "none written: every propensity is 0",
        },
        "no_effect_columns": [
            "context_switch",
            "no_pause_before_play",
            "short_pause_before_play",
            "long_pause_before_play",
            "hist_user_behavior_reason_start",
            "session_length",
            "release_year and every track feature not named above",
        ],
    }
