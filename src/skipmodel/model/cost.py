"""What a row-level NUTS fit will cost, said before it starts.

NUTS evaluates the model's gradient over every play at every step of every chain, so its time
grows with plays x (draws + tune) x chains / cores. Measured here (2 cores): the ``full`` model on
82,000 simulated plays, 4 chains x (1,000 + 1,000) steps, in about 600 s, i.e.
:data:`SECONDS_PER_PLAY_STEP` per play and step on one core; models with fewer terms are faster,
sessions with harder geometry slower (more leapfrog steps), so the estimate is a scale, not a
promise. Above :data:`LIMIT_SECONDS` ``skipmodel fit`` stops before sampling (exit 2) unless the
user accepts the cost, naming the ways to fit less or differently.
"""

from __future__ import annotations

import os

from skipmodel.errors import SkipmodelError

#: Seconds per play per NUTS step on one core (``full``, measured; see the module notes).
SECONDS_PER_PLAY_STEP = 1.8e-6
#: A fit estimated above this many seconds needs ``--accept-cost``.
LIMIT_SECONDS = 3600.0

__all__ = ["LIMIT_SECONDS", "SECONDS_PER_PLAY_STEP", "check_nuts_cost", "nuts_seconds"]


def nuts_seconds(plays: float, *, draws: int, tune: int, chains: int, cores: int | None) -> float:
    """The estimated wall time of a row-level NUTS fit."""
    cores = max(1, min(chains, cores or os.cpu_count() or 1))
    return SECONDS_PER_PLAY_STEP * plays * (draws + tune) * chains / cores


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def check_nuts_cost(
    plays: float, *, draws: int, tune: int, chains: int, accept: bool, cores: int | None = None
) -> float:
    """The estimate; a one-line refusal (exit 2) above :data:`LIMIT_SECONDS` unless ``accept``."""
    seconds = nuts_seconds(plays, draws=draws, tune=tune, chains=chains, cores=cores)
    if seconds > LIMIT_SECONDS and not accept:
        raise SkipmodelError(
            f"NUTS on ~{plays:,.0f} plays ({chains} chains x {draws + tune} steps) is estimated "
            f"at {_span(seconds)}; pass --accept-cost to run it, or fit fewer plays "
            "(--plays 100000), covariate cells (--aggregate) or every play by nested Laplace "
            "(--method laplace)"
        )
    return seconds
