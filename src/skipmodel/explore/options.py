"""What explore computes: the views, and the options of ``skipmodel explore``."""

from __future__ import annotations

import os
from dataclasses import dataclass

from skipmodel.errors import SkipmodelError
from skipmodel.store.schema import SKIP_OUTCOMES, TRACK_NUMERIC_FEATURES

VIEWS: tuple[str, ...] = (
    "feature_histograms",
    "feature_by_duration",
    "transitions",
    "seasonality",
    "memory_in_chains",
    "time_structure",
    "previous_outcome",
)
#: ``jobs=0`` uses one process per CPU, but no more than this many.
MAX_AUTO_JOBS = 8


@dataclass(frozen=True)
class ExploreOptions:
    """What to compute; see ``skipmodel explore --help`` for each option."""

    views: tuple[str, ...] = VIEWS
    skip: str = "skip_2"
    feature: str = "danceability"
    duration_feature: str = "acousticness"
    duration_step: float = 10.0
    top_tracks: int = 50
    order_by: str | None = None
    min_count: int = 30
    bins: int = 10
    fraction: float = 1.0
    seed: int = 0
    #: Processes for the figures and, from :data:`~skipmodel.explore.passes.LOG_PASS_MIN_WORKERS` on, the log pass:
    #: 1 = everything in this process (the API's default), N = this one and N - 1 workers,
    #: 0 = one per CPU (at most :data:`MAX_AUTO_JOBS`; ``skipmodel explore``'s default). Results
    #: do not depend on it. Workers start in the background while the passes run (~1 s each:
    #: :func:`skipmodel.explore.drawing.warm_up`) and, in a Python script, need the
    #: ``if __name__ == "__main__":`` guard.
    jobs: int = 1

    def __post_init__(self) -> None:
        unknown = [v for v in self.views if v not in VIEWS]
        if unknown:
            raise SkipmodelError(
                f"unknown view(s) {', '.join(unknown)}; choose from {', '.join(VIEWS)}"
            )
        if self.skip not in SKIP_OUTCOMES:
            raise SkipmodelError(
                f"unknown skip definition {self.skip!r}; choose from {', '.join(SKIP_OUTCOMES)}"
            )
        for name, value in (
            ("--feature", self.feature),
            ("--duration-feature", self.duration_feature),
            ("--order-by", self.order_by),
        ):
            if value is not None and value not in TRACK_NUMERIC_FEATURES:
                raise SkipmodelError(
                    f"{name} {value!r} is not a numeric track feature; choose from {', '.join(TRACK_NUMERIC_FEATURES)}"
                )
        limits: tuple[tuple[str, float, float], ...] = (
            ("--duration-step", self.duration_step, 0),
            ("--top-tracks", self.top_tracks, 0),
            ("--min-count", self.min_count, -1),
            ("--bins", self.bins, 1),
        )
        for option, number, low in limits:
            if not number > low:
                raise SkipmodelError(f"{option} must be greater than {low}, got {number}")
        if self.jobs < 0:
            raise SkipmodelError(f"--jobs must be 0 (one per CPU) or more, got {self.jobs}")
        if not 0 < self.fraction <= 1:
            raise SkipmodelError(f"--fraction must be in (0, 1], got {self.fraction}")

    def wants(self, view: str) -> bool:
        return view in self.views

    @property
    def workers(self) -> int:
        """Processes to use (``jobs``, with 0 resolved to the CPU count)."""
        return self.jobs or max(1, min(os.cpu_count() or 1, MAX_AUTO_JOBS))

    @property
    def log_features(self) -> list[str]:
        """Track features the log pass needs joined (the chains feature also marks missing tracks)."""
        return list(dict.fromkeys([self.feature, *([self.order_by] if self.order_by else [])]))
