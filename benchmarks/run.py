"""The benchmark harness: ``python -m benchmarks.run --out reports/bench [--only NAME] [--quick]``.

Discovers ``benchmarks/bench_<topic>.py`` modules exposing
``run(out_dir: Path, *, quick: bool) -> list[dict]`` and writes, per topic,
``<out>/<topic>.json`` (the rows plus when/where they were measured) and ``<out>/<topic>.md``
(a Markdown table). A row has ``name, value, unit, peer, ratio, target, passed, notes``; every
ratio is against a peer measured in the same run. A benchmark that raises is reported as failed
and the others still run; the exit code is non-zero if any failed or missed its target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
COLUMNS = ("name", "value", "unit", "peer", "ratio", "target", "passed", "notes")


def discover() -> list[str]:
    """Topics of every ``bench_<topic>.py`` beside this file, sorted."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if isinstance(value, float):
        # 4 significant digits: an R-hat of 1.005 must not print as the 1.01 it is judged by
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(topic: str, rows: list[dict], meta: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark: {topic}",
        "",
        f"Measured {meta['measured_at']} on {meta['machine']} "
        f"({meta['cpus']} CPUs, Python {meta['python']}){' — quick mode' if meta['quick'] else ''}; "
        f"{meta['seconds']:.0f} s.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def run_topic(topic: str, out: Path, *, quick: bool) -> tuple[list[dict], bool]:
    """Run one benchmark module; returns its rows and whether everything passed."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.bench_{topic}")
        rows = list(module.run(out, quick=quick))
        ok = all(r.get("passed") is not False for r in rows)
    except Exception as exc:  # a broken benchmark must not stop the others
        traceback.print_exc()
        rows = [
            {"name": f"{topic} (crashed)", "passed": False, "notes": f"{type(exc).__name__}: {exc}"}
        ]
        ok = False
    meta = {
        "topic": topic,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.node() or platform.machine(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "quick": quick,
        "seconds": time.perf_counter() - started,
    }
    out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "results": rows}
    (out / f"{topic}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    (out / f"{topic}.md").write_text(markdown(topic, rows, meta))
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("topics", nargs="*", help="topics to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="one topic")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    available = discover()
    chosen = [*args.topics, *args.only] or available
    unknown = [t for t in chosen if t not in available]
    if unknown:
        print(
            f"benchmarks.run: unknown benchmark {', '.join(unknown)}; "
            f"available: {', '.join(available)}",
            file=sys.stderr,
        )
        return 2
    all_ok = True
    for topic in chosen:
        print(f"== {topic}", flush=True)
        rows, ok = run_topic(topic, args.out, quick=args.quick)
        all_ok &= ok
        for row in rows:
            shown = {c: row.get(c) for c in ("name", "value", "unit", "ratio", "target", "passed")}
            print("  " + ", ".join(f"{k}={_cell(v)}" for k, v in shown.items() if v is not None))
        print(f"  -> {args.out / (topic + '.md')}", flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
