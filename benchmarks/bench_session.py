"""The session term (issue 20): recovery, mixing and held-out gain on data with moody sessions.

Two simulated stores from the MSSD simulator (``skipmodel simulate``), the same generator but for
the per-session propensity: sd 0.8 and sd 0 (26,000 sessions each, 7 days; quick: 3,000). The
``full`` and ``session`` models are fitted by NUTS at the default draws (4 x 1,000 after 1,000
tuning; quick: 2 x 300) to the same ~82,000 train plays (a 0.235 sample of the train split;
quick: all of it), and evaluated on every session of the test split (>= 5,000; quick: ~600):

* **recovery** (sd 0.8): ``session_sigma`` against 0.8, the previous-skip contrast
  (``prev_skip_2`` true - false) against the truth's, the lag-2 contrast against 0 — each in
  posterior sds; divergences, the largest R-hat over the global quantities, and over the
  per-level pools (tracks, sessions) the share of levels with R-hat <= 1.01 and the largest.
* **held-out gain**: row-level log loss scored against the true probabilities (the expected log
  loss, ``truth_plays.parquet``; no outcome noise) and the honest sequential mean average
  accuracy (``reveal="wsdm"``) of each model, beside two references. The **true model** is the
  generator's own logit with the session's propensity learnt from the session's earlier plays
  (the same one-dimensional update at the true sd) — the best any model may do under the leakage
  rule; the **oracle** also knows each session's propensity. The gap ``full`` leaves to the true
  model, and the share of it the session term closes, in both measures (target: at least half).
* **sd 0** (no propensity): ``session_sigma`` shrinks towards 0 and held-out log loss (realised)
  is no worse than ``full``'s.

Results stream to ``session_partial.jsonl`` as they come (a NUTS fit of ``session`` takes tens of
minutes on 2 cores); fitted runs are kept beside the cached stores and reused by a re-run.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.cache import PartialRows, cached_fit

CACHE = Path(os.environ.get("SKIPMODEL_BENCH_CACHE", "/tmp/skipmodel-bench"))
SESSION_SD = 0.8


def _row(name: str, value: Any, unit: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, **kw}


def _store(sd: float, sessions: int) -> tuple[Path, Path]:
    from skipmodel.ingest import ingest
    from skipmodel.simulate.mssd import simulate

    root = CACHE / "session" / f"sd{sd}_{sessions}"
    store, sim = root / "store", root / "sim"
    if not (store / "manifest.json").is_file():
        result = simulate(sim, sessions=sessions, seed=21, days=7, session_sd=sd)
        ingest([result.training_set, result.track_features], store, n_buckets=8, progress=False)
    return store, sim


def _expected_log_loss(p_true: np.ndarray, q: np.ndarray) -> float:
    q = np.clip(q, 1e-9, 1 - 1e-9)
    return float(-np.mean(p_true * np.log(q) + (1 - p_true) * np.log1p(-q)))


def _realised_log_loss(y: np.ndarray, q: np.ndarray) -> float:
    return _expected_log_loss(y.astype(float), q)


def _maa(ids: pd.DataFrame, p: np.ndarray, test: pd.DataFrame, outcome: str) -> float:
    from skipmodel.report.metrics import sequential_metrics

    y = test.set_index(["session_id", "session_position"])[outcome].astype(float)
    keys = pd.MultiIndex.from_frame(ids[["session_id", "session_position"]])
    return sequential_metrics(
        ids["session_id"], ids["session_position"], y.loc[keys].to_numpy(), p
    ).mean_average_accuracy


def _session_design(test: pd.DataFrame) -> Any:
    from skipmodel.model.design import build_design
    from skipmodel.model.spec import ModelSpec, Session

    return build_design(ModelSpec(terms=(Session(),)), test).term("session")


def true_predictions(
    test: pd.DataFrame, truth: Path, *, paths: int = 400, seed: int = 0
) -> dict[str, Any]:
    """The true model's row-level and sequential (wsdm: first half revealed) predictions, and the
    oracle's probabilities, for the rows of ``test`` (whole sessions)."""
    from skipmodel.model.terms.session import KIND, SessionPropensity

    sim = truth.parent
    facts = json.loads(truth.read_text())
    coef = float(facts["skip_model"]["markov"]["prev_skip_2"])
    sd = float(facts["skip_model"]["session_effect"]["sd"])
    plays = pd.read_parquet(sim / "truth_plays.parquet")
    sessions = pd.read_parquet(sim / "truth_sessions.parquet").set_index("session_id")
    keyed = test[["session_id", "session_position"]].merge(
        plays, on=["session_id", "session_position"], how="left", validate="one_to_one"
    )
    logit = keyed["logit"].to_numpy()
    if np.isnan(logit).any():
        raise RuntimeError("test plays without a true logit: truth_plays.parquet does not match")
    propensity = sessions.loc[test["session_id"], "propensity"].to_numpy()
    base = logit - propensity  # what the true model knows before the session's outcomes
    td = _session_design(test)
    share = KIND.given_earlier(td, base[None, :], {"session_sigma": np.array([sd])})
    row_level = 1 / (1 + np.exp(-(base + share[0])))
    unknown = replace(td, values={**td.values, "outcome": np.full(len(test), np.nan)})
    share = KIND.given_earlier(unknown, base[None, :], {"session_sigma": np.array([sd])})
    never_learnt = 1 / (1 + np.exp(-(base + share[0])))

    # sequential: the first half revealed, the second half rolled along `paths` simulated paths
    frame = test.reset_index(drop=True)
    second = (2 * frame["session_position"] > frame["session_length"]).to_numpy()
    prev = frame["prev_skip_2"].astype("boolean").fillna(False).to_numpy(dtype=float)
    no_markov = base - coef * prev  # the true logit but for the previous outcome's effect
    state = SessionPropensity(td, {"session_sigma": np.full(paths, sd)})
    first = np.flatnonzero(~second)
    y = frame["skip_2"].astype(float).to_numpy()
    state.reveal(first, np.repeat(base[None, first], paths, axis=0), y[first])
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(second)
    order = idx[np.argsort(frame["session_position"].to_numpy()[idx], kind="stable")]
    last = {}  # session -> simulated previous outcome per path
    p_seq = np.empty(len(frame))
    session = frame["session_id"].to_numpy()
    for r in order:
        prev_r = last.get(session[r], np.full(paths, prev[r]))
        eta = no_markov[r] + coef * prev_r
        eta = eta + state.logit(r, eta)
        p = 1 / (1 + np.exp(-eta))
        p_seq[r] = p.mean()
        outcome = rng.random(paths) < p
        state.observe(r, outcome, [None, None])
        last[session[r]] = outcome.astype(float)
    return {
        "oracle": 1 / (1 + np.exp(-logit)),
        "row_level": row_level,
        "never_learnt": never_learnt,
        "sequential_ids": frame.loc[second, ["session_id", "session_position"]].reset_index(
            drop=True
        ),
        "sequential": p_seq[second],
    }


