"""The CLI contract: every verb exists, errors are one line with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from skipmodel.cli import VERBS, main


def test_all_contract_verbs_are_declared() -> None:
    # DESIGN.md's contract verbs, plus the ones skipmodel adds (each must be deliberate).
    assert set(VERBS) - {"compact"} == {
        "simulate",
        "ingest",
        "sample",
        "explore",
        "cpdag",
        "fit",
        "predict",
        "evaluate",
        "report",
    }


def test_help_lists_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "ingest" in capsys.readouterr().out


def test_module_entry_point_reports_usage_errors_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "skipmodel", "no-such-verb"], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


def test_option_prefixes_are_not_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's abbreviations would let --stor or --draw 10 run as --store / --draws
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--stor", "s", "--model", "baseline", "--out", "r"])
    assert exc.value.code == 2
    assert "unrecognized argument: --stor (did you mean --store?)" in capsys.readouterr().err


def test_an_unknown_option_is_named_with_the_verbs_usage_and_a_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["fit", "--store", "s", "--model", "baseline", "--out", "r", "--chians", "2"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: skipmodel fit ")  # the verb's usage, not the top level's
    errors = [line for line in err.splitlines() if "error" in line]
    assert errors == [
        "skipmodel fit: error: unrecognized argument: --chians (did you mean --chains?)"
    ]


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"skipmodel {version('skipmodel')}"


def test_stray_arguments_are_refused_with_the_verbs_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--store", "s", "--model", "baseline", "--out", "r", "extra", "-x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: skipmodel fit ")
    assert "skipmodel fit: error: unrecognized arguments: extra -x\n" in err
