"""From a spec and a table of plays to model-ready arrays: the only place data become NumPy.

A :class:`Design` holds, per term, compact integer codes (int32, one per play, ``-1`` for a
level unseen when the encoders were fitted), float arrays of standardised inputs, and small
design-time tables (random-walk bases over the levels; HSGP bases on a fixed grid of
:data:`SMOOTH_GATHER_GRID` points over the fitted range, each row coded by its nearest point). No
one-hot matrices: effects are gathered by code.

Everything learnt from the fitted data — level maps (with rare levels pooled into
``__other__``), centring and scaling, HSGP boxes, the parametrisation chosen — lives in
:class:`Encoders`, which is JSON-serialisable and passed back in to encode new plays the same way
(``build_design(spec, new_rows, encoders=fitted.encoders)``).

Leakage rule (DESIGN.md): no column that is an outcome of the play being predicted
(:data:`skipmodel.store.schema.OUTCOME_COLUMNS`) is ever read as a predictor; lag columns are fine.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.model.spec import Fixed, Markov, ModelSpec, Pooled, Priors, Seasonal, Smooth, Term
from skipmodel.store.schema import OUTCOME_COLUMNS, WEEKDAYS

OTHER = "__other__"
MISSING = "__missing__"
UNSEEN = -1
#: "auto" parametrisation: a level (or random-walk mode) is centred when the data's information
#: about it is at least this many times the prior's (see :func:`information_ratio`): the data then
#: pin it down and the centred form mixes better; thin levels stay non-centred.
INFORMATIVE_RATIO = 4.0
#: Pools with fewer levels are never "mixed" (which gives up the sum-to-zero): all centred when
#: the median level is informative, else all non-centred; with few levels the intercept would
#: trade off with the pool's mean (intercept bulk ESS 45-70 of 600 at 10k plays, context_type).
MIXED_MIN_LEVELS = 50
#: Upper bound on the automatic HSGP basis size (the heuristic can ask for more on wide ranges).
HSGP_MAX_BASIS = 40
#: Points on which each smooth is also evaluated for reporting (``<column>_grid`` coords).
SMOOTH_GRID = 50
#: Points of the grid a smooth is evaluated on in the model: each row gathers its nearest grid
#: point's value, so a logp evaluation costs one small basis product, not one per distinct value
#: (max error: half a grid step, 1/2000 of the fitted range, far below any lengthscale allowed).
SMOOTH_GATHER_GRID = 1000
#: Session positions always covered (MSSD sessions have at most 20 plays).
MIN_POSITIONS = 20
PREV_LEVELS: tuple[str, ...] = ("no_previous", "false", "true")
#: The observed levels of a previous outcome, when ``no_previous`` is fixed at 0 (see
#: :func:`_design_markov`).
PREV_OBSERVED: tuple[str, ...] = PREV_LEVELS[1:]


# ---------------------------------------------------------------------------------------------
# Fitted encoders


@dataclass(frozen=True)
class LevelMap:
    """Levels of a categorical column: kept levels, the rare ones pooled into ``__other__``."""

    column: str
    levels: tuple[str, ...]
    rare: tuple[str, ...] = ()

    def encode(self, values: pd.Series) -> np.ndarray:
        """Integer codes; rare levels -> ``__other__``; levels never seen -> ``UNSEEN`` (-1)."""
        if isinstance(values.dtype, pd.CategoricalDtype):
            # Categorical (Arrow dictionary) columns: encode the categories present once, take.
            cat_codes = values.cat.codes.to_numpy()  # -1 for null
            present = np.unique(cat_codes)
            categories = values.cat.categories
            names = pd.Series([None if c < 0 else categories[c] for c in present], dtype=object)
            lookup = np.full(len(categories) + 1, UNSEEN, dtype=np.int32)  # last slot: null
            lookup[present] = self._encode_text(_as_text(names))
            return lookup[cat_codes]
        fast = _arrow_text(values)
        if fast is not None:
            # One hash lookup against kept + rare levels; a rare level's index is past the kept.
            codes = pc.index_in(fast, value_set=self._known_array).fill_null(UNSEEN)
            out = codes.to_numpy(zero_copy_only=False).astype(np.int32)
            if self.rare:
                out[out >= len(self.levels)] = self.levels.index(OTHER)
            return out
        return self._encode_text(_as_text(values))

    def _encode_text(self, text: pd.Series) -> np.ndarray:
        codes = pd.Index(self.levels).get_indexer(text).astype(np.int32)
        if self.rare:
            is_rare = pd.Index(self.rare).get_indexer(text) >= 0
            codes[is_rare] = self.levels.index(OTHER)
        return codes

    @functools.cached_property
    def _known_array(self) -> pa.Array:
        return pa.array((*self.levels, *self.rare), type=pa.string())


@dataclass(frozen=True)
class Scaler:
    """``(f(x) - center) / scale`` with ``f = log(x + 1e-10)`` when ``log``."""

    center: float
    scale: float
    log: bool = False

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.log:
            x = np.log(np.clip(x, 0, None) + 1e-10)
        return (x - self.center) / self.scale

    @classmethod
    def fit(cls, x: np.ndarray, *, log: bool = False, scale: bool = True) -> Scaler:
        """Centre on the mean; divide by the sd unless ``scale`` is False (0/1 flags)."""
        raw = cls(0.0, 1.0, log).transform(x)
        raw = raw[np.isfinite(raw)]
        if raw.size == 0:
            return cls(0.0, 1.0, log)
        sd = float(raw.std()) if scale else 1.0
        return cls(float(raw.mean()), sd if sd > 0 else 1.0, log)


@dataclass
class Encoders:
    """Everything learnt from the fitted data, keyed by a name unique within the spec."""

    levels: dict[str, LevelMap] = field(default_factory=dict)
    scalers: dict[str, Scaler] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": {k: asdict(v) for k, v in self.levels.items()},
            "scalers": {k: asdict(v) for k, v in self.scalers.items()},
            "settings": self.settings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Encoders:
        levels = {
            k: LevelMap(v["column"], tuple(v["levels"]), tuple(v["rare"]))
            for k, v in data["levels"].items()
        }
        scalers = {k: Scaler(**v) for k, v in data["scalers"].items()}
        settings = json.loads(json.dumps(data["settings"]))
        return cls(levels, scalers, settings)


# ---------------------------------------------------------------------------------------------
# The design


@dataclass(frozen=True)
class TermDesign:
    """One term's arrays: codes (int32, per play), values (float, per play), small tables,
    the coords it introduces and the choices made from the data (``settings``)."""

    term: Term
    name: str
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, np.ndarray] = field(default_factory=dict)
    coords: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: Tables computed from these rows' distinct values rather than from the encoders (they
    #: change with the rows, so a model cannot reuse them for other rows, e.g. minibatches).
    data_tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Design:
    """Model-ready arrays for ``n_obs`` rows (plays, or aggregated cells with ``trials``)."""

    spec: ModelSpec
    n_obs: int
    outcome: np.ndarray | None
    terms: tuple[TermDesign, ...]
    encoders: Encoders
    trials: np.ndarray | None = None
    row_ids: pd.DataFrame | None = None

    @property
    def likelihood(self) -> str:
        """``bernoulli`` on rows, ``binomial`` on aggregated cells."""
        return "bernoulli" if self.trials is None else "binomial"

    @property
    def coords(self) -> dict[str, tuple[Any, ...]]:
        out: dict[str, tuple[Any, ...]] = {}
        for t in self.terms:
            out.update(t.coords)
        return out

    def term(self, name: str) -> TermDesign:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)


def term_name(term: Term) -> str:
    """The stable name of a term inside a spec (prefix of its variables)."""
    if isinstance(term, Smooth):
        return f"smooth_{term.label}"
    if isinstance(term, Pooled):
        return f"pooled_{term.label}"
    return term.kind


def check_leakage(spec: ModelSpec) -> None:
    """Refuse any outcome column of the play itself as a predictor (lags are fine)."""
    for column in spec.predictor_columns():
        _refuse_outcome(column)


def _refuse_outcome(column: str) -> None:
    if column in OUTCOME_COLUMNS:
        raise SkipmodelError(
            f"column {column!r} is an outcome of the play being predicted and cannot be a "
            f"predictor (leakage rule); use the previous play's 'prev_{column}' instead"
        )


def build_design(
    spec: ModelSpec,
    data: pd.DataFrame | pa.Table,
    *,
    encoders: Encoders | None = None,
    require_outcome: bool = True,
) -> Design:
    """Turn plays into a :class:`Design`.

    Parameters
    ----------
    spec : ModelSpec
    data : pandas.DataFrame or pyarrow.Table
        Rows as the loaders return them (session columns, ``weekday``, track features, lags).
    encoders : Encoders, optional
        Those of a fitted design, to encode new rows identically; fitted from ``data`` if None.
    require_outcome : bool
        Fail when the outcome column is absent (fitting); prediction passes False.
    """
    check_leakage(spec)
    frame = data.to_pandas() if isinstance(data, pa.Table | pa.RecordBatch) else data
    needed = set(spec.predictor_columns())
    if require_outcome:
        needed.add(spec.outcome)
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise SkipmodelError(
            f"data lack column(s) {missing} needed by model {spec.name!r}; "
            f"available: {sorted(frame.columns)}"
        )
    if len(frame) == 0:
        raise SkipmodelError("no rows to build a design from (empty sample or split)")
    fitting = encoders is None
    enc = Encoders() if encoders is None else encoders
    positions = any(isinstance(t, Seasonal) and t.position for t in spec.terms)
    ctx = _Context(frame, enc, fitting, spec.priors, spec.outcome, positions)
    terms = tuple(_design_term(ctx, t) for t in spec.terms)
    outcome = None
    if spec.outcome in frame.columns:
        col = frame[spec.outcome]
        if col.isna().any():
            raise SkipmodelError(f"outcome {spec.outcome!r} has missing values")
        outcome = col.to_numpy().astype(np.int8)
    ids = [c for c in ("session_id", "session_position") if c in frame.columns]
    return Design(
        spec=spec,
        n_obs=len(frame),
        outcome=outcome,
        terms=terms,
        encoders=enc,
        row_ids=frame[ids].reset_index(drop=True) if ids else None,
    )


@dataclass
class _Context:
    frame: pd.DataFrame
    enc: Encoders
    fitting: bool
    priors: Priors
    outcome: str
    #: Does a seasonal term model session position? (Then position 1 carries "no previous play".)
    positions: bool = False

    def column(self, name: str) -> pd.Series:
        _refuse_outcome(name)
        return self.frame[name]

    def floats(self, name: str) -> np.ndarray:
        col = self.column(name)
        return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def levels(self, key: str, name: str, *, min_count: int = 1) -> LevelMap:
        if self.fitting:
            counts = _as_text(self.column(name)).value_counts()
            kept = sorted(str(v) for v, c in counts.items() if c >= min_count)
            rare = sorted(str(v) for v, c in counts.items() if c < min_count)
            self.enc.levels[key] = LevelMap(
                name, (*kept, OTHER) if rare else tuple(kept), tuple(rare)
            )
        return self.enc.levels[key]

    def scaler(self, key: str, x: np.ndarray, *, log: bool = False, scale: bool = True) -> Scaler:
        if self.fitting:
            self.enc.scalers[key] = Scaler.fit(x, log=log, scale=scale)
        return self.enc.scalers[key]

    def outcome_rate(self) -> float:
        """Skip rate of the fitted rows (0.5 if they carry no outcome)."""
        if self.outcome not in self.frame.columns:
            return 0.5
        y = pd.to_numeric(self.frame[self.outcome], errors="coerce").to_numpy(dtype=float)
        y = y[np.isfinite(y)]
        return float(y.mean()) if y.size else 0.5

    def settings(
        self, key: str, compute: Any, *, legacy: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The setting ``key``: computed when fitting, else read from the encoders (``legacy``
        for runs fitted before the setting existed)."""
        if self.fitting:
            self.enc.settings[key] = compute()
        elif legacy is not None and key not in self.enc.settings:
            self.enc.settings[key] = legacy
        return self.enc.settings[key]


