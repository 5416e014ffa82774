"""Nested-Laplace inference over streaming passes (``skipmodel fit --method laplace``).

The skip models are latent Gaussian models: given a handful of hyperparameters every effect is
Gaussian a priori, and the likelihood is Bernoulli in a linear predictor. This package fits them
the way R-INLA fits that class, with the data entering only through sums over rows that merge
across buckets:

* :mod:`~skipmodel.scale.laplace.structure` — the design as one latent vector (the dense part,
  and the levels of the largest pool, eliminated level by level) and each row's coordinates;
* :mod:`~skipmodel.scale.laplace.kernel` — one pass's gradient, curvature and per-level
  likelihood curves (compiled);
* :mod:`~skipmodel.scale.laplace.gaussian` — the mode, the Laplace marginal and its adaptive
  Gauss-Hermite correction per level, for any hyperparameters, in memory;
* :mod:`~skipmodel.scale.laplace.hyper` — the hyperparameters' maximum and curvature;
* :mod:`~skipmodel.scale.laplace.fit` — the passes, convergence and the posterior summary;
* :mod:`~skipmodel.scale.laplace.path` — the ``laplace`` method of the one fit entry.

Examples
--------
>>> import skipmodel.scale                                  # registers --method laplace
>>> fit(get_variant("full"), StoreSample("data/store"), method="laplace")  # doctest: +SKIP
"""
