"""The report on a run with a session term: its scale beside the Markov contrasts, and no
PSIS-LOO (held-out sessions compare it instead)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from report_fakes import fake_posterior
from skipmodel.report.compare import NO_LOO_SESSION, has_session_term
from skipmodel.report.effects import memory_effects
from skipmodel.report.heldout import comparison_section


def _with_session(dt: xr.DataTree, sigma: float) -> xr.DataTree:
    post = dt["posterior"].to_dataset()
    rng = np.random.default_rng(1)
    shape = (post.sizes["chain"], post.sizes["draw"])
    post["session_sigma"] = (("chain", "draw"), np.abs(sigma + rng.normal(0, 0.03, shape)))
    out = dt.copy()
    out["posterior"] = xr.DataTree(post)
    return out


def test_the_memory_effects_set_the_session_scale_beside_the_markov_contrast() -> None:
    plain = fake_posterior()
    assert memory_effects(plain) is None and not has_session_term(plain)
    moody = _with_session(plain, 0.8)
    assert has_session_term(moody)
    memory = memory_effects(moody)
    assert memory is not None
    assert memory.labels == ("session sd (mood)", "previous skip: yes - no")
    assert all(len(label) <= 28 for label in memory.labels)  # the forest shows 28 characters
    means = memory.probability.mean(axis=0)
    assert abs(means[0] - 0.8) < 0.02
    assert abs(means[1] - (0.8 - (-0.5))) < 0.05  # the fake's true - false contrast


def test_a_session_run_is_compared_by_held_out_sessions_not_loo(tmp_path) -> None:
    (tmp_path / "figures").mkdir()
    section, metrics = comparison_section({}, tmp_path, {"moody": NO_LOO_SESSION})
    assert section is not None and metrics == {}
    text = " ".join(getattr(b, "text", "") for b in section.blocks)
    assert "no PSIS-LOO" in text and "held-out sessions" in text