def _arrow_text(values: pd.Series) -> pa.Array | None:
    """A text column as Arrow strings with nulls as ``__missing__`` (what :func:`_as_text` gives,
    without a Python object per row), or None when the column is not plain text or its values
    read as booleans (``_as_text`` lower-cases those)."""
    if not (pd.api.types.is_string_dtype(values.dtype) and values.dtype != object):
        return None
    arr = pa.array(values, from_pandas=True)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return None
    arr = pc.fill_null(arr.cast(pa.string()), MISSING)
    if len(arr) and pc.all(pc.is_in(arr, value_set=_BOOL_TEXT)).as_py():
        return None
    return arr


_BOOL_TEXT = pa.array(["True", "False", MISSING])


def _as_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").fillna(MISSING)
    if pd.api.types.is_bool_dtype(values.dtype) or set(text.unique()) <= {"True", "False", MISSING}:
        text = text.str.lower().replace("__missing__", MISSING)
    return text.astype(object)


def information_ratio(plays: np.ndarray, rate: float, prior_scale: float) -> np.ndarray:
    """Data over prior information about a logit effect with ``plays`` Bernoulli trials.

    Fisher information of ``n`` plays at skip rate ``p`` is ``n p (1 - p)``; the prior's is
    ``1 / s^2`` with ``s`` a typical value of the effect's scale, half its HalfNormal prior scale.
    """
    rate = min(max(float(rate), 0.01), 0.99)
    return np.asarray(plays, dtype=float) * rate * (1 - rate) * (prior_scale / 2) ** 2


