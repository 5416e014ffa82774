"""Does the default parametrisation hold on data of other structure? (issue 21)

``python -m benchmarks.run --out reports/bench --only parametrisation [--quick]``

For each structure of :data:`STRUCTURES` (``skipmodel simulate --structure``: ``strong`` — a
strong previous-skip effect and danceability jump; ``heavy`` — Student-t(3) track effects,
power-law plays per track, uniform session lengths; ``mixture`` — a two-component track-effect
mixture, a step duration effect, short sessions, a very strong previous-skip effect), the MSSD
simulator writes ~105,000 plays over 8,000 tracks (the issue's dataset had 83,696 training plays
and 8,000 tracks), ``skipmodel ingest`` makes a store, and the ``full`` model is fitted by NUTS at
``skipmodel fit``'s defaults (4 chains x 1,000 draws after 1,000 tuning; quick: 600 sessions,
2 x 200) to the smallest seeded sample of at least 80,000 train plays (``--plays 80000``). Per
dataset: divergences (target 0), the convergence rule's verdict (:mod:`skipmodel.model.
convergence`: globals R-hat <= 1.01 and ESS >= 400, pools 99.9 % / all), the worst R-hat and the
least bulk ESS (variable names), and per variable group its worst R-hat and least bulk ESS, the
parametrisation chosen for the pools and the wall time.

Stores and fitted runs are cached under ``$SKIPMODEL_BENCH_CACHE/parametrisation/<structure>``
(default ``/tmp/skipmodel-bench``) and reused by a re-run (delete a run's directory to refit);
results stream to ``parametrisation_partial.jsonl``. The same fit from the command line::

    skipmodel simulate --out sim --structure heavy --sessions 7000 --tracks 8000 --seed 31
    skipmodel ingest sim/training_set.tar.gz sim/track_features.tar.gz --out store
    skipmodel fit --store store --model models/full.toml --plays 80000
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cache import PartialRows, cached_fit

CACHE = Path(os.environ.get("SKIPMODEL_BENCH_CACHE", "/tmp/skipmodel-bench"))
#: Structure -> sessions for ~105,000 plays (mean session lengths 15.0, 12.1 and 16.7).
STRUCTURES = {"heavy": 7_000, "mixture": 8_700, "strong": 6_400}
TRACKS = 8_000
PLAYS = 80_000
SEED = 31


def _row(name: str, value: Any, unit: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, **kw}


def _store(structure: str, sessions: int, tracks: int) -> tuple[Path, dict[str, Any]]:
    from skipmodel.ingest import ingest
    from skipmodel.simulate.mssd import simulate

    root = CACHE / "parametrisation" / f"{structure}_{sessions}"
    store, sim = root / "store", root / "sim"
    if not (store / "manifest.json").is_file():
        result = simulate(sim, sessions=sessions, seed=SEED, tracks=tracks, structure=structure)
        ingest([result.training_set, result.track_features], store, n_buckets=8, progress=False)
    return store, json.loads((sim / "truth.json").read_text())


def group_diagnostics(tree: Any) -> dict[str, dict[str, Any]]:
    """Per posterior variable: elements, worst R-hat, least bulk and tail ESS."""
    import arviz_stats as azs
    import xarray as xr

    def as_dataset(x: Any) -> xr.Dataset:
        return x.to_dataset() if isinstance(x, xr.DataTree) else x

    rhat = as_dataset(azs.rhat(tree))
    bulk = as_dataset(azs.ess(tree, method="bulk"))
    tail = as_dataset(azs.ess(tree, method="tail"))
    out: dict[str, dict[str, Any]] = {}
    for name in rhat.data_vars:
        r = np.asarray(rhat[name].values, dtype=float).ravel()
        b = np.asarray(bulk[name].values, dtype=float).ravel()
        t = np.asarray(tail[name].values, dtype=float).ravel()
        if not np.isfinite(r).any():
            continue
        out[str(name)] = {
            "n": int(r.size),
            "max_rhat": float(np.nanmax(r)),
            "share_rhat_le_1_01": float(np.mean(r[np.isfinite(r)] <= 1.01)),
            "min_ess_bulk": float(np.nanmin(b)),
            "min_ess_tail": float(np.nanmin(t)),
        }
    return out


def _divergent_where(result: Any) -> str:
    """Where divergent draws sit: each pool sd's mean over divergent and other draws."""
    tree = result.posterior
    stats = tree["sample_stats"].to_dataset()
    if "diverging" not in stats or not int(stats["diverging"].sum()):
        return ""
    post = tree["posterior"].to_dataset()
    mask = stats["diverging"].values.astype(bool)
    parts = []
    for name in sorted(v for v in post.data_vars if str(v).endswith("_sigma")):
        values = post[name].values
        if values.shape != mask.shape:
            continue
        parts.append(f"{name} {values[mask].mean():.3f} vs {values[~mask].mean():.3f}")
    return "divergent vs other draws: " + ", ".join(parts)


