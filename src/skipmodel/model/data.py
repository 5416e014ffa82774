"""Reading the plays a model needs from a store, through the loaders."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import SampleSpec, load_pandas
from skipmodel.model.spec import Markov, ModelSpec


def sample_spec_for(
    spec: ModelSpec,
    *,
    fraction: float,
    seed: int,
    split: Literal["train", "test"] | None,
    test_fraction: float = 0.2,
) -> SampleSpec:
    """The loaders' :class:`SampleSpec` for ``spec``: all columns, lag 2 only when used."""
    lag2 = any(isinstance(t, Markov) and t.lag2 for t in spec.terms)
    return SampleSpec(
        fraction=fraction,
        seed=seed,
        split=split,
        test_fraction=test_fraction,
        lags=2 if lag2 else 1,
    )


def load_plays(store: str | Path, sample: SampleSpec) -> pd.DataFrame:
    """The sample as pandas; an empty sample is an error the user can fix."""
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
    return {"store": str(Path(store).resolve()), "sample": spec}


def sample_from_manifest(manifest: dict[str, Any], **changes: Any) -> SampleSpec:
    """Rebuild a run's :class:`SampleSpec`, with some fields changed (e.g. ``split``)."""
    fields = dict(manifest["sample"])
    if fields.get("date_range") is not None:
        fields["date_range"] = tuple(fields["date_range"])
    fields.update(changes)
    return SampleSpec(**fields)