def pooled_parametrization(
    choice: str, counts: np.ndarray, rate: float, prior_scale: float
) -> dict[str, Any]:
    """The settings of a pooled term: ``{"p": ..., "centered": [level indices]}``.

    ``auto`` centres the informative levels (:data:`INFORMATIVE_RATIO`) and leaves the thin ones
    non-centred; if that splits the levels, the term is ``mixed`` (see ``terms.build_pooled``).
    """
    if choice == "centered":
        return {"p": "centered", "centered": list(range(len(counts)))}
    if choice == "noncentered" or len(counts) == 0:
        return {"p": "noncentered", "centered": []}
    ratio = information_ratio(counts, rate, prior_scale)
    thick = ratio >= INFORMATIVE_RATIO
    if len(counts) < MIXED_MIN_LEVELS:
        thick[:] = np.median(ratio) >= INFORMATIVE_RATIO
    if thick.all():
        return {"p": "centered", "centered": list(range(len(counts)))}
    if not thick.any():
        return {"p": "noncentered", "centered": []}
    return {"p": "mixed", "centered": [int(i) for i in np.flatnonzero(thick)]}


def random_walk_basis(n: int, *, cyclic: bool) -> np.ndarray:
    """Basis ``B`` (n, n-1) with ``B @ z``, z ~ N(0, I), a sum-to-zero first-order random walk.

    The random walk's precision is the (cyclic or path) graph Laplacian; its eigenvectors
    (Fourier modes on a cycle, cosines on a path) scaled by 1/sqrt(eigenvalue) give an exactly
    non-centred form without constraints. Columns are scaled so the average marginal variance is
    1, so the term's ``sigma`` is its typical size (Sorbye & Rue's scaling).
    """
    diff = np.eye(n, k=1)[: n if cyclic else n - 1] - np.eye(n)[: n if cyclic else n - 1]
    if cyclic:
        diff[n - 1, 0] = 1.0
    w, v = np.linalg.eigh(diff.T @ diff)
    keep = w > 1e-9
    basis = v[:, keep] / np.sqrt(w[keep])
    return basis / np.sqrt((basis**2).sum(axis=1).mean())


