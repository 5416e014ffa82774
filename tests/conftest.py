"""Shared test fixtures: real MSSD excerpts from ../shared (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKIPMODEL_SHARED", REPO.parent / "shared"))
MSSD_FIXTURES = SHARED / "fixtures" / "mssd"
PC_FIXTURES = SHARED / "fixtures" / "pc"

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault(
    "PYTENSOR_FLAGS", f"compiledir={Path.home() / '.cache' / 'skipmodel' / 'pytensor'}"
)


def _fixture_dir(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"shared fixtures not found at {path}")
    return path


@pytest.fixture
def mssd_dir() -> Path:
    """``../shared/fixtures/mssd`` (real MSSD excerpts); skips the test when absent."""
    return _fixture_dir(MSSD_FIXTURES)


@pytest.fixture
def pc_dir() -> Path:
    """``../shared/fixtures/pc`` (reference PC outputs); skips the test when absent."""
    return _fixture_dir(PC_FIXTURES)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Reset the global RNG per test so no test depends on another's draws."""
    np.random.seed(0)  # noqa: NPY002 - resets the legacy global RNG that old code paths use
