"""From a ``RUN/`` directory (``skipmodel fit``) and its store to :class:`RunInputs`.

The run's data manifest says which store and which session sample it was fitted on; the same
sample's train split gives the rows for predictive checks and baselines, its test split the
held-out sessions (``split="train"`` evaluates in-sample instead). Predictions use
:mod:`skipmodel.model.prediction` on designs encoded with the run's fitted encoders, from at most
``max_draws`` posterior draws (:func:`~skipmodel.model.prediction.run_draws`: a nested-Laplace
run's per-level summaries are drawn on demand, for the levels the rows use).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.report.inputs import RunInputs
from skipmodel.store.hashing import stable_hash
from skipmodel.store.location import store_path

__all__ = ["DEFAULT_MAX_DRAWS", "cap_sessions", "load_run_inputs"]

DEFAULT_MAX_DRAWS = 300
CHUNK_ROWS = 20_000


def _session_chunks(frame: pd.DataFrame, rows: int) -> list[pd.DataFrame]:
    """Consecutive groups of whole sessions with about ``rows`` plays each."""
    codes = pd.factorize(frame["session_id"])[0]
    sizes = np.bincount(codes)
    chunk_of_session = np.cumsum(sizes) // max(rows, 1)
    chunk = chunk_of_session[codes]
    return [part for _, part in frame.groupby(chunk, sort=True)]


def cap_sessions(frame: pd.DataFrame, max_sessions: int | None, *, seed: int = 0) -> pd.DataFrame:
    """At most ``max_sessions`` whole sessions, chosen by a stable hash of their ids."""
    if max_sessions is None or frame["session_id"].nunique() <= max_sessions:
        return frame
    ids = pd.unique(frame["session_id"].astype(str))
    rank = stable_hash(pa.array(ids), seed=seed)
    keep = ids[np.argsort(rank, kind="stable")[:max_sessions]]
    return frame[frame["session_id"].astype(str).isin(keep)].reset_index(drop=True)


def _sampling(fitted: object) -> str:
    """How the posterior was obtained, in one line."""
    opts, diag = fitted.options, fitted.diagnostics  # type: ignore[attr-defined]
    if opts.method == "nuts":
        return (
            f"NUTS via {opts.sampler}: {opts.chains} chains x {opts.draws} draws after "
            f"{opts.tune} tuning steps, target_accept {opts.target_accept}, seed {opts.seed}"
        )
    if opts.method == "laplace":
        state = "converged" if diag.get("converged") is True else "NOT converged"
        levels = diag.get("n_levels")
        kept = (
            f", {levels:,} levels of the largest pool as mean and sd"
            if isinstance(levels, int) and levels
            else ""
        )
        return (
            f"nested Laplace approximation: {diag.get('passes', '?')} passes ({state}), "
            f"{opts.draws} draws of the global effects{kept}, seed {opts.seed}"
        )
    return f"{opts.method} approximation, {(opts.chains or 1) * opts.draws} draws, seed {opts.seed}"


def _facts(fitted: object, store: Path, split: str) -> tuple[tuple[str, str], ...]:
    spec, manifest = fitted.spec, fitted.manifest  # type: ignore[attr-defined]
    sample = manifest.get("sample", {})
    facts = [
        ("sampling", _sampling(fitted)),
        (
            "data",
            f"store {store}, session fraction {sample.get('fraction')}, sample seed "
            f"{sample.get('seed')}, fitted on split {sample.get('split')!r}; evaluated on {split!r}",
        ),
    ]
    if sample.get("split") != "train" or split == "train":
        facts.append(
            (
                "warning",
                "the evaluated plays were part of the fit: the 'held-out' metrics are in-sample",
            )
        )
    seconds = fitted.diagnostics.get("seconds")  # type: ignore[attr-defined]
    if seconds is not None:
        facts.append(("fit time", f"{seconds:.1f} s"))
    features = [f for t in spec.terms if t.kind == "markov" for f in t.features]
    if features:
        facts.append(("markov features", ", ".join(features)))
    facts.append(("terms", ", ".join(t.kind for t in spec.terms)))
    return tuple(facts)


def load_run_inputs(
    run: str | Path,
    *,
    store: str | Path | None = None,
    split: str = "test",
    max_eval_sessions: int | None = 2_000,
    max_draws: int = DEFAULT_MAX_DRAWS,
    seed: int = 0,
) -> RunInputs:
    """Everything the report needs from one fitted run.

    Parameters
    ----------
    run : path
        Directory written by ``skipmodel fit``.
    store : path, optional
        Store to read; default the one recorded in the run.
    split : {"test", "train"}
        Rows for the held-out metrics.
    max_eval_sessions : int, optional
        Cap on evaluated sessions (chosen by stable hash); None for all.
    max_draws : int
        Posterior draws used for predictions.
    """
    from skipmodel.model.data import load_plays, run_sample
    from skipmodel.model.design import build_design
    from skipmodel.model.fitting import load_run
    from skipmodel.model.prediction import (
        binned_like_the_fit,
        linear_predictor_draws,
        predict_sequential,
        run_draws,
    )
    from skipmodel.report.effects import with_effect_plots

    if split not in ("test", "train"):
        raise SkipmodelError(f"split must be 'test' or 'train', got {split!r}")
    run = Path(run)
    fitted = load_run(run)
    spec, encoders = fitted.spec, fitted.encoders
    recorded = fitted.manifest.get("store")
    given = store if store is not None else recorded or None
    chosen = store_path(given) if given is not None else None
    if chosen is None:
        raise SkipmodelError(f"{run} records no store; pass --store DIR")
    if not chosen.is_dir():
        raise SkipmodelError(f"store {chosen} (recorded in {run}) does not exist; pass --store DIR")
    try:
        # a run fitted from Python on a frame: the store's train and test splits stand in
        samples = {s: run_sample(fitted.manifest, spec, split=s) for s in ("train", "test")}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SkipmodelError(
            f"run folder {run} is damaged: data.json's sample spec cannot be read ({exc}); "
            "re-run skipmodel fit to write it again"
        ) from None
    train = load_plays(chosen, samples["train"], spec)
    evaluation = train if split == "train" else load_plays(chosen, samples["test"], spec)
    evaluation = cap_sessions(evaluation, max_eval_sessions, seed=seed)
    # a nested-Laplace run's largest pool (levels group) is drawn on demand, per chunk of rows
    draws = run_draws(fitted, max_draws=max_draws, seed=seed)

    def design_for(frame: pd.DataFrame):  # noqa: ANN202 - a Design
        # An aggregated run is a model of binned columns: bin new plays as its rows were.
        frame = binned_like_the_fit(fitted.manifest, frame.reset_index(drop=True))
        return build_design(spec, frame, encoders=encoders, require_outcome=False)

    def predict_draws(frame: pd.DataFrame) -> np.ndarray:
        eta = linear_predictor_draws(design_for(frame), draws, rng=np.random.default_rng(seed))
        return 1.0 / (1.0 + np.exp(-eta))

    def predict_second_half(frame: pd.DataFrame, reveal: str = "wsdm") -> pd.DataFrame:
        # whole sessions in chunks of about CHUNK_ROWS plays: memory ~ draws x chunk
        parts = []
        for chunk in _session_chunks(frame.reset_index(drop=True), CHUNK_ROWS):
            # the imputed second halves are designed from this frame: binned as the fit's rows
            binned = binned_like_the_fit(fitted.manifest, chunk.reset_index(drop=True))
            design = build_design(spec, binned, encoders=encoders, require_outcome=False)
            ids, prediction = predict_sequential(design, draws, binned, seed=seed, reveal=reveal)
            parts.append(ids.assign(p_skip=prediction.p_skip))
        return pd.concat(parts, ignore_index=True)

    return RunInputs(
        name=run.resolve().name,
        posterior=with_effect_plots(fitted.posterior, encoders.effects),
        outcome=spec.outcome,
        train=train,
        test=evaluation,
        predict_draws=predict_draws,
        predict_second_half=predict_second_half,
        description=f"{spec.name}: {spec.description}" if spec.description else spec.name,
        facts=_facts(fitted, chosen, split),
        method=fitted.options.method or "nuts",  # resolved: always set in a run
        fit_diagnostics=dict(fitted.diagnostics),
        approximation=str(fitted.manifest.get("approximation") or ""),
    )
