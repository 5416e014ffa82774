"""Model benchmark: the ``full`` variant vs the same model written the straightforward way.

Both fit the same simulated plays (``skipmodel simulate`` -> ingest -> loaders) in one run:

* **skipmodel** — ``fit(get_variant("full"), ...)`` with nutpie: zero-sum categorical effects,
  non-centred pooling, random-walk eigenbases, HSGP smooths at a fixed lengthscale with their
  modes rotated to be independent under the data (informed ones centred), integer-code gathers,
  standardised inputs.
* **straightforward** — the same terms as a textbook PyMC model: dense one-hot design matrices
  for every small categorical (weekday, hour, position, context type, previous outcomes), a
  sparse one-hot matrix for tracks, centred hierarchical effects without sum-to-zero, raw
  (unstandardised) feature columns, PyMC's HSGP with the centred parametrisation (same m, c and
  fixed lengthscale as ours), and PyMC's own NUTS sampler.

Reported: min bulk ESS over all parameters, max R-hat, divergences, and min bulk ESS per second
of wall time (compile + tune + draws) — the ratio is skipmodel over straightforward.

The straightforward peer gets a wall-time budget (:data:`PEER_BUDGET_SECONDS`): PyMC's NUTS is
stopped there and judged on the draws it produced, so ESS/s stays comparable without hours of
sampling. A peer that is still tuning at the deadline, diverges on (nearly) every draw, or whose
chains are frozen counts as ESS 0 — said in the notes — and the ratio is then a lower bound: ours
over one effective draw in the peer's time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skipmodel.cli import main as cli

SEED = 7
#: Chains and draws per chain, by mode, for both sides. Four chains (skipmodel's and Stan's
#: default; R-hat <= 1.01 is calibrated for them) and 2,000 draws each: with ~10,000 track
#: effects, the largest R-hat of a well-mixed fit is itself noisy. NUTS draws of the thin
#: tracks' effects are antithetic in location (lag-1 autocorrelation -0.38) but positively
#: correlated in scale (|z - median|: +0.49), so the folded R-hat of 10,438 of them has a max
#: of 1.019 at 2 x 1,000 draws and 1.013 at 4 x 1,000 although every bulk R-hat is <= 1.003
#: (numpy null: AR(0.5) chains, 12,000 parameters, 4 x 1,000 draws: max 1.012).
CHAINS = {"quick": 2, "full": 4}
DRAWS = {"quick": 300, "full": 2000}
TUNE = {"quick": 300, "full": 1000}
#: Wall-time budget of the straightforward peer (compile + tune + draws), by mode.
PEER_BUDGET_SECONDS = {"quick": 600.0, "full": 2400.0}
#: Divergent share of draws from which the peer's draws are not counted as posterior draws.
ALL_DIVERGENT = 0.9


def _plays(out_dir: Path, sessions: int) -> pd.DataFrame:
    from skipmodel.load.loaders import SampleSpec, load_pandas

    sim, store = out_dir / f"sim_{sessions}", out_dir / f"store_{sessions}"
    if not (store / "manifest.json").is_file():
        assert cli(["simulate", "--out", str(sim), "--sessions", str(sessions), "--seed", "1"]) == 0
        files = [str(sim / "training_set.tar.gz"), str(sim / "track_features.tar.gz")]
        assert cli(["ingest", *files, "--store", str(store)]) == 0
    return load_pandas(store, SampleSpec(lags=2))


def naive_model(plays: pd.DataFrame, hsgp: dict[str, dict]):
    """The full model's terms the straightforward way (see the module docstring)."""
    import pymc as pm
    import pytensor.sparse as ps
    import scipy.sparse as sp

    n = len(plays)
    y = plays["skip_2"].to_numpy().astype(int)

    def onehot(codes: np.ndarray, k: int) -> np.ndarray:
        out = np.zeros((n, k))
        out[np.arange(n), codes] = 1.0
        return out

    def prev_codes(col: str) -> np.ndarray:
        v = plays[col].astype("boolean")
        return np.where(v.isna(), 0, np.where(v.fillna(False), 2, 1))

    categorical = {
        "weekday": onehot(plays["weekday"].to_numpy().astype(int), 7),
        "hour": onehot(plays["hour_of_day"].to_numpy().astype(int), 24),
        "position": onehot(
            np.clip(plays["session_position"].to_numpy().astype(int), 1, 20) - 1, 20
        ),
        "context": onehot(pd.factorize(plays["context_type"])[0], plays["context_type"].nunique()),
        "prev": onehot(prev_codes("prev_skip_2"), 3),
        "prev2": onehot(prev_codes("prev2_skip_2"), 3),
    }
    tracks, track_codes = np.unique(plays["track_id_clean"].astype(str), return_inverse=True)
    z_track = sp.csr_matrix((np.ones(n), (np.arange(n), track_codes)), shape=(n, len(tracks)))
    raw = []
    for feat in ("danceability", "energy"):
        x = plays[feat].to_numpy(dtype=float, na_value=0.0)
        xp = plays[f"prev_{feat}"].to_numpy(dtype=float, na_value=np.nan)
        has = np.isfinite(xp)
        xp = np.where(has, xp, 0.0)
        raw += [x, xp, x * xp, np.where(has, np.abs(x - xp), 0.0)]
    for col in (
        "hist_user_behavior_is_shuffle",
        "premium",
        "context_switch",
        "no_pause_before_play",
        "long_pause_before_play",
    ):
        raw.append(plays[col].to_numpy().astype(float))
    x_fixed = np.column_stack(raw)
    smooth_x = {
        "duration": np.log(plays["duration"].to_numpy(dtype=float, na_value=200.0) + 1e-10),
        "us_popularity_estimate": plays["us_popularity_estimate"].to_numpy(
            dtype=float, na_value=95.0
        ),
    }
    with pm.Model() as model:
        eta = pm.Normal("intercept", 0, 1.5)
        for name, x in categorical.items():
            sigma = pm.HalfNormal(f"{name}_sigma", 0.5)
            b = pm.Normal(f"{name}_b", 0, sigma, shape=x.shape[1])
            eta = eta + pm.math.dot(x, b)
        track_sigma = pm.HalfNormal("track_sigma", 0.5)
        b_track = pm.Normal("track_b", 0, track_sigma, shape=len(tracks))
        eta = eta + ps.structured_dot(z_track, b_track[:, None]).flatten()
        beta = pm.Normal("beta", 0, 1, shape=x_fixed.shape[1])
        eta = eta + pm.math.dot(x_fixed, beta)
        for name, x in smooth_x.items():
            if "lengthscale" in hsgp[name]:  # the same fixed lengthscale as ours, in x's units
                ls = hsgp[name]["lengthscale"] * x.std()
            else:
                ls = pm.InverseGamma(f"{name}_ls", mu=2 * x.std(), sigma=x.std())
            amp = pm.HalfNormal(f"{name}_amp", 0.3)
            gp = pm.gp.HSGP(
                m=[hsgp[name]["m"]],
                c=hsgp[name]["c"],
                parametrization="centered",
                cov_func=amp**2 * pm.gp.cov.ExpQuad(1, ls=ls),
            )
            eta = eta + gp.prior(f"{name}_f", X=x[:, None])
        pm.Bernoulli("skip_2", logit_p=eta, observed=y)
    return model


