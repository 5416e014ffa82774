"""Faults of the environment are one-line user errors (exit 2), not "internal error" (issue 17).

A full disk, a quota, a read-only or forbidden store, a damaged run folder: each says what is
wrong, names the path and says what to do. A real full disk or read-only mount cannot be made in
a test (and as root chmod stops nothing), so the OS refusals are raised by a patched call at the
place the system would raise them; the chmod variant runs only when not root.
"""

from __future__ import annotations

import errno
import json
import os
import types
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from skipmodel import cli
from skipmodel.cli import main
from skipmodel.errors import SkipmodelError, environment_problem
from skipmodel.model.encoders import Encoders
from skipmodel.model.fitting import FitResult, load_run, save_run
from skipmodel.model.options import FitOptions
from skipmodel.model.spec import get_variant
from skipmodel.store import journal
from store_factory import random_logs, write_store

REFUSALS = [
    (errno.ENOSPC, "No space left on device", "no space left on the device", "free some space"),
    (errno.EDQUOT, "Disk quota exceeded", "disk quota exceeded", "raise the quota"),
    (errno.EROFS, "Read-only file system", "read-only file system", "use a writable location"),
    (errno.EACCES, "Permission denied", "permission denied", "check its permissions"),
]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err and "report it" not in err
    return lines[0]


# --- the mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "strerror", "what", "todo"), REFUSALS)
def test_a_refusal_of_the_system_is_a_user_error_naming_the_path(
    code: int,
    strerror: str,
    what: str,
    todo: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(args: object) -> int:
        raise OSError(code, strerror, "out/summary.json")

    verb = types.SimpleNamespace(add_arguments=lambda parser: None, run=run)
    monkeypatch.setattr(cli, "_command_module", lambda name: verb)
    assert main(["explore"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"skipmodel explore: error: out/summary.json: {what}; ")
    assert todo in line and line.endswith("re-run")


def test_an_ordinary_bug_is_still_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(args: object) -> int:
        raise OSError(errno.ENOENT, "No such file or directory", "x")  # not the environment's

    verb = types.SimpleNamespace(add_arguments=lambda parser: None, run=run)
    monkeypatch.setattr(cli, "_command_module", lambda name: verb)
    assert main(["explore"]) == 1
    assert "internal error" in capsys.readouterr().err


def test_environment_problem_finds_the_errno_in_chains_and_in_library_text() -> None:
    # a write's error names no file: the message quotes what the library said
    bare = environment_problem(OSError(errno.ENOSPC, "No space left on device"))
    assert bare is not None and bare.startswith("no space left on the device (")
    # h5py and Arrow put the errno in the text only
    h5 = OSError("Unable to create file (unable to open file: name = 'r.nc', errno = 28, ...)")
    assert (environment_problem(h5) or "").startswith("no space left on the device")
    arrow = OSError("[Errno 30] Error creating dataset. Detail: [errno 30] Read-only file system")
    assert (environment_problem(arrow) or "").startswith("read-only file system")
    # raised from (or while handling) the OS error
    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "st/.ingest.lock")
        except OSError as exc:
            raise RuntimeError("could not lock") from exc
    except RuntimeError as wrapped:
        assert (environment_problem(wrapped) or "").startswith("st/.ingest.lock: permission")
    assert environment_problem(OSError(errno.ENOENT, "No such file", "x")) is None
    assert environment_problem(ValueError("errno = 28")) is None


# --- real commands ----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    write_store(tmp_path / "store", random_logs(np.random.default_rng(0), 20))
    return tmp_path / "store"


def test_read_only_store(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_open = open

    def read_only_open(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN202
        if "w" in mode or "a" in mode:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(journal, "open", read_only_open, raising=False)
    assert main(["compact", "--store", str(store)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{store / journal.LOCK_FILE}: read-only file system; use a writable location" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_store_by_permissions(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    modes = {p: p.stat().st_mode for p in [store, *store.rglob("*")] if p.is_dir()}
    for p in modes:
        p.chmod(0o555)
    try:
        assert main(["compact", "--store", str(store)]) == 2
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert "permission denied; check its permissions" in one_line(capsys.readouterr().err)


# --- damaged run folders ----------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder as ``skipmodel fit`` writes it (a made-up posterior: nothing is sampled)."""
    posterior = xr.DataTree.from_dict(
        {"posterior": xr.Dataset({"intercept": (("chain", "draw"), np.zeros((1, 20)))})}
    )
    result = FitResult(
        get_variant("baseline"),
        Encoders(),
        posterior,
        {"seconds": 1.0, "max_rhat": float("nan")},
        FitOptions(method="nuts", draws=20, chains=1),
        {"n_rows": 20},
    )
    run = save_run(result, tmp_path / "run")
    load_run(run)  # intact, it reads back
    return run


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("posterior.nc", _truncate),
        ("posterior.nc", lambda p: p.write_bytes(b"")),
        ("data.json", lambda p: p.write_text('{"encoders": {')),
        ("data.json", lambda p: p.write_text("[]")),
        ("data.json", lambda p: p.write_text("{}")),
        ("data.json", lambda p: p.write_text(json.dumps({"encoders": {}, "options": {}}))),
        ("diagnostics.json", lambda p: p.write_text("NaN, or not")),
        ("spec.toml", lambda p: p.write_text("[[terms]\n")),
    ],
)
def test_a_damaged_run_folder_is_one_line_saying_to_refit(
    run_dir: Path, name: str, damage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # noqa: ANN001
    damage(run_dir / name)
    with pytest.raises(SkipmodelError) as caught:
        load_run(run_dir)
    message = str(caught.value)
    assert message.startswith(f"run folder {run_dir} is damaged: {name} cannot be read (")
    assert message.endswith("re-run skipmodel fit to write it again") and "\n" not in message
    out = tmp_path / "p.parquet"
    assert main(["predict", str(run_dir), "--store", str(tmp_path), "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"run folder {run_dir} is damaged: {name}" in line


def test_an_unreadable_run_file_is_a_permission_problem_not_damage(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Path.read_text

    def forbidden(self: Path, *args, **kwargs) -> str:  # noqa: ANN002, ANN003
        if self.name == "data.json":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", forbidden)
    with pytest.raises(PermissionError) as caught:
        load_run(run_dir)
    assert environment_problem(caught.value) == (
        f"{run_dir / 'data.json'}: permission denied; check its permissions "
        "(or use another location), then re-run"
    )


def test_a_damaged_sample_spec_is_one_line_in_predict(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``data.json`` that reads as JSON but whose sample entry is not a sample spec."""
    data = json.loads((run_dir / "data.json").read_text())
    data["sample"] = {"fractions": 0.5}
    (run_dir / "data.json").write_text(json.dumps(data))
    out = tmp_path / "p.parquet"
    assert main(["predict", str(run_dir), "--store", str(tmp_path), "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"run folder {run_dir} is damaged: data.json's sample spec cannot be read" in line
