"""The text summary at the top of the gallery: what was read, skip rates, the store's counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skipmodel.explore.passes import Results
from skipmodel.explore.tables import CalendarTables
from skipmodel.store.schema import SKIP_OUTCOMES


@dataclass(frozen=True)
class Summary:
    """Plain numbers; :meth:`lines` renders them as text."""

    rows: int
    sessions: int
    tracks_played: int
    tracks_in_table: int | None
    plays_without_features: int
    feature_checked: str
    first_date: str | None
    last_date: str | None
    core_span: tuple[str, str] | None
    skip_rates: dict[str, float]
    implausible_session_rule: int
    implausible_span_rule: int
    implausible_file_day_rule: int
    fraction: float
    seed: int
    manifest_totals: dict[str, Any]
    manifest_integrity: dict[str, Any]
    #: Requested views not drawn, with the reason (see :mod:`.availability`).
    skipped_views: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        sample = (
            "the full store"
            if self.fraction >= 1
            else f"a {self.fraction:.4g} session sample (seed {self.seed})"
        )
        out = [
            f"Read {self.rows:,} plays in {self.sessions:,} sessions from {sample}.",
            f"Tracks: {self.tracks_played:,} distinct tracks played"
            + (
                f"; {self.tracks_in_table:,} in the features table"
                if self.tracks_in_table is not None
                else ""
            )
            + f"; {self.plays_without_features:,} plays with no {self.feature_checked} "
            "(track missing from the features table, or the value unknown).",
            f"Dates: {self.first_date} to {self.last_date}"
            + (f"; core span {self.core_span[0]} to {self.core_span[1]}" if self.core_span else "")
            + "; implausible dates: "
            + (
                f"{self.implausible_file_day_rule:,} plays > 1 day from their file's day "
                "(ingest's rule, where the row's file is known), "
                if self.implausible_file_day_rule
                else ""
            )
            + f"{self.implausible_session_rule:,} plays > 1 day from their session's usual date, "
            f"{self.implausible_span_rule:,} more than 1 day from every busy day (< 5 % of the busiest day's plays).",
            "Skip rates: " + ", ".join(f"{k} {v:.4f}" for k, v in self.skip_rates.items()) + ".",
            *(f"Skipped view {view}: {why}." for view, why in self.skipped_views.items()),
        ]
        t = self.manifest_totals
        if t:
            out.append(
                "Store: "
                + ", ".join(
                    f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k} {v}"
                    for k, v in sorted(t.items())
                )
                + "."
            )
        if self.manifest_integrity:
            out.append(
                "Integrity findings: "
                + ", ".join(
                    f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k} {v}"
                    for k, v in sorted(self.manifest_integrity.items())
                )
                + "."
            )
        return out


def _date(day: float) -> str | None:
    return str(np.datetime64(int(day), "D")) if np.isfinite(day) else None


def build_summary(
    r: Results,
    manifest: dict[str, Any],
    cal: CalendarTables,
    *,
    skipped: dict[str, str] | None = None,
) -> Summary:
    ov = r.log.overview
    rates = {
        k: float(s / ov.rows) if ov.rows else float("nan")
        for k, s in zip(SKIP_OUTCOMES, ov.outcome_sums, strict=True)
    }
    counter = r.track_counts
    return Summary(
        rows=ov.rows,
        sessions=ov.sessions,
        tracks_played=counter.n_tracks if counter is not None else 0,
        tracks_in_table=r.tracks.tracks if r.tracks is not None else None,
        plays_without_features=ov.without_features,
        feature_checked=r.options.feature,
        first_date=_date(ov.first_day),
        last_date=_date(ov.last_day),
        core_span=(_date(cal.span[0]), _date(cal.span[1])) if cal.span else None,  # type: ignore[arg-type]
        skip_rates=rates,
        implausible_session_rule=cal.session_strays,
        implausible_span_rule=cal.span_strays,
        implausible_file_day_rule=cal.file_day_strays,
        fraction=r.options.fraction,
        seed=r.options.seed,
        manifest_totals=dict(manifest.get("totals", {})),
        manifest_integrity=dict(manifest.get("integrity", {})),
        skipped_views=dict(skipped or {}),
    )
