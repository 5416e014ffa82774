"""Nested Laplace with a session term: sessions eliminated per batch as the passes go.

Batches never cut a session; the sessions' share of the log marginal is the integral a brute
force grid gives; the fit recovers a session scale and the previous-skip effect from a
generator with known effects (and a scale near 0 where there is none); a store fits, predicts
and learns each held-out session from its earlier plays only, as NUTS runs do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skipmodel.scale  # noqa: F401 - registers --method laplace
from skipmodel.cli import main
from skipmodel.ingest import ingest
from skipmodel.model.design import build_design
from skipmodel.model.fitting import fit, load_run
from skipmodel.model.spec import Markov, ModelSpec, Pooled, Session
from skipmodel.scale.laplace.fit import LaplaceOptions, fit_passes, run_pass
from skipmodel.scale.laplace.gaussian import Expansion
from skipmodel.scale.laplace.sessions import (
    SessionNodes,
    scale_grid,
    session_batches,
    whole_sessions,
)
from skipmodel.scale.laplace.structure import RowBatch, build_latent_model, encode_rows
from skipmodel.simulate.mssd import simulate

SPEC = ModelSpec(name="moods", terms=(Pooled(column="track_id_clean"), Markov(), Session()))


def mood_plays(
    n_sessions: int, *, session_sd: float, seed: int, prev_skip: float = 0.9
) -> pd.DataFrame:
    """Plays from a generator of this file's own: a track effect (sd 0.4, Student-t with 5
    degrees of freedom, rescaled), a session propensity (``session_sd``), the previous outcome
    (``prev_skip``, skipped vs not) and nothing else; sessions of 8 to 20 plays."""
    rng = np.random.default_rng(seed)
    n_tracks = 500
    track = 0.4 * rng.standard_t(5, n_tracks) / np.sqrt(5 / 3)
    popularity = rng.zipf(1.6, 50 * n_sessions) % n_tracks  # heavy-tailed plays per track
    rows, at = [], 0
    for s in range(n_sessions):
        length = int(rng.integers(8, 21))
        mood = session_sd * rng.standard_normal()
        prev = None
        for pos in range(1, length + 1):
            t = int(popularity[at])
            at += 1
            eta = -0.2 + track[t] + mood + (0.0 if prev is None else prev_skip * (prev - 0.5))
            skip = bool(rng.random() < 1 / (1 + np.exp(-eta)))
            rows.append((f"s{s:06d}", pos, length, f"t{t:04d}", skip, prev))
            prev = skip
    frame = pd.DataFrame(
        rows,
        columns=[
            "session_id", "session_position", "session_length", "track_id_clean", "skip_2",
            "prev_skip_2",
        ],
    )  # fmt: skip
    frame["prev_skip_2"] = frame["prev_skip_2"].astype("boolean")
    return frame


def _batches(sessions: np.ndarray, cuts: list[int]) -> list[RowBatch]:
    n = sessions.size
    whole = RowBatch(
        np.zeros((n, 0), np.int32),
        np.zeros((n, 0), np.float32),
        np.full(n, -1, np.int32),
        np.arange(n, dtype=np.int8) % 2,
        sessions,
    )
    edges = [0, *cuts, n]
    return [whole.slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def test_batches_hold_whole_sessions_and_every_row_once() -> None:
    rng = np.random.default_rng(0)
    sessions = np.repeat(np.arange(40), rng.integers(1, 9, 40)).astype(np.int64)
    cuts = sorted(rng.choice(np.arange(1, sessions.size), 12, replace=False).tolist())
    out = list(whole_sessions(_batches(sessions, cuts)))
    assert np.array_equal(np.concatenate([b.session for b in out]), sessions)
    seen = [set(b.session.tolist()) for b in out]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    whole = RowBatch.concat(_batches(sessions, []))
    parts = list(session_batches(whole, 7))
    assert sum(p.n_rows for p in parts) == whole.n_rows and len(parts) > 3
    assert all(p.session[-1] != q.session[0] for p, q in zip(parts, parts[1:], strict=False))


def test_the_sessions_share_of_the_marginal_is_their_integral() -> None:
    """Without a track pool, log p(y | c, sigma) = sum over sessions of the integral of their
    plays' likelihood over N(0, sigma^2): checked against a fine grid at every scale of the
    pass's grid (the spline passes through them)."""
    plays = mood_plays(150, session_sd=0.8, seed=1)
    spec = ModelSpec(terms=(Markov(), Session()))
    design = build_design(spec, plays)
    model = build_latent_model(design)
    batch = encode_rows(model, design).by_level()
    c = np.random.default_rng(2).normal(0, 0.3, model.q)
    grid = scale_grid(np.log(0.7))
    empty = np.zeros((0, 9))
    prior = SessionNodes.prior(0.7)
    first = run_pass(
        model, lambda: session_batches(batch, 500), c, empty, None, sessions=(prior, grid)
    )
    assert first.sessions is not None and first.sessions.n_sessions == 150
    nodes = first.sessions.nodes(0.7)  # the second pass's nodes sit on each posterior
    sums = run_pass(
        model, lambda: session_batches(batch, 500), c, empty, None, sessions=(nodes, grid)
    )
    expansion = Expansion(model, sums, c, np.zeros(0), np.zeros(0))
    eta = _row_logits(design, model, c)
    y = design.outcome.astype(float)
    session = batch.session
    order = np.argsort(design.terms[-1].codes["session"], kind="stable")
    u = np.linspace(-8, 8, 8001)
    for log_sigma in grid:
        sigma = float(np.exp(log_sigma))
        total = 0.0
        for s in range(150):
            rows = order[session == s]
            e = eta[rows][:, None] + u[None, :]
            log_l = (y[rows][:, None] * e - np.logaddexp(0, e)).sum(axis=0)
            log_l += -0.5 * (u / sigma) ** 2 - np.log(sigma * np.sqrt(2 * np.pi))
            top = log_l.max()
            total += top + np.log(np.exp(log_l - top).sum() * (u[1] - u[0]))
        got = expansion.ll0 + expansion.session_part({"session_sigma": sigma})[0]
        # exact at the pass's own scale (the nodes sit on each posterior); at the grid's ends
        # the nodes are placed for another prior and lose a little (the next pass re-centres)
        per_session = 1e-5 if log_sigma == grid[grid.size // 2] else 2e-3
        assert got == pytest.approx(total, abs=per_session * 150)


def _row_logits(design, model, c: np.ndarray) -> np.ndarray:
    from skipmodel.model.terms import kind_of
    from skipmodel.model.terms.base import evaluate_layout

    params = {name: model.table(c, name) for name in model.segments}
    eta = np.full(design.n_obs, params["intercept"][0])
    for td in design.terms:
        if td.term.kind == "session":
            continue
        eta += evaluate_layout(kind_of(td.term).layout(td), params)
    return eta


def _fit(plays: pd.DataFrame):
    design = build_design(SPEC, plays)
    model = build_latent_model(design)
    batch = encode_rows(model, design).by_level()
    return fit_passes(
        model, lambda: session_batches(batch, 4096), LaplaceOptions(draws=10), progress=False
    ), model


def test_the_session_scale_and_the_previous_skip_are_recovered() -> None:
    fitted, model = _fit(mood_plays(1500, session_sd=0.8, seed=3))
    assert fitted.converged
    names = [h.name for h in model.hypers]
    j = names.index("session_sigma")
    sigma, sd = np.exp(fitted.log_theta[j]), np.sqrt(fitted.theta_cov[j, j]) * 0.8
    assert abs(sigma - 0.8) < 3 * sd + 0.05, (sigma, sd)
    effect = model.table(fitted.mode, "prev_skip_2_effect")
    contrast = effect[2] - effect[1]  # skipped vs not
    assert abs(contrast - 0.9) < 0.15, contrast


def test_without_moods_the_session_scale_shrinks_towards_zero() -> None:
    fitted, model = _fit(mood_plays(1500, session_sd=0.0, seed=4))
    sigma = fitted.theta()["session_sigma"]
    assert sigma < 0.2, sigma


def test_a_store_fits_by_laplace_with_sessions_and_predicts(tmp_path: Path) -> None:
    sim = simulate(tmp_path / "sim", sessions=300, seed=4, tracks=400, days=7, session_sd=0.8)
    store = tmp_path / "store"
    ingest([sim.training_set, sim.track_features], store, n_buckets=4, progress=False)
    spec = tmp_path / "moods.toml"
    spec.write_text(SPEC.to_toml())
    run = tmp_path / "run"
    argv = ["fit", "--store", str(store), "--model", str(spec), "--method", "laplace"]
    assert main([*argv, "--draws", "100", "--out", str(run)]) == 0
    result = load_run(run)
    assert "session_sigma" in result.posterior["posterior"]
    assert result.diagnostics["hyper_mode"]["session_sigma"] > 0.3
    out = tmp_path / "p.parquet"
    assert main(["predict", str(run), "--store", str(store), "--out", str(out)]) == 0
    assert pd.read_parquet(out)["p_skip"].between(0, 1).all()


def test_a_frame_fit_predicts_earlier_plays_only() -> None:
    """The leakage rule holds for a Laplace run: flipping the outcome of play t leaves its
    prediction alone and moves the next play's."""
    plays = mood_plays(200, session_sd=0.8, seed=5)
    result = fit(SPEC, plays, method="laplace", draws=50, progress=False)
    from skipmodel.model.prediction import predict

    session = plays[plays["session_id"] == plays["session_id"].iloc[0]].reset_index(drop=True)
    base = predict(result, session)["p_skip"].to_numpy()
    flipped = session.copy()
    flipped.loc[4, "skip_2"] = not bool(flipped.loc[4, "skip_2"])
    moved = predict(result, flipped)["p_skip"].to_numpy()
    np.testing.assert_allclose(moved[:5], base[:5], atol=1e-12)
    assert np.abs(moved[5:] - base[5:]).max() > 1e-4