def fourier_basis(hours: np.ndarray, harmonics: int, period: float = 24.0) -> np.ndarray:
    """cos/sin pairs of harmonics 1..k (the periodic HSGP basis without its constant)."""
    k = np.arange(1, harmonics + 1)
    arg = 2 * np.pi * np.outer(hours, k) / period
    return np.concatenate([np.cos(arg), np.sin(arg)], axis=1)


def hsgp_basis(x: np.ndarray, *, center: float, half_width: float, m: int) -> np.ndarray:
    """Laplacian eigenfunctions on [center - L, center + L] (Solin & Sarkka), shape (len(x), m)."""
    sqrt_eig = np.pi * np.arange(1, m + 1) / (2 * half_width)
    return np.sqrt(1 / half_width) * np.sin(np.outer(x - center + half_width, sqrt_eig))


def hsgp_sqrt_eigenvalues(half_width: float, m: int) -> np.ndarray:
    return np.pi * np.arange(1, m + 1) / (2 * half_width)


#: sqrt(2 pi) as a Python float, so float32 models stay float32.
SQRT_2PI = float(np.sqrt(2 * np.pi))


def expquad_sqrt_psd(ls: Any, amp: Any, sqrt_eig: np.ndarray, lib: Any = np) -> Any:
    """Square root of the ExpQuad spectral density at the HSGP frequencies (NumPy or PyTensor).

    ``sqrt(sqrt(2 pi) ls exp(-(ls w)^2 / 2))``, with the square root taken inside the exp: the
    plain form's gradient is 0 * inf = NaN once exp(...) underflows (long lengthscales).
    """
    return amp * lib.sqrt(SQRT_2PI * ls) * lib.exp(-0.25 * (ls * sqrt_eig) ** 2)


