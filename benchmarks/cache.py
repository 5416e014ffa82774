"""What the long benchmarks share: fitted runs kept beside their cached stores, and rows
streamed to a ``<topic>_partial.jsonl`` as they come (a NUTS fit takes tens of minutes)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def cached_fit(saved: Path, fit: Callable[[], Any]) -> tuple[Any, float]:
    """The run saved at ``saved`` and its fit's seconds, else ``fit()``'s, saved there."""
    from skipmodel.model.fitting import load_run, save_run

    if (saved / "data.json").is_file():
        return load_run(saved), float(json.loads((saved / "seconds.json").read_text()))
    t0 = time.perf_counter()
    result = fit()
    seconds = time.perf_counter() - t0
    save_run(result, saved)
    (saved / "seconds.json").write_text(json.dumps(seconds))
    return result, seconds


class PartialRows(list[dict[str, Any]]):
    """A benchmark's rows, each also appended to ``path`` (one JSON line) as it is emitted."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)

    def emit(self, row: dict[str, Any]) -> None:
        row = {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}
        self.append(row)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
