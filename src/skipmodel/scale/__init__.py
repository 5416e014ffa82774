"""Full-data scale: exact aggregation to covariate cells, streaming minibatch fits, gradient cost.

* :mod:`skipmodel.scale.aggregate` — is a spec exactly aggregable (and why not); the covariate
  cells ``(trials, skips)`` of a store sample in one streaming pass;
* :mod:`skipmodel.scale.binomial` — the same model on cells (Binomial likelihood), fitted with the
  same sampler;
* :mod:`skipmodel.scale.minibatch` — streaming minibatch ADVI for specs that do not aggregate;
* :mod:`skipmodel.scale.paths` — the cells and minibatch paths of the one fit entry,
  :func:`skipmodel.model.fit`, registered with it when this package is imported;
* :mod:`skipmodel.scale.gradient` — cost of one logp + gradient against the memory bound;
* :mod:`skipmodel.scale.cli` — the scale options of ``skipmodel fit``.

Examples
--------
>>> import skipmodel.scale                                   # registers cells and minibatch
>>> from skipmodel.model import fit
>>> fit(spec, aggregate(store, spec, bins={"danceability": 20}), draws=500)  # doctest: +SKIP
>>> fit(spec, StoreSample(store), inference="minibatch", epochs=2)             # doctest: +SKIP
"""

from skipmodel.scale import paths  # noqa: F401 - registers the cells and minibatch fit paths
from skipmodel.scale.aggregate import (
    Aggregability,
    BinSpec,
    Cells,
    aggregate,
    apply_binning,
    check_aggregable,
    resolve_binning,
)

__all__ = [
    "Aggregability",
    "BinSpec",
    "Cells",
    "aggregate",
    "apply_binning",
    "check_aggregable",
    "resolve_binning",
]
