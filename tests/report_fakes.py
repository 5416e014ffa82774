"""Small posterior DataTrees and plays shaped like skipmodel's fits, for report tests.

Variable names and dims follow :mod:`skipmodel.model.terms` so the report's effect discovery is
exercised on the real naming without sampling a model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CONTEXTS = ("user_collection", "catalog", "editorial_playlist", "radio")
PREV_LEVELS = ("no_previous", "false", "true")


def fake_posterior(
    *,
    chains: int = 4,
    draws: int = 250,
    n_tracks: int = 40,
    n_obs: int = 300,
    seed: int = 0,
    stuck_apart: bool = False,
    mixed_tracks: int = 0,
) -> xr.DataTree:
    """Effects of known shape plus noise; ``stuck_apart`` puts each chain's intercept elsewhere;
    ``mixed_tracks`` = k makes the track pool mixed, its last k tracks centred
    (``track_centered_effect``), the first of them the most skipped track."""
    import arviz_base as azb

    rng = np.random.default_rng(seed)

    def noise(*shape: int, sd: float = 0.05) -> np.ndarray:
        return rng.normal(0, sd, size=(chains, draws, *shape))

    hours = np.arange(24)
    grid = np.linspace(60, 600, 50)
    track_z = rng.normal(size=n_tracks)
    posterior = {
        "intercept": 0.1 + noise() + (np.arange(chains)[:, None] if stuck_apart else 0.0),
        "weekday_effect": np.linspace(-0.2, 0.2, 7) + noise(7),
        "hour_effect": 0.3 * np.cos(2 * np.pi * (hours - 3) / 24) + noise(24),
        "hour_sigma": np.abs(0.3 + noise()),
        "position_effect": np.linspace(0.2, -0.2, 20) + noise(20),
        "position_sigma": np.abs(0.1 + noise()),
        "prev_skip_2_effect": np.array([-0.3, -0.5, 0.8]) + noise(3),
        "context_type_effect": np.array([0.1, -0.1, 0.05, -0.05]) + noise(4),
        "duration_effect": 0.2 * np.sin(grid / 100) + noise(50),
        "duration_amplitude": np.abs(0.2 + noise()),
        "duration_lengthscale": np.abs(1.0 + noise()),
        "track_sigma": np.abs(0.5 + noise()),
        "track_z": track_z + noise(n_tracks, sd=0.3),
    }
    track_names = [f"t_{i:05d}" for i in range(n_tracks - 1)] + ["__other__"]
    track_dims = {"track_z": ["track"]}
    track_coords = {"track": track_names}
    if mixed_tracks:
        thin = n_tracks - mixed_tracks
        posterior["track_z"] = posterior["track_z"][..., :thin]
        posterior["track_centered_effect"] = np.linspace(2.5, 0.0, mixed_tracks) + noise(
            mixed_tracks
        )
        track_dims = {
            "track_z": ["track_noncentered"],
            "track_centered_effect": ["track_centered"],
        }
        track_coords = {
            "track_noncentered": track_names[:thin],
            "track_centered": [f"hit_{i}" for i in range(mixed_tracks)],
        }
    p_obs = 1 / (1 + np.exp(-(0.1 + noise(n_obs, sd=0.3))))
    y = rng.integers(0, 2, n_obs)
    loglik = np.where(y == 1, np.log(p_obs), np.log1p(-p_obs))
    return azb.from_dict(
        {
            "posterior": posterior,
            "sample_stats": {
                "diverging": np.zeros((chains, draws), bool),
                "energy": rng.normal(size=(chains, draws)),
            },
            "log_likelihood": {"skip_2": loglik},
            "observed_data": {"skip_2": y},
        },
        dims={
            "weekday_effect": ["weekday"],
            "hour_effect": ["hour"],
            "position_effect": ["position"],
            "prev_skip_2_effect": ["prev_skip_2"],
            "context_type_effect": ["context_type"],
            "duration_effect": ["duration_grid"],
            **track_dims,
            "skip_2": ["obs"],
        },
        coords={
            "weekday": list(WEEKDAYS),
            "hour": list(hours),
            "position": list(range(1, 21)),
            "prev_skip_2": list(PREV_LEVELS),
            "context_type": list(CONTEXTS),
            "duration_grid": list(grid),
            **track_coords,
            "obs": list(range(n_obs)),
        },
    )


def fake_plays(n_sessions: int = 60, *, seed: int = 0) -> pd.DataFrame:
    """Loader-shaped plays with a Markov skip process and a p_skip column from a known model."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        length = int(rng.integers(10, 21))
        prev_skip = None
        prev_dance = np.nan
        weekday = int(rng.integers(0, 7))
        hour = int(rng.integers(0, 24))
        context = CONTEXTS[int(rng.integers(0, len(CONTEXTS)))]
        for pos in range(1, length + 1):
            dance = float(rng.uniform())
            logit = -0.2 + (0.0 if prev_skip is None else (1.0 if prev_skip else -0.6))
            logit += 0.8 * (dance - 0.5) * (0.5 - (0.5 if np.isnan(prev_dance) else prev_dance))
            p = 1 / (1 + np.exp(-logit))
            skip = bool(rng.random() < p)
            rows.append(
                {
                    "session_id": f"s{s:04d}",
                    "session_position": pos,
                    "session_length": length,
                    "track_id_clean": f"t_{int(rng.integers(0, 30)):05d}",
                    "skip_2": skip,
                    "prev_skip_2": prev_skip,
                    "weekday": weekday,
                    "hour_of_day": hour,
                    "context_type": context,
                    "danceability": dance,
                    "prev_danceability": prev_dance,
                    "p_true": p,
                }
            )
            prev_skip, prev_dance = skip, dance
    frame = pd.DataFrame(rows)
    frame["prev_skip_2"] = frame["prev_skip_2"].astype("boolean")
    return frame


def fake_run(name: str = "fake", *, seed: int = 0, bad: bool = False):  # noqa: ANN201
    """A RunInputs over fake plays; ``bad`` gives chains stuck apart (R-hat fails)."""
    from skipmodel.report.inputs import RunInputs

    plays = fake_plays(80, seed=seed)
    is_test = plays["session_id"].str[-1].isin(["0", "5"])
    train, test = plays[~is_test].reset_index(drop=True), plays[is_test].reset_index(drop=True)
    dt = fake_posterior(seed=seed, stuck_apart=bad)

    def predict_draws(frame: pd.DataFrame) -> np.ndarray:
        rng = np.random.default_rng(1)
        p = frame["p_true"].to_numpy()
        return np.clip(p[None, :] + rng.normal(0, 0.03, (100, len(frame))), 0.001, 0.999)

    def predict_second_half(frame: pd.DataFrame, reveal: str = "wsdm") -> pd.DataFrame:
        half = 2 * frame["session_position"] > frame["session_length"]
        rows = frame.loc[half, ["session_id", "session_position"]].copy()
        rows["p_skip"] = frame.loc[half, "p_true"].to_numpy()
        return rows

    return RunInputs(
        name=name,
        posterior=dt,
        outcome="skip_2",
        train=train,
        test=test,
        predict_draws=predict_draws,
        predict_second_half=predict_second_half,
        description="fake model for tests",
        facts=(("markov features", "danceability"),),
    )
