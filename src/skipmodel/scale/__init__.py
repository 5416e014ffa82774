"""Full-data scale: exact aggregation to covariate cells, streaming minibatch fits, gradient cost.

* :mod:`skipmodel.scale.aggregate` — is a spec exactly aggregable (and why not); the covariate
  cells ``(trials, skips)`` of a store sample in one streaming pass;
* :mod:`skipmodel.scale.binomial` — the same model on cells (Binomial likelihood), fitted with the
  same sampler;
* :mod:`skipmodel.scale.minibatch` — streaming minibatch ADVI for specs that do not aggregate;
* :mod:`skipmodel.scale.gradient` — cost of one logp + gradient against the memory bound.
"""

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
