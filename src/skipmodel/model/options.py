"""How to fit: one options object for every inference path, and the paths that honour it.

:class:`FitOptions` is the one options object of :func:`skipmodel.model.fitting.fit`, whatever
the path. An option left unset (``None``, or ``False`` for a switch) takes the spec's
``[inference]`` value or the path's default; an option *set* for a path or method that does not
read it is refused with a one-line error (``--chains is not used by --minibatch``), never
ignored. The run records the resolved options: the ones the fit really used, the others unset.

Two choices make a fit:

* the **inference path** (``inference``) — how the data enter the likelihood:

  ========== ========================= ============================================= =========
  path       CLI                       data                                          methods
  ========== ========================= ============================================= =========
  rows       (default)                 plays (DataFrame / Table) or a StoreSample    all
  cells      ``--aggregate``           :class:`~skipmodel.scale.Cells` or a          nuts, advi,
                                       StoreSample (aggregated with ``bins``)        pathfinder
  minibatch  ``--minibatch``           a StoreSample, streamed in passes             advi
  ========== ========================= ============================================= =========

  Unset, the path is the first one accepting the data, the row path tried first (rows for
  plays and store samples, cells for cells). The row path is registered here; the cells and minibatch paths live in the scale
  layer above and register themselves when :mod:`skipmodel.scale` is imported (the model layer
  never imports scale).
* the **method** (``method``) — how the posterior is computed: ``nuts`` (the reference), or a
  quick ``advi`` / ``pathfinder`` approximation. Each method lists the options it reads in
  :data:`METHOD_OPTIONS`; a new method (the next one is ``laplace``) adds its line there, its
  name to :data:`skipmodel.model.spec.METHODS`, and its runner to the paths that offer it.

This module imports no PyMC, so the scale layer can register its paths cheaply.

Examples
--------
>>> FitOptions(chains=2, draws=500)                                   # doctest: +SKIP
>>> fit(spec, plays, chains=2, draws=500)       # the same options    # doctest: +SKIP
>>> fit(spec, StoreSample("data/store", fraction=0.1), inference="minibatch")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from skipmodel.errors import SkipmodelError
from skipmodel.model.spec import METHOD_OPTIONS, Inference, ModelSpec


class UnknownOptionError(SkipmodelError, TypeError):
    """An option name :class:`FitOptions` does not have (also a ``TypeError``, as Python's own
    unexpected keyword argument is)."""


@dataclass(frozen=True)
class FitOptions:
    """Every option of a fit; unset ones take the spec's ``[inference]`` or the path's default.

    Parameters
    ----------
    inference : {"rows", "cells", "minibatch"}, optional
        The inference path (module notes); default: the first path that accepts the data.
    method : {"nuts", "advi", "pathfinder"}, optional
        ``advi`` / ``pathfinder`` give a quick approximate posterior of ``draws`` x ``chains``.
    sampler : {"nutpie", "pymc"}, optional
        NUTS implementation (nutpie compiles with Numba and is usually much faster).
    draws, tune, chains, target_accept : optional
        Sampling options (``tune`` and ``target_accept``: NUTS only).
    adaptation : {"diag", "low_rank"}, optional
        nutpie's mass-matrix adaptation (see :class:`skipmodel.model.spec.Inference`).
    seed : int
        Seeds the sampler or optimiser (every path).
    log_likelihood : bool
        Also store pointwise log-likelihoods (for LOO in reports); row-level fits only.
    bins : mapping of column to int, optional
        Equal-width bins of continuous columns, for cells aggregated from a store sample.
    batch_size, epochs : int, optional
        Minibatch rows (4096) and the most passes over the stream (3).
    full_rank : bool
        Minibatch ADVI with a full-rank instead of a mean-field Gaussian.
    engine, spark_master : str, optional
        Where the store passes of the cells path and of ``laplace`` run: ``"local"`` (this
        process, the default) or ``"spark"`` (one task per bucket on the cluster at
        ``spark_master``; see :mod:`skipmodel.engine`). The numbers do not depend on it.
    """

    inference: str | None = None
    method: str | None = None
    sampler: str | None = None
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None
    target_accept: float | None = None
    adaptation: str | None = None
    seed: int = 0
    log_likelihood: bool = False
    bins: Mapping[str, int] | None = None
    batch_size: int | None = None
    epochs: int | None = None
    full_rank: bool = False
    engine: str | None = None
    spark_master: str | None = None

    def __post_init__(self) -> None:
        if self.bins is not None:  # a plain dict (JSON round trip), and equal whatever its order
            object.__setattr__(self, "bins", {str(k): int(v) for k, v in sorted(self.bins.items())})

    def is_set(self, name: str) -> bool:
        """Whether option ``name`` was given (not left to the spec or the path)."""
        value = getattr(self, name)
        return value is not None and value is not False

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: Options every path and method reads, so never refused.
ALWAYS = frozenset({"inference", "method", "seed"})
#: The options each method reads. A new method (``laplace``) adds its line.
#: The methods that run a PyMC model (the row and cell paths offer these).
SAMPLING_METHODS: tuple[str, ...] = ("nuts", "advi", "pathfinder")
#: The spec's ``[inference]`` fields, the defaults of the options of the same name.
SPEC_OPTIONS = ("method", "sampler", "draws", "tune", "chains", "target_accept", "adaptation")

#: A path's runner: ``(spec, data, resolved options, manifest) -> FitResult``.
Runner = Callable[[ModelSpec, Any, FitOptions, dict[str, Any]], Any]


@dataclass(frozen=True)
class FitPath:
    """One inference path: the data it takes, its methods and the options each method reads.

    ``methods`` maps each method the path runs to the options it reads on this path (a method's
    :data:`METHOD_OPTIONS`, less what the path cannot use, plus the path's own); the first
    method is the path's default when the spec's is not among them. ``defaults`` fills the
    path's own options when unset. ``label`` names the path in messages.
    """

    name: str
    label: str
    accepts: tuple[type, ...]
    methods: Mapping[str, frozenset[str]]
    run: Runner
    defaults: Mapping[str, Any] = field(default_factory=dict)


#: The registered paths by name (the row path registers with the fit entry, the others with
#: :mod:`skipmodel.scale`).
FIT_PATHS: dict[str, FitPath] = {}
#: The path tried first when the options name none: Bernoulli rows, the reference.
DEFAULT_PATH = "rows"


def register_path(path: FitPath) -> None:
    """Add (or replace) an inference path of :func:`skipmodel.model.fitting.fit`."""
    FIT_PATHS[path.name] = path


def flag(name: str) -> str:
    """The CLI flag of option ``name`` (``target_accept`` -> ``--target-accept``)."""
    return "--" + name.replace("_", "-")


def build_options(options: FitOptions | None, keywords: Mapping[str, Any]) -> FitOptions:
    """``options`` (default: all unset) with the keyword arguments' fields replaced.

    Unknown keywords are refused, naming the valid ones: nothing passes through silently.
    """
    valid = sorted(f.name for f in fields(FitOptions))
    unknown = sorted(set(keywords) - set(valid))
    if unknown:
        raise UnknownOptionError(
            f"unknown fit option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; valid options: {', '.join(valid)}"
        )
    return replace(options if options is not None else FitOptions(), **keywords)


def choose_path(data: Any, options: FitOptions, spec_method: str | None = None) -> FitPath:
    """The path ``options.inference`` names (or the first accepting ``data`` that offers the
    method: the options', else the spec's ``spec_method``); data checked."""
    if options.inference is not None:
        path = FIT_PATHS.get(options.inference)
        if path is None:
            hint = (
                "; import skipmodel.scale, which registers it"
                if options.inference in ("cells", "minibatch", "passes")
                else ""
            )
            raise SkipmodelError(
                f"inference: unknown path {options.inference!r}; valid paths: "
                f"{', '.join(repr(p) for p in FIT_PATHS)}{hint}"
            )
    else:
        # the row path first, whatever order the paths registered in; a method given picks the
        # first path offering it
        order = sorted(FIT_PATHS.values(), key=lambda p: p.name != DEFAULT_PATH)
        method = options.method or spec_method
        if method is not None and any(method in p.methods for p in order):
            order = [p for p in order if method in p.methods]
        elif method == "laplace":
            raise SkipmodelError("--method laplace: import skipmodel.scale, which registers it")
        path = next((p for p in order if isinstance(data, p.accepts)), None)
        if path is None:
            raise SkipmodelError(f"cannot fit a {type(data).__name__}: give plays or a StoreSample")
    if not isinstance(data, path.accepts):
        kinds = " or ".join(t.__name__ for t in path.accepts)
        raise SkipmodelError(f"{path.label} fits a {kinds}, not a {type(data).__name__}")
    return path


def resolve_options(spec: ModelSpec, options: FitOptions, path: FitPath) -> FitOptions:
    """The options ``path`` will use: unset ones filled, the ones it does not read unset.

    Raises
    ------
    SkipmodelError
        An option set for a path or method that does not read it, or an invalid value.
    """
    method = options.method
    if method is None:
        method = spec.inference.method if spec.inference.method in path.methods else None
        method = method or next(iter(path.methods))
    elif method not in path.methods:
        if method not in METHOD_OPTIONS:
            valid = ", ".join(repr(m) for m in METHOD_OPTIONS)
            raise SkipmodelError(f"method: invalid value {method!r}; valid choices: {valid}")
        valid = ", ".join(repr(m) for m in path.methods)
        raise SkipmodelError(f"--method {method} is not used by {path.label}; valid: {valid}")
    reads = path.methods[method] | ALWAYS
    for f in fields(FitOptions):
        if options.is_set(f.name) and f.name not in reads:
            used_by_path = any(f.name in opts for opts in path.methods.values())
            by = f"--method {method}" if used_by_path else path.label
            raise SkipmodelError(f"{flag(f.name)} is not used by {by}")
    given = {k: getattr(options, k) for k in SPEC_OPTIONS if options.is_set(k)}
    inf = spec.with_inference(**given).inference  # validates the values
    for name in ("batch_size", "epochs"):
        value = getattr(options, name)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise SkipmodelError(f"{flag(name)}: expected a positive integer, got {value!r}")
    resolved: dict[str, Any] = {"inference": path.name, "method": method, "seed": int(options.seed)}
    for name in reads - ALWAYS:
        value = getattr(options, name)
        if value is None or value is False:
            value = getattr(inf, name, path.defaults.get(name, value))
        resolved[name] = value
    return FitOptions(**resolved)


def spec_as_fitted(spec: ModelSpec, options: FitOptions) -> ModelSpec:
    """``spec`` with its ``[inference]`` showing the resolved options the fit used."""
    used = {k: getattr(options, k) for k in SPEC_OPTIONS if getattr(options, k) is not None}
    method = used.get("method", spec.inference.method)
    # the options the method does not read go back to their defaults (spec.toml omits them)
    default = Inference()
    for k in SPEC_OPTIONS:
        if k != "method" and k not in METHOD_OPTIONS.get(method, frozenset(SPEC_OPTIONS)):
            used[k] = getattr(default, k)
    return spec.with_inference(**used)


__all__ = [
    "FIT_PATHS",
    "METHOD_OPTIONS",
    "SAMPLING_METHODS",
    "FitOptions",
    "FitPath",
    "UnknownOptionError",
    "build_options",
    "choose_path",
    "flag",
    "register_path",
    "resolve_options",
    "spec_as_fitted",
]
