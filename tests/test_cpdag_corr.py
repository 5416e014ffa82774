"""The streaming correlation pass and the --corr reader."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from skipmodel.cpdag.corr import (
    MomentAccumulator,
    Transforms,
    correlation_from_batches,
    correlation_from_csv,
    correlation_from_store,
)
from skipmodel.cpdag.io import read_correlation_csv
from skipmodel.errors import SkipmodelError
from skipmodel.store.schema import HEAVY_TAILED_FEATURES, TRACK_NUMERIC_FEATURES

sys.path.insert(0, str(Path(__file__).parent))
from store_factory import random_logs, random_tracks, write_store  # noqa: E402


def _batches(x: np.ndarray, names: list[str], sizes: list[int]):
    start = 0
    for size in sizes:
        block = x[start : start + size]
        start += size
        yield pa.RecordBatch.from_arrays([pa.array(block[:, j]) for j in range(x.shape[1])], names)
    assert start == len(x)


def test_many_batches_equal_numpy_even_with_large_offsets() -> None:
    rng = np.random.default_rng(1)
    n, p = 5_000, 4
    base = rng.standard_normal((n, p)) @ np.array(
        [[1, 0.5, 0, 0], [0, 1, 0.3, 0], [0, 0, 1, -0.7], [0, 0, 0, 1]]
    )
    offsets = np.array([1e9, -3e8, 0.0, 2e9])  # huge offsets, unit-scale noise
    x = base + offsets
    names = ["a", "b", "c", "d"]
    sizes = [1, 7, 992, 13, 2000, 1987]  # uneven, including a single row
    result = correlation_from_batches(_batches(x, names, sizes), names)
    expected = np.corrcoef(x, rowvar=False)  # numpy's two-pass (centre first) estimate
    assert result.n == n
    np.testing.assert_allclose(result.corr, expected, rtol=0, atol=1e-10)
    # against extended precision the streaming pass is exact to rounding
    xl = x.astype(np.longdouble)
    centred = xl - xl.mean(axis=0)
    m = centred.T @ centred
    exact = (m / np.sqrt(np.outer(np.diag(m), np.diag(m)))).astype(float)
    np.testing.assert_allclose(result.corr, exact, rtol=0, atol=1e-13)
    np.testing.assert_allclose(result.mean, xl.mean(axis=0).astype(float), rtol=0, atol=1e-6)
    # the naive raw-sums formula loses everything at this offset: the test can fail
    s, ss = x.sum(0), x.T @ x
    naive = (ss - np.outer(s, s) / n) / (n - 1)
    d = np.sqrt(np.abs(np.diag(naive)))
    assert np.abs(naive / np.outer(d, d) - expected).max() > 1e-3


def test_weighted_merge_equals_weighted_moments() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 3)) + 100.0
    w = rng.poisson(1.0, 300).astype(float)
    acc = MomentAccumulator(3)
    for part in np.array_split(np.arange(300), 7):
        acc.add(x[part], w[part])
    np.testing.assert_allclose(
        acc.correlation(),
        np.cov(x.T, aweights=w)
        / np.outer(
            np.sqrt(np.diag(np.cov(x.T, aweights=w))), np.sqrt(np.diag(np.cov(x.T, aweights=w)))
        ),
        atol=1e-12,
    )


def test_nulls_and_non_finite_values_drop_rows_and_are_counted() -> None:
    names = ["a", "b", "c"]
    cols = [
        pa.array([1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0]),
        pa.array([2.0, 1.0, 3.0, float("nan"), 5.0, 4.0, 8.0]),
        pa.array([0.5, 0.1, 0.9, 0.3, -1.0, 0.7, 0.2]),  # log(-1) is not finite
    ]
    batch = pa.RecordBatch.from_arrays(cols, names)
    result = correlation_from_batches([batch], names, transforms=Transforms(log=("c",)))
    assert result.rows_read == 7 and result.n == 4 and result.rows_dropped == 3
    assert result.null_counts == {"a": 1, "b": 0, "c": 0}
    assert result.nonfinite_counts == {"a": 0, "b": 1, "c": 1}
    data = np.array([[1, 2, 0.5], [2, 1, 0.1], [6, 4, 0.7], [7, 8, 0.2]], dtype=float)
    data[:, 2] = np.log(data[:, 2] + 1e-10)
    np.testing.assert_allclose(result.corr, np.corrcoef(data, rowvar=False), atol=1e-12)


def test_store_pass_uses_the_usual_transforms(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    tracks = random_tracks(rng, 400, coverage=1.0, duplicates=0)
    for col in HEAVY_TAILED_FEATURES:  # positive values, as the real heavy-tailed features
        values = tracks.column(col).to_numpy()
        positive = values + 1990 if col == "release_year" else np.exp(values)
        tracks = tracks.set_column(tracks.schema.get_field_index(col), col, pa.array(positive))
    write_store(tmp_path / "s", random_logs(rng, 20, n_tracks=400), tracks, track_parts=3)
    result = correlation_from_store(tmp_path / "s")
    assert result.names == TRACK_NUMERIC_FEATURES
    assert set(result.transforms.log) == set(HEAVY_TAILED_FEATURES)
    frame = tracks.to_pandas()
    data = frame[list(TRACK_NUMERIC_FEATURES)].astype(float)
    for col in HEAVY_TAILED_FEATURES:
        data[col] = np.log(data[col] + 1e-10)
    data = data[np.isfinite(data).all(axis=1)]
    assert result.n == len(data)
    np.testing.assert_allclose(result.corr, np.corrcoef(data.to_numpy(), rowvar=False), atol=1e-10)
    with pytest.raises(SkipmodelError, match="unknown column"):
        correlation_from_store(tmp_path / "s", transforms=Transforms(drop=("nope",)))


def test_csv_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,name\n1,2,x\n3,4,y\n")
    with pytest.raises(SkipmodelError, match="drop"):
        correlation_from_csv(bad)
    with pytest.raises(SkipmodelError, match="only 2 complete rows"):
        correlation_from_csv(bad, transforms=Transforms(drop=("name",)))
    const = tmp_path / "const.csv"
    const.write_text("a,b\n" + "".join(f"{i},1\n" for i in range(10)))
    with pytest.raises(SkipmodelError, match="constant"):
        correlation_from_csv(const)
    with pytest.raises(SkipmodelError, match="does not exist"):
        correlation_from_csv(tmp_path / "missing.csv")


def test_bootstrap_replicates_scatter_around_the_estimate() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4000, 3)) @ np.array([[1, 0.6, 0], [0, 1, 0.4], [0, 0, 1]])
    names = ["a", "b", "c"]
    result = correlation_from_batches(_batches(x, names, [1000] * 4), names, bootstrap=40, seed=1)
    reps = np.array(result.replicates)
    assert reps.shape == (40, 3, 3)
    assert np.all(np.abs(np.array(result.replicate_n) - 4000) < 400)
    spread = reps[:, 0, 1].std()
    se = (1 - result.corr[0, 1] ** 2) / np.sqrt(4000)  # normal-theory standard error
    assert 0.5 * se < spread < 2.0 * se
    assert abs(reps[:, 0, 1].mean() - result.corr[0, 1]) < 3 * se


# --- reading --corr ---------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_reads_r_style_and_plain_headers(tmp_path: Path, pc_dir: Path) -> None:
    names, corr = read_correlation_csv(pc_dir / "gmG8_cor.csv")
    assert names[0] == "Author" and corr.shape == (8, 8)
    plain = _write(tmp_path / "plain.csv", "x,y\n1,0.5\n0.5,1\n")
    assert read_correlation_csv(plain)[0] == ("x", "y")
    named = _write(tmp_path / "named.csv", "x,y\nx,1,0.5\ny,0.5,1\n")
    assert read_correlation_csv(named)[0] == ("x", "y")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x,y\n1,0.5\n0.4,1\n", "not symmetric"),
        ("x,y\n2,0.5\n0.5,1\n", "diagonal"),
        (",x,y,z\nx,1,0.9,-0.9\ny,0.9,1,0.9\nz,-0.9,0.9,1\n", "positive semi-definite"),
        ("x,y\n1,0.5\n", "square|at least 2"),
        ("x,y\n1,abc\n0.5,1\n", "not a number"),
        (",x,y\nx,1,0.5\nq,0.5,1\n", "named"),
        ("x,y\n1,1.5\n1.5,1\n", "outside|semi-definite"),
    ],
)
def test_invalid_matrices_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SkipmodelError, match=message) as info:
        read_correlation_csv(_write(tmp_path / "m.csv", text))
    assert "\n" not in str(info.value)


def test_threaded_pass_is_bitwise_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    import skipmodel.cpdag.corr as corr_module

    rng = np.random.default_rng(9)
    x = rng.standard_normal((3000, 3)) + 1e6
    names = ["a", "b", "c"]
    runs = []
    for workers in (1, 4):
        monkeypatch.setattr(corr_module, "_WORKERS", workers)
        batches = _batches(x, names, [100] * 30)
        runs.append(correlation_from_batches(batches, names, bootstrap=3, seed=2))
    assert np.array_equal(runs[0].corr, runs[1].corr)
    assert all(
        np.array_equal(a, b) for a, b in zip(runs[0].replicates, runs[1].replicates, strict=True)
    )