def fixed_lengthscale(term: Smooth, priors: Priors) -> float | None:
    """The lengthscale a smooth is fixed at (standardised units), or None when it is free."""
    if term.lengthscale == "free":
        return None
    if term.lengthscale == "auto":
        return float(np.sqrt(priors.lengthscale_lower * priors.lengthscale_upper))
    return float(term.lengthscale)


def hsgp_box(
    x_min: float,
    x_max: float,
    priors: Priors,
    *,
    m: int | None,
    c: float | None,
    lengthscale: float | None = None,
):
    """Basis size and box factor from the data range, as PyMC's ``approx_hsgp_hyperparams``
    does for an ExpQuad kernel (Ruitort-Mayol et al. 2022), unless given: for the prior's
    lengthscale range, or for one fixed ``lengthscale``."""
    lower, upper = (
        (priors.lengthscale_lower, priors.lengthscale_upper)
        if lengthscale is None
        else (lengthscale, lengthscale)
    )
    half = max((x_max - x_min) / 2, 1e-6)
    c_auto = max(3.2 * upper / half, 1.2)
    c_used = c if c is not None else c_auto
    m_auto = int(1.75 * c_used / (lower / half))
    m_used = m if m is not None else int(min(max(m_auto, 8), HSGP_MAX_BASIS))
    return m_used, c_used, half


def smooth_modes(
    basis: np.ndarray, plays: np.ndarray, rate: float, prior_scale: float
) -> tuple[np.ndarray, list[int]]:
    """Rotation of a fixed-lengthscale smooth's modes, and the modes to centre.

    The smooth is ``basis @ (amplitude * w)`` with ``w ~ N(0, I)``; ``plays`` per basis row
    give ``w`` the information ``H = a^2 B' diag(plays p (1 - p)) B`` at a typical amplitude
    ``a`` (half its prior scale, as :func:`information_ratio`). Low-frequency HSGP modes are
    nearly collinear over the data, so ``H`` is far from diagonal, and NUTS with a diagonal mass
    matrix crawls along the correlations. With ``V`` the eigenvectors of ``H``, ``w = V u``
    leaves the prior unchanged (``V`` is orthogonal, the prior isotropic) and makes the data's
    information diagonal in ``u``. Modes (columns of ``B V``, most informed first) with
    information ratio >= :data:`INFORMATIVE_RATIO` are centred, the others non-centred.
    """
    weights = information_ratio(plays, rate, prior_scale)  # per basis row
    info = basis.T @ (basis * weights[:, None])
    info = (info + info.T) / 2
    # Modes the data barely inform (few distinct values: a binned column) have (near-)equal
    # eigenvalues, so their eigenvectors are arbitrary and would change with summation order
    # (cells against rows). A tiny ramp, largest for the smoothest mode, keeps them in the basis
    # order; it moves no eigenvalue by more than 1e-9 of the largest.
    m = info.shape[0]
    ramp = 1e-9 * max(float(np.abs(info).max()), 1e-300) * np.linspace(1.0, 0.5, m)
    eigenvalues, vectors = np.linalg.eigh(info + np.diag(ramp))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order]
    # a fixed sign per mode (largest loading positive), so the rotation is reproducible
    flip = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    vectors = vectors * np.where(flip == 0, 1.0, flip)
    centered = [int(j) for j in np.flatnonzero(eigenvalues >= INFORMATIVE_RATIO)]
    return vectors, centered


# ---------------------------------------------------------------------------------------------
# One design function per term kind


