"""The session kind: a partially pooled propensity per listening session (its mood).

In the model each session ``s`` adds ``session_sigma * session_z[s]`` to the logit of every one
of its plays (non-centred: a session holds ten to twenty plays, too few to centre). Sessions never
recur, so prediction never reads ``session_z``: the propensity of a play's session is learnt from
the **earlier** plays of the same session only (the leakage rule), per posterior draw, by a
one-dimensional Bayesian update play by play — assumed-density filtering: the propensity's
posterior is kept Gaussian, N(m, v), starting from N(0, session_sigma^2), and after each observed
outcome replaced by the Gaussian with the exact posterior's mean and variance, both computed by
Gauss–Hermite quadrature (:data:`NODES` nodes). A play's predicted probability is the same
quadrature of the logistic over N(m, v). Sequential prediction keeps (m, v) per session and
draw in :class:`SessionPropensity`, updated by the revealed first half and then by each rolled
second-half outcome, as the generative model says.

A play whose session has unknown outcomes earlier (no outcome column, a NaN) learns nothing from
them; a frame that holds only part of a session (a subset of positions) learns from the plays it
holds: pass whole sessions, as the loaders give them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from skipmodel.model.latent import Block, Hyper, LatentTerm, View, scaled_variance
from skipmodel.model.spec import Priors
from skipmodel.model.term_specs import Session
from skipmodel.model.terms.base import (
    CellPlan,
    Contribution,
    DesignContext,
    Draws,
    TermDesign,
    TermKind,
)

#: Gauss–Hermite nodes of the one-dimensional updates and predictions.
NODES = 20
_X, _W = np.polynomial.hermite_e.hermegauss(NODES)
_W = _W / _W.sum()
#: Work arrays of at most about this many elements (draws x sessions x nodes) at a time.
_BLOCK = 4_000_000


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def predictive(m: np.ndarray, v: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """P(y = 1) = E sigmoid(eta + u), u ~ N(m, v), elementwise (any equal shapes)."""
    u = m[..., None] + np.sqrt(v)[..., None] * _X
    return np.asarray(_sigmoid(eta[..., None] + u) @ _W)


def update(
    m: np.ndarray, v: np.ndarray, eta: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian with the mean and variance of N(u; m, v) * P(y | eta + u), elementwise."""
    s = np.sqrt(v)
    p = _sigmoid(eta[..., None] + m[..., None] + s[..., None] * _X)
    like = np.where(y[..., None], p, 1.0 - p) * _W
    z = like.sum(axis=-1)
    mean_x = (like @ _X) / z
    var_x = (like @ (_X**2)) / z - mean_x**2
    return m + s * mean_x, v * np.clip(var_x, 1e-6, 1.0)


def outcome_values(column: pd.Series) -> np.ndarray:
    """An outcome column as 0.0 / 1.0, NaN where unknown or not a boolean."""
    try:
        values = column.astype("boolean").astype("Float64")
    except (TypeError, ValueError):
        values = pd.to_numeric(column, errors="coerce").where(lambda x: x.isin((0, 1)))
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan))


