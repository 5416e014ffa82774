"""Simulator structures: the same MSSD format from generators of other shape (issue 21).

A :class:`Structure` changes *how* the simulated data are made, not only how much of them:

- ``track_distribution``: the track random intercepts are ``normal`` (the default), ``student_t``
  (``track_df`` degrees of freedom, heavy tails) or a two-component ``mixture`` (80 % of tracks
  at -0.4 sd, 20 % at +1.6 sd, each component 0.6 sd wide: a cluster of often-skipped tracks),
  each scaled so that its sd is ``TrueEffects.track_sd``;
- ``zipf_exponent`` and ``zipf_offset``: a track's play weight is ``1 / (rank + offset) **
  exponent`` (rank by popularity plus noise); 1.2 gives a heavier head (the top 1 % of tracks
  hold about 40 % of the plays) and a longer tail of unplayed and once-played tracks than the
  default 1, 0.8 a flatter spread;
- ``duration_form``: the duration effect is the default ``smooth`` U-shaped curve in log
  duration, or a ``step``: +0.7 below 150 s, +0.4 above 360 s, 0 between (what a smooth term must
  approximate);
- ``length_mix``: session lengths (10..20) in the published ``mssd`` shares (about half the
  sessions at 20), ``uniform`` over 10..20, or ``short`` (shares falling by 0.7 per play from 10);
- ``effects``: replacements of :class:`~skipmodel.simulate.sessions.TrueEffects` fields (effect
  sizes: a strong previous-skip effect, a large danceability jump).

:data:`STRUCTURES` names the presets of ``skipmodel simulate --structure``; ``default`` is the
simulator as it always was (the same files, byte for byte).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from skipmodel.errors import SkipmodelError

TRACK_DISTRIBUTIONS = ("normal", "student_t", "mixture")
DURATION_FORMS = ("smooth", "step")
#: Session-length shares over 10..20 (relative weights).
LENGTH_MIXES: dict[str, dict[int, float]] = {
    # published log_mini counts (../shared/fixtures/mssd/full_log_mini_stats.json)
    "mssd": {
        10: 819,
        11: 752,
        12: 646,
        13: 547,
        14: 459,
        15: 435,
        16: 339,
        17: 320,
        18: 303,
        19: 314,
        20: 5066,
    },  # fmt: skip
    "uniform": {n: 1.0 for n in range(10, 21)},
    "short": {n: 0.7 ** (n - 10) for n in range(10, 21)},
}
#: The mixture's components in track-sd units: (share, mean) pairs and the common sd; the mean
#: is 0 and the variance 1 (0.8 * 0.16 + 0.2 * 2.56 + 0.36).
MIXTURE_COMPONENTS = ((0.8, -0.4), (0.2, 1.6))
MIXTURE_SD = 0.6
#: The step duration effect: (seconds below, effect) and (seconds above, effect).
STEP_SHORT = (150.0, 0.7)
STEP_LONG = (360.0, 0.4)


@dataclass(frozen=True)
class Structure:
    """How the simulator shapes its data (module docstring); the defaults are the simulator's."""

    name: str = "default"
    track_distribution: str = "normal"
    track_df: float = 3.0
    zipf_exponent: float = 1.0
    zipf_offset: float = 5.0
    duration_form: str = "smooth"
    length_mix: str = "mssd"
    effects: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.track_distribution not in TRACK_DISTRIBUTIONS:
            raise ValueError(f"track_distribution must be one of {TRACK_DISTRIBUTIONS}")
        if self.duration_form not in DURATION_FORMS:
            raise ValueError(f"duration_form must be one of {DURATION_FORMS}")
        if self.length_mix not in LENGTH_MIXES:
            raise ValueError(f"length_mix must be one of {tuple(LENGTH_MIXES)}")
        if not self.track_df > 2:
            raise ValueError("track_df must be > 2 (a finite sd)")
        if not (self.zipf_exponent > 0 and self.zipf_offset > 0):
            raise ValueError("zipf_exponent and zipf_offset must be > 0")

    def apply(self, effects: Any) -> Any:
        """``effects`` (a :class:`~skipmodel.simulate.sessions.TrueEffects`) with this
        structure's replacements, which win over the caller's."""
        changes: dict[str, Any] = dict(self.effects)
        return replace(effects, **changes) if changes else effects

    def truth(self) -> dict[str, Any]:
        """The ``skip_model.structure`` record of ``truth.json``."""
        record = asdict(self)
        record["effects"] = dict(self.effects)
        record["length_shares"] = {str(k): v for k, v in length_shares(self.length_mix).items()}
        return record


#: Presets of ``skipmodel simulate --structure``.
STRUCTURES: dict[str, Structure] = {
    "default": Structure(),
    # the description: normal track effects, a strong previous-skip effect and a large
    # danceability jump between consecutive tracks
    "strong": Structure(
        name="strong",
        effects=(
            ("markov_prev_skip_2", 2.0),
            ("danceability_abs_change", 0.8),
            ("danceability_prev_x_now", -0.4),
        ),
    ),
    # heavy tails everywhere: Student-t(3) track effects, a power-law catalogue with a long tail
    # of once-played tracks, every session length equally likely
    "heavy": Structure(
        name="heavy",
        track_distribution="student_t",
        track_df=3.0,
        zipf_exponent=1.2,
        length_mix="uniform",
        effects=(("markov_prev_skip_2", 1.6), ("danceability_abs_change", 0.6)),
    ),
    # a cluster of often-skipped tracks, a flat catalogue, a step in duration, short sessions and
    # a very strong previous-skip effect (the intercept lowered to keep skip_2 near 0.5)
    "mixture": Structure(
        name="mixture",
        track_distribution="mixture",
        zipf_exponent=0.8,
        duration_form="step",
        length_mix="short",
        effects=(
            ("intercept", -0.9),
            ("markov_prev_skip_2", 2.5),
            ("danceability_abs_change", 0.5),
            ("danceability_main", 0.3),
        ),
    ),
}


def get_structure(name: str | Structure) -> Structure:
    """A preset by name (a :class:`Structure` is returned as it is)."""
    if isinstance(name, Structure):
        return name
    try:
        return STRUCTURES[name]
    except KeyError:
        raise SkipmodelError(
            f"--structure {name!r} is not a structure; use one of {', '.join(STRUCTURES)}"
        ) from None


def length_shares(mix: str) -> dict[int, float]:
    """Session-length probabilities (10..20) of a mix."""
    weights = LENGTH_MIXES[mix]
    total = sum(weights.values())
    return {n: w / total for n, w in weights.items()}


def track_intercepts(
    rng: np.random.Generator, n: int, sd: float, structure: Structure
) -> np.ndarray:
    """Per-track random intercepts with sd ``sd`` in the structure's distribution."""
    if sd <= 0:
        return np.zeros(n)
    if structure.track_distribution == "normal":
        return rng.normal(0.0, sd, n)
    if structure.track_distribution == "student_t":
        df = structure.track_df
        return sd * np.sqrt((df - 2) / df) * rng.standard_t(df, n)
    (share, low), (_, high) = MIXTURE_COMPONENTS
    centre = np.where(rng.random(n) < share, low, high)
    return sd * (centre + MIXTURE_SD * rng.standard_normal(n))


def step_duration_curve(log_duration: np.ndarray) -> np.ndarray:
    """Uncentred step effect of duration: short and long tracks are skipped more."""
    seconds = np.exp(log_duration)
    return np.where(seconds < STEP_SHORT[0], STEP_SHORT[1], 0.0) + np.where(
        seconds > STEP_LONG[0], STEP_LONG[1], 0.0
    )