def run(out_dir: Path, *, quick: bool) -> list[dict[str, Any]]:
    from skipmodel.load.budget import fraction_for_plays
    from skipmodel.model import convergence
    from skipmodel.model.data import StoreSample
    from skipmodel.model.fitting import fit
    from skipmodel.model.spec import get_variant

    chains, draws = (2, 200) if quick else (4, 1000)
    plays = 6_000 if quick else PLAYS
    rows = PartialRows(out_dir / "parametrisation_partial.jsonl")
    emit = rows.emit

    spec = get_variant("full")
    for structure, sessions in STRUCTURES.items():
        store, truth = _store(structure, 600 if quick else sessions, 1_000 if quick else TRACKS)
        fraction, held = fraction_for_plays(store, plays, seed=0)
        saved = store.parent / f"run_full_{chains}x{draws}"
        sample = StoreSample(store, fraction=fraction, seed=0)
        result, seconds = cached_fit(
            saved,
            lambda sample=sample: fit(
                spec, sample, draws=draws, tune=draws, chains=chains, seed=0, progress=False
            ),
        )
        d = result.diagnostics
        groups = group_diagnostics(result.posterior)
        (saved / "groups.json").write_text(json.dumps(groups, indent=1))
        offenders = convergence.rhat_verdict(
            {
                str(k): np.asarray(v.values, dtype=float).ravel()
                for k, v in _rhat(result.posterior).data_vars.items()
            }
        ).offenders
        worst = sorted(groups.items(), key=lambda kv: -kv[1]["max_rhat"])[:4]
        least = sorted(groups.items(), key=lambda kv: kv[1]["min_ess_bulk"])[:3]
        pools = {
            k.removeprefix("pooled_"): v.get("p")
            for k, v in result.encoders.settings.items()
            if k.startswith("pooled_") and isinstance(v, dict)
        }
        emp = truth["empirical"]
        setting = (
            f"{structure}: {result.manifest['n_rows']:,} train plays (--plays {plays:,}), "
            f"{TRACKS if not quick else 1_000:,} tracks, skip_2 rate {emp['skip_2_rate']:.3f}; "
            f"NUTS {chains} x {draws}; {seconds:.0f} s"
        )
        emit(
            _row(
                f"{structure}: divergences",
                d["divergences"],
                "divergences",
                target="0",
                passed=d["divergences"] == 0,
                notes=f"{setting}. {_divergent_where(result)}",
            )
        )
        emit(
            _row(
                f"{structure}: convergence rule",
                "pass" if d["rule_passed"] else "fail",
                "verdict",
                target="pass",
                passed=bool(d["rule_passed"]),
                notes=f"max R-hat {d['max_rhat']:.4f} ({d['max_rhat_var']}); min bulk ESS "
                f"{d['min_ess_bulk']:.0f} ({d['min_ess_bulk_var']}); min tail ESS "
                f"{d['min_ess_tail']:.0f} ({d['min_ess_tail_var']}); R-hat offenders "
                f"{', '.join(offenders[:5]) or 'none'}; min BFMI {d['min_bfmi']:.2f}",
            )
        )
        emit(
            _row(
                f"{structure}: worst groups",
                round(worst[0][1]["max_rhat"], 4),
                "R-hat",
                notes="; ".join(
                    f"{k} (n {v['n']:,}) R-hat {v['max_rhat']:.4f}, "
                    f"{100 * v['share_rhat_le_1_01']:.2f} % <= 1.01, bulk ESS {v['min_ess_bulk']:.0f}"
                    for k, v in worst
                )
                + "; least ESS: "
                + ", ".join(f"{k} {v['min_ess_bulk']:.0f}" for k, v in least)
                + f"; pools: {pools}",
            )
        )
        emit(_row(f"{structure}: wall time", round(seconds), "s", notes=setting))
    return rows


def _rhat(tree: Any) -> Any:
    import arviz_stats as azs
    import xarray as xr

    rhat = azs.rhat(tree)
    return rhat.to_dataset() if isinstance(rhat, xr.DataTree) else rhat
