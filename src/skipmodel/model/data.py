"""Reading the plays a model needs from a store, through the loaders.

:class:`StoreSample` is a store's session sample *not yet read*: the data argument of
:func:`skipmodel.model.fitting.fit` for the paths that read a store themselves (the row path
loads it, the cells path aggregates it, the minibatch path streams it), each through the loaders'
:class:`SampleSpec` it needs. A spec whose terms read declared user columns
(``[[columns]]``) finds them in the store when its first ingest kept them
(``skipmodel ingest --column NAME:TYPE``); :func:`check_store_columns` says in one line when
not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import SampleSpec, load_pandas
from skipmodel.model.spec import ModelSpec
from skipmodel.store.layout import open_store
from skipmodel.store.location import location_text, store_path
from skipmodel.store.user_columns import describe, recorded_columns


@dataclass(frozen=True)
class StoreSample:
    """A session sample of a store, read by the fit path that takes it.

    Parameters
    ----------
    store : path
        Store directory (from ``skipmodel ingest``).
    fraction : float
        Share of sessions, chosen by a stable hash of their ids with ``seed``.
    seed : int
        Sample seed (the sampler's is :class:`~skipmodel.model.options.FitOptions`' ``seed``).
    split : {"train", "test"} or None
        Which side of the session split; None reads both.
    test_fraction : float
        Share of sessions in the test split.
    """

    store: Path
    fraction: float = 1.0
    seed: int = 0
    split: Literal["train", "test"] | None = "train"
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", store_path(self.store))

    def rows_sample(self, spec: ModelSpec) -> SampleSpec:
        """The loaders' sample of every column (and the lags ``spec`` reads); the store must
        keep the user columns ``spec`` reads (:func:`check_store_columns`)."""
        check_store_columns(self.store, spec)
        return sample_spec_for(
            spec,
            fraction=self.fraction,
            seed=self.seed,
            split=self.split,
            test_fraction=self.test_fraction,
        )


def sample_spec_for(
    spec: ModelSpec,
    *,
    fraction: float,
    seed: int,
    split: Literal["train", "test"] | None,
    test_fraction: float = 0.2,
) -> SampleSpec:
    """The loaders' :class:`SampleSpec` for ``spec``: all columns, lag 2 only when used."""
    lag2 = f"prev2_{spec.outcome}" in spec.predictor_columns()
    return SampleSpec(
        fraction=fraction,
        seed=seed,
        split=split,
        test_fraction=test_fraction,
        lags=2 if lag2 else 1,
    )


def check_store_columns(store: str | Path, spec: ModelSpec) -> None:
    """A one-line error unless ``store`` keeps every user column ``spec``'s terms read, each
    of the type the spec declares."""
    read = set(spec.predictor_columns())
    wanted = [c for c in spec.columns if c.name in read]
    if not wanted:
        return
    kept = recorded_columns(open_store(store).read_manifest())
    types = {c.name: c.type for c in kept}
    missing = [c for c in wanted if c.name not in types]
    if missing:
        flags = " ".join(f"--column {c.name}:{c.type}" for c in missing)
        raise SkipmodelError(
            f"model {spec.name!r} reads user column(s) {', '.join(c.name for c in missing)} "
            f"that the store {store} does not keep (its user columns: {describe(kept)}); "
            f"re-ingest the logs with {flags} into a new --store"
        )
    for c in wanted:
        if types[c.name] != c.type:
            raise SkipmodelError(
                f"model {spec.name!r} declares user column {c.name!r} {c.type}, but the store "
                f"{store} keeps it as {types[c.name]}; declare type = {types[c.name]!r} in "
                "[[columns]], or re-ingest with the type you mean"
            )


def load_plays(
    store: str | Path, sample: SampleSpec, spec: ModelSpec | None = None
) -> pd.DataFrame:
    """The sample as pandas; an empty sample is an error the user can fix. With ``spec``, the
    store must keep the user columns it reads (:func:`check_store_columns`)."""
    if spec is not None:
        check_store_columns(store, spec)
    frame = load_pandas(store, sample)
    if len(frame) == 0:
        raise SkipmodelError(
            f"the sample of {store} is empty (fraction={sample.fraction}, split={sample.split}); "
            "raise --fraction"
        )
    return frame


def sample_manifest(store: str | Path, sample: SampleSpec) -> dict[str, Any]:
    """JSON-ready record of where the data came from."""
    spec = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(sample).items()
    }
    return {"store": location_text(store), "sample": spec}


def run_sample(manifest: dict[str, Any], spec: ModelSpec, **changes: Any) -> SampleSpec:
    """The sample a run reads from a store: the one it was fitted on (``data.json``), with
    ``changes``; for a run fitted from Python on a frame, the store's whole sessions with the
    columns and lags its spec needs (``fraction`` 1 and seed 0 unless changed)."""
    if "sample" in manifest:
        return sample_from_manifest(manifest, **changes)
    fields = {"fraction": 1.0, "seed": 0, "split": None} | changes
    base = sample_spec_for(
        spec, fraction=float(fields.pop("fraction")), seed=int(fields.pop("seed")),
        split=fields.pop("split"),
    )  # fmt: skip
    return dataclasses.replace(base, **fields) if fields else base


def sample_from_manifest(manifest: dict[str, Any], **changes: Any) -> SampleSpec:
    """Rebuild a run's :class:`SampleSpec`, with some fields changed (e.g. ``split``)."""
    fields = dict(manifest["sample"])
    if fields.get("date_range") is not None:
        fields["date_range"] = tuple(fields["date_range"])
    fields.update(changes)
    return SampleSpec(**fields)