def _diagnostics(tree, seconds: float) -> dict:
    from skipmodel.model.fitting import clean_tree, diagnose

    d = diagnose(clean_tree(tree))
    d["seconds"] = seconds
    d["ess_per_second"] = d["min_ess_bulk"] / seconds
    return d


def sample_peer(model, *, draws: int, tune: int, chains: int, budget: float) -> dict:
    """PyMC NUTS on the peer model, stopped at ``budget`` seconds; honest diagnostics.

    ``min_ess_bulk`` is 0 (with ``verdict`` saying why) when the peer produced no post-tuning
    draws, diverged on at least :data:`ALL_DIVERGENT` of them, or a chain never moved.
    """
    import pymc as pm

    start = time.perf_counter()
    deadline = start + budget
    stopped = {"early": False}

    def stop_at_deadline(trace, draw) -> None:  # noqa: ANN001
        if time.perf_counter() > deadline:
            stopped["early"] = True
            raise KeyboardInterrupt  # PyMC's documented way to stop; partial traces are kept

    tree = None
    try:
        with model:
            tree = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=2,
                random_seed=SEED,
                nuts_sampler="pymc",
                progressbar=False,
                compute_convergence_checks=False,
                callback=stop_at_deadline,
            )
    except ValueError as exc:  # stopped while tuning: PyMC has no draws to return
        if not stopped["early"]:
            raise
        print(f"bench_model: peer stopped while tuning ({exc})", file=sys.stderr)
    seconds = time.perf_counter() - start
    n_draws = int(tree.posterior.sizes["draw"]) if tree is not None else 0
    verdict = f"{n_draws} draws per chain" + (
        f" (stopped at the {budget:.0f} s budget)" if stopped["early"] else ""
    )
    if n_draws < 4:
        return {
            "min_ess_bulk": 0.0,
            "min_ess_bulk_var": "-",
            "max_rhat": float("nan"),
            "max_rhat_var": "-",
            "divergences": 0,
            "seconds": seconds,
            "ess_per_second": 0.0,
            "verdict": f"no posterior draws in {seconds:.0f} s (still tuning): ESS counted as 0",
        }
    d = _diagnostics(tree, seconds)
    divergent = d["divergences"] / max(d["n_draws"], 1)  # n_draws: all chains
    intercept = tree.posterior["intercept"].values  # (chain, draw)
    frozen = [
        c
        for c in range(intercept.shape[0])
        if np.unique(intercept[c]).size <= max(1, n_draws // 100)
    ]
    if divergent >= ALL_DIVERGENT or frozen or not np.isfinite(d["min_ess_bulk"]):
        why = (
            f"{divergent:.0%} of draws divergent"
            if divergent >= ALL_DIVERGENT
            else f"chain(s) {frozen} frozen"
            if frozen
            else "ESS undefined"
        )
        d["min_ess_bulk"] = 0.0
        d["ess_per_second"] = 0.0
        verdict += f"; {why}: ESS counted as 0"
    d["verdict"] = verdict
    return d


def run(out_dir: Path, *, quick: bool) -> list[dict]:
    """Rows for reports/bench/model.{json,md}."""
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import get_variant

    sessions = 600 if quick else 6000  # ~10,000 / ~100,000 plays
    mode = "quick" if quick else "full"
    chains, draws, tune = CHAINS[mode], DRAWS[mode], TUNE[mode]
    budget = PEER_BUDGET_SECONDS[mode]
    out_dir.mkdir(parents=True, exist_ok=True)
    plays = _plays(out_dir, sessions)

    ours = fit(get_variant("full"), plays, draws=draws, tune=tune, chains=chains, seed=SEED)
    d = ours.diagnostics
    print(f"bench_model: skipmodel full: {ours.summary()}", file=sys.stderr, flush=True)
    hsgp = {
        name: ours.encoders.settings[f"smooth_{name}"]
        for name in ("duration", "us_popularity_estimate")
    }

    # the same chains, tuning and draws (up to: the peer is stopped at its time budget)
    naive = sample_peer(
        naive_model(plays, hsgp), draws=draws, tune=tune, chains=chains, budget=budget
    )
    print(f"bench_model: straightforward: {naive}", file=sys.stderr, flush=True)

    rows_note = (
        f"{len(plays):,} plays, {chains} chains, {tune} tuning + {draws} draws each (the "
        f"straightforward up to that in {budget:.0f} s: {naive['verdict']})"
    )
    if naive["ess_per_second"] > 0:
        ratio = d["ess_per_second"] / naive["ess_per_second"]
        ratio_note = ""
    else:  # a lower bound: as if the peer had produced one effective draw in its time
        ratio = d["ess_per_second"] * naive["seconds"]
        ratio_note = "; peer ESS 0, ratio is a lower bound (peer at 1 ESS)"
    return [
        {
            "name": "full: min bulk ESS (all parameters)",
            "value": d["min_ess_bulk"],
            "unit": "draws",
            "peer": naive["min_ess_bulk"],
            "ratio": d["min_ess_bulk"] / naive["min_ess_bulk"] if naive["min_ess_bulk"] else None,
            "target": ">= 400",
            "passed": d["min_ess_bulk"] >= 400,
            "notes": f"slowest: {d['min_ess_bulk_var']} (peer: {naive['min_ess_bulk_var']}); {rows_note}",
        },
        {
            "name": "full: max R-hat",
            "value": d["max_rhat"],
            "unit": "",
            "peer": naive["max_rhat"],
            "ratio": None,
            "target": "<= 1.01",
            "passed": d["max_rhat"] <= 1.01,
            "notes": f"worst: {d['max_rhat_var']} (peer: {naive['max_rhat_var']})",
        },
        {
            "name": "full: divergences",
            "value": d["divergences"],
            "unit": "",
            "peer": naive["divergences"],
            "ratio": None,
            "target": "0",
            "passed": d["divergences"] == 0,
            "notes": "",
        },
        {
            "name": "full: min bulk ESS per second",
            "value": d["ess_per_second"],
            "unit": "ESS/s",
            "peer": naive["ess_per_second"],
            "ratio": ratio,
            "target": ">= 20x straightforward",
            "passed": ratio >= 20,
            "notes": (
                f"wall incl. compile: skipmodel {d['seconds']:.0f} s "
                f"(nutpie compile {d['compile_seconds']:.0f} s), straightforward "
                f"{naive['seconds']:.0f} s (PyMC NUTS){ratio_note}"
            ),
        },
    ]