def walk_parametrization(
    choice: str, plays: np.ndarray, basis: np.ndarray, rate: float, prior_scale: float
) -> list[int]:
    """Random-walk modes to centre: ``basis`` columns the data inform (``auto``), all, or none.

    Mode ``j`` adds ``a_j * basis[:, j]`` with ``a_j ~ N(0, sigma)``; ``plays`` per level give it
    information ``sum_l plays_l p (1 - p) basis[l, j]^2`` (:func:`information_ratio`).
    """
    if choice == "centered":
        return list(range(basis.shape[1]))
    if choice == "noncentered":
        return []
    per_mode = np.asarray(plays, dtype=float) @ basis**2
    ratio = information_ratio(per_mode, rate, prior_scale)
    return [int(j) for j in np.flatnonzero(ratio >= INFORMATIVE_RATIO)]


def _walk_modes(
    ctx: _Context,
    term: Seasonal,
    key: str,
    setting: str,
    codes: np.ndarray,
    tables: dict[str, np.ndarray],
    coords: dict[str, tuple[Any, ...]],
) -> None:
    """Choose the centred modes of the walk ``key`` (stored in the encoders as ``setting``)."""
    basis = tables[f"{key}_basis"]
    chosen = ctx.settings(
        setting,
        lambda: {
            "centered": walk_parametrization(
                term.parametrization,
                np.bincount(codes, minlength=basis.shape[0]),
                basis,
                ctx.outcome_rate(),
                ctx.priors.smooth_sigma,
            )
        },
        legacy={"centered": []},  # runs fitted before per-mode centring
    )
    _mode_tables(key, chosen["centered"], basis.shape[1], tables, coords)


def _mode_tables(
    key: str,
    centered: list[int],
    n_modes: int,
    tables: dict[str, np.ndarray],
    coords: dict[str, tuple[Any, ...]],
) -> None:
    """``<key>_centered`` / ``<key>_noncentered`` mode indices and their coords (the names
    :func:`skipmodel.model.terms._mode_coefficients` reads)."""
    tables[f"{key}_centered"] = np.asarray(centered, dtype=np.int64)
    tables[f"{key}_noncentered"] = np.setdiff1d(np.arange(n_modes), tables[f"{key}_centered"])
    for part in ("centered", "noncentered"):
        if tables[f"{key}_{part}"].size:
            coords[f"{key}_mode_{part}"] = tuple(int(j) for j in tables[f"{key}_{part}"])


def _design_seasonal(ctx: _Context, term: Seasonal, name: str) -> TermDesign:
    codes: dict[str, np.ndarray] = {}
    tables: dict[str, np.ndarray] = {}
    coords: dict[str, tuple[Any, ...]] = {}
    settings: dict[str, Any] = {}
    if term.weekday:
        wd = ctx.floats("weekday")
        if np.isnan(wd).any() or ((wd < 0) | (wd > 6)).any():
            raise SkipmodelError("column 'weekday' must hold 0 (Mon) .. 6 (Sun) without nulls")
        codes["weekday"] = wd.astype(np.int32)
        coords["weekday"] = WEEKDAYS
    if term.hour != "none":
        hour = ctx.floats("hour_of_day")
        if np.isnan(hour).any() or ((hour < 0) | (hour > 23)).any():
            raise SkipmodelError("column 'hour_of_day' must hold 0 .. 23 without nulls")
        codes["hour"] = hour.astype(np.int32)
        coords["hour"] = tuple(range(24))
        if term.hour == "cyclic_rw":
            tables["hour_basis"] = random_walk_basis(24, cyclic=True)
            _walk_modes(ctx, term, "hour", f"{name}.hour_modes", codes["hour"], tables, coords)
        else:
            tables["hour_basis"] = fourier_basis(np.arange(24), term.hour_harmonics)
            coords["hour_harmonic"] = tuple(range(1, term.hour_harmonics + 1))
            coords["hour_mode"] = tuple(range(tables["hour_basis"].shape[1]))
    if term.position:
        pos = ctx.floats("session_position")
        n_pos = int(
            ctx.settings(
                f"{name}.position",
                lambda: {"n": int(max(MIN_POSITIONS, np.nanmax(pos)))},
            )["n"]
        )
        codes["position"] = (np.clip(np.nan_to_num(pos, nan=1), 1, n_pos) - 1).astype(np.int32)
        coords["position"] = tuple(range(1, n_pos + 1))
        tables["position_basis"] = random_walk_basis(n_pos, cyclic=False)
        _walk_modes(
            ctx, term, "position", f"{name}.position_modes", codes["position"], tables, coords
        )
    if term.day_of_month:
        days = pd.to_datetime(ctx.column("date")).dt.day.to_numpy()
        codes["day"] = (days - 1).astype(np.int32)
        coords["day_of_month"] = tuple(range(1, 32))
        tables["day_basis"] = random_walk_basis(31, cyclic=False)
        _walk_modes(ctx, term, "day", f"{name}.day_modes", codes["day"], tables, coords)
    return TermDesign(term, name, codes=codes, tables=tables, coords=coords, settings=settings)


