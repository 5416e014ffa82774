"""The cost of one log-probability + gradient evaluation, against the memory-bandwidth bound.

Every NUTS step and every ADVI step pays one (or many) logp + gradient evaluations over all
observations. Its floor is reading the design's per-row arrays once: ``bytes / bandwidth``, with
the bandwidth measured in the same process (a large NumPy copy: bytes read + bytes written per
second). :func:`time_logp_grad` compiles the model's joint logp and its gradient with a PyTensor
backend (``NUMBA`` — PyMC's default here —, ``C``, ``JAX`` when installed) in float64 or float32,
times it, and reports the ratio to that bound.

Both sides are best-of timings, as :mod:`timeit` recommends: the bandwidth is the fastest of
several copies and the evaluation the fastest of ``repeats`` runs (the median and this thread's
CPU time are reported beside it). On a shared machine a slower run measures the neighbours, not
the code: the same compiled model at 1e6 rows has been timed at a 38.6 ms median in one block and
24.2 ms minutes later.

What is left above the bound (measured on the ``full`` model, bench_scale, 2026-12-03): 3.2-3.9x
in a fresh process (up to 5.1x after other benchmarks in the same one), of which the gathers,
slopes and scatter-adds are nearly everything. The same model with its Bernoulli replaced by an
exp/log-free stand-in costs 0.80-0.91x as much, although Numba calls ``exp`` and ``log`` as
scalar libm functions (the PyPI llvmlite has no SVML to vectorise them). A hand-fused,
vectorised kernel of the whole likelihood and gradient was tried and measured no faster: the
random gathers and scatter-adds remain. float32 saves at most about 10 % (1.83 vs 2.00 ms at
1e5 rows, none at 1e6).

Examples
--------
>>> design = build_design(get_variant("full"), plays)                    # doctest: +SKIP
>>> time_logp_grad(design, backend="NUMBA").ratio                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from skipmodel.errors import SkipmodelError
from skipmodel.model.design import Design

BACKENDS: tuple[str, ...] = ("NUMBA", "C", "JAX")


def available_backends() -> tuple[str, ...]:
    """Backends PyTensor can compile to here (JAX only when it is installed)."""
    return tuple(b for b in BACKENDS if b != "JAX" or importlib.util.find_spec("jax"))


def design_bytes(design: Design) -> int:
    """Bytes of the per-row arrays a logp evaluation reads: codes, values, outcome, trials."""
    total = 0
    for td in design.terms:
        total += sum(a.nbytes for k, a in td.codes.items() if k != "unseen")
        total += sum(a.nbytes for a in td.values.values())
        total += sum(a.nbytes for a in td.tables.values() if a.shape[0] == design.n_obs)
    for extra in (design.outcome, design.trials):
        if extra is not None:
            total += extra.nbytes
    return int(total)


def memory_bandwidth(n_bytes: int = 256 * 2**20, *, repeats: int = 5) -> float:
    """Copy bandwidth in bytes/s (bytes read + bytes written), best of ``repeats``."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype.kind == "f" else a


def as_float32(design: Design) -> Design:
    """The same design with float inputs and tables in float32 (codes and index tables stay
    integers)."""
    terms = tuple(
        dataclasses.replace(
            td,
            values={k: _f32(v) for k, v in td.values.items()},
            tables={k: _f32(v) for k, v in td.tables.items()},
        )
        for td in design.terms
    )
    return dataclasses.replace(design, terms=terms)


@dataclass(frozen=True)
class GradientTiming:
    """One configuration's logp + gradient time against the bandwidth bound."""

    n_rows: int
    backend: str
    float_dtype: str
    seconds: float  # best (smallest) wall time of the timed evaluations
    compile_seconds: float
    design_bytes: int
    bandwidth: float  # bytes/s, best of several copies
    n_params: int
    cpu_seconds: float = float("nan")  # best CPU time of this thread
    median_seconds: float = float("nan")  # median wall time of the same evaluations

    @property
    def bound_seconds(self) -> float:
        return self.design_bytes / self.bandwidth

    @property
    def ratio(self) -> float:
        return self.seconds / self.bound_seconds

    def describe(self) -> str:
        return (
            f"{self.n_rows:,} rows, {self.backend}/{self.float_dtype}: "
            f"{self.seconds * 1e3:.2f} ms per logp+grad, best of the runs (median "
            f"{self.median_seconds * 1e3:.2f} ms, CPU {self.cpu_seconds * 1e3:.2f} ms) "
            f"vs bound {self.bound_seconds * 1e3:.2f} ms "
            f"({self.design_bytes / 2**20:.1f} MiB at {self.bandwidth / 1e9:.1f} GB/s): "
            f"{self.ratio:.1f}x"
        )


def compile_logp_grad(model: Any, *, backend: str = "NUMBA") -> tuple[Any, list[np.ndarray]]:
    """``fn(*values) -> [logp, *grads]`` over the model's value variables, and a start point."""
    import pytensor
    from pytensor.compile.mode import get_mode

    with model:
        logp = model.logp()
        grads = cast(list[Any], pytensor.grad(logp, model.value_vars))
    # "C" runs through the VM linker (C ops, Python fallback for ops without C code, e.g.
    # Gemv when no BLAS is linked); the pure C linker would fail on those.
    mode = get_mode("CVM" if backend == "C" else backend)
    fn = pytensor.function(model.value_vars, [logp, *grads], mode=mode)
    point = model.initial_point()
    return fn, [np.asarray(point[v.name]) for v in model.value_vars]


def time_logp_grad(
    design: Design,
    *,
    backend: str = "NUMBA",
    float32: bool = False,
    repeats: int = 50,
    bandwidth: float | None = None,
) -> GradientTiming:
    """Compile and time one logp + gradient evaluation of ``design``'s model.

    Parameters
    ----------
    design : Design
        Rows (Bernoulli) or cells (Binomial).
    backend : {"NUMBA", "C", "JAX"}
    float32 : bool
        Build with ``floatX = float32`` and float32 inputs.
    repeats : int
        Timed evaluations after one warm-up; the best is the timing, the median is kept too.
    bandwidth : float, optional
        Bytes/s; measured with :func:`memory_bandwidth` if not given.
    """
    import pytensor

    from skipmodel.model.build import build_model

    if backend not in available_backends():
        raise SkipmodelError(
            f"backend {backend!r} is not available here; choose from {available_backends()}"
        )
    floatx = "float32" if float32 else "float64"
    with pytensor.config.change_flags(floatX=floatx):
        d = as_float32(design) if float32 else design
        model = build_model(d)
        start = time.perf_counter()
        fn, values = compile_logp_grad(model, backend=backend)
        values = [v.astype(floatx) if v.dtype.kind == "f" else v for v in values]
        out = fn(*values)
        compile_seconds = time.perf_counter() - start
        if not all(np.all(np.isfinite(o)) for o in out):
            raise SkipmodelError("logp or its gradient is not finite at the initial point")
        times, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            fn(*values)
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
    return GradientTiming(
        n_rows=design.n_obs,
        backend=backend,
        float_dtype=floatx,
        seconds=float(np.min(times)),
        compile_seconds=compile_seconds,
        design_bytes=design_bytes(d),
        bandwidth=bandwidth if bandwidth is not None else memory_bandwidth(),
        n_params=int(sum(v.size for v in values)),
        cpu_seconds=float(np.min(cpu)),
        median_seconds=float(np.median(times)),
    )


__all__ = [
    "BACKENDS",
    "GradientTiming",
    "as_float32",
    "available_backends",
    "compile_logp_grad",
    "design_bytes",
    "memory_bandwidth",
    "time_logp_grad",
]