def _rhat_summary(result: Any) -> dict[str, Any]:
    import arviz_stats as azs

    tree = result.posterior
    rhat = azs.rhat(tree)
    rhat = rhat.to_dataset() if hasattr(rhat, "to_dataset") else rhat
    post = tree["posterior"].to_dataset()
    worst_global, worst_var, levels = 0.0, "", []
    for name, da in rhat.data_vars.items():
        values = np.asarray(da.values, dtype=float).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        if post[name].size // (post.sizes["chain"] * post.sizes["draw"]) >= 500:
            levels.append(values)
        elif values.max() > worst_global:
            worst_global, worst_var = float(values.max()), str(name)
    pooled = np.concatenate(levels) if levels else np.array([1.0])
    return {
        "max_rhat_global": worst_global,
        "max_rhat_global_var": worst_var,
        "levels_share_le_1_01": float(np.mean(pooled <= 1.01)),
        "levels_max_rhat": float(pooled.max()),
        "n_levels": int(pooled.size),
    }


def _contrast(result: Any, dim: str) -> tuple[float, float]:
    post = result.posterior["posterior"].to_dataset()
    var = f"{dim}_effect"
    if var not in post:
        return float("nan"), float("nan")
    table = post[var]
    diff = (table.sel({dim: "true"}) - table.sel({dim: "false"})).values.ravel()
    return float(diff.mean()), float(diff.std())