def observed_outcomes(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """The observed ``outcome`` of each row of ``frame`` (:func:`outcome_values`), all NaN
    when the frame has no such column (plays to predict)."""
    if outcome not in frame.columns:
        return np.full(len(frame), np.nan)
    return outcome_values(frame[outcome])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.asarray(np.log(p) - np.log1p(-p))


def _ranks(codes: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by (session, position, row), and each row's rank in its session."""
    order = np.lexsort((np.arange(len(codes)), position, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    return order, rank


def _prior(sigma: np.ndarray, n_sessions: int) -> tuple[np.ndarray, np.ndarray]:
    """Every session's propensity before its plays, per draw: N(0, session_sigma^2)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return np.zeros((len(sigma), n_sessions)), np.repeat((sigma**2)[:, None], n_sessions, axis=1)


def _filter(
    m: np.ndarray,
    v: np.ndarray,
    sessions: np.ndarray,
    position: np.ndarray,
    eta: np.ndarray,
    outcome: np.ndarray,
    share: np.ndarray | None = None,
) -> None:
    """Walk the rows play by play within their sessions (``sessions``: each row's column of
    ``m`` / ``v``), writing each row's predictive share of the logit into ``share`` (if given)
    before updating its session with the row's observed outcome (NaN: none). ``eta``: the rest
    of each row's logit per draw. Rows of equal rank in different sessions go together, in
    blocks of at most about :data:`_BLOCK` work elements."""
    if len(sessions) == 0:
        return
    order, rank = _ranks(sessions, position)
    step = max(1, _BLOCK // (eta.shape[0] * NODES))
    for j in range(int(rank.max()) + 1):
        at = order[rank[order] == j]
        for lo in range(0, at.size, step):
            rows = at[lo : lo + step]
            s, e = sessions[rows], eta[:, rows]
            if share is not None:
                share[:, rows] = _logit(predictive(m[:, s], v[:, s], e)) - e
            seen = np.isfinite(outcome[rows])
            if seen.any():
                s, e = s[seen], e[:, seen]
                y = np.broadcast_to(outcome[rows][seen] > 0.5, e.shape)
                m[:, s], v[:, s] = update(m[:, s], v[:, s], e, y)


class SessionPropensity:
    """Per session and draw, the propensity's Gaussian posterior given the plays seen so far
    (sequential prediction: the revealed first half, then the rolled outcomes)."""

    last = True  # its share depends on the rest of the logit: added after the other states

    def __init__(self, td: TermDesign, draws: Draws) -> None:
        self.codes = pd.factorize(td.codes["session"])[0]
        self.position = td.values["position"]
        n_sessions = int(self.codes.max()) + 1 if len(self.codes) else 0
        self.m, self.v = _prior(draws["session_sigma"], n_sessions)
        self._eta: dict[int, np.ndarray] = {}

    def reveal(self, rows: np.ndarray, eta: np.ndarray, outcome: np.ndarray) -> None:
        rows = np.asarray(rows)
        _filter(self.m, self.v, self.codes[rows], self.position[rows], eta, outcome)

    def logit(self, row: int, eta: np.ndarray) -> np.ndarray:
        s = self.codes[row]
        self._eta[row] = eta
        return _logit(predictive(self.m[:, s], self.v[:, s], eta)) - eta

    def observe(self, row: int, outcome: np.ndarray, later: Sequence[int | None]) -> None:
        s = self.codes[row]
        eta = self._eta.pop(row)
        self.m[:, s], self.v[:, s] = update(self.m[:, s], self.v[:, s], eta, outcome)


class SessionKind(TermKind):
    spec = Session
    minibatch_refusal = (
        "a session term has one effect per session of the data, which minibatches cannot "
        "hold; fit it by --method nuts on a sample"
    )

    def design(self, ctx: DesignContext, term: Session, name: str) -> TermDesign:
        ids = ctx.column("session_id")
        codes, uniques = pd.factorize(ids)
        missing = codes < 0
        if missing.any():  # a play without a session id is a session of its own
            codes[missing] = len(uniques) + np.arange(int(missing.sum()))
            uniques = np.r_[
                np.asarray(uniques, dtype=object), [f"__play_{i}" for i in np.flatnonzero(missing)]
            ]
        position = ctx.floats("session_position")
        position = np.where(np.isfinite(position), position, 0.0)
        # The outcome is read here for the update of *later* plays only (see given_earlier).
        outcome = observed_outcomes(ctx.frame, ctx.outcome)
        return TermDesign(
            term,
            name,
            codes={"session": codes.astype(np.int64)},
            values={"position": position, "outcome": outcome},
            coords={"session": tuple(str(u) for u in uniques)},
        )

    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        import pymc as pm

        sigma = pm.HalfNormal("session_sigma", sigma=priors.group_sigma)
        z = pm.Normal("session_z", 0.0, 1.0, dims="session")
        return Contribution().gather(sigma * z, td.codes["session"], len(td.coords["session"]))

    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        # the share is learnt from earlier plays: given_earlier, once the rest is known
        return np.zeros((len(draws["intercept"]), len(td.codes["session"])))

    def layout(self, td: TermDesign) -> Contribution:
        n = len(td.coords["session"])
        return Contribution().gather("session_effect", td.codes["session"], n)

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        n = len(td.coords["session"])
        return LatentTerm(
            hypers=[Hyper("session_sigma", "halfnormal", priors.group_sigma)],
            blocks=[
                Block(
                    "session_effect",
                    n,
                    scaled_variance("session_sigma", n),
                    hypers=("session_sigma",),
                    sessions=True,
                )
            ],
            views=[View("session_effect", "session_effect", dims=None)],
        )

    def known_part(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        return self.evaluate(td, draws, rng)

    def group_state(self, td: TermDesign, draws: Draws) -> SessionPropensity:
        return SessionPropensity(td, draws)

    def given_earlier(self, td: TermDesign, eta: np.ndarray, draws: Draws) -> np.ndarray:
        sessions = pd.factorize(td.codes["session"])[0]  # the sessions of these rows, 0..S-1
        m, v = _prior(draws["session_sigma"], int(sessions.max()) + 1 if len(sessions) else 0)
        share = np.zeros_like(eta)
        _filter(m, v, sessions, td.values["position"], eta, td.values["outcome"], share)
        return share

    def group_codes(self, td: TermDesign) -> np.ndarray:
        return np.asarray(td.codes["session"])

    def cells(self, term: Session) -> CellPlan:
        return CellPlan(
            (), refusal="sessions do not aggregate into cells: every session has its own effect"
        )


KIND = SessionKind()
