"""The whole report from fake runs: builds, flags a bad run at the top, renders in Chromium."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from report_browser import probe
from report_fakes import fake_run
from skipmodel.errors import SkipmodelError
from skipmodel.report.report import ReportOptions, report
from test_report_html import check_self_contained

FAST = ReportOptions(ppc_draws=50, max_trace_vars=4, max_rank_panels=4)


@pytest.fixture(scope="module")
def two_run_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    result = report([fake_run("good"), fake_run("stuck", seed=1, bad=True)], out, options=FAST)
    assert result.trusted == {"good": True, "stuck": False}
    return result.index


def test_bad_run_still_builds_and_says_so_first(two_run_report: Path) -> None:
    text = two_run_report.read_text()
    first_banner = text.index('class="banner')
    assert text.index("stuck: Do not trust this fit yet") < text.index('<nav class="toc"')
    assert "good: Diagnostics passed" in text[first_banner : text.index('<nav class="toc"')]
    assert (
        "R-hat (&lt;= 1.01; pools of 100+ levels: 99.9 % &lt;= 1.01, all &lt;= 1.02): FAILED"
        in text
    )
    assert "intercept" in text


def test_report_sections_and_metrics(two_run_report: Path) -> None:
    text = two_run_report.read_text()
    assert text.index(">Summary</h2>") < text.index(">good: overview</h2>")
    for heading in (
        "good: diagnostics",
        "good: effects",
        "good: posterior predictive checks",
        "Held-out evaluation",
        "Model comparison",
        "Memory in chains",
        "hour effect",
        "Most and least skipped tracks",
    ):
        assert f">{heading}</h" in text, heading
    metrics = json.loads((two_run_report.parent / "metrics.json").read_text())
    rows = metrics["heldout"]["rows"]
    assert {"good", "stuck", "overall rate", "per-track rate", "repeat last skip"} <= set(rows)
    assert rows["overall rate"]["auc"] == 0.5
    seq = metrics["heldout"]["second_half"]
    assert 0 < seq["good"]["mean_average_accuracy"] <= 1
    assert set(metrics["loo"]) == {"good", "stuck"}
    assert (two_run_report.parent / "summary_good.csv").is_file()
    assert "training plays from" in text and "held-out plays from" in text


def test_report_is_self_contained_and_renders(two_run_report: Path) -> None:
    links = check_self_contained(two_run_report)
    assert len(links.srcs) >= 15
    result = probe(two_run_report, width=1280)
    assert result["broken"] == 0, result
    assert result["images"] == len(links.srcs)
    assert result["overflow"] is False, result
    narrow = probe(two_run_report, width=800)
    assert narrow["overflow"] is False, narrow


def test_report_refuses_duplicate_names(tmp_path: Path) -> None:
    run = fake_run("same")
    with pytest.raises(SkipmodelError, match="distinct"):
        report([run, run], tmp_path)
    with pytest.raises(SkipmodelError, match="no runs"):
        report([], tmp_path)


def test_single_chain_approximate_posterior_without_data(tmp_path: Path) -> None:
    from report_fakes import fake_posterior
    from skipmodel.report.inputs import RunInputs

    run = RunInputs("advi", fake_posterior(chains=1, draws=200), method="advi")
    result = report([run], tmp_path, options=FAST)
    text = result.index.read_text()
    assert result.trusted == {"advi": False}
    assert "Approximate fit (advi" in text
    assert ">Rank plots</h3>" not in text  # one chain: nothing to compare
    assert ">Held-out evaluation</h2>" not in text  # no data: no held-out section
    assert ">advi: effects</h2>" in text
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(result.index.stat().st_mode) == 0o666 & ~umask  # not the temp file's 0600