OUTCOMES = ("skip_1", "skip_2", "skip_3", "not_skipped")


def _evaluate_rows(result: Any, frame: pd.DataFrame) -> np.ndarray:
    from skipmodel.model.prediction import predict

    return predict(result, frame)["p_skip"].to_numpy()


def _evaluate(result: Any, test: pd.DataFrame) -> dict[str, Any]:
    from skipmodel.model.prediction import predict

    seq = predict(result, test, sequential=True)
    return {
        "row_level": _evaluate_rows(result, test),
        "seq_ids": seq,
        "seq": seq["p_skip"].to_numpy(),
    }


def _gap_closed(name: str, closed: float, notes: str) -> dict[str, Any]:
    """A row of the share of the full -> true gap the session model closes (target: half)."""
    return _row(
        name, round(float(closed), 3), "share", target=">= 0.5", passed=bool(closed >= 0.5),
        notes=notes,
    )  # fmt: skip


def run(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    from skipmodel.model.data import StoreSample, load_plays
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import get_variant

    sessions = 3_000 if quick else 26_000
    fraction = 1.0 if quick else 0.235
    chains, draws = (2, 300) if quick else (4, 1000)
    rows = PartialRows(out_dir / "session_partial.jsonl")
    emit = rows.emit

    for sd in (SESSION_SD, 0.0):
        store, sim = _store(sd, sessions)
        data = StoreSample(store, fraction=fraction, seed=5)
        results, evals, seconds = {}, {}, {}
        test = None
        for model in ("full", "session"):
            spec = get_variant(model)
            saved = store.parent / f"run_{model}_{chains}x{draws}"
            results[model], seconds[model] = cached_fit(  # an earlier run's fit, if kept
                saved,
                lambda spec=spec, data=data: fit(
                    spec, data, draws=draws, tune=draws, chains=chains, seed=3
                ),
            )
            if test is None:
                test = load_plays(store, StoreSample(store, split="test").rows_sample(spec))
            evals[model] = _evaluate(results[model], test)
        assert test is not None
        y = test["skip_2"].astype(float).to_numpy()
        n_train = results["full"].manifest["n_rows"]
        n_test_sessions = test["session_id"].nunique()
        setting = (
            f"session sd {sd}; {n_train:,} train plays; {len(test):,} test plays in "
            f"{n_test_sessions:,} sessions; NUTS {chains} x {draws}"
        )
        for model, result in results.items():
            d = result.diagnostics
            r = _rhat_summary(result)
            emit(
                _row(
                    f"sd {sd}, {model}: NUTS mixing",
                    d["divergences"],
                    "divergences",
                    target="0",
                    passed=d["divergences"] == 0,
                    notes=f"{seconds[model]:.0f} s; max R-hat over globals "
                    f"{r['max_rhat_global']:.3f} ({r['max_rhat_global_var']}); "
                    f"{r['n_levels']:,} pool levels: {100 * r['levels_share_le_1_01']:.2f} % "
                    f"<= 1.01, max {r['levels_max_rhat']:.3f}; min bulk ESS "
                    f"{d['min_ess_bulk']:.0f} ({d['min_ess_bulk_var']}); {setting}",
                )
            )
        post = results["session"].posterior["posterior"]
        sigma = post["session_sigma"].values.ravel()
        if sd > 0:
            truth = json.loads((sim / "truth.json").read_text())
            true_prev = float(truth["skip_model"]["markov"]["prev_skip_2"])
            emit(
                _row(
                    f"sd {sd}: session_sigma recovered",
                    round(float(sigma.mean()), 3),
                    "logit sd",
                    peer=sd,
                    target="within 2 posterior sds",
                    passed=abs(sigma.mean() - sd) <= 2 * sigma.std(),
                    notes=f"posterior sd {sigma.std():.3f}; "
                    f"{(sigma.mean() - sd) / sigma.std():+.2f} sd from the truth",
                )
            )
            for model in ("full", "session"):
                m, s = _contrast(results[model], "prev_skip_2")
                m2, s2 = _contrast(results[model], "prev2_skip_2")
                emit(
                    _row(
                        f"sd {sd}, {model}: previous-skip contrast",
                        round(m, 3),
                        "logit",
                        peer=true_prev,
                        target="within 2 posterior sds" if model == "session" else None,
                        passed=abs(m - true_prev) <= 2 * s if model == "session" else None,
                        notes=f"posterior sd {s:.3f} ({(m - true_prev) / s:+.2f} sd); lag-2 "
                        f"contrast {m2:.3f} (sd {s2:.3f}, {m2 / s2:+.2f} sd from 0; truth 0)",
                    )
                )
            ref = true_predictions(test, sim / "truth.json")
            p_true = ref["oracle"]
            loss = {m: _expected_log_loss(p_true, evals[m]["row_level"]) for m in evals}
            loss["true"] = _expected_log_loss(p_true, ref["row_level"])
            loss["oracle"] = _expected_log_loss(p_true, p_true)
            loss["constant"] = _expected_log_loss(p_true, np.full_like(p_true, y.mean()))
            emit(
                _gap_closed(
                    f"sd {sd}: expected log loss, share of the gap full -> true closed",
                    (loss["full"] - loss["session"]) / (loss["full"] - loss["true"]),
                    "expected log loss against the true probabilities: "
                    + ", ".join(f"{k} {v:.4f}" for k, v in loss.items())
                    + f"; full captures {(loss['constant'] - loss['full']) / (loss['constant'] - loss['true']):.3f} "
                    "of the achievable gain over a constant, session "
                    f"{(loss['constant'] - loss['session']) / (loss['constant'] - loss['true']):.3f}",
                )
            )
            # what learning the session is worth: each model's predictions with and without the
            # session's earlier outcomes (the true model's likewise): the rest of the gap to the
            # truth is what the sample teaches of the other effects
            blind = test.drop(columns=[c for c in OUTCOMES if c in test.columns])
            gain = {
                "session": _expected_log_loss(p_true, _evaluate_rows(results["session"], blind))
                - loss["session"],
                "true": _expected_log_loss(p_true, ref["never_learnt"]) - loss["true"],
            }
            emit(
                _row(
                    f"sd {sd}: gain from learning the session, session model / true model",
                    round(gain["session"] / gain["true"], 3),
                    "share",
                    notes=f"expected log loss saved by reading the session's earlier outcomes: "
                    f"session model {gain['session']:.4f}, true model {gain['true']:.4f}; the "
                    f"session model without them {loss['session'] + gain['session']:.4f}, the true "
                    f"model {loss['true'] + gain['true']:.4f}",
                )
            )
            maa = {m: _maa(evals[m]["seq_ids"], evals[m]["seq"], test, "skip_2") for m in evals}
            maa["true"] = _maa(ref["sequential_ids"], ref["sequential"], test, "skip_2")
            emit(
                _gap_closed(
                    f"sd {sd}: sequential mean average accuracy (wsdm), share of the gap closed",
                    (maa["session"] - maa["full"]) / (maa["true"] - maa["full"]),
                    ", ".join(f"{k} {v:.4f}" for k, v in maa.items())
                    + f"; {n_test_sessions:,} test sessions",
                )
            )
        else:
            loss = {m: _realised_log_loss(y, evals[m]["row_level"]) for m in evals}
            emit(
                _row(
                    f"sd {sd}: session_sigma without a propensity",
                    round(float(sigma.mean()), 3),
                    "logit sd",
                    notes=f"posterior sd {sigma.std():.3f}, 90 % upper bound "
                    f"{np.quantile(sigma, 0.9):.3f} (prior HalfNormal(0.5) has mean 0.40)",
                )
            )
            emit(
                _row(
                    f"sd {sd}: held-out log loss, session - full",
                    round(loss["session"] - loss["full"], 5),
                    "nats",
                    peer=round(loss["full"], 5),
                    target="<= 0 (+ noise)",
                    passed=loss["session"] - loss["full"] <= 0.001,
                    notes=f"realised log loss on {len(test):,} test plays: "
                    + ", ".join(f"{k} {v:.5f}" for k, v in loss.items()),
                )
            )
    return rows
