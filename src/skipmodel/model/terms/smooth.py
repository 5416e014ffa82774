"""The smooth kind: a Hilbert-space GP (squared-exponential kernel) of one continuous column.

The HSGP basis lives on a box around the standardised fitted range and is centred on the fitted
rows; each row is coded by its nearest point of a fine gather grid
(:data:`skipmodel.model.bases.SMOOTH_GATHER_GRID`). With a fixed lengthscale (the default) the
basis is rotated so the data inform its modes independently and the informed modes are centred
(:func:`skipmodel.model.bases.smooth_modes`); with a free lengthscale, the non-centred linearised
form. Variables: ``<col>_amplitude``, ``<col>_effect`` [<col>_grid: 50 points in the column's own
units]; fixed: ``<col>_coef`` / ``<col>_z`` [<col>_mode_centered / _noncentered]; free:
``<col>_lengthscale``, ``<col>_z`` [<col>_basis]. It aggregates once its column is binned.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skipmodel.errors import SkipmodelError
from skipmodel.model.bases import (
    SMOOTH_GATHER_GRID,
    SMOOTH_GRID,
    expquad_sqrt_psd,
    fixed_lengthscale,
    hsgp_basis,
    hsgp_box,
    hsgp_sqrt_eigenvalues,
    smooth_modes,
)
from skipmodel.model.latent import Block, Hyper, LatentTerm, View, scaled_variance
from skipmodel.model.spec import Priors
from skipmodel.model.term_specs import Smooth
from skipmodel.model.terms.base import (
    CellPlan,
    Contribution,
    DesignContext,
    Draws,
    EffectPlot,
    TermDesign,
    TermKind,
)
from skipmodel.model.terms.modes import (
    lognormal_params,
    mode_coefficient_draws,
    mode_coefficients,
    mode_tables,
)


def _gather_grid(z: np.ndarray, lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` equally spaced points over [lo, hi] and each value's nearest point (int32)."""
    codes = np.rint((z - lo) * ((n - 1) / (hi - lo))).astype(np.int32)
    return np.linspace(lo, hi, n), codes


def _design(ctx: DesignContext, term: Smooth, name: str) -> TermDesign:
    x = ctx.floats(term.column)
    sc = ctx.scaler(name, x, log=term.log)
    z = sc.transform(x)

    def box() -> dict[str, Any]:
        finite = z[np.isfinite(z)]
        if finite.size < 2 or finite.min() == finite.max():
            raise SkipmodelError(f"smooth on {term.column!r}: needs at least two distinct values")
        lo, hi = float(finite.min()), float(finite.max())
        ls = fixed_lengthscale(term, ctx.priors)
        m, c, half = hsgp_box(lo, hi, ctx.priors, m=term.m, c=term.c, lengthscale=ls)
        center, width = (lo + hi) / 2, c * half
        # Centre each basis function on the fitted rows (at their grid points) so the smooth
        # averages zero over the data and does not compete with the intercept.
        zc = np.clip(np.nan_to_num(z, nan=0.0), lo, hi)
        points, codes = _gather_grid(zc, lo, hi, SMOOTH_GATHER_GRID)
        raw = hsgp_basis(points, center=center, half_width=width, m=m)
        means = raw[codes].mean(axis=0)
        out: dict[str, Any] = {
            "lo": lo,
            "hi": hi,
            "m": m,
            "c": c,
            "center": center,
            "L": width,
            "basis_means": [float(v) for v in means],
            "gather_grid": SMOOTH_GATHER_GRID,
        }
        if ls is not None:
            scaled = (raw - means) * expquad_sqrt_psd(ls, 1.0, hsgp_sqrt_eigenvalues(width, m))
            counts = np.bincount(codes, minlength=points.size)
            rotation, centered = smooth_modes(
                scaled, counts, ctx.outcome_rate(), ctx.priors.smooth_sigma
            )
            out.update(lengthscale=ls, rotation=rotation.tolist(), centered=centered)
        return out

    b = ctx.settings(name, box)
    # Missing values get the average (0); values outside the fitted range are clamped to it,
    # since the HSGP basis only approximates the GP inside its box.
    z = np.clip(np.nan_to_num(z, nan=0.0), b["lo"], b["hi"])
    if "gather_grid" in b:
        points, codes = _gather_grid(z, b["lo"], b["hi"], int(b["gather_grid"]))
        data_tables: tuple[str, ...] = ()
    else:  # encoders fitted before gather grids (older runs): the exact distinct values
        points, codes = np.unique(z, return_inverse=True)
        data_tables = ("basis",)
    grid_z = np.linspace(b["lo"], b["hi"], SMOOTH_GRID)
    grid_raw = grid_z * sc.scale + sc.center
    if term.log:
        grid_raw = np.exp(grid_raw) - 1e-10
    means = np.asarray(b["basis_means"])

    sqrt_eig = hsgp_sqrt_eigenvalues(b["L"], b["m"])
    label = term.label
    coords: dict[str, tuple[Any, ...]] = {f"{label}_grid": tuple(float(v) for v in grid_raw)}
    tables: dict[str, np.ndarray] = {"sqrt_eigenvalues": sqrt_eig}
    if "lengthscale" in b:
        # Fixed lengthscale: modes of the rotated, spectrally scaled basis (see smooth_modes).
        rotation = np.asarray(b["rotation"], dtype=float)
        scale = expquad_sqrt_psd(float(b["lengthscale"]), 1.0, sqrt_eig)

        def basis(x: np.ndarray) -> np.ndarray:
            raw = hsgp_basis(x, center=b["center"], half_width=b["L"], m=b["m"]) - means
            return (raw * scale) @ rotation

        mode_tables(label, b["centered"], b["m"], tables, coords)
    else:

        def basis(x: np.ndarray) -> np.ndarray:
            return hsgp_basis(x, center=b["center"], half_width=b["L"], m=b["m"]) - means

        coords[f"{label}_basis"] = tuple(range(b["m"]))
    tables["basis"] = basis(points)
    tables["grid_basis"] = basis(grid_z)
    return TermDesign(
        term,
        name,
        codes={"value": codes.astype(np.int32)},
        tables=tables,
        coords=coords,
        settings=dict(b),
        data_tables=data_tables,
    )


