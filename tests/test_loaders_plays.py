"""``--plays N``: the smallest deterministic sample holding at least N plays."""

from __future__ import annotations

from pathlib import Path

import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.load.budget import fraction_for_plays
from skipmodel.load.loaders import SampleSpec, load_table
from skipmodel.simulate.mssd import simulate


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plays")
    sim = simulate(root / "sim", sessions=300, seed=3, tracks=100, days=2)
    out = root / "store"
    ingest([sim.training_set, sim.track_features], out, n_buckets=6, progress=False)
    return out


@pytest.mark.parametrize(("n", "seed"), [(1, 0), (700, 0), (2_000, 5), (3_001, 1)])
def test_the_sample_holds_at_least_n_plays_and_no_session_more(store, n, seed) -> None:
    fraction, held = fraction_for_plays(store, n, seed=seed)
    table = load_table(store, SampleSpec(fraction=fraction, seed=seed, split="train"))
    assert table.num_rows == held >= n
    # minimal: without the last session taken (at most 20 plays) it would hold fewer than n
    assert held - n < 20
    again = fraction_for_plays(store, n, seed=seed)
    assert again == (fraction, held)  # deterministic


def test_more_plays_than_the_store_takes_it_all(store) -> None:
    fraction, held = fraction_for_plays(store, 10**9)
    assert fraction == 1.0
    assert held == load_table(store, SampleSpec(split="train")).num_rows


def test_a_bad_count_is_one_line(store) -> None:
    with pytest.raises(SkipmodelError, match="--plays must be a positive integer"):
        fraction_for_plays(store, 0)


def test_fit_plays_and_the_cost_check(store, tmp_path, monkeypatch, capsys) -> None:
    from skipmodel.cli import main
    from skipmodel.model import cost

    run = tmp_path / "run"
    base = ["fit", "--store", str(store), "--model", "baseline", "--out", str(run)]
    quick = [*base, "--plays", "700", "--method", "advi", "--draws", "20", "--chains", "1"]
    assert main(quick) == 0
    assert "fraction" in capsys.readouterr().err
    # NUTS estimated above an hour stops before sampling, in one line, naming the ways out
    monkeypatch.setattr(cost, "SECONDS_PER_PLAY_STEP", 1.0)
    assert main([*base, "--plays", "700"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("--plays 700: fraction")
    assert len(err) == 2 and "--accept-cost" in err[1] and "--method laplace" in err[1]
    assert not (tmp_path / "run2").exists()
    assert main([*base, "--plays", "700", "--fraction", "0.5"]) == 2  # one or the other
