"""Which views the data can draw: a view that needs track features the store does not have is
skipped, with the reason, instead of drawn empty (or failing).

A store may hold session logs and no track features (``skipmodel ingest`` of the logs alone),
or a tracks table that matches none of the played tracks. The views of the tracks table
(:data:`~skipmodel.explore.passes.TRACK_VIEWS`) then have nothing to show, nor has the
memory-in-chains grid (it bins plays by their tracks' feature); the others are drawn as usual.
The reasons are listed on the console, in ``summary.txt``/``summary.json`` and in the gallery.
"""

from __future__ import annotations

from skipmodel.explore.passes import TRACK_VIEWS, Results

#: What to do about a store without track features (the end of every such reason).
INGEST_FEATURES = "ingest the track features (track_features/*.csv) into the store to draw it"
NO_TRACKS = f"the store has no track features; {INGEST_FEATURES}"


def unavailable(results: Results, view: str) -> str | None:
    """Why ``view`` cannot be drawn from ``results``, in one sentence; None when it can.

    The views of the tracks table are judged on the track passes alone, so this holds as
    well for the results handed to ``compute``'s ``on_tracks`` (an empty log).
    """
    o = results.options
    if view in TRACK_VIEWS:
        tracks = results.tracks
        if tracks is None or tracks.tracks == 0:
            return NO_TRACKS
        if view == "feature_by_duration" and not len(tracks.by_duration.keys):
            return (
                f"no track in the tracks table has both a duration and a {o.duration_feature}; "
                "choose another --duration-feature"
            )
        if view == "feature_histograms" and not any(
            int(h.counts.sum()) + h.below + h.above for h in tracks.histograms.values()
        ):
            return f"every numeric feature of the {tracks.tracks:,} tracks is missing"
        return None
    if view == "memory_in_chains":
        chains, overview = results.log.chains, results.log.overview
        if chains is None or len(chains.sums.keys):
            return None
        if overview.rows and overview.without_features == overview.rows:
            return (
                f"none of the {overview.rows:,} plays' tracks has a {o.feature} in the tracks "
                f"table (no track features, or none for these tracks); {INGEST_FEATURES}"
            )
        return f"no play and its previous play both have a known {o.feature}"
    return None


def skipped_views(results: Results) -> dict[str, str]:
    """Every requested view that cannot be drawn, with the reason, in the order asked for."""
    reasons = {view: unavailable(results, view) for view in results.options.views}
    return {view: reason for view, reason in reasons.items() if reason is not None}
