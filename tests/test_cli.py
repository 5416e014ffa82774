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