def _fixed(td: TermDesign) -> bool:
    """Is this smooth's lengthscale fixed (rotated modes), rather than free?"""
    return f"{td.term.label}_basis" not in td.coords


def _free_lengthscale_coefficients(td: TermDesign, priors: Priors) -> Any:
    import pymc as pm
    import pytensor.tensor as pt

    label = td.term.label
    mu, sd = lognormal_params(priors.lengthscale_lower, priors.lengthscale_upper)
    ls = pm.LogNormal(f"{label}_lengthscale", mu=mu, sigma=sd)
    amp = pm.HalfNormal(f"{label}_amplitude", sigma=priors.smooth_sigma)
    z = pm.Normal(f"{label}_z", 0.0, 1.0, dims=f"{label}_basis")
    return expquad_sqrt_psd(ls, amp, td.tables["sqrt_eigenvalues"], pt) * z


class SmoothKind(TermKind):
    spec = Smooth

    def design(self, ctx: DesignContext, term: Smooth, name: str) -> TermDesign:
        return _design(ctx, term, name)

    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        import pymc as pm
        import pytensor.tensor as pt

        label = td.term.label
        basis = td.tables["basis"]
        if _fixed(td):
            # Fixed lengthscale: the basis columns are the rotated, spectrally scaled modes
            # (bases.smooth_modes), so only the amplitude scales them, like a random walk's.
            amp = pm.HalfNormal(f"{label}_amplitude", sigma=priors.smooth_sigma)
            coef = mode_coefficients(td, label, amp, basis.shape[1])
        else:
            coef = _free_lengthscale_coefficients(td, priors)
        grid = pt.dot(td.tables["grid_basis"], coef)
        pm.Deterministic(f"{label}_effect", grid, dims=f"{label}_grid")
        return Contribution().gather(pt.dot(basis, coef), td.codes["value"], basis.shape[0])

    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        return self._values(td, draws)[:, td.codes["value"]]

    def _values(self, td: TermDesign, draws: Draws) -> np.ndarray:
        """The smooth at each gather-grid point, per draw."""
        label = td.term.label
        basis = td.tables["basis"]
        if f"{label}_modes" in draws:  # a Laplace fit records the basis coefficients themselves
            return draws[f"{label}_modes"] @ basis.T
        amp = draws[f"{label}_amplitude"]
        if _fixed(td):
            coef = mode_coefficient_draws(td, label, amp, draws, basis.shape[1])
        else:
            ls = draws[f"{label}_lengthscale"][:, None]
            sqrt_eig = td.tables["sqrt_eigenvalues"]
            coef = expquad_sqrt_psd(ls, amp[:, None], sqrt_eig, np) * draws[f"{label}_z"]
        return coef @ basis.T

    def layout(self, td: TermDesign) -> Contribution:
        # The parameters are the smooth's values at the gather-grid points (``<col>_values``, not
        # a posterior variable: the chain rule through ``tables["basis"]`` gives the modes').
        n_points = td.tables["basis"].shape[0]
        return Contribution().gather(f"{td.term.label}_values", td.codes["value"], n_points)

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        """Basis coefficients N(0, amp^2) each (fixed lengthscale: the rotated modes are
        orthonormal in the prior), or N(0, (amp * sqrt_psd_j(ls))^2) with a free lengthscale;
        recorded as ``<col>_modes`` [<col>_mode] and the curve ``<col>_effect``."""
        label = td.term.label
        amp, block = f"{label}_amplitude", f"{label}_modes"
        m = td.tables["basis"].shape[1]
        hypers = [Hyper(amp, "halfnormal", priors.smooth_sigma)]
        if _fixed(td):
            variance = scaled_variance(amp, m)
        else:
            ls = f"{label}_lengthscale"
            mu, sd = lognormal_params(priors.lengthscale_lower, priors.lengthscale_upper)
            hypers.append(Hyper(ls, "lognormal", mu, sd))
            sqrt_eig = td.tables["sqrt_eigenvalues"]

            def variance(theta: Any) -> np.ndarray:
                return expquad_sqrt_psd(theta[ls], theta[amp], sqrt_eig) ** 2

        return LatentTerm(
            hypers=hypers,
            blocks=[Block(block, m, variance, tuple(h.name for h in hypers))],
            views=[
                View(f"{label}_values", block, td.tables["basis"]),
                View(f"{label}_effect", block, td.tables["grid_basis"], False, (f"{label}_grid",)),
                View(block, block, None, False, (f"{label}_mode",)),
            ],
        )

    def cells(self, term: Smooth) -> CellPlan:
        logs = (term.column,) if term.log else ()
        return CellPlan((term.column,), log_columns=logs, what="smooth of a continuous column")

    def effects(self, td: TermDesign) -> tuple[EffectPlot, ...]:
        label = td.term.label
        return (EffectPlot(f"{label}_effect", f"{label}_grid", "curve", "smooth"),)


KIND = SmoothKind()
