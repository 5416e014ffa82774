"""The README's examples run, so they cannot rot (STYLE.md).

* Every ``python`` block is executed in a folder holding ``data/store`` (a small simulated store).
* Every concrete ``skipmodel ...`` command (in a ``bash`` block or an inline code span) is parsed
  by the real command-line parser; the cheap ones (simulate, ingest, sample, explore, cpdag) are
  also run there. Fitting, prediction and reports are exercised by their own tests.
* Every option in the synopsis block exists on its verb.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest

from skipmodel.cli import VERBS, build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"
RUN_VERBS = {"simulate", "ingest", "sample", "explore", "cpdag"}

_BLOCK = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.M | re.S)
_PLACEHOLDER = re.compile(r"\b[A-Z]+\b")
_INLINE = re.compile(r"(?<!`)`((?:\.venv/bin/)?skipmodel [^`]+)`(?!`)")


def _blocks(lang: str) -> list[str]:
    text = README.read_text()
    return [textwrap.dedent(body) for kind, body in _BLOCK.findall(text) if kind == lang]


def _logical_lines(block: str) -> list[str]:
    """Lines of a shell block with ``\\`` continuations joined and ``#`` comments dropped."""
    joined = block.replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip()]


def _commands() -> list[list[str]]:
    """Concrete ``skipmodel`` invocations (argv without the program name), in README order."""
    lines = [line for block in _blocks("bash") for line in _logical_lines(block)]
    prose = _BLOCK.sub("", README.read_text())
    lines += [" ".join(span.split()) for span in _INLINE.findall(prose)]
    out = []
    for line in lines:
        # Optional parts written ``[--opt value]`` are run too; placeholders (DIR, N) are not.
        words = shlex.split(line.replace("[", "").replace("]", ""))
        concrete = len(words) > 2 and "|" not in line and not _PLACEHOLDER.search(line)
        if concrete and Path(words[0]).name == "skipmodel":
            out.append(words[1:])
    return out


def _option_strings(verb: str) -> set[str]:
    parser = build_parser([verb])
    sub = next(a for a in parser._actions if a.dest == "verb")
    return {s for action in sub.choices[verb]._actions for s in action.option_strings}


def test_readme_has_examples():
    # A README that lost its examples would make every other test here vacuous.
    assert len(_blocks("python")) >= 1
    assert {argv[0] for argv in _commands()} >= {"ingest", "sample", "fit", "predict", "report"}


def test_synopsis_options_exist():
    synopsis = next(b for b in _blocks("text") if "skipmodel simulate" in b)
    for line in synopsis.splitlines():
        usage = line.split("#")[0]
        verb = usage.split()[1]
        assert verb in VERBS, line
        missing = set(re.findall(r"--[a-z][\w-]*", usage)) - _option_strings(verb)
        assert not missing, f"{verb}: README names options the parser lacks: {missing}"


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv)[:60])
def test_readme_commands_parse(argv):
    build_parser([argv[0]]).parse_args(argv)


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory) -> Path:
    """A working folder laid out as the README assumes: ``data/store`` with a small store, and
    the challenge's ``test_set.tar.gz`` beside it."""
    root = tmp_path_factory.mktemp("readme")
    raw = root / "raw"
    simulate = ["simulate", "--out", str(raw), "--sessions", "300", "--tracks", "200"]
    assert main([*simulate, "--challenge-fraction", "0.1"]) == 0
    logs = [str(raw / "training_set.tar.gz"), str(raw / "track_features.tar.gz")]
    assert main(["ingest", *logs, "--store", str(root / "data" / "store")]) == 0
    (raw / "test_set.tar.gz").rename(root / "test_set.tar.gz")
    return root


# The notebook example pools tracks, most of them played a few times: PSIS-LOO warns that some
# Pareto k are high, as it should (a notebook shows the warning; here it is not an error).
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")
def test_readme_python_blocks_run(readme_dir, monkeypatch):
    monkeypatch.chdir(readme_dir)
    namespaces = []
    for block in _blocks("python"):
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
        namespaces.append(namespace)
    assert namespaces[0]["table"].num_rows > 0  # type: ignore[attr-defined]
    # the notebook example fitted, predicted new plays in line with their rows, and reloaded
    assert any("again" in ns and "draws" in ns for ns in namespaces)


def test_readme_commands_run(readme_dir, monkeypatch):
    monkeypatch.chdir(readme_dir)
    ran = []
    for argv in _commands():
        if argv[0] not in RUN_VERBS or any("/path/to/" in a for a in argv):
            continue
        assert main(argv) == 0, " ".join(argv)
        ran.append(argv[0])
    assert {"sample", "explore", "cpdag"} <= set(ran)
