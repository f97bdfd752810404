"""The run on real-world shapes, both stores: records inside an object, CSV rows that leave
trailing fields off, CSV number text into double columns, numbers a double cannot hold."""

from __future__ import annotations

import json
from decimal import Decimal

from runkit import UBUNTU, assert_conserved, jsonl

from pipewarden.cli import main
from pipewarden.run import list_quarantine, run_pipeline


def _csv_project(project, short_rows: str | None = None):
    extra = f"  csv:\n    short_rows: {short_rows}\n" if short_rows else ""
    p = project.root / "pipeline.yaml"
    p.write_text(
        f'version: 1\ndataset: orders\nsource:\n  path: "in/*.csv"\n{extra}' + project.store_yaml
    )
    (project.root / "in" / "ubuntu.csv").write_text(UBUNTU)
    return p


def test_short_rows_are_padded_by_default_and_counted(project):
    rep = run_pipeline(_csv_project(project), fmt="json")
    b = rep["batches"][0]
    assert rep["exit_code"] == 0 and b["rows_loaded"] == 3 and b["rows_padded"] == 2
    s = project.store()
    try:
        rows = s._aux_query(f'SELECT series, "eol-elts" FROM {s.qualify("orders")} ORDER BY 1')
    finally:
        s.close()
    assert [(r[0], None if r[1] is None else str(r[1])) for r in rows] == [
        ("dapper", None),
        ("trusty", "2034-04-25"),
        ("warty", None),
    ]


def test_short_rows_quarantine_holds_them_with_the_reason(project):
    rep = run_pipeline(_csv_project(project, "quarantine"), fmt="json")
    b = rep["batches"][0]
    assert (b["rows_loaded"], b["rows_quarantined"]) == (1, 2)
    assert b["reasons"] == {"short_row": 2}
    assert_conserved(rep)
    q = list_quarantine(project.cfg)
    assert sorted(r["row"] for r in q["rows"]) == [1, 2]
    assert {r["reason"] for r in q["rows"]} == {"short_row"}
    assert "the row has 6 fields, the header has 9" in q["rows"][0]["message"]


def test_short_rows_error_is_bad_input_with_the_real_cause(project, capsys):
    cfg = _csv_project(project, "error")
    assert main(["run", str(cfg), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    err = doc["batches"][0]["error"]
    assert "row 1" in err and "left off" in err and "short_rows" in err
    assert project.counts()["orders"] == 0


def test_records_inside_an_object(project):
    project.config(extra="")
    (project.root / "pipeline.yaml").write_text(
        "version: 1\ndataset: orders\n"
        'source:\n  path: "in/*.json"\n  records_path: data\n' + project.store_yaml
    )
    page = {"data": [{"id": 1, "lang": "en"}, {"id": 2, "lang": "de"}], "next": None}
    (project.root / "in" / "p1.json").write_text(json.dumps(page, indent=2))
    (project.root / "in" / "p2.json").write_text(json.dumps({"data": [], "next": None}))
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["rows_loaded"] for b in rep["batches"]] == [2, 0] and rep["exit_code"] == 0


def test_records_path_is_checked_in_the_config(project, capsys):
    (project.root / "pipeline.yaml").write_text(
        "version: 1\ndataset: orders\n"
        'source:\n  path: "in/*.json"\n  records_path: "a..b"\n' + project.store_yaml
    )
    assert main(["run", str(project.cfg), "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out)["key"] == "source.records_path"


def test_csv_number_text_fits_a_double_column(project):
    """The column was created as double by a JSON batch; CSV text 1.75 is a double too
    (it used to be read as a decimal that "does not fit the double column"), and text a
    double cannot hold is held with the reason, not stored as 0."""
    (project.root / "pipeline.yaml").write_text(
        "version: 1\ndataset: orders\n"
        'source:\n  path: "in/*"\n' + project.store_yaml + "contract:\n  data_type: quarantine\n"
    )
    jsonl(project.root / "in" / "a.jsonl", [{"id": 1, "score": 0.5}])
    (project.root / "in" / "b.csv").write_text(
        "id,score\n2,1.75\n3,3\n4,1.0e-400\n5,12345678901234567890\n6,-0.125\n"
    )
    rep = run_pipeline(project.cfg, fmt="json")
    b = rep["batches"][1]
    assert (b["rows_loaded"], b["rows_quarantined"]) == (3, 2), b
    assert b["ddl"] == [] and not b["delta"]["changes"]
    s = project.store()
    try:
        got = s._aux_query(f"SELECT id, score FROM {s.qualify('orders')} ORDER BY id")
    finally:
        s.close()
    assert [(int(i), float(v)) for i, v in got] == [(1, 0.5), (2, 1.75), (3, 3.0), (6, -0.125)]
    msgs = {r["row"]: r["message"] for r in list_quarantine(project.cfg)["rows"]}
    assert "beyond the range of a double" in msgs[3]
    assert "2**53" in msgs[4]


def test_json_numbers_beyond_a_double_are_not_stored_as_zero(project):
    jsonl(project.root / "in" / "a.jsonl", [{"order_id": 1, "x": 0.5}])
    (project.root / "in" / "b.jsonl").write_text(
        '{"order_id": 2, "x": 1.0e-400}\n{"order_id": 3, "x": 1e400}\n{"order_id": 4, "x": 2.5,'
        ' "tiny": 1e-400}\n'
    )
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["exit_code"] == 0
    b = rep["batches"][1]
    assert_conserved(rep)
    s = project.store()
    try:
        xs = s._aux_query(f"SELECT order_id, x FROM {s.qualify('orders')} ORDER BY order_id")
        tiny = s._aux_query(f"SELECT tiny FROM {s.qualify('orders')} WHERE order_id = 4")
    finally:
        s.close()
    loaded = [int(r[0]) for r in xs]
    assert all(r[1] not in (0.0, float("inf")) for r in xs)  # no 0.0, no infinity
    held = {r["row"]: r for r in list_quarantine(project.cfg)["rows"]}
    assert {1, 2} <= set(held) and "beyond the range of a double" in held[1]["message"]
    if project.kind == "postgres":  # numeric keeps 1e-400 exactly
        assert b["rows_quarantined"] == 2 and Decimal(tiny[0][0]) == Decimal("1e-400")
        assert loaded == [1, 4]
    else:  # DuckDB's DECIMAL(38,9) cannot: the row is held, never rounded to 0
        assert b["rows_quarantined"] == 3 and 3 in held and loaded == [1] and not tiny
