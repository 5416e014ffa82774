"""ModelSpec, TOML and the design builder: no PyMC model is compiled here."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.model.bases import small_pool_scale
from skipmodel.model.design import (
    OTHER,
    UNSEEN,
    Encoders,
    build_design,
    expquad_sqrt_psd,
    hsgp_basis,
    hsgp_box,
    hsgp_sqrt_eigenvalues,
    information_ratio,
    pooled_parametrization,
    random_walk_basis,
    smooth_modes,
    walk_parametrization,
)
from skipmodel.model.spec import (
    VARIANTS,
    Fixed,
    Interaction,
    Markov,
    ModelSpec,
    Pooled,
    Priors,
    Seasonal,
    Smooth,
    get_variant,
    resolve_model,
)
from skipmodel.simulate.plays import toy_plays
from skipmodel.store.schema import OUTCOME_COLUMNS

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def plays() -> pd.DataFrame:
    return toy_plays(40, n_tracks=60, seed=3)


# --- variants and TOML ------------------------------------------------------------------------


def test_models_dir_ships_the_required_variants() -> None:
    names = {p.stem for p in MODELS.glob("*.toml")}
    assert {"baseline", "seasonal", "markov", "smooth", "full"} <= names


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.stem)
def test_toml_file_equals_registered_variant(path: Path) -> None:
    assert ModelSpec.load(path) == get_variant(path.stem)
    assert resolve_model(path) == resolve_model(path.stem)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_to_toml_round_trips(name: str) -> None:
    spec = get_variant(name)
    assert ModelSpec.from_toml(spec.to_toml()) == spec


def test_unknown_variant_lists_valid_names() -> None:
    with pytest.raises(SkipmodelError, match=r"unknown model 'ful'.*'baseline'.*'full'"):
        get_variant("ful")


@pytest.mark.parametrize(
    ("toml", "pattern"),
    [
        ('nme = "x"', r"unknown key 'nme'; valid keys: .*'name'"),
        ('outcome = "skip_4"', r"invalid value 'skip_4'; valid choices: 'skip_1', 'skip_2'"),
        (
            '[[terms]]\nkind = "seasnal"',
            r"invalid or missing kind 'seasnal'; valid kinds: 'seasonal'",
        ),
        ('[[terms]]\nkind = "seasonal"\nhours = "x"', r"unknown key 'hours'; valid keys: .*'hour'"),
        (
            '[[terms]]\nkind = "seasonal"\nhour = "linear"',
            r"hour: invalid value 'linear'.*'cyclic_rw', 'periodic_gp'",
        ),
        (
            '[[terms]]\nkind = "smooth"\ncolumn = "duraton"',
            r"unknown column 'duraton' \(did you mean 'duration'",
        ),
        (
            '[[terms]]\nkind = "pooled"\ncolumn = "track_id_clean"\nmin_count = 0',
            r"min_count: expected a positive integer",
        ),
        (
            '[[terms]]\nkind = "fixed"\ncolumns = ["premium"]\nlog = ["tempo"]',
            r"log: 'tempo' is not in columns; valid choices: 'premium'",
        ),
        (
            '[[terms]]\nkind = "markov"\nfeatures = ["track_id_clean"]',
            r"not a numeric track feature; valid choices: 'duration'",
        ),
        (
            "[priors]\nslope_sigma = 1.0",
            r"\[priors\]: unknown key 'slope_sigma'; valid keys: .*'effect_sigma'",
        ),
        (
            '[inference]\nsampler = "stan"',
            r"sampler: invalid value 'stan'; valid choices: 'nutpie', 'pymc'",
        ),
        ("[inference]\ntarget_accept = 1.2", r"target_accept: expected a number in \[0.5, 1\)"),
        (
            '[inference]\nadaptation = "dense"',
            r"adaptation: invalid value 'dense'; valid choices: 'diag', 'low_rank'",
        ),
        (
            '[inference]\nadaptation = "low_rank"\nsampler = "pymc"',
            r"adaptation: 'low_rank' needs sampler 'nutpie'",
        ),
    ],
)
def test_toml_validation_names_the_bad_item_and_the_choices(toml: str, pattern: str) -> None:
    with pytest.raises(SkipmodelError, match=pattern):
        ModelSpec.from_toml(toml, source="bad.toml")


def test_markov_current_effect_cannot_duplicate_a_fixed_one() -> None:
    with pytest.raises(SkipmodelError, match="set current = false"):
        ModelSpec(terms=(Markov(features=("energy",)), Fixed(columns=("energy",))))
    ModelSpec(terms=(Markov(features=("energy",), current=False), Fixed(columns=("energy",))))


def test_spec_and_design_do_not_import_pymc() -> None:
    code = (
        "import sys, skipmodel.model.spec, skipmodel.model.design; sys.exit('pymc' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- leakage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("column", OUTCOME_COLUMNS)
def test_design_refuses_outcome_columns_as_predictors(plays, column) -> None:
    frame = plays.assign(hist_user_behavior_n_seekfwd=0, hist_user_behavior_n_seekback=0)
    for term in (Fixed(columns=(column,)), Pooled(column=column), Smooth(column=column)):
        spec = ModelSpec(terms=(term,))
        with pytest.raises(SkipmodelError, match=rf"'{column}' is an outcome of the play"):
            build_design(spec, frame)


def test_lagged_outcomes_are_allowed(plays) -> None:
    spec = ModelSpec(
        terms=(Fixed(columns=("prev_skip_1", "prev_hist_user_behavior_reason_end")), Markov())
    )
    design = build_design(spec, plays)
    fixed = design.term("fixed")
    assert fixed.coords["prev_hist_user_behavior_reason_end"] == (
        "__missing__",
        "fwdbtn",
        "trackdone",
    )


# --- design arrays ----------------------------------------------------------------------------


def test_design_is_integer_codes_and_standardised_floats(plays) -> None:
    design = build_design(get_variant("full"), plays)
    for td in design.terms:
        for key, codes in td.codes.items():
            assert codes.dtype == np.int32, (td.name, key)
            assert codes.shape == (len(plays),)
        for key, values in td.values.items():
            assert values.dtype == np.float64
            assert values.shape[0] == len(plays)
            assert values.ndim == 1 or values.shape[1] <= 8, f"{td.name}.{key} looks one-hot"
    slopes = design.term("markov").values["current"]
    np.testing.assert_allclose(slopes.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(slopes.std(axis=0), 1, atol=1e-12)
    assert design.coords["weekday"] == ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    assert design.coords["hour"] == tuple(range(24))
    assert design.coords["prev_skip_2"] == ("no_previous", "false", "true")
    np.testing.assert_array_equal(design.outcome, plays["skip_2"].to_numpy())


def test_markov_codes_give_first_plays_their_own_level(plays) -> None:
    design = build_design(ModelSpec(terms=(Markov(lag2=True),)), plays)
    codes = design.term("markov").codes
    first = plays["session_position"].to_numpy() == 1
    assert (codes["prev"][first] == 0).all() and (codes["prev"][~first] > 0).all()
    expected = np.where(plays["prev_skip_2"].fillna(False).to_numpy(dtype=bool), 2, 1)
    np.testing.assert_array_equal(codes["prev"][~first], expected[~first])
    second = plays["session_position"].to_numpy() == 2
    assert (codes["prev2"][first | second] == 0).all()


def test_rare_levels_pool_into_other_and_unseen_levels_get_minus_one(plays) -> None:
    spec = ModelSpec(terms=(Pooled(column="track_id_clean", min_count=8),))
    design = build_design(spec, plays)
    counts = plays["track_id_clean"].value_counts()
    levels = design.coords["track"]
    assert levels[-1] == OTHER
    assert set(levels[:-1]) == set(counts[counts >= 8].index)
    rare = counts[counts < 8].index[0]
    codes = design.term("pooled_track").codes["level"]
    assert (codes[(plays["track_id_clean"] == rare).to_numpy()] == len(levels) - 1).all()

    new = plays.head(5).copy()
    new["track_id_clean"] = ["t_new_a", "t_new_b", "t_new_a", rare, counts.index[0]]
    again = build_design(spec, new, encoders=design.encoders, require_outcome=False)
    td = again.term("pooled_track")
    np.testing.assert_array_equal(
        td.codes["level"], [UNSEEN, UNSEEN, UNSEEN, len(levels) - 1, levels.index(counts.index[0])]
    )
    np.testing.assert_array_equal(td.codes["unseen"][:3], [0, 1, 0])


def test_encoders_round_trip_through_json_and_reproduce_the_design(plays) -> None:
    spec = get_variant("full")
    fitted = build_design(spec, plays)
    import json

    enc = Encoders.from_json(json.loads(json.dumps(fitted.encoders.to_json())))
    again = build_design(spec, plays, encoders=enc)
    for a, b in zip(fitted.terms, again.terms, strict=True):
        for key in a.codes:
            np.testing.assert_array_equal(a.codes[key], b.codes[key])
        for key in a.values:
            np.testing.assert_allclose(a.values[key], b.values[key])
        for key in a.tables:
            np.testing.assert_allclose(a.tables[key], b.tables[key])
    assert fitted.coords == again.coords


def test_missing_column_names_it(plays) -> None:
    with pytest.raises(SkipmodelError, match=r"lack column\(s\) \['energy'\]"):
        build_design(ModelSpec(terms=(Markov(features=("energy",)),)), plays.drop(columns="energy"))


# --- smooth bases -----------------------------------------------------------------------------


def _corr(basis: np.ndarray) -> np.ndarray:
    cov = basis @ basis.T
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


def test_cyclic_hour_basis_makes_23_and_0_neighbours() -> None:
    corr = _corr(random_walk_basis(24, cyclic=True))
    assert corr[23, 0] == pytest.approx(corr[0, 1], abs=1e-12)
    assert corr[23, 0] == pytest.approx(corr[11, 12], abs=1e-12)
    assert corr[23, 0] > 0.5 > corr[0, 12]
    path = _corr(random_walk_basis(24, cyclic=False))
    assert path[23, 0] < 0 < path[0, 1], "the non-cyclic walk must not join the ends"


@pytest.mark.parametrize("cyclic", [True, False])
def test_random_walk_basis_is_sum_to_zero_with_unit_average_variance(cyclic: bool) -> None:
    basis = random_walk_basis(20, cyclic=cyclic)
    np.testing.assert_allclose(basis.sum(axis=0), 0, atol=1e-10)
    assert (basis**2).sum(axis=1).mean() == pytest.approx(1.0)


def test_hsgp_box_matches_pymc_heuristic() -> None:
    from pymc.gp.hsgp_approx import approx_hsgp_hyperparams

    priors = Priors(lengthscale_lower=1.0, lengthscale_upper=3.0)
    m, c, _ = hsgp_box(-2.0, 3.0, priors, m=None, c=None)
    m_pymc, c_pymc = approx_hsgp_hyperparams([-2.0, 3.0], [1.0, 3.0], "expquad")
    assert m == m_pymc
    assert c == pytest.approx(c_pymc)
    assert hsgp_box(-2.0, 3.0, priors, m=12, c=2.5)[:2] == (12, 2.5)


def test_smooth_basis_is_centred_on_the_data_and_clamps_new_values(plays) -> None:
    spec = ModelSpec(terms=(Smooth(column="duration", log=True),))
    design = build_design(spec, plays)
    td = design.term("smooth_duration")
    per_row = td.tables["basis"][td.codes["value"]]
    np.testing.assert_allclose(per_row.mean(axis=0), 0, atol=1e-10)
    new = plays.head(2).assign(duration=[1e9, plays["duration"].max()])
    again = build_design(spec, new, encoders=design.encoders, require_outcome=False)
    t2 = again.term("smooth_duration")
    rows = t2.tables["basis"][t2.codes["value"]]
    np.testing.assert_allclose(rows[0], rows[1])


def _hsgp_scaled(n: int = 200, m: int = 10, ls: float = 1.0) -> np.ndarray:
    x = np.linspace(-2, 2, n)
    basis = hsgp_basis(x, center=0.0, half_width=3.0, m=m)
    return basis * expquad_sqrt_psd(ls, 1.0, hsgp_sqrt_eigenvalues(3.0, m))


def test_smooth_modes_decorrelate_the_data_without_changing_the_prior() -> None:
    basis = _hsgp_scaled()
    plays = np.random.default_rng(0).integers(0, 500, basis.shape[0])
    rotation, centered = smooth_modes(basis, plays, 0.4, 0.3)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(basis.shape[1]), atol=1e-10)
    # the prior covariance of the smooth, amplitude^2 B B', is the same in the new modes
    rotated = basis @ rotation
    np.testing.assert_allclose(rotated @ rotated.T, basis @ basis.T, atol=1e-10)
    # the data inform the new modes independently, most informed first
    weights = plays * 0.4 * 0.6 * (0.3 / 2) ** 2
    info = rotated.T @ (rotated * weights[:, None])
    np.testing.assert_allclose(info - np.diag(np.diag(info)), 0, atol=1e-8 * info.max())
    assert (np.diff(np.diag(info)) <= 1e-9).all()
    # the original modes were far from independent (low frequencies are nearly collinear)
    raw = basis.T @ (basis * weights[:, None])
    corr = raw / np.sqrt(np.outer(np.diag(raw), np.diag(raw)))
    assert np.abs(corr - np.eye(len(corr))).max() > 0.5
    assert centered == [int(j) for j in np.flatnonzero(np.diag(info) >= 4.0)]
    assert 0 < len(centered) < basis.shape[1]
    assert smooth_modes(basis, plays // 500, 0.4, 0.3)[1] == []  # thin data: all non-centred


def test_fixed_lengthscale_smooth_sizes_its_box_for_that_lengthscale(plays) -> None:
    priors = Priors()
    auto = build_design(ModelSpec(terms=(Smooth(column="duration"),)), plays)
    box = auto.encoders.settings["smooth_duration"]
    assert box["lengthscale"] == pytest.approx(np.sqrt(0.5 * 4.0))
    half = (box["hi"] - box["lo"]) / 2
    assert (box["m"], box["c"]) == hsgp_box(
        box["lo"], box["hi"], priors, m=None, c=None, lengthscale=box["lengthscale"]
    )[:2]
    assert box["c"] == pytest.approx(max(3.2 * box["lengthscale"] / half, 1.2))
    td = auto.term("smooth_duration")
    assert "duration_basis" not in td.coords
    n_modes = len(td.coords.get("duration_mode_centered", ())) + len(
        td.coords.get("duration_mode_noncentered", ())
    )
    assert n_modes == box["m"] == td.tables["basis"].shape[1]
    free = build_design(ModelSpec(terms=(Smooth(column="duration", lengthscale="free"),)), plays)
    assert "lengthscale" not in free.encoders.settings["smooth_duration"]
    assert "duration_basis" in free.term("smooth_duration").coords
    # a run fitted before fixed lengthscales (no "lengthscale" in its box) keeps the free form
    old = auto.encoders
    for key in ("lengthscale", "rotation", "centered"):
        del old.settings["smooth_duration"][key]
    again = build_design(ModelSpec(terms=(Smooth(column="duration"),)), plays, encoders=old)
    assert "duration_basis" in again.term("smooth_duration").coords


@pytest.mark.parametrize("value", ["fixed", -1.0, 0, True])
def test_smooth_lengthscale_must_be_auto_free_or_positive(value) -> None:
    with pytest.raises(SkipmodelError, match="lengthscale"):
        ModelSpec(terms=(Smooth(column="duration", lengthscale=value),)).validate()


def test_pooled_parametrisation_by_information_per_level() -> None:
    # information ratio = plays * p (1 - p) * (group_sigma / 2)^2; centred from 4 up
    counts = np.array([3, 10, 300, 2000] * 20)  # many levels: each level decides for itself
    assert information_ratio(counts, 0.5, 0.5)[2] == pytest.approx(300 * 0.25 * 0.0625)
    mixed = pooled_parametrization("auto", counts, 0.5, 0.5)
    assert mixed["p"] == "mixed" and mixed["centered"][:4] == [2, 3, 6, 7]
    assert pooled_parametrization("auto", counts[counts < 100], 0.5, 0.5)["p"] == "noncentered"
    assert pooled_parametrization("auto", counts[counts > 100], 0.5, 0.5)["p"] == "centered"
    assert pooled_parametrization("noncentered", counts, 0.5, 0.5)["centered"] == []
    assert pooled_parametrization("centered", counts[:4], 0.5, 0.5)["centered"] == [0, 1, 2, 3]
    # a rarer outcome carries less information per play
    assert pooled_parametrization("auto", counts, 0.1, 0.5)["centered"][:2] == [3, 7]
    # few levels are never mixed (the pool stays zero-sum): the median level decides
    assert pooled_parametrization("auto", counts[:4], 0.5, 0.5)["p"] == "noncentered"
    assert pooled_parametrization("auto", np.array([10, 300, 2000]), 0.5, 0.5)["p"] == "centered"


def test_walk_modes_centred_by_information() -> None:
    basis = random_walk_basis(20, cyclic=False)
    few, many = np.full(20, 10), np.full(20, 100_000)
    assert walk_parametrization("auto", few, basis, 0.5, 0.3) == []
    assert walk_parametrization("auto", many, basis, 0.5, 0.3) == list(range(19))
    some = walk_parametrization("auto", np.full(20, 500), basis, 0.5, 0.3)
    assert some == list(range(len(some))) and 0 < len(some) < 19  # the smoothest modes first
    assert walk_parametrization("centered", few, basis, 0.5, 0.3) == list(range(19))
    assert walk_parametrization("noncentered", many, basis, 0.5, 0.3) == []


def test_auto_parametrisation_depends_on_plays_per_level(plays) -> None:
    spec = ModelSpec(terms=(Pooled(column="premium"), Seasonal()))
    design = build_design(spec, plays.head(120))  # ~60 plays per level: thin
    assert design.term("pooled_premium").settings["parametrization"] == "noncentered"
    big = pd.concat([plays] * 40, ignore_index=True)
    # premium has no effect in the toy data: its two levels spread no more than sampling noise,
    # so the pool's sd may be ~0 and the pool stays non-centred however many plays it has
    assert build_design(spec, big).term("pooled_premium").settings["parametrization"] == (
        "noncentered"
    )
    # shuffle has one (0.3): many plays per level pin it, centred
    shuffle = replace(spec, terms=(Pooled(column="hist_user_behavior_is_shuffle"),))
    setting = build_design(shuffle, big).term("pooled_hist_user_behavior_is_shuffle").settings
    assert setting["parametrization"] == "centered"
    forced = replace(spec, terms=(Pooled(column="premium", parametrization="noncentered"),))
    assert (
        build_design(forced, big).term("pooled_premium").settings["parametrization"]
        == "noncentered"
    )


@pytest.mark.parametrize("dtype", ["str", "category", "object"])
def test_level_codes_are_the_same_from_arrow_text_categoricals_and_objects(dtype) -> None:
    from skipmodel.model.encoders import MISSING, OTHER, LevelMap, as_text

    levels = LevelMap("x", ("a", "b", MISSING, OTHER), ("r",))
    values = pd.Series(["a", None, "r", "zz", "b", "a"], dtype=dtype)
    expected = np.array([0, 2, 3, -1, 1, 0])
    np.testing.assert_array_equal(levels.encode(values), expected)
    np.testing.assert_array_equal(levels._encode_text(as_text(values)), expected)
    # Text that reads as booleans is lower-cased, whatever the column's type.
    flags = LevelMap("y", ("false", "true", MISSING))
    np.testing.assert_array_equal(
        flags.encode(pd.Series(["True", "False", None], dtype=dtype)), [1, 0, 2]
    )


# --- types before values (issue 17) -----------------------------------------------------------

FIXED = '[[terms]]\nkind = "fixed"\n'
SMOOTH = '[[terms]]\nkind = "smooth"\ncolumn = "duration"\n'
POOLED = '[[terms]]\nkind = "pooled"\ncolumn = "track_id_clean"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            FIXED + 'columns = ["premium"]\ncategorical = true',
            "terms[0] (fixed).categorical: expected an array of strings, got true",
        ),
        (
            FIXED + 'columns = "danceability"',
            'terms[0] (fixed).columns: expected an array of strings, got "danceability" '
            '(a list of one is written ["danceability"])',
        ),
        (
            FIXED + 'columns = ["danceability"]\nlog = "danceability"',
            'terms[0] (fixed).log: expected an array of strings, got "danceability" '
            '(a list of one is written ["danceability"])',
        ),
        (
            FIXED + "columns = [1, 2]",
            "terms[0] (fixed).columns: expected an array of strings, got [1, 2]",
        ),
        (
            '[[terms]]\nkind = "markov"\nfeatures = "energy"',
            'terms[0] (markov).features: expected an array of strings, got "energy" '
            '(a list of one is written ["energy"])',
        ),
        (
            '[[terms]]\nkind = "markov"\nlag2 = "yes"',
            'terms[0] (markov).lag2: expected true or false, got "yes"',
        ),
        (
            '[[terms]]\nkind = "seasonal"\nhour = 3',
            "terms[0] (seasonal).hour: expected one of 'cyclic_rw', 'periodic_gp', 'none', got 3",
        ),
        (
            '[[terms]]\nkind = "seasonal"\nhour_harmonics = 2.5',
            "terms[0] (seasonal).hour_harmonics: expected an integer, got 2.5",
        ),
        (
            '[[terms]]\nkind = "smooth"\ncolumn = ["duration"]',
            'terms[0] (smooth).column: expected a string, got ["duration"]',
        ),
        (SMOOTH + 'm = "ten"', 'terms[0] (smooth).m: expected an integer, got "ten"'),
        (SMOOTH + "c = false", "terms[0] (smooth).c: expected a number, got false"),
        (
            SMOOTH + "lengthscale = true",
            "terms[0] (smooth).lengthscale: expected a number or a string, got true",
        ),
        (POOLED + "min_count = true", "terms[0] (pooled).min_count: expected an integer, got true"),
        (
            POOLED + 'slopes = "duration"',
            'terms[0] (pooled).slopes: expected an array of strings, got "duration" '
            '(a list of one is written ["duration"])',
        ),
        (
            POOLED + "parametrization = [1]",
            "terms[0] (pooled).parametrization: expected one of 'auto', 'centered', 'noncentered', got [1]",
        ),
        (
            '[[terms]]\nkind = "interaction"\ncolumns = "premium"',
            'terms[0] (interaction).columns: expected an array of strings, got "premium" (a list of one is written ["premium"])',
        ),
        ('[priors]\ngroup_sigma = "wide"', 'priors.group_sigma: expected a number, got "wide"'),
        ("[priors]\neffect_sigma = true", "priors.effect_sigma: expected a number, got true"),
        (
            '[inference]\ntarget_accept = "high"',
            'inference.target_accept: expected a number, got "high"',
        ),
        ("[inference]\ndraws = 10.5", "inference.draws: expected an integer, got 10.5"),
        ("[inference]\nsampler = 1", "inference.sampler: expected one of 'nutpie', 'pymc', got 1"),
        (
            "[inference]\nadaptation = false",
            "inference.adaptation: expected one of 'diag', 'low_rank', got false",
        ),
        ("name = 3", "name: expected a string, got 3"),
        ('outcome = ["skip_2"]', 'outcome: expected a string, got ["skip_2"]'),
    ],
)
def test_toml_types_are_checked_before_values(toml: str, message: str) -> None:
    with pytest.raises(SkipmodelError) as caught:
        ModelSpec.from_toml(toml, source="bad.toml")
    assert str(caught.value) == f"bad.toml: {message}"


def test_python_spec_types_are_checked_too() -> None:
    with pytest.raises(
        SkipmodelError, match=r"columns: expected an array of strings, got \"premium\""
    ):
        ModelSpec(terms=(Fixed(columns="premium"),))  # type: ignore[arg-type]
    with pytest.raises(SkipmodelError, match=r"priors.group_sigma: expected a number, got \"1\""):
        ModelSpec(priors=Priors(group_sigma="1"))  # type: ignore[arg-type]


def test_fit_reports_a_mistyped_spec_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from skipmodel.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text(FIXED + 'columns = ["premium"]\ncategorical = true\n')
    code = main(
        ["fit", "--store", str(tmp_path), "--model", str(bad), "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "categorical: expected an array of strings, got true" in err and "internal" not in err


def test_python_lists_are_tuples_so_the_spec_is_hashable_and_round_trips() -> None:
    spec = ModelSpec(
        terms=[  # type: ignore[arg-type]
            Fixed(columns=["premium", "key"], categorical=["key"]),  # type: ignore[arg-type]
            Markov(features=["energy"]),  # type: ignore[arg-type]
            Interaction(columns=["context_type", "premium"]),  # type: ignore[arg-type]
        ]
    )
    assert isinstance(spec.terms, tuple)
    assert spec.terms[0] == Fixed(columns=("premium", "key"), categorical=("key",))
    assert spec == ModelSpec.from_toml(spec.to_toml())
    assert hash(spec) == hash(ModelSpec.from_toml(spec.to_toml()))
    assert len({spec, ModelSpec.from_toml(spec.to_toml())}) == 1


def test_small_pool_is_centred_only_when_its_levels_spread_beyond_sampling_noise() -> None:
    # (a spread of 0.1 below is about each level's own sampling sd: the estimate is ~0)
    # the 6-level context_type pool of the SBC design: ~370 plays per level at a skip rate of 0.5
    # is informative at the prior's typical scale (ratio 5.8 >= 4), so the median rule centred it,
    # also when the levels' effects are tiny and the pool's sd reaches down to 0 (a funnel)
    counts = np.array([350, 360, 370, 380, 390, 400])
    assert pooled_parametrization("auto", counts, 0.5, 0.5)["p"] == "centered"  # no outcomes
    flat = np.round(counts * 0.5)  # every level at the same rate: no spread beyond sampling
    assert small_pool_scale(counts, flat) == 0.0
    assert pooled_parametrization("auto", counts, 0.5, 0.5, skips=flat)["p"] == "noncentered"
    # a spread of 0.1 on the logit scale is within the levels' sampling noise (sd ~0.1 each)
    small = counts / (1 + np.exp(-0.1 * np.array([-1, 1, -1, 1, -1, 1])))
    assert pooled_parametrization("auto", counts, 0.5, 0.5, skips=small)["p"] == "noncentered"
    # context effects of sd ~0.6 pinned by thousands of plays per level: centred
    big = np.array([3000, 4000, 5000, 6000, 7000, 8000])
    rates = 1 / (1 + np.exp(-np.array([-0.8, -0.3, 0.0, 0.3, 0.6, 0.9])))
    assert small_pool_scale(big, big * rates) == pytest.approx(0.62, abs=0.05)
    assert pooled_parametrization("auto", big, 0.5, 0.5, skips=big * rates)["p"] == "centered"
    # the full model's context_type on 25 k default simulated plays (true sd ~0.22; two levels of
    # ~400 plays): centred, as before (non-centred it mixed badly: R-hat 1.09, ESS 38)
    ctx = np.array([6800, 400, 6300, 450, 4000, 7400])
    ctx_rates = 1 / (1 + np.exp(-np.array([0.05, 0.15, 0.30, 0.0, -0.15, -0.35])))
    assert pooled_parametrization("auto", ctx, 0.53, 0.5, skips=ctx * ctx_rates)["p"] == "centered"
    # many levels are judged level by level at the prior's scale, outcomes or not
    many = np.array([3, 10, 300, 2000] * 20)
    with_skips = pooled_parametrization("auto", many, 0.5, 0.5, skips=many * 0.5)
    assert with_skips == pooled_parametrization("auto", many, 0.5, 0.5)


def test_a_specs_toml_shows_only_the_inference_options_its_method_reads() -> None:
    """A Laplace spec shows no chains or tune (unless set), and reads back equal."""
    from skipmodel.model.spec import ModelSpec, get_variant

    laplace = get_variant("markov").with_inference(method="laplace", draws=300)
    text = laplace.to_toml()
    inference = text.split("[inference]")[1].split("\n[")[0]
    assert "draws = 300" in inference and "chains" not in inference and "tune" not in inference
    assert ModelSpec.from_toml(text) == laplace
    odd = laplace.with_inference(chains=2)  # set by hand: kept, so the round trip holds
    assert "chains = 2" in odd.to_toml() and ModelSpec.from_toml(odd.to_toml()) == odd
    nuts = get_variant("markov").to_toml().split("[inference]")[1]
    assert "chains = 4" in nuts and "tune = 1000" in nuts


def test_a_runs_spec_resets_what_its_method_did_not_use() -> None:
    from skipmodel.model.options import FitOptions, spec_as_fitted
    from skipmodel.model.spec import get_variant

    spec = get_variant("markov").with_inference(chains=2, tune=500)
    fitted = spec_as_fitted(spec, FitOptions(method="laplace", draws=200))
    assert fitted.inference.method == "laplace" and fitted.inference.draws == 200
    assert "chains" not in fitted.to_toml() and "tune" not in fitted.to_toml()
