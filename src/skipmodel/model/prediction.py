"""Posterior skip probabilities for new plays, without recompiling the model.

The logit is recomputed in NumPy from posterior draws by each term kind's ``evaluate``
(:mod:`skipmodel.model.terms`), on a design encoded with the fitted encoders. Levels unseen in
fitting (new tracks) draw their effect from the population N(0, sigma), independently per level
and per posterior draw, so their uncertainty includes the spread between tracks.

Sequential prediction (WSDM Cup 2019 setting, ``reveal="wsdm"``): for each session the first
half of the plays is observed and the second half predicted; within each posterior draw the
outcome of play t is simulated and fed forward as the previous-play outcome of play t + 1 (and
t + 2 for lag 2), so the predicted probability averages over what the listener may have done in
between. A second-half play reveals what the challenge's ``log_input`` files reveal: its track
(so the track's and the previous track's features), position and the session's length. Every
other column (hour, date, premium, context type, shuffle, pauses, a user's own covariates...) is
integrated over its distribution in the session's first half: each posterior draw takes, per
second-half play, the columns of a play of the first half drawn at random (jointly, so a value
constant over the first half is carried forward; a session without a first half draws from
every session's). ``reveal="context"`` reveals those columns too (the second half's own context:
what the challenge never gave, so its scores are optimistic), ``reveal="all"`` predicts the same
plays one step ahead, every earlier outcome and the context revealed, as a reference for how
much the unknown second half costs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import xarray as xr

from skipmodel.errors import SkipmodelError
from skipmodel.model.binning import bin_plays, run_binning
from skipmodel.model.design import Design, TermDesign, build_design
from skipmodel.model.levels import GaussianLevels, level_draws
from skipmodel.model.terms import Draws, GroupState, kind_of
from skipmodel.model.terms.session import observed_outcomes
from skipmodel.store.schema import LAG_PREFIXES, OUTCOME_COLUMNS, TRACK_COLUMNS

#: A :class:`skipmodel.model.fitting.FitResult` (not imported: fitting imports this module, for
#: the posterior predictive it keeps; :mod:`skipmodel.model.ppc`).
FitResult = Any

#: Default width of the central posterior interval ``p_lo`` .. ``p_hi`` (``interval=``).
INTERVAL = 0.94
#: What sequential prediction may see of a second half: the challenge's (tracks, positions,
#: length), that and the second half's context, or that and every earlier outcome (module notes).
REVEALS: tuple[str, ...] = ("wsdm", "context", "all")
#: Draws of the hidden second-half columns; the posterior draws are spread over them.
IMPUTATIONS = 10
#: Columns a challenge second half reveals besides the track features and their lags.
REVEALED: tuple[str, ...] = ("session_id", "session_position", "session_length", "track_id_clean")


def posterior_draws(posterior: xr.Dataset, *, max_draws: int | None, seed: int) -> Draws:
    """Flatten (chain, draw) into one sample axis, thinned to at most ``max_draws``."""
    stacked = {
        str(name): np.asarray(var.values).reshape(-1, *var.shape[2:])
        for name, var in posterior.data_vars.items()
    }
    total = next(iter(stacked.values())).shape[0]
    if max_draws is not None and total > max_draws:
        keep = np.sort(np.random.default_rng(seed).choice(total, max_draws, replace=False))
        stacked = {k: v[keep] for k, v in stacked.items()}
    return stacked


def run_draws(result: FitResult, *, max_draws: int | None, seed: int) -> Draws:
    """A run's posterior draws; per-level Gaussian summaries (``--method laplace``) as tables
    drawn on demand (:class:`~skipmodel.model.levels.GaussianLevels`)."""
    draws = posterior_draws(
        result.posterior["posterior"].to_dataset(), max_draws=max_draws, seed=seed
    )
    n_draws = len(draws["intercept"])
    draws.update(level_draws(result.posterior, n_draws, seed))  # type: ignore[arg-type]
    return draws


Rows = slice | np.ndarray  # a range of a design's rows, or their indices


def _slice_term(td: TermDesign, rows: Rows) -> TermDesign:
    return TermDesign(
        term=td.term,
        name=td.name,
        codes={k: v[rows] for k, v in td.codes.items()},
        values={k: v[rows] for k, v in td.values.items()},
        tables=td.tables,
        coords=td.coords,
        settings=td.settings,
    )


def linear_predictor_draws(
    design: Design,
    draws: Draws,
    *,
    rng: np.random.Generator,
    rows: Rows | None = None,
    skip_kinds: tuple[str, ...] = (),
    known_only: bool = False,
    learn: bool = True,
) -> np.ndarray:
    """The logit of P(skip), shape (n_draws, n_rows), from posterior (or any) draws.

    ``rows``: a slice or the indices of the rows (default all); with a session term they must
    hold whole sessions, whose earlier plays' outcomes teach the later plays
    (:meth:`~skipmodel.model.terms.TermKind.given_earlier`). ``known_only``: each term's part
    known before its group's earlier outcomes
    (:meth:`~skipmodel.model.terms.TermKind.known_part`), for sequential prediction.
    ``learn=False`` leaves out the shares learnt from earlier outcomes (``given_earlier``).
    """
    rows = rows if rows is not None else slice(0, design.n_obs)
    n_rows = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
    out = np.repeat(draws["intercept"][:, None], n_rows, axis=1)
    sliced = [(td, _slice_term(td, rows)) for td in design.terms if td.term.kind not in skip_kinds]
    for td, part_td in sliced:
        kind = kind_of(td.term)
        part = kind.known_part if known_only else kind.evaluate
        out += part(part_td, draws, rng)
    if learn and not known_only:
        for td, part_td in sliced:
            share = kind_of(td.term).given_earlier(part_td, out, draws)
            if share is not None:
                out += share
    return out


def _group_codes(design: Design) -> np.ndarray | None:
    """Each row's group when a term predicts a group's rows together, else None."""
    for td in design.terms:
        codes = kind_of(td.term).group_codes(td)
        if codes is not None:
            return codes
    return None


def row_chunks(design: Design, size: int) -> Iterator[Rows]:
    """Chunks of about ``size`` rows; whole groups (as indices) when a term needs them."""
    codes = _group_codes(design)
    if codes is None:
        yield from _chunks(design.n_obs, size)
        return
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])
    lo = 0
    for cut in starts[1:]:
        if cut - lo >= size:
            yield order[lo:cut]
            lo = int(cut)
    if lo < design.n_obs:
        yield order[lo:]


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


@dataclass(frozen=True)
class Prediction:
    """Per-row posterior mean skip probability and a central interval."""

    p_skip: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray

    def frame(self, design: Design) -> pd.DataFrame:
        ids = (
            design.row_ids
            if design.row_ids is not None
            else pd.DataFrame(index=range(design.n_obs))
        )
        return ids.assign(p_skip=self.p_skip, p_lo=self.p_lo, p_hi=self.p_hi)


def check_interval(interval: float, name: str = "interval") -> None:
    """Refuse a central interval width outside (0, 1) in one line."""
    if not 0 < interval < 1:  # also refuses NaN
        raise SkipmodelError(
            f"{name} must be strictly between 0 and 1 (0.9: a central 90 % interval), "
            f"got {interval}"
        )


def _summarise(
    p: np.ndarray, interval: float = INTERVAL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tail = (1 - interval) / 2
    lo, hi = np.quantile(p, [tail, 1 - tail], axis=0)
    return p.mean(axis=0), lo, hi


def _chunk_probabilities(
    design: Design, draws: Draws, *, seed: int, chunk_rows: int
) -> Iterator[tuple[Rows, np.ndarray]]:
    """P(skip) per draw, (n_draws, rows), chunk by chunk; the chunks cover every row once."""
    rng = np.random.default_rng(seed)
    for rows in row_chunks(design, chunk_rows):
        eta = linear_predictor_draws(design, draws, rng=rng, rows=rows)
        yield rows, 1 / (1 + np.exp(-eta))


def predict_design(
    design: Design,
    draws: Draws,
    *,
    seed: int = 0,
    chunk_rows: int = 20_000,
    interval: float = INTERVAL,
) -> Prediction:
    """Posterior mean and central ``interval`` of P(skip) for every row of ``design``."""
    out = [np.empty(design.n_obs) for _ in range(3)]
    for rows, p in _chunk_probabilities(design, draws, seed=seed, chunk_rows=chunk_rows):
        for into, part in zip(out, _summarise(p, interval), strict=True):
            into[rows] = part
    return Prediction(*out)


def design_draws(
    design: Design, draws: Draws, *, seed: int = 0, chunk_rows: int = 20_000
) -> np.ndarray:
    """P(skip) per posterior draw for every row of ``design``, shape (n_draws, n_obs): the draws
    :func:`predict_design` summarises (same ``seed``, same numbers)."""
    out = np.empty((len(draws["intercept"]), design.n_obs))
    for rows, p in _chunk_probabilities(design, draws, seed=seed, chunk_rows=chunk_rows):
        out[:, rows] = p
    return out


def _second_half(frame: pd.DataFrame) -> np.ndarray:
    """Rows in a session's second half (position > floor(length / 2)), as in the WSDM Cup."""
    return frame["session_position"].to_numpy() > (frame["session_length"].to_numpy() // 2)


def hidden_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` a challenge second half does not reveal: all but the session
    keys, the track and its features (and the previous track's), and the outcomes (and their
    lags, which sequential prediction rolls forward)."""
    revealed = {*REVEALED, *TRACK_COLUMNS, *OUTCOME_COLUMNS}
    revealed |= {p + c for p in LAG_PREFIXES for c in (*TRACK_COLUMNS, *OUTCOME_COLUMNS)}
    revealed.add("prev_track_id_clean")
    return [c for c in frame.columns if c not in revealed]


def imputed_second_halves(
    frame: pd.DataFrame,
    target: np.ndarray,
    rng: np.random.Generator,
    copies: int,
    *,
    read: Sequence[str] | None = None,
) -> list[pd.DataFrame]:
    """``copies`` versions of the ``target`` rows, each taking its hidden columns
    (:func:`hidden_columns`) from a first-half play of its session drawn at random (from all
    first halves when its session has none); one version when none of the hidden columns a
    model ``read`` s (default: all) varies within a first half."""
    hidden = hidden_columns(frame)
    idx = np.flatnonzero(target)
    first = np.flatnonzero(~target)
    if not hidden or idx.size == 0:
        return [frame.iloc[idx]]
    if first.size == 0:
        raise SkipmodelError(
            "sequential prediction has no first-half plays to take the second halves' hidden "
            f"columns ({', '.join(hidden[:4])}...) from; pass sessions with their first halves"
        )
    session = pd.factorize(frame["session_id"])[0]
    by_session = first[np.argsort(session[first], kind="stable")]
    counts = np.bincount(session[first], minlength=session.max() + 1)
    starts = np.cumsum(counts) - counts
    s = session[idx]
    read = hidden if read is None else [c for c in hidden if c in read]
    constant = bool(counts[s].all()) and all(
        frame[c].iloc[first].groupby(session[first], sort=False).nunique(dropna=False).max() <= 1
        for c in read
    )
    out = []
    for _ in range(1 if constant else copies):
        u = rng.random(idx.size)
        own = by_session[starts[s] + np.minimum((u * counts[s]).astype(np.int64), counts[s] - 1)]
        anyone = first[rng.integers(0, first.size, idx.size)]
        donor = np.where(counts[s] > 0, own, anyone)
        part = frame.iloc[idx].copy()
        for c in hidden:
            part[c] = frame[c].iloc[donor].set_axis(part.index)
        out.append(part)
    return out


def with_placeholders(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the second halves' missing hidden columns filled by placeholders.

    A challenge ``log_input`` play has only its track, position and length, but a design is
    built from every column a model reads. Sequential prediction as the challenge revealed
    (``reveal="wsdm"``) replaces those columns of a second half by draws from the first half
    anyway, so a placeholder — the session's previous value, else any value of the column —
    is never read; the other protocols need the real columns.
    """
    target = _second_half(frame)
    missing = [c for c in hidden_columns(frame) if frame[c][target].isna().any()]
    if not missing:
        return frame
    out = frame.copy()
    blank = pd.Series(target, index=frame.index)
    for c in missing:
        known = out[c].dropna()
        if known.empty:
            continue
        filled = out[c].groupby(out["session_id"], sort=False).ffill().fillna(known.iloc[0])
        out[c] = out[c].where(~(blank & out[c].isna()), filled)
    return out


def _take(table: Any, rows: np.ndarray) -> Any:
    return table.take(rows) if isinstance(table, GaussianLevels) else table[rows]


def _known_second_half(
    design: Design, draws: Draws, frame: pd.DataFrame, target: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The known part of the logit of the ``target`` rows (draws, rows), their hidden columns
    integrated over the first halves: posterior draw ``d`` reads imputation ``d mod copies``."""
    # "date" is where weekday and day of month come from
    read = {*design.spec.predictor_columns(), "date"}
    parts = imputed_second_halves(frame, target, rng, IMPUTATIONS, read=sorted(read))
    n_draws = len(draws["intercept"])
    copies = min(len(parts), n_draws)
    out = np.empty((n_draws, int(target.sum())))
    for k, part in enumerate(parts[:copies]):
        chosen = np.arange(k, n_draws, copies)
        sub = {name: _take(table, chosen) for name, table in draws.items()}
        imputed = build_design(
            design.spec, part.reset_index(drop=True), encoders=design.encoders,
            require_outcome=False,
        )  # fmt: skip
        out[chosen] = linear_predictor_draws(imputed, sub, rng=rng, known_only=True)
    return out


def predict_sequential(
    design: Design,
    draws: Draws,
    frame: pd.DataFrame,
    *,
    seed: int = 0,
    reveal: str = "wsdm",
    interval: float = INTERVAL,
) -> tuple[pd.DataFrame, Prediction]:
    """Posterior mean and central ``interval`` of :func:`sequential_draws`: the predicted rows'
    ids (indexed as in ``frame``) and their prediction."""
    ids, p = sequential_draws(design, draws, frame, seed=seed, reveal=reveal)
    return ids, Prediction(*_summarise(p, interval))


def sequential_draws(
    design: Design, draws: Draws, frame: pd.DataFrame, *, seed: int = 0, reveal: str = "wsdm"
) -> tuple[pd.DataFrame, np.ndarray]:
    """Predict each session's second half from its first, rolling simulated outcomes forward.

    ``frame`` holds the rows ``design`` was built from (same order), with ``session_id``,
    ``session_position`` and ``session_length``; sessions must be complete in their first half
    up to the first predicted play (the observed previous outcome comes from the lag column).
    ``reveal="wsdm"`` (default) reveals what the challenge does: the first half's outcomes and
    the second half's tracks, positions and length, the other columns integrated over the first
    half; ``"context"`` also reveals the second half's own columns; ``"all"`` also every
    earlier outcome (one-step-ahead prediction of the same plays, no rolling). See the module
    notes. Returns the predicted rows' ids (``session_id``, ``session_position``, with their
    labels in ``frame``'s index) and P(skip) per draw, shape (n_draws, predicted rows).
    """
    if reveal not in REVEALS:
        choices = ", ".join(repr(r) for r in REVEALS)
        raise SkipmodelError(f"reveal: invalid value {reveal!r}; valid choices: {choices}")
    for col in ("session_id", "session_position", "session_length"):
        if col not in frame.columns:
            raise SkipmodelError(f"sequential prediction needs column {col!r}")
    spec = design.spec
    rolled = (f"prev_{spec.outcome}", f"prev2_{spec.outcome}")
    leaky = [
        c
        for c in spec.predictor_columns()
        if c not in rolled
        and c.startswith(("prev_", "prev2_"))
        and c.split("_", 1)[1] in OUTCOME_COLUMNS
    ]
    if leaky:
        raise SkipmodelError(
            f"sequential prediction cannot roll {leaky} forward (outcomes of predicted plays); "
            "use a model whose only lagged outcome is the Markov term's"
        )
    rng = np.random.default_rng(seed)
    labels = frame.index
    frame = frame.reset_index(drop=True)
    target = _second_half(frame)
    idx = np.flatnonzero(target)
    if reveal == "wsdm":
        base = _known_second_half(design, draws, frame, target, rng)
    else:
        base = linear_predictor_draws(design, draws, rng=rng, known_only=True)[:, idx]
    # Terms whose share depends on the group's earlier outcomes (the Markov term's previous
    # outcomes), rolled forward with simulated outcomes.
    states: list[GroupState] = []
    for td in design.terms:
        state = kind_of(td.term).group_state(td, draws)
        if state is not None:
            states.append(state)
    # a state whose share depends on the rest of the logit (the session's propensity) comes last
    states.sort(key=lambda st: bool(getattr(st, "last", False)))
    n_draws = base.shape[0]
    p_out = np.empty((n_draws, idx.size))
    observed = observed_outcomes(frame, spec.outcome)
    if any(getattr(st, "last", False) for st in states):
        first = np.flatnonzero(~target)
        revealed = linear_predictor_draws(design, draws, rng=rng, rows=first, learn=False)
        for state in states:
            state.reveal(first, revealed, observed[first])
    if not states:
        p_out = 1 / (1 + np.exp(-base))
    else:
        session = frame["session_id"].to_numpy()
        position = frame["session_position"].to_numpy()
        row_of = {(s, p): i for i, (s, p) in enumerate(zip(session, position, strict=True))}
        order = idx[np.argsort(position[idx], kind="stable")]
        col_of = {r: j for j, r in enumerate(idx)}
        for r in order:
            eta = base[:, col_of[r]]
            for state in states:
                eta = eta + state.logit(r, eta)
            p = 1 / (1 + np.exp(-eta))
            p_out[:, col_of[r]] = p
            if reveal == "all":
                # the next play sees its observed previous outcome (lag column); a state that
                # learns from every earlier play learns the observed one
                if np.isfinite(observed[r]):
                    seen = np.full(n_draws, observed[r] > 0.5)
                    for state in states:
                        state.observe(r, seen, [None, None])
                continue
            outcome = rng.random(n_draws) < p
            later = [row_of.get((session[r], position[r] + k)) for k in (1, 2)]
            later = [n if n is not None and target[n] else None for n in later]
            for state in states:
                state.observe(r, outcome, later)
    ids = frame.loc[target, ["session_id", "session_position"]].set_axis(labels[target])
    return ids, p_out


def binned_like_the_fit(manifest: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` binned as the run's rows were (aggregated fits), else unchanged."""
    binning = run_binning(manifest)
    return bin_plays(frame, binning) if binning else frame


def _prepared(
    result: FitResult,
    data: pd.DataFrame | pa.Table,
    *,
    sequential: bool,
    reveal: str,
    max_draws: int | None,
    seed: int,
) -> tuple[pd.Index, pd.DataFrame, Design, Draws]:
    """The caller's row labels (positions for an Arrow table), the rows numbered from 0 as
    designed, their design and the run's draws."""
    if max_draws is not None and max_draws < 1:
        raise SkipmodelError(f"max_draws must be a positive integer or None, got {max_draws}")
    if isinstance(data, pa.Table):
        frame = data.to_pandas()
        index: pd.Index = pd.RangeIndex(len(frame))
    else:
        frame, index = data, data.index
    frame = frame.reset_index(drop=True)
    if sequential and reveal == "wsdm":
        frame = with_placeholders(frame)
    frame = binned_like_the_fit(result.manifest, frame)
    design = build_design(result.spec, frame, encoders=result.encoders, require_outcome=False)
    return index, frame, design, run_draws(result, max_draws=max_draws, seed=seed)


def predict(
    result: FitResult,
    data: pd.DataFrame | pa.Table,
    *,
    sequential: bool = False,
    reveal: str = "wsdm",
    interval: float = INTERVAL,
    max_draws: int | None = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Posterior skip probabilities for the plays in ``data`` from a fitted model.

    Parameters
    ----------
    result : FitResult
        From :func:`skipmodel.model.fitting.fit` or :func:`skipmodel.model.fitting.load_run`.
    data : pandas.DataFrame or pyarrow.Table
        Plays with the loaders' columns; outcome columns are not needed. A value a model reads
        that is not of its kind (text in a numeric column, ``"yes"`` in a lag flag) is refused
        naming the column.
    sequential : bool
        Predict each session's second half from its first, rolling simulated outcomes forward.
    reveal : {"wsdm", "context", "all"}
        With ``sequential``: what a second-half play reveals. ``wsdm`` (default): what the WSDM
        Cup 2019 revealed — its track, position and the session's length, the other columns
        integrated over the session's first half; ``context``: its own columns too (optimistic:
        the challenge never revealed them); ``all``: also every earlier play's outcome (one step
        ahead).
    interval : float
        Width of the central posterior interval ``p_lo`` .. ``p_hi``, in (0, 1) (0.94).
    max_draws : int or None
        Use at most this many posterior draws (a random subset); None uses all.
    seed : int
        Seeds the draw subset, the population draws of unseen levels and simulated outcomes.

    Returns
    -------
    pandas.DataFrame
        ``session_id, session_position, p_skip`` (posterior mean), ``p_lo, p_hi`` (central
        interval), one row per predicted play, indexed as ``data`` (an Arrow table: 0 .. n-1) and
        in its order, so ``frame["p"] = predict(result, frame)["p_skip"]`` lines up. With
        ``sequential``, the second-half rows only, with their labels in ``data``.

    Examples
    --------
    >>> sub = test[test.session_position > 5].copy()  # doctest: +SKIP
    >>> sub["p"] = predict(result, sub, interval=0.9)["p_skip"]  # doctest: +SKIP
    """
    check_interval(interval)
    index, frame, design, draws = _prepared(
        result, data, sequential=sequential, reveal=reveal, max_draws=max_draws, seed=seed
    )
    if sequential:
        ids, pred = predict_sequential(
            design, draws, frame, seed=seed, reveal=reveal, interval=interval
        )
        out = ids.assign(p_skip=pred.p_skip, p_lo=pred.p_lo, p_hi=pred.p_hi)
        return out.set_axis(index.take(ids.index))
    pred = predict_design(design, draws, seed=seed, interval=interval)
    return pred.frame(design).set_axis(index)


def predict_draws(
    result: FitResult,
    data: pd.DataFrame | pa.Table,
    *,
    sequential: bool = False,
    reveal: str = "wsdm",
    max_draws: int | None = 1000,
    seed: int = 0,
) -> xr.DataArray:
    """P(skip) of each play in ``data`` per posterior draw: the draws :func:`predict`
    summarises (bambi's ``model.predict(idata, data=new)``, brms' ``posterior_epred``).

    Parameters are those of :func:`predict`; with the same ``max_draws`` and ``seed`` the mean
    over draws is its ``p_skip`` and its quantiles are ``p_lo`` / ``p_hi``. Memory: 8 bytes
    per draw and play.

    Returns
    -------
    xarray.DataArray
        ``p_skip``, dims ``(draw, obs)``; ``obs`` holds ``data``'s index labels (an Arrow
        table: 0 .. n-1), with ``session_id`` / ``session_position`` beside it when ``data``
        has them. With ``sequential``, the second-half plays only.

    Examples
    --------
    >>> p = predict_draws(result, test, max_draws=200)  # doctest: +SKIP
    >>> p.quantile([0.05, 0.95], dim="draw")  # doctest: +SKIP
    """
    index, frame, design, draws = _prepared(
        result, data, sequential=sequential, reveal=reveal, max_draws=max_draws, seed=seed
    )
    ids: pd.DataFrame | None
    if sequential:
        ids, p = sequential_draws(design, draws, frame, seed=seed, reveal=reveal)
        labels = index.take(ids.index)
    else:
        ids, p = design.row_ids, design_draws(design, draws, seed=seed)
        labels = index
    coords: dict[str, Any] = {"draw": np.arange(p.shape[0]), "obs": labels}
    if ids is not None:
        for column in ids.columns:
            coords[str(column)] = ("obs", ids[column].to_numpy())
    return xr.DataArray(p, dims=("draw", "obs"), coords=coords, name="p_skip")
