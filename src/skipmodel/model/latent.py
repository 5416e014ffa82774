"""A term as a latent Gaussian model: what nested-Laplace inference needs from each kind.

Given its hyperparameters (pooling scales, smooth amplitudes, lengthscales), every term of a
skip model is Gaussian a priori, and its effect tables are linear in Gaussian coefficients. A
kind says so with :meth:`skipmodel.model.terms.TermKind.latent`, in three pieces of plain data:

* :class:`Hyper` — a hyperparameter, by its posterior variable name (``track_sigma``), and its
  prior (HalfNormal or LogNormal, as the PyMC model's);
* :class:`Block` — a vector of independent Gaussian coefficients, with its prior variances as a
  function of the hyperparameters (always diagonal: zero-sum effects are written in an
  orthonormal basis of the zero-sum space, random walks and smooths in their eigenmodes);
* :class:`View` — a table (or coefficient vector) that is ``matrix @ block``: the ones the rows
  read (the names of the kind's :meth:`~skipmodel.model.terms.TermKind.layout`) and the ones
  recorded in the posterior under the NUTS run's names (``hour_effect``, ``duration_effect``).

The same model as the PyMC one, in another parametrisation; the posterior of every
parametrisation-free quantity is the same. Two differences, both documented where they arise:
pools with at least :data:`LARGE_POOL` levels are independent N(0, sigma) without the zero-sum
constraint (NUTS's "mixed" parametrisation gives it up too), and small pools always sum to zero.
No PyMC here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from skipmodel.errors import SkipmodelError

#: Pools with at least this many levels are independent per level (no zero-sum constraint, as in
#: NUTS's "mixed" parametrisation), and the largest of them is eliminated level by level by the
#: Laplace passes (its curvature is diagonal, its levels corrected by quadrature).
LARGE_POOL = 50

Variance = Callable[[Mapping[str, float]], np.ndarray]


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter and its prior: ``halfnormal`` (scale ``a``) or ``lognormal`` (``mu = a``,
    ``sigma = b``), as in the PyMC model."""

    name: str
    prior: str
    a: float
    b: float = 0.0

    def log_prior(self, log_value: float) -> float:
        """Log density of ``log(value)`` (the density of the value times its Jacobian)."""
        x = float(np.exp(log_value))
        if self.prior == "halfnormal":
            return float(
                np.log(2.0) - 0.5 * np.log(2 * np.pi * self.a**2) - x**2 / (2 * self.a**2)
            ) + float(log_value)
        if self.prior == "lognormal":
            z = (log_value - self.a) / self.b
            return float(-0.5 * z**2 - np.log(self.b) - 0.5 * np.log(2 * np.pi))
        raise ValueError(f"unknown prior {self.prior!r}")

    def start(self) -> float:
        """A starting value on the log scale: half the prior scale, or the LogNormal median."""
        return float(np.log(self.a / 2) if self.prior == "halfnormal" else self.a)


def fixed_variance(value: float, size: int) -> Variance:
    """Prior variances not depending on any hyperparameter."""
    out = np.full(size, float(value) ** 2)
    return lambda theta: out


def scaled_variance(hyper: str, size: int, factors: np.ndarray | None = None) -> Variance:
    """``(theta[hyper] * factors) ** 2``: coefficients ``N(0, (sigma * factor)^2)``."""
    base = np.ones(size) if factors is None else np.asarray(factors, dtype=float) ** 2
    return lambda theta: theta[hyper] ** 2 * base


@dataclass(frozen=True)
class Block:
    """``size`` independent Gaussian coefficients, ``N(0, variance(theta))``, depending on the
    hyperparameters ``hypers``. ``levels``: one coefficient per level of a pool (independent, the
    same variance), eligible for elimination level by level."""

    name: str
    size: int
    variance: Variance
    hypers: tuple[str, ...] = ()
    levels: bool = False
    #: One coefficient per session: eliminated session by session as a pass reads the rows
    #: (never held as a vector: a session's rows are whole in one batch).
    sessions: bool = False


@dataclass(frozen=True)
class View:
    """The table ``name`` = ``matrix @ block`` (``matrix`` None: the block itself).

    ``layout``: rows read it (a name of the kind's layout); ``dims``: recorded in the posterior
    with these dims (None: not recorded; ``()``: a scalar).
    """

    name: str
    block: str
    matrix: np.ndarray | None = None
    layout: bool = True
    dims: tuple[str, ...] | None = None

    def size(self, blocks: Mapping[str, Block]) -> int:
        return blocks[self.block].size if self.matrix is None else int(self.matrix.shape[0])

    def apply(self, coef: np.ndarray) -> np.ndarray:
        """The table from block coefficients (``coef``'s last axis), any leading axes."""
        return coef if self.matrix is None else coef @ self.matrix.T


@dataclass
class LatentTerm:
    """A term's hyperparameters, coefficient blocks and tables (see the module notes)."""

    hypers: list[Hyper] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    views: list[View] = field(default_factory=list)

    def extend(self, other: LatentTerm) -> LatentTerm:
        self.hypers += other.hypers
        self.blocks += other.blocks
        self.views += other.views
        return self


def zero_sum_basis(n: int) -> np.ndarray:
    """Orthonormal basis (n, n - 1) of the vectors summing to zero: ``B @ c`` with ``c ~ N(0,
    s^2 I)`` is PyMC's ``ZeroSumNormal(sigma=s)`` over ``n`` levels."""
    if n < 2:
        return np.zeros((n, 0))
    # Helmert-like: the QR of the centring matrix's first n - 1 columns
    centring = np.eye(n) - 1.0 / n
    q, _ = np.linalg.qr(centring[:, : n - 1])
    return q


def zero_sum(name: str, n: int, sigma: float | str, dims: tuple[str, ...]) -> LatentTerm:
    """A zero-sum effect over ``n`` levels: a fixed prior scale (a number) or a hyperparameter
    (its name), recorded as ``name`` with ``dims``."""
    block = f"{name}__coef"
    variance = (
        scaled_variance(sigma, n - 1)
        if isinstance(sigma, str)
        else fixed_variance(float(sigma), n - 1)
    )
    hypers = (sigma,) if isinstance(sigma, str) else ()
    return LatentTerm(
        blocks=[Block(block, n - 1, variance, hypers)],
        views=[View(name, block, zero_sum_basis(n), dims=dims)],
    )


def refuse(kind: str, what: str) -> SkipmodelError:
    """The one-line refusal of a term the Laplace method cannot write as a latent Gaussian."""
    return SkipmodelError(
        f"--method laplace does not fit {what} ({kind} term) yet; use --method nuts"
    )


__all__ = [
    "LARGE_POOL",
    "Block",
    "Hyper",
    "LatentTerm",
    "View",
    "fixed_variance",
    "refuse",
    "scaled_variance",
    "zero_sum",
    "zero_sum_basis",
]
