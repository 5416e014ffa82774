"""The MSSD schema, decided once: column order, Arrow types, value domains, outcome columns.

Every stage reads its column names and types from here; nothing else spells them out.
The text format (what real files contain) is described in ``MSSD_SCHEMA.md``; the store keeps
these Arrow types.
"""

from __future__ import annotations

import pyarrow as pa

#: Version of the store's format, recorded in a new store's manifest. 2: rejected rows carry
#: ``raw_bytes`` (stores of version 1 lack the column; :data:`REJECTED_SCHEMA` readers must
#: treat it as absent there). The challenge's test set (``STORE/challenge/``, source kinds
#: :data:`CHALLENGE_KINDS`) was added to version 2 without a bump: it is a folder of its own that
#: no reader of training sessions looks into, so a store without it is a store without challenge
#: data, whatever version wrote it.
SCHEMA_VERSION = 2

_DICT = pa.dictionary(pa.int8(), pa.string())

#: Rejected rows (``STORE/rejected/part-*.parquet``): the source's name, the 1-based physical
#: line, the line as text (bytes that are not UTF-8 shown as U+FFFD), the reason, and the
#: line's bytes exactly as in the file (without the line end; an over-long line keeps its first
#: ``MAX_LINE_BYTES``, a blank line is empty).
REJECTED_FIELDS: tuple[pa.Field, ...] = (
    pa.field("source", pa.string()),
    pa.field("line", pa.int64()),
    pa.field("raw", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("raw_bytes", pa.binary()),
)
REJECTED_SCHEMA = pa.schema(REJECTED_FIELDS)

#: Session-log columns in the order real files have them, with their store types.
LOG_FIELDS: tuple[pa.Field, ...] = (
    pa.field("session_id", pa.string(), nullable=False),
    pa.field("session_position", pa.int8(), nullable=False),
    pa.field("session_length", pa.int8(), nullable=False),
    pa.field("track_id_clean", pa.string(), nullable=False),
    pa.field("skip_1", pa.bool_(), nullable=False),
    pa.field("skip_2", pa.bool_(), nullable=False),
    pa.field("skip_3", pa.bool_(), nullable=False),
    pa.field("not_skipped", pa.bool_(), nullable=False),
    pa.field("context_switch", pa.bool_(), nullable=False),
    pa.field("no_pause_before_play", pa.bool_(), nullable=False),
    pa.field("short_pause_before_play", pa.bool_(), nullable=False),
    pa.field("long_pause_before_play", pa.bool_(), nullable=False),
    pa.field("hist_user_behavior_n_seekfwd", pa.int16(), nullable=False),
    pa.field("hist_user_behavior_n_seekback", pa.int16(), nullable=False),
    pa.field("hist_user_behavior_is_shuffle", pa.bool_(), nullable=False),
    pa.field("hour_of_day", pa.int8(), nullable=False),
    pa.field("date", pa.date32(), nullable=False),
    pa.field("premium", pa.bool_(), nullable=False),
    pa.field("context_type", _DICT, nullable=False),
    pa.field("hist_user_behavior_reason_start", _DICT, nullable=False),
    pa.field("hist_user_behavior_reason_end", _DICT, nullable=False),
)
LOG_SCHEMA = pa.schema(LOG_FIELDS)
LOG_COLUMNS: tuple[str, ...] = tuple(f.name for f in LOG_FIELDS)

#: Source kinds of the manifest: training session logs, track features, and the WSDM Cup 2019
#: test set's two halves (``log_prehistory_*``: first halves, every log column; ``log_input_*``:
#: second halves, :data:`INPUT_COLUMNS` only), which are stored apart from training sessions.
SOURCE_KINDS: tuple[str, ...] = ("log", "tracks", "prehistory", "input")
CHALLENGE_KINDS: tuple[str, ...] = ("prehistory", "input")
#: Kinds whose rows are plays, stored bucketed by session.
SESSION_KINDS: tuple[str, ...] = ("log", "prehistory", "input")

#: Columns of a challenge ``log_input_*`` file (in any order in the file).
INPUT_COLUMNS: tuple[str, ...] = (
    "session_id",
    "session_position",
    "session_length",
    "track_id_clean",
)
#: Where each stored input row came from, so the files' session order can be rebuilt exactly:
#: the file's name (without folders or archive), the day in that name (null when it has none)
#: and the row's 1-based physical line in the file.
INPUT_ORDER_COLUMNS: tuple[str, ...] = ("input_file", "input_day", "input_line")
#: Stored challenge input rows (``STORE/challenge/input/``).
INPUT_FIELDS: tuple[pa.Field, ...] = (
    *(f for f in LOG_FIELDS if f.name in INPUT_COLUMNS),
    pa.field("input_file", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    pa.field("input_day", pa.date32()),
    pa.field("input_line", pa.int64(), nullable=False),
)
INPUT_SCHEMA = pa.schema(INPUT_FIELDS)

#: Columns written as 0/1 integers in the text files but stored as booleans.
LOG_INT_FLAGS: tuple[str, ...] = (
    "context_switch",
    "no_pause_before_play",
    "short_pause_before_play",
    "long_pause_before_play",
)

#: Track-feature columns in file order, with their store types.
TRACK_FIELDS: tuple[pa.Field, ...] = (
    pa.field("track_id", pa.string(), nullable=False),
    pa.field("duration", pa.float64()),
    pa.field("release_year", pa.int16()),
    pa.field("us_popularity_estimate", pa.float64()),
    pa.field("acousticness", pa.float64()),
    pa.field("beat_strength", pa.float64()),
    pa.field("bounciness", pa.float64()),
    pa.field("danceability", pa.float64()),
    pa.field("dyn_range_mean", pa.float64()),
    pa.field("energy", pa.float64()),
    pa.field("flatness", pa.float64()),
    pa.field("instrumentalness", pa.float64()),
    pa.field("key", pa.int8()),
    pa.field("liveness", pa.float64()),
    pa.field("loudness", pa.float64()),
    pa.field("mechanism", pa.float64()),
    pa.field("mode", _DICT),
    pa.field("organism", pa.float64()),
    pa.field("speechiness", pa.float64()),
    pa.field("tempo", pa.float64()),
    pa.field("time_signature", pa.int8()),
    pa.field("valence", pa.float64()),
    *(pa.field(f"acoustic_vector_{i}", pa.float64()) for i in range(8)),
)
TRACK_SCHEMA = pa.schema(TRACK_FIELDS)
TRACK_COLUMNS: tuple[str, ...] = tuple(f.name for f in TRACK_FIELDS)

#: Numeric track features (everything but the id and the categorical ``mode``).
TRACK_NUMERIC_FEATURES: tuple[str, ...] = tuple(
    c for c in TRACK_COLUMNS if c not in ("track_id", "mode")
)

#: Heavy-tailed features, log-transformed (``log(x + 1e-10)``) in the usual workflow.
HEAVY_TAILED_FEATURES: tuple[str, ...] = (
    "duration",
    "release_year",
    "acousticness",
    "dyn_range_mean",
    "flatness",
    "instrumentalness",
    "liveness",
    "speechiness",
)

#: Outcomes of a play: never predictors of that same play (the leakage rule in DESIGN.md).
SKIP_OUTCOMES: tuple[str, ...] = ("skip_1", "skip_2", "skip_3", "not_skipped")
OUTCOME_COLUMNS: tuple[str, ...] = (
    *SKIP_OUTCOMES,
    "hist_user_behavior_reason_end",
    "hist_user_behavior_n_seekfwd",
    "hist_user_behavior_n_seekback",
)

#: Known value domains (others may appear in real data for the string columns).
CONTEXT_TYPES: tuple[str, ...] = (
    "user_collection",
    "catalog",
    "editorial_playlist",
    "radio",
    "personalized_playlist",
    "charts",
)
REASONS_START: tuple[str, ...] = (
    "fwdbtn",
    "trackdone",
    "clickrow",
    "backbtn",
    "appload",
    "playbtn",
    "remote",
    "trackerror",
    "endplay",
)
REASONS_END: tuple[str, ...] = (
    "fwdbtn",
    "trackdone",
    "endplay",
    "backbtn",
    "logout",
    "remote",
    "clickrow",
)
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

#: Prefixes of lag columns produced by the loaders: ``prev_skip_2`` is the previous play's
#: ``skip_2``; ``prev2_skip_2`` the play before that.
LAG_PREFIXES: tuple[str, ...] = ("prev_", "prev2_")
