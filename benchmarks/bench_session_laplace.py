"""The session term by nested Laplace (issue 20) against NUTS, on the session benchmark's data.

The stores and NUTS runs of :mod:`benchmarks.bench_session` (26,000 simulated sessions with a
per-session propensity of sd 0.8, and without one; the ``session`` model at 4 x 1,000 on the same
~82,000 train plays), cached under ``$SKIPMODEL_BENCH_CACHE/session/``: run that benchmark first
(this one fits NUTS itself when a cached run is missing, which takes tens of minutes). Here the
``session`` model is fitted by ``--method laplace`` from the store (sessions eliminated per batch
as the passes go) and compared with NUTS:

* the session scale, the previous-skip and lag-2 contrasts: |Laplace - NUTS| in NUTS posterior
  sds, and the sd ratio;
* held-out expected log loss (against the true probabilities) and the sequential mean average
  accuracy of both fits on every test session;
* wall time, passes, and the memory the sessions cost: two float32 per session kept between
  passes, so 125 million sessions hold 1 GB (the per-batch sums are freed batch by batch);
* the gap ``full`` leaves to the true model and the share the session term closes (expected log
  loss and sequential accuracy, as in :mod:`benchmarks.bench_session`), with both models fitted
  by Laplace to the **whole** train split (~350,000 plays, 4x the NUTS sample): how the share
  grows when the track effects are better known (a different setting from the issue's 82,000
  plays, reported beside it, not instead of it).
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_session import (
    SESSION_SD,
    _contrast,
    _evaluate,
    _expected_log_loss,
    _maa,
    _realised_log_loss,
    _row,
    _store,
    true_predictions,
)
from benchmarks.cache import cached_fit


def _sd_of(result: Any, name: str) -> tuple[float, float]:
    x = result.posterior["posterior"][name].values.ravel()
    return float(x.mean()), float(x.std())


def run(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    import skipmodel.scale  # noqa: F401 - registers --method laplace
    from skipmodel.model.data import StoreSample, load_plays
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import get_variant

    sessions = 3_000 if quick else 26_000
    fraction = 1.0 if quick else 0.235
    chains, draws = (2, 300) if quick else (4, 1000)
    spec = get_variant("session")
    rows: list[dict[str, Any]] = []
    for sd in (SESSION_SD, 0.0):
        store, sim = _store(sd, sessions)
        data = StoreSample(store, fraction=fraction, seed=5)
        nuts, _ = cached_fit(  # bench_session's run (the same name, options and seed)
            store.parent / f"run_session_{chains}x{draws}",
            lambda data=data: fit(spec, data, draws=draws, tune=draws, chains=chains, seed=3),
        )
        t0 = time.perf_counter()
        laplace = fit(spec, data, method="laplace", seed=3, progress=False)
        seconds = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        d = laplace.diagnostics
        setting = (
            f"session sd {sd}; {laplace.manifest['n_rows']:,} train plays; laplace "
            f"{d['passes']} passes in {seconds:.0f} s (converged: {d['converged']}), peak RSS "
            f"of the process {rss:.2f} GB; NUTS {chains} x {draws}"
        )
        compared = [
            ("session_sigma", *_sd_of(laplace, "session_sigma"), *_sd_of(nuts, "session_sigma"))
        ]
        for dim in ("prev_skip_2", "prev2_skip_2"):
            compared.append((f"{dim} contrast", *_contrast(laplace, dim), *_contrast(nuts, dim)))
        for name, lm, ls, nm, ns in compared:
            rows.append(
                _row(
                    f"sd {sd}: {name}, laplace vs NUTS",
                    round(abs(lm - nm) / ns, 3),
                    "NUTS sds",
                    notes=f"laplace {lm:.3f} (sd {ls:.3f}), NUTS {nm:.3f} (sd {ns:.3f}); sd "
                    f"ratio {ls / ns:.2f}; {setting}",
                )
            )
        test = load_plays(store, StoreSample(store, split="test").rows_sample(spec))
        evals = {"laplace": _evaluate(laplace, test), "nuts": _evaluate(nuts, test)}
        y = test["skip_2"].astype(float).to_numpy()
        if sd > 0:
            p_true = true_predictions(test, sim / "truth.json")["oracle"]
            loss = {m: _expected_log_loss(p_true, e["row_level"]) for m, e in evals.items()}
            kind = "expected log loss against the true probabilities"
        else:
            loss = {m: _realised_log_loss(y, e["row_level"]) for m, e in evals.items()}
            kind = "realised log loss"
        rows.append(
            _row(
                f"sd {sd}: held-out log loss, laplace - NUTS",
                round(loss["laplace"] - loss["nuts"], 5),
                "nats",
                notes=f"{kind}: laplace {loss['laplace']:.5f}, NUTS {loss['nuts']:.5f}; "
                f"{len(test):,} test plays in {test['session_id'].nunique():,} sessions",
            )
        )
        maa = {m: _maa(e["seq_ids"], e["seq"], test, "skip_2") for m, e in evals.items()}
        rows.append(
            _row(
                f"sd {sd}: sequential mean average accuracy (wsdm), laplace - NUTS",
                round(maa["laplace"] - maa["nuts"], 4),
                "accuracy",
                notes=f"laplace {maa['laplace']:.4f}, NUTS {maa['nuts']:.4f}",
            )
        )
        (out_dir / f"session_laplace_sd{sd}.json").write_text(json.dumps(rows, indent=1))
    if not quick:
        rows += _gap_on_the_whole_split(sessions)
    return rows


def _gap_on_the_whole_split(sessions: int) -> list[dict[str, Any]]:
    """``full`` and ``session`` by Laplace on every train play of the sd-0.8 store."""
    from skipmodel.model.data import StoreSample, load_plays
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import get_variant

    store, sim = _store(SESSION_SD, sessions)
    data = StoreSample(store, fraction=1.0, seed=5)
    fits = {
        m: fit(get_variant(m), data, method="laplace", seed=3, progress=False)
        for m in ("full", "session")
    }
    test = load_plays(store, StoreSample(store, split="test").rows_sample(get_variant("session")))
    evals = {m: _evaluate(r, test) for m, r in fits.items()}
    ref = true_predictions(test, sim / "truth.json")
    p_true = ref["oracle"]
    loss = {m: _expected_log_loss(p_true, e["row_level"]) for m, e in evals.items()}
    loss["true"] = _expected_log_loss(p_true, ref["row_level"])
    maa = {m: _maa(e["seq_ids"], e["seq"], test, "skip_2") for m, e in evals.items()}
    maa["true"] = _maa(ref["sequential_ids"], ref["sequential"], test, "skip_2")
    n = fits["full"].manifest["n_rows"]
    return [
        _row(
            f"sd {SESSION_SD}, laplace on the whole train split: expected log loss, share of the gap full -> true closed",
            round((loss["full"] - loss["session"]) / (loss["full"] - loss["true"]), 3),
            "share",
            notes=", ".join(f"{k} {v:.4f}" for k, v in loss.items()) + f"; {n:,} train plays",
        ),
        _row(
            f"sd {SESSION_SD}, laplace on the whole train split: sequential accuracy (wsdm), share of the gap closed",
            round((maa["session"] - maa["full"]) / (maa["true"] - maa["full"]), 3),
            "share",
            notes=", ".join(f"{k} {v:.4f}" for k, v in maa.items()),
        ),
    ]
