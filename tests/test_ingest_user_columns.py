"""Your own columns in a store: declared at ingest, typed, kept through compaction, loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_helpers import log_text
from skipmodel.cli import main
from skipmodel.errors import SkipmodelError
from skipmodel.ingest import ingest
from skipmodel.ingest.parse import SourceParser, sniff_header
from skipmodel.ingest.sources import HashingReader
from skipmodel.load import iter_buckets, load_pandas, load_table
from skipmodel.simulate.files import csv_bytes
from skipmodel.store.schema import LOG_COLUMNS
from skipmodel.store.user_columns import StoredColumn, columns_from_toml, parse_column
from store_factory import random_logs

DECLARED = (
    StoredColumn("my_segment", "string"),
    StoredColumn("my_score", "number"),
    StoredColumn("in_arm", "boolean"),
)


def log_csv(
    path: Path, rng: np.random.Generator, n_sessions: int, extra: dict[str, list[str]] | None = None
) -> pa.Table:
    """A session-log CSV as MSSD writes it (0/1 flags, lowercase booleans) with user columns
    ``extra`` (text per row; default: the three of :data:`DECLARED` and an undeclared one)."""
    logs = random_logs(rng, n_sessions).sort_by(
        [("session_id", "ascending"), ("session_position", "ascending")]
    )
    n = logs.num_rows
    if extra is None:
        extra = {
            "my_segment": rng.choice(["a", "b", "c"], n).tolist(),
            "my_score": [repr(float(v)) for v in rng.normal(size=n)],
            "in_arm": rng.choice(["true", "false", "1", "0", "TRUE"], n).tolist(),
            "notes": ["x"] * n,
        }
    text = log_text(logs)
    for name, values in extra.items():
        text = text.append_column(name, pa.array(values, pa.string()))
    path.write_bytes(csv_bytes(text))
    return text


def _ingest(paths: list[Path], store: Path, **kwargs) -> object:  # noqa: ANN003
    return ingest(paths, store, n_buckets=2, progress=False, **kwargs)


def test_declared_columns_are_typed_nulls_kept_bad_values_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = random_logs(np.random.default_rng(1), 12).num_rows
    segment = ["a", "b", ""] * (n // 3) + ["a"] * (n % 3)
    score = ["1.5", "", "-2e-3", "nan"] * (n // 4) + ["0"] * (n % 4)
    arm = ["true", "0", "", "FALSE"] * (n // 4) + ["1"] * (n % 4)
    segment[3], score[5], arm[7] = "a\x01b", "lots", "yes"
    extra = {"my_segment": segment, "my_score": score, "in_arm": arm, "notes": ["x"] * n}
    text = log_csv(tmp_path / "log_0.csv", rng, 12, extra)
    report = _ingest([tmp_path / "log_0.csv"], tmp_path / "store", columns=DECLARED)
    assert (report.log_rows_read, report.log_rows_rejected) == (n, 3)
    assert report.user_columns == DECLARED
    assert report.ignored_columns == {"notes": 1}
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["user_columns"] == [c.as_json() for c in DECLARED]
    (entry,) = manifest["sources"].values()
    assert entry["ignored_columns"] == ["notes"]
    reasons = pq.read_table(tmp_path / "store" / "rejected").sort_by("line")
    assert reasons.column("line").to_pylist() == [5, 7, 9]
    assert reasons.column("reason").to_pylist() == [
        "my_segment: control character '\\x01'",
        "my_score: not a number: 'lots'",
        "in_arm: not a boolean (true/false): 'yes'",
    ]
    stored = pq.read_table(tmp_path / "store" / "sessions", partitioning=None)
    assert stored.schema.field("my_score").type == pa.float64()
    assert stored.schema.field("in_arm").type == pa.bool_()
    assert stored.schema.field("my_segment").type == pa.dictionary(pa.int32(), pa.string())
    assert "notes" not in stored.column_names
    # every kept row's values, by (session, position), against the text written
    ids = text.column("session_id").to_pylist()
    pos = text.column("session_position").to_pylist()
    written = {(s, p): i for i, (s, p) in enumerate(zip(ids, pos, strict=True))}
    got = stored.to_pylist()
    assert len(got) == n - 3
    truth = {"true": True, "1": True, "false": False, "0": False, "": None}
    for row in got:
        i = written[(row["session_id"], row["session_position"])]
        assert row["my_segment"] == (segment[i] or None)
        assert row["in_arm"] == truth[arm[i].lower()]
        want = None if score[i] == "" else float(score[i])
        assert row["my_score"] == want or (np.isnan(want) and np.isnan(row["my_score"]))


def test_declaration_is_recorded_reused_and_fixed(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    store = tmp_path / "store"
    log_csv(tmp_path / "log_0.csv", rng, 10)
    log_csv(tmp_path / "log_1.csv", rng, 10)
    _ingest([tmp_path / "log_0.csv"], store, columns=DECLARED)
    report = _ingest([tmp_path / "log_1.csv"], store)  # omitted: the recorded one
    assert report.user_columns == DECLARED
    assert report.log_rows_rejected == 0
    with pytest.raises(SkipmodelError, match="keeps user columns my_segment:string, .*not none"):
        _ingest([tmp_path / "log_1.csv"], store, columns=())
    with pytest.raises(SkipmodelError, match="not my_segment:number"):
        _ingest([tmp_path / "log_1.csv"], store, columns=[StoredColumn("my_segment", "number")])
    # a store of MSSD's columns only, once it holds logs, refuses a declaration
    plain = tmp_path / "plain"
    _ingest([tmp_path / "log_0.csv"], plain)
    with pytest.raises(SkipmodelError, match="keeps user columns none"):
        _ingest([tmp_path / "log_1.csv"], plain, columns=DECLARED)
    assert "user_columns" not in json.loads((plain / "manifest.json").read_text())


def test_declared_column_missing_from_a_header_names_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = random_logs(np.random.default_rng(3), 5).num_rows
    log_csv(tmp_path / "log_0.csv", rng, 5, {"my_segment": ["a"] * n})
    with pytest.raises(SkipmodelError, match=r"log_0\.csv: declared user column\(s\) my_score"):
        _ingest([tmp_path / "log_0.csv"], tmp_path / "store", columns=DECLARED[:2])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("premium:boolean", "one of MSSD's or skipmodel's own column names"),
        ("prev_thing:number", "one of MSSD's or skipmodel's own column names"),
        ("weekday:string", "one of MSSD's or skipmodel's own column names"),
        ("my_segment:text", "must be one of number, boolean, string"),
        ("my_segment", "expected NAME:TYPE"),
        ("my-segment:string", "not a column name"),
    ],
)
def test_bad_declarations_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(SkipmodelError, match=message):
        parse_column(text)


def test_columns_toml_is_a_model_spec_s_columns(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "mine"\n[[terms]]\nkind = "pooled"\ncolumn = "my_segment"\n'
        '[[columns]]\nname = "my_segment"\ntype = "string"\n'
        '[[columns]]\nname = "my_score"\nrole = "outcome"\n'
    )
    assert columns_from_toml(spec) == (
        StoredColumn("my_segment", "string"),
        StoredColumn("my_score", "number"),
    )
    spec.write_text('[[columns]]\nname = "a"\ntype = "string"\nkind = "x"\n')
    with pytest.raises(SkipmodelError, match="unknown key"):
        columns_from_toml(spec)


def test_compaction_keeps_user_columns_and_loaders_carry_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    store = tmp_path / "store"
    for k in range(3):
        log_csv(tmp_path / f"log_{k}.csv", rng, 15)
    # three parts per bucket, merged at the end of the second ingest
    _ingest([tmp_path / "log_0.csv"], store, columns=DECLARED, compact=False)
    _ingest([tmp_path / "log_1.csv", tmp_path / "log_2.csv"], store)
    files = sorted((store / "sessions").rglob("part-*.parquet"))
    assert len(files) == 2 and all(f.name.startswith("part-compact-") for f in files)
    frame = load_pandas(store, features=False)
    assert str(frame["my_score"].dtype) == "float64"
    assert str(frame["in_arm"].dtype) == "boolean"
    assert str(frame["my_segment"].dtype) == "category"
    assert set(frame["my_segment"].cat.categories) == {"a", "b", "c"}
    assert len(frame) == sum(pq.read_metadata(f).num_rows for f in files)  # every row, once
    # a projection may name them; unknown names still fail in one line
    table = load_table(store, columns=["my_segment"], features=False, lags=0)
    assert table.column_names == [
        "session_id",
        "session_position",
        "session_length",
        "track_id_clean",
        "my_segment",
    ]
    with pytest.raises(SkipmodelError, match="unknown column"):
        load_table(store, columns=["my_segmnt"])
    # whole buckets read a user column only when it is named
    first = next(iter_buckets(store, features=False, lags=0))
    assert "my_segment" not in first.table.column_names
    named = next(iter_buckets(store, columns=["my_segment"], features=False, lags=0))
    assert named.table.column("my_segment").type == pa.dictionary(pa.int32(), pa.string())


def test_the_parser_alone_types_user_columns(tmp_path: Path) -> None:
    """What an engine running the parser per file sees: user columns after MSSD's, typed."""
    log_csv(tmp_path / "log_0.csv", np.random.default_rng(9), 6)
    with open(tmp_path / "log_0.csv", "rb") as fh:
        reader = HashingReader(fh, "log_0.csv")
        kind, columns = sniff_header(reader)
        parser = SourceParser(reader, kind, columns, user_columns=DECLARED, block_size=997)
        batches = list(parser.batches())
    valid = pa.concat_tables([b.valid for b in batches])
    assert valid.column_names == [*LOG_COLUMNS, "my_segment", "my_score", "in_arm"]
    assert [valid.schema.field(c.name).type for c in DECLARED] == [
        pa.dictionary(pa.int32(), pa.string()),
        pa.float64(),
        pa.bool_(),
    ]
    assert parser.ignored_columns == ["notes"]
    assert sum(b.n_read for b in batches) == valid.num_rows