def _prev_codes(ctx: _Context, column: str) -> np.ndarray:
    values = ctx.column(column)
    flag = values.astype("boolean")
    return np.where(
        flag.isna().to_numpy(), 0, np.where(flag.fillna(False).to_numpy(), 2, 1)
    ).astype(np.int32)


def _design_markov(ctx: _Context, term: Markov, name: str) -> TermDesign:
    """Previous outcome(s) as codes 0 = no previous play, 1 = false, 2 = true, and feature slopes.

    With session position in the model, "no previous play" is (up to gaps in a session) the same
    rows as position 1 (and, two plays back, positions 1 and 2): the sum of the two effects is
    all the data identify, a ridge NUTS crawls along (the slowest direction of the ``full``
    model on rows and on aggregated cells). Then ``no_previous`` is fixed at 0 — the position
    effect carries it — and false / true are a zero-sum pair (``settings["no_previous_zero"]``,
    kept in the encoders; runs fitted before keep the three-level effect). A row after a gap in
    its session (previous position missing) then gets 0, the average of false and true.
    """
    codes = {"prev": _prev_codes(ctx, f"prev_{ctx.outcome}")}
    coords: dict[str, tuple[Any, ...]] = {f"prev_{ctx.outcome}": PREV_LEVELS}
    if term.lag2:
        codes["prev2"] = _prev_codes(ctx, f"prev2_{ctx.outcome}")
        coords[f"prev2_{ctx.outcome}"] = PREV_LEVELS
    # runs fitted before this choice keep their three-level effects
    setting = ctx.settings(
        f"{name}.no_previous", lambda: {"zero": ctx.positions}, legacy={"zero": False}
    )
    zero = bool(setting["zero"])
    if zero:
        for dim in list(coords):
            coords[f"{dim}_observed"] = PREV_OBSERVED
    values: dict[str, np.ndarray] = {}
    if term.features:
        coords["markov_feature"] = term.features
        cur, prev, inter, change = [], [], [], []
        for feat in term.features:
            x, xp = ctx.floats(feat), ctx.floats(f"prev_{feat}")
            sc = ctx.scaler(f"{name}.{feat}", x)
            z, zp = sc.transform(x), sc.transform(xp)
            # Product and absolute change are centred but not rescaled, so their slopes read
            # per unit of z_before * z_now and of |z_now - z_before|.
            prod = z * zp
            sc_i = ctx.scaler(f"{name}.{feat}.interaction", prod, scale=False)
            delta = np.abs(z - zp)
            sc_c = ctx.scaler(f"{name}.{feat}.change", delta, scale=False)
            cur.append(np.nan_to_num(z))
            prev.append(np.nan_to_num(zp))
            inter.append(np.nan_to_num(sc_i.transform(prod)))
            change.append(np.nan_to_num(sc_c.transform(delta)))
        values["prev"] = np.column_stack(prev)
        if term.current:
            values["current"] = np.column_stack(cur)
        if term.interactions:
            values["interaction"] = np.column_stack(inter)
        if term.changes:
            values["change"] = np.column_stack(change)
    settings = {"no_previous_zero": zero}
    return TermDesign(term, name, codes=codes, values=values, coords=coords, settings=settings)


