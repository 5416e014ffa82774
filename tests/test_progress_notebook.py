"""Progress shows in a Jupyter notebook as on a terminal, and fit(progress=) forces it."""

from __future__ import annotations

import io
import types

import pytest

from skipmodel.model import fit
from skipmodel.model.spec import ModelSpec, Seasonal
from skipmodel.progress import Progress, forced_progress, in_notebook, progress_enabled
from skipmodel.simulate.plays import toy_plays


def _kernel_stream() -> io.StringIO:
    """A stream of the kind an IPython kernel installs as sys.stderr (by its module)."""
    cls = types.new_class("OutStream", (io.StringIO,))
    cls.__module__ = "ipykernel.iostream"
    return cls()


def test_a_notebooks_stream_shows_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SKIPMODEL_QUIET", raising=False)
    stream = _kernel_stream()
    assert in_notebook(stream) and progress_enabled(stream)
    assert not progress_enabled(io.StringIO())  # a pipe stays quiet
    with Progress("fit", stream=stream, interval=0.0) as bar:
        bar.advance(10)
    assert "fit" in stream.getvalue()


def test_forced_progress_overrides_the_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(io.StringIO())
    with forced_progress(True):
        assert progress_enabled(io.StringIO())
    with forced_progress(False):
        assert not progress_enabled(_kernel_stream())
    assert not progress_enabled(io.StringIO())


def test_fit_takes_progress(capsys: pytest.CaptureFixture[str]) -> None:
    plays = toy_plays(20, n_tracks=10, seed=1)
    spec = ModelSpec(terms=(Seasonal(weekday=True, hour="none", position=False),))
    fit(spec, plays, method="advi", draws=20, chains=1, progress=False)
    assert capsys.readouterr().err == ""
