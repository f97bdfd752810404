"""Delta, contracts, row checks and typed values: pure functions, no database."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from importlib import resources

import jsonschema
import pytest

from pipewarden.batch import Batch
from pipewarden.errors import InputError
from pipewarden.schema import (
    Column,
    Contract,
    DataType,
    Schema,
    check_rows,
    coerce_row,
    infer,
    plan,
)
from pipewarden.schema.rows import row_converter
from pipewarden.schema.target import from_json_schema, to_json_schema
from pipewarden.verdict import merge

T = DataType


def table(**cols) -> Schema:
    return Schema({k: Column(k, t, nullable) for k, (t, nullable) in cols.items()}, 4)


def batch(rows, fmt="json"):
    return Batch(rows, "b.json", fmt=fmt)


def run(current, rows, contract=None, dialect="postgres"):
    b = batch(rows)
    p = plan(current, infer(b), contract, dialect, "t", "ns")
    return p, check_rows(b, p)


CURRENT = table(id=(T.BIGINT, False), name=(T.TEXT, True), at=(T.TIMESTAMP, True))


def test_delta_ops_and_flags():
    p, _ = run(CURRENT, [{"id": 1.5, "at": "2024-01-01T00:00:00Z", "new": {"a": 1}}, {"id": None}])
    got = {(c.op, c.column): (c.from_, c.to, c.compatible, c.action) for c in p.delta}
    assert got == {
        ("widen", "id"): ("bigint", "double", True, "quarantine"),
        ("nullability", "id"): ("not null", "null", True, "alter"),
        ("widen", "at"): ("timestamp", "timestamptz", True, "alter"),
        ("add", "new"): (None, "json", True, "alter"),
        ("missing", "name"): ("text", None, True, "none"),
    }
    assert p.decision == "evolve" and p.schema.version == 5
    assert p.ddl == [
        "SET LOCAL lock_timeout = '5s'",
        "SET LOCAL timezone = 'UTC'",
        'ALTER TABLE "ns"."t" ADD COLUMN "new" JSONB, ALTER COLUMN "at" TYPE TIMESTAMPTZ, '
        'ALTER COLUMN "id" DROP NOT NULL',
    ]
    assert p.schema.columns["id"].type == T.BIGINT and p.schema.columns["id"].nullable
    assert p.to_dict()["delta"]["summary"]["widen"] == 2


def test_nothing_new_passes_and_keeps_the_version():
    p, v = run(CURRENT, [{"id": 1, "name": "x", "at": "2024-01-01 10:00:00"}])
    assert p.decision == "pass" and p.ddl == [] and p.schema.version == 4
    assert not v.issues and v.report["accepted"] == 1


def test_no_ddl_ever_drops_a_column():
    p, _ = run(CURRENT, [{"other": 1}])
    assert not any("DROP COLUMN" in s.upper() for s in p.ddl)
    assert {c.column for c in p.delta.by_op("missing")} == {"id", "name", "at"}


@pytest.mark.parametrize(
    ("mode", "decision", "issues", "patches"),
    [
        ("evolve", "pass", [(1, "type_mismatch")], {}),
        ("quarantine", "pass", [(1, "type_mismatch")], {}),
        ("discard_row", "pass", [(1, "discarded_row")], {}),
        ("discard_value", "pass", [], {1: {"name": None}}),
        ("freeze", "block", [], {}),
    ],
)
def test_data_type_modes(mode, decision, issues, patches):
    cur = table(id=(T.BIGINT, True), name=(T.DATE, True))
    p, v = run(
        cur, [{"id": 1, "name": "2024-01-01"}, {"id": 2, "name": "not a date"}], {"data_type": mode}
    )
    assert v.decision == decision
    assert [(i.row, i.reason) for i in v.issues] == issues
    assert v.patches == patches
    out = merge(2, [v])
    assert out.rows_loaded + out.rows_quarantined == (0 if decision == "block" else 2)
    if decision == "block":
        assert p.decision == "reject" and "name" in v.reason


def test_overrides_win_over_the_table_mode():
    contract = Contract.from_config({"columns": "freeze", "overrides": {"extra": "evolve"}})
    p, v = run(CURRENT, [{"id": 1, "extra": 1}], contract)
    assert p.decision == "evolve" and not v.issues
    p, v = run(CURRENT, [{"id": 1, "other": 1}], contract)
    assert p.decision == "reject" and v.decision == "block" and "other" in p.reason


def test_tables_mode_on_a_first_load():
    p, v = run(None, [{"a": 1}, {"a": 2}], {"tables": "quarantine"})
    assert p.decision == "pass" and p.ddl == [] and not p.table_exists
    assert [i.reason for i in v.issues] == ["no_table", "no_table"]
    p, v = run(None, [{"a": 1}], "freeze")
    assert p.decision == "reject" and v.decision == "block"


def test_null_only_columns_are_deferred():
    p, _ = run(None, [{"a": 1, "b": None}])
    assert [c.action for c in p.delta if c.column == "b"] == ["defer"]
    assert list(p.schema.columns) == ["a"]


def test_not_null_missing_key_per_contract():
    cur = table(id=(T.BIGINT, False))
    p, v = run(
        cur, [{"id": 1}, {"x": "y"}], {"data_type": "quarantine", "columns": "discard_value"}
    )
    assert p.decision == "pass"
    assert [(i.row, i.reason, i.column) for i in v.issues] == [(1, "not_null", "id")]


def test_messages_never_hold_the_raw_value():
    cur = table(ssn=(T.BIGINT, True))
    _, v = run(cur, [{"ssn": "123-45-6789"}])
    assert "123-45-6789" not in v.issues[0].message and "12*" in v.issues[0].message


def test_postgres_rejects_nul_characters_duckdb_does_not():
    cur = table(s=(T.TEXT, True), j=(T.JSON, True))
    rows = [{"s": "ok", "j": {"a": "b"}}, {"s": "a\x00b", "j": {"a": "\x00"}}]
    _, v = run(cur, rows)
    assert [(i.row, i.column) for i in v.issues] == [(1, "s")]
    assert v.issues[0].message.endswith(
        "it holds a NUL character (\\x00), which the database cannot store"
    )
    _, v = run(cur, rows, dialect="duckdb")
    assert not v.issues


def test_duckdb_decimal_bounds():
    cur = table(d=(T.DECIMAL, True))
    _, v = run(cur, [{"d": 1.5}, {"d": 10**30}, {"d": 1e-12}], dialect="duckdb")
    assert [i.row for i in v.issues] == [1, 2]
    _, v = run(cur, [{"d": 1.5}, {"d": 10**30}, {"d": 1e-12}], dialect="postgres")
    assert not v.issues


def test_csv_values_fit_typed_columns():
    cur = table(n=(T.BIGINT, True), b=(T.BOOLEAN, True), d=(T.DATE, True))
    b = batch([{"n": "12", "b": "true", "d": "2024-01-01"}, {"n": "x", "b": "no", "d": "1"}], "csv")
    p = plan(cur, infer(b), {"data_type": "quarantine"}, "postgres", "t")
    v = check_rows(b, p)
    assert [(i.row, i.column) for i in v.issues] == [(1, "n")]
    assert coerce_row(b.records[0], p.schema) == {"n": 12, "b": True, "d": dt.date(2024, 1, 1)}


def test_coerce_row_types():
    schema = Schema(
        {
            "i": Column("i", T.BIGINT), "f": Column("f", T.DOUBLE), "m": Column("m", T.DECIMAL),
            "t": Column("t", T.TEXT), "d": Column("d", T.DATE), "ts": Column("ts", T.TIMESTAMP),
            "tz": Column("tz", T.TIMESTAMPTZ), "j": Column("j", T.JSON),
            "long" * 20: Column("long" * 20, T.BOOLEAN, ident="short"),
        }
    )  # fmt: skip
    rec = {
        "i": 2.0, "f": 1, "m": 0.1, "t": 5, "d": "2024-02-29", "ts": "2024-01-01T10:00:00.5",
        "tz": "2024-01-01T10:00:00", "j": [1, {"a": None}], "long" * 20: True, "extra": 1,
    }  # fmt: skip
    got = coerce_row(rec, schema)
    assert got == {
        "i": 2, "f": 1.0, "m": Decimal("0.1"), "t": "5", "d": dt.date(2024, 2, 29),
        "ts": dt.datetime(2024, 1, 1, 10, 0, 0, 500000),
        "tz": dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC), "j": '[1,{"a":null}]', "short": True,
    }  # fmt: skip
    assert row_converter(schema)(rec) == tuple(got.values())
    assert coerce_row({}, schema)["i"] is None


def test_contract_from_config_and_inline():
    assert Contract.from_config(None).to_dict() == {
        "tables": "evolve",
        "columns": "evolve",
        "data_type": "evolve",
    }
    c = Contract.parse("columns=freeze,overrides.a.b.data_type=discard_value")
    assert c.columns == "freeze" and c.mode("data_type", "a.b") == "discard_value"
    assert c.mode("data_type", "other") == "evolve"
    with pytest.raises(InputError) as info:
        Contract.from_config({"columns": "explode"})
    assert info.value.key == "contract.columns"
    with pytest.raises(InputError):
        Contract.from_config({"column": "freeze"})
    with pytest.raises(InputError, match="no such contract file"):
        Contract.parse("missing.yaml")


def test_contract_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("contract:\n  columns: quarantine\n  overrides:\n    price: {data_type: freeze}\n")
    c = Contract.parse(str(f))
    assert c.columns == "quarantine" and c.mode("data_type", "price") == "freeze"


CONFIGS = [
    "freeze",
    {"tables": "evolve", "columns": "quarantine", "data_type": "discard_row"},
    {"overrides": {"price": "freeze", "id": {"data_type": "discard_value"}}},
    {},
]
BAD_CONFIGS = [
    "melt",
    {"columns": "melt"},
    {"colums": "freeze"},
    {"overrides": {"a": {"x": "freeze"}}},
]


def _contract_validator():
    doc = json.loads(
        resources.files("pipewarden").joinpath("pipeline_config_schema.json").read_text()
    )
    return jsonschema.Draft202012Validator({"$defs": doc["$defs"], "$ref": "#/$defs/contract"})


@pytest.mark.parametrize("config", CONFIGS)
def test_config_schema_and_contract_agree_on_good(config):
    assert _contract_validator().is_valid(config)
    Contract.from_config(config)


@pytest.mark.parametrize("config", BAD_CONFIGS)
def test_config_schema_and_contract_agree_on_bad(config):
    assert not _contract_validator().is_valid(config)
    with pytest.raises(InputError):
        Contract.from_config(config)


def test_json_schema_round_trip():
    s = table(id=(T.BIGINT, False), at=(T.TIMESTAMPTZ, True), d=(T.DATE, True), m=(T.DECIMAL, True),
              j=(T.JSON, True), t=(T.TIMESTAMP, True), b=(T.BOOLEAN, False))  # fmt: skip
    back = from_json_schema(to_json_schema(s))
    assert [(c.name, c.type, c.nullable) for c in back.columns.values()] == [
        (c.name, c.type, c.nullable) for c in s.columns.values()
    ]
    anyof = from_json_schema(
        {"properties": {"x": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}
    )
    assert anyof.columns["x"].type == T.BIGINT and anyof.columns["x"].nullable


def test_schema_file_round_trip_and_hash():
    s = table(a=(T.BIGINT, False))
    s.columns["a"].ident = "a"
    d = s.to_dict()
    assert Schema.from_dict(d).content_hash() == d["hash"]
    with pytest.raises(ValueError, match="unknown type"):
        Schema.from_dict({"columns": [{"name": "a", "type": "varchar"}]})


def test_a_batch_without_typed_values_creates_nothing_and_holds_its_rows():
    p, v = run(None, [{}, {"a": None}])
    assert p.ddl == [] and p.schema.version == 0 and not p.table_exists
    assert [i.reason for i in v.issues] == ["no_table", "no_table"]
    # the next batch with values is a first load again
    p2 = plan(p.schema, infer(batch([{"a": 1}])), None, "postgres", "t", "ns")
    assert p2.ddl[-1].startswith("CREATE TABLE") and p2.schema.version == 1


def test_postgres_column_limit_rejects_instead_of_failing_the_ddl():
    """PostgreSQL tables hold at most 1,600 columns: a plan beyond that is rejected with the
    reason, where the CREATE or ALTER would fail in the database."""
    wide = [{f"c{j}": j for j in range(1601)}]
    p = plan(None, infer(batch(wide)), dialect="postgres")
    assert p.decision == "reject" and not p.ddl
    assert "1,601 columns and postgres allows at most 1,600" in p.reason
    assert plan(None, infer(batch(wide)), dialect="duckdb").decision == "evolve"
    current = table(**{f"c{j}": (T.BIGINT, True) for j in range(1599)})
    assert plan(current, infer(batch([{"c0": 1, "n1": 1}])), dialect="postgres").ddl
    over = plan(current, infer(batch([{"n1": 1, "n2": 2}])), dialect="postgres")
    assert over.decision == "reject" and not over.ddl and "1,601 columns" in over.reason


def test_a_key_with_a_nul_is_rejected_where_the_database_cannot_store_it():
    """PostgreSQL's jsonb (schema history, raw rows) cannot hold U+0000, even in a key: the
    batch used to fail on every run with UntranslatableCharacter; the plan rejects it with the
    key and what to do. DuckDB stores it."""
    rows = [{"id": 1, "x\x00y": "v"}]
    p = plan(None, infer(batch(rows)), dialect="postgres")
    assert p.decision == "reject" and not p.ddl
    assert "'x\\x00y' holds a NUL character" in p.reason and "rename the key" in p.reason
    current = table(id=(T.BIGINT, True))
    later = plan(current, infer(batch(rows)), dialect="postgres")
    assert later.decision == "reject" and not later.ddl
    assert plan(None, infer(batch(rows)), dialect="duckdb").decision == "evolve"