def _gather_grid(z: np.ndarray, lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` equally spaced points over [lo, hi] and each value's nearest point (int32)."""
    codes = np.rint((z - lo) * ((n - 1) / (hi - lo))).astype(np.int32)
    return np.linspace(lo, hi, n), codes


def _design_smooth(ctx: _Context, term: Smooth, name: str) -> TermDesign:
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

        _mode_tables(label, b["centered"], b["m"], tables, coords)
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


def _design_pooled(ctx: _Context, term: Pooled, name: str) -> TermDesign:
    lm = ctx.levels(name, term.column, min_count=term.min_count)
    raw = ctx.column(term.column)
    codes = {"level": lm.encode(raw)}
    if (codes["level"] < 0).any():
        # Number the distinct unseen levels so each gets its own population draw at prediction.
        new = pd.factorize(_as_text(raw[codes["level"] < 0]))[0]
        codes["unseen"] = np.full(len(raw), UNSEEN, dtype=np.int32)
        codes["unseen"][codes["level"] < 0] = new
    coords: dict[str, tuple[Any, ...]] = {term.label: lm.levels}
    seen = codes["level"][codes["level"] >= 0]
    counts = np.bincount(seen, minlength=len(lm.levels))
    chosen = ctx.settings(
        name,
        lambda: pooled_parametrization(
            term.parametrization, counts, ctx.outcome_rate(), ctx.priors.group_sigma
        ),
    )
    everything = list(range(len(lm.levels))) if chosen["p"] == "centered" else []
    centered = np.asarray(chosen.get("centered", everything), dtype=np.int64)
    tables = {
        "centered": centered,
        "noncentered": np.setdiff1d(np.arange(len(lm.levels)), centered),
    }
    if chosen["p"] == "mixed":
        levels = np.asarray(lm.levels, dtype=object)
        coords[f"{term.label}_centered"] = tuple(levels[tables["centered"]])
        coords[f"{term.label}_noncentered"] = tuple(levels[tables["noncentered"]])
    values: dict[str, np.ndarray] = {}
    if term.slopes:
        cols = []
        for col in term.slopes:
            x = ctx.floats(col)
            cols.append(np.nan_to_num(ctx.scaler(f"{name}.{col}", x).transform(x)))
        values["slopes"] = np.column_stack(cols)
        coords[f"{term.label}_slope"] = term.slopes
    return TermDesign(
        term,
        name,
        codes=codes,
        values=values,
        tables=tables,
        coords=coords,
        settings={"parametrization": chosen["p"]},
    )


def _design_fixed(ctx: _Context, term: Fixed, name: str) -> TermDesign:
    codes: dict[str, np.ndarray] = {}
    coords: dict[str, tuple[Any, ...]] = {}
    slopes: list[np.ndarray] = []
    slope_names: list[str] = []
    for col in term.columns:
        series = ctx.column(col)
        is_bool = pd.api.types.is_bool_dtype(series.dtype) or str(series.dtype) == "boolean"
        is_num = pd.api.types.is_numeric_dtype(series.dtype) and not is_bool
        if col in term.categorical or not (is_bool or is_num):
            lm = ctx.levels(f"{name}.{col}", col)
            codes[col] = lm.encode(series)
            coords[col] = lm.levels
            continue
        x = ctx.floats(col)
        # Booleans are centred only (slope = log-odds change from false to true).
        sc = ctx.scaler(f"{name}.{col}", x, log=col in term.log, scale=not is_bool)
        slopes.append(np.nan_to_num(sc.transform(x)))
        slope_names.append(col)
    values = {"slopes": np.column_stack(slopes)} if slopes else {}
    if slopes:
        coords["fixed_predictor"] = tuple(slope_names)
    return TermDesign(term, name, codes=codes, values=values, coords=coords)


_DESIGNERS: dict[str, Callable[[_Context, Any, str], TermDesign]] = {
    "seasonal": _design_seasonal,
    "markov": _design_markov,
    "smooth": _design_smooth,
    "pooled": _design_pooled,
    "fixed": _design_fixed,
}


def _design_term(ctx: _Context, term: Term) -> TermDesign:
    return _DESIGNERS[term.kind](ctx, term, term_name(term))


__all__ = [
    "INFORMATIVE_RATIO",
    "OTHER",
    "UNSEEN",
    "Design",
    "Encoders",
    "LevelMap",
    "Scaler",
    "TermDesign",
    "build_design",
    "check_leakage",
    "expquad_sqrt_psd",
    "fixed_lengthscale",
    "information_ratio",
    "pooled_parametrization",
    "walk_parametrization",
    "random_walk_basis",
    "smooth_modes",
    "term_name",
]