def test_cli_declares_by_option_and_by_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(5)
    log_csv(tmp_path / "log_0.csv", rng, 5)
    argv = ["ingest", str(tmp_path / "log_0.csv"), "--quiet", "--buckets", "2"]
    assert main([*argv, "--store", str(tmp_path / "a"), "--column", "my_segment:string"]) == 0
    out = capsys.readouterr().out
    assert "user columns kept: my_segment:string" in out
    assert "columns not kept" in out and "my_score (1 file(s))" in out and "notes" in out
    spec = tmp_path / "cols.toml"
    spec.write_text('[[columns]]\nname = "my_score"\n')
    assert main([*argv, "--store", str(tmp_path / "b"), "--columns", str(spec)]) == 0
    assert "user columns kept: my_score:number" in capsys.readouterr().out
    assert main([*argv, "--store", str(tmp_path / "c"), "--column", "premium:string"]) == 2
    assert "MSSD's or skipmodel's own column names" in capsys.readouterr().err


def test_sample_writes_user_columns(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    log_csv(tmp_path / "log_0.csv", np.random.default_rng(6), 10)
    store = tmp_path / "store"
    _ingest([tmp_path / "log_0.csv"], store, columns=DECLARED)
    out = tmp_path / "s.parquet"
    argv = ["sample", "--store", str(store), "--out", str(out), "--columns", "my_segment,in_arm"]
    assert main([*argv, "--lags", "0"]) == 0
    schema = pq.read_schema(out)
    assert schema.names[4:6] == ["my_segment", "in_arm"] and "my_score" not in schema.names
    assert schema.field("in_arm").type == pa.bool_()


def test_challenge_halves_keep_mssd_columns_only(tmp_path: Path) -> None:
    """The challenge's files never carry user columns: a prehistory file's extra columns are
    listed as not kept, like any undeclared column, and it need not have the declared ones."""
    rng = np.random.default_rng(7)
    log_csv(tmp_path / "log_0.csv", rng, 8)
    n = random_logs(np.random.default_rng(8), 8).num_rows
    log_csv(tmp_path / "log_prehistory_0.csv", np.random.default_rng(8), 8, {"notes": ["x"] * n})
    report = _ingest(
        [tmp_path / "log_0.csv", tmp_path / "log_prehistory_0.csv"],
        tmp_path / "store",
        columns=DECLARED,
    )
    assert report.prehistory_rows_written == n and report.prehistory_rows_rejected == 0
    assert report.ignored_columns == {"notes": 2}
    pre = pq.read_table(tmp_path / "store" / "challenge" / "prehistory", partitioning=None)
    assert pre.column_names == list(LOG_COLUMNS)
