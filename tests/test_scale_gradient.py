"""The gradient timing against its bandwidth bound: what it counts and how it times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.model.design import build_design
from skipmodel.model.spec import Fixed, ModelSpec, Pooled, Seasonal
from skipmodel.scale.gradient import (
    GradientTiming,
    as_float32,
    design_bytes,
    time_logp_grad,
)

SPEC = ModelSpec(
    name="tiny",
    terms=(
        Pooled(column="context_type"),
        Seasonal(weekday=True, hour="none", position=False),
        Fixed(columns=("premium",)),
    ),
)


@pytest.fixture(scope="module")
def design():
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "session_id": np.repeat(np.arange(n // 4), 4).astype(str),
            "session_position": np.tile(np.arange(1, 5), n // 4),
            "context_type": rng.choice(["editorial_playlist", "radio", "catalog"], n),
            "weekday": rng.integers(0, 7, n),
            "premium": rng.integers(0, 2, n).astype(bool),
            "skip_2": rng.integers(0, 2, n).astype(bool),
        }
    )
    return build_design(SPEC, frame)


def test_design_bytes_are_the_per_row_arrays_read(design) -> None:
    expected = design.outcome.nbytes
    for td in design.terms:
        expected += sum(a.nbytes for k, a in td.codes.items() if k != "unseen")
        expected += sum(a.nbytes for a in td.values.values())
        expected += sum(a.nbytes for a in td.tables.values() if a.shape[0] == design.n_obs)
    assert design_bytes(design) == expected
    # at least the outcome and one code per term and row
    assert design_bytes(design) >= design.n_obs * (1 + len(design.terms))


def test_as_float32_keeps_integers_and_shapes(design) -> None:
    d32 = as_float32(design)
    for td, td32 in zip(design.terms, d32.terms, strict=True):
        for key, a in {**td.values, **td.tables}.items():
            b = {**td32.values, **td32.tables}[key]
            assert b.shape == a.shape
            assert b.dtype == (np.float32 if a.dtype.kind == "f" else a.dtype)
        for key, a in td.codes.items():
            assert td32.codes[key] is a


def test_timing_ratio_is_best_time_over_bytes_per_bandwidth() -> None:
    t = GradientTiming(
        n_rows=10,
        backend="NUMBA",
        float_dtype="float64",
        seconds=0.002,
        compile_seconds=1.0,
        design_bytes=10**6,
        bandwidth=1e9,
        n_params=3,
        cpu_seconds=0.002,
        median_seconds=0.003,
    )
    assert t.bound_seconds == pytest.approx(1e-3)
    assert t.ratio == pytest.approx(2.0)
    assert "2.0x" in t.describe() and "median 3.00 ms" in t.describe()


def test_time_logp_grad_times_the_compiled_model(design) -> None:
    t = time_logp_grad(design, backend="NUMBA", repeats=5, bandwidth=1e10)
    assert t.n_rows == design.n_obs and t.float_dtype == "float64"
    assert 0 < t.seconds <= t.median_seconds
    assert t.bound_seconds == pytest.approx(design_bytes(design) / 1e10)
    # intercept + context sigma/effects + weekday effects + premium slope, all free
    assert t.n_params >= 1 + 1 + 2 + 6 + 1


def test_unknown_backend_is_refused(design) -> None:
    with pytest.raises(SkipmodelError, match="backend 'CUDA' is not available"):
        time_logp_grad(design, backend="CUDA")
