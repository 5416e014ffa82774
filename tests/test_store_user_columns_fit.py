"""A model over a user column kept by the store: ``skipmodel fit --store`` with ``[[columns]]``
reads it, recovers a simulated segment effect, and ``predict --store`` reads it again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ingest_helpers import log_text
from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.model.fitting import load_run
from skipmodel.simulate.files import csv_bytes
from skipmodel.store.user_columns import StoredColumn
from store_factory import random_logs

#: The simulated segment effects on the log-odds of skip_2 (centred).
EFFECTS = {"low": -0.8, "mid": 0.0, "high": 0.8}
SPEC = """name = "segments"
outcome = "skip_2"

[[terms]]
kind = "pooled"
column = "my_segment"

[[columns]]
name = "my_segment"
type = "string"
"""


def _logs_with_segments(path: Path, n_sessions: int, seed: int) -> None:
    """Session logs whose skip_2 depends on a per-session segment, written as a log CSV."""
    rng = np.random.default_rng(seed)
    logs = random_logs(rng, n_sessions).sort_by(
        [("session_id", "ascending"), ("session_position", "ascending")]
    )
    sessions = np.unique(logs.column("session_id").to_numpy(zero_copy_only=False))
    names = np.array(list(EFFECTS))
    segment_of = dict(zip(sessions, rng.choice(names, len(sessions)), strict=True))
    segment = np.array([segment_of[s] for s in logs.column("session_id").to_pylist()])
    effect = np.array([EFFECTS[s] for s in segment])
    skip_2 = rng.random(logs.num_rows) < 1 / (1 + np.exp(-effect))
    skip_1 = skip_2 & (rng.random(logs.num_rows) < 0.5)
    skip_3 = skip_2 | (rng.random(logs.num_rows) < 0.2)
    outcomes = {"skip_1": skip_1, "skip_2": skip_2, "skip_3": skip_3, "not_skipped": ~skip_3}
    text = log_text(logs, {name: pa.array(values) for name, values in outcomes.items()})
    path.write_bytes(csv_bytes(text.append_column("my_segment", pa.array(segment))))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("user_fit")
    _logs_with_segments(root / "log_0.csv", 600, seed=7)
    store = root / "store"
    columns = [StoredColumn("my_segment", "string")]
    ingest([root / "log_0.csv"], store, n_buckets=2, progress=False, columns=columns)
    spec = root / "segments.toml"
    spec.write_text(SPEC)
    run = root / "run"
    argv = ["fit", "--store", str(store), "--model", str(spec), "--method", "laplace",
            "--draws", "200", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    return store, spec, run


def test_fit_from_the_store_recovers_the_segment_effect(fitted: tuple[Path, Path, Path]) -> None:
    _, _, run = fitted
    result = load_run(run)
    post = result.posterior["posterior"]
    (name,) = [v for v in post.data_vars if v.startswith("my_segment") and "sigma" not in v]
    effect = post[name]
    dim = next(d for d in effect.dims if d not in ("chain", "draw"))
    means = effect.mean(("chain", "draw")).to_series()
    sds = effect.std(("chain", "draw")).to_series()
    levels = [str(v) for v in effect.coords[dim].values]
    got = {lv: float(means.iloc[i]) for i, lv in enumerate(levels) if lv in EFFECTS}
    assert set(got) == set(EFFECTS)
    # the contrasts do not depend on the intercept: high - low is 1.6 on the log-odds scale
    spread = got["high"] - got["low"]
    sd = float(np.hypot(sds.iloc[levels.index("high")], sds.iloc[levels.index("low")]))
    assert abs(spread - 1.6) < 4 * sd, (got, sd)
    assert got["low"] < got["mid"] < got["high"]


def test_predict_over_the_store_reads_the_user_column(
    fitted: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    store, _, run = fitted
    out = tmp_path / "p.parquet"
    assert main(["predict", str(run), "--store", str(store), "--out", str(out)]) == 0
    p = pd.read_parquet(out)
    assert len(p) > 0 and p["p_skip"].between(0, 1).all()


def test_a_store_without_the_column_says_to_re_ingest(
    fitted: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, spec, run = fitted
    _logs_with_segments(tmp_path / "log_0.csv", 20, seed=1)
    plain = tmp_path / "plain"
    ingest([tmp_path / "log_0.csv"], plain, n_buckets=2, progress=False)
    argv = ["fit", "--store", str(plain), "--model", str(spec), "--method", "laplace"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not keep (its user columns: none)" in err
    assert "re-ingest the logs with --column my_segment:string into a new --store" in err
    assert len(err.splitlines()) == 1
    with pytest.raises(SkipmodelError, match="does not keep"):
        from skipmodel.model.data import check_store_columns

        check_store_columns(plain, load_run(run).spec)
