"""The guardian inside ``pipewarden run``: masked values are what lands, quarantined rows keep
their original payload, and the run's output shows no raw value. (Runs once the run and the
stores are part of the tree.)"""

from __future__ import annotations

import json

import pytest

RECORDS = [
    {
        "id": 1,
        "email": "jane.roe@example.com",
        "order_id": 345678912,
        "note": "call (212) 555-0199 please",
    },
    {
        "id": 2,
        "email": "john.doe@example.com",
        "order_id": 456789123,
        "note": "my ssn is 123-45-6788",
    },
    {"id": 3, "email": "max@example.org", "order_id": 567891234, "note": "nothing"},
]
RAW = ("jane.roe@example.com", "john.doe@example.com", "max@example.org", "555-0199", "123-45-6788")


def test_run_loads_masked_values_and_quarantines_the_ssn_row(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pipewarden.run")
    duckdb = pytest.importorskip("duckdb")
    from pipewarden.cli import main

    (tmp_path / "batch.json").write_text(json.dumps(RECORDS))
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nrules:\n"
        "  - {entity: EMAIL_ADDRESS, action: mask, method: hash}\n"
        "  - {entity: PHONE_NUMBER, action: mask, method: partial}\n"
        "  - {entity: US_SSN, action: quarantine}\n"
    )
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\ndataset: crm\nsource: {path: batch.json}\n"
        "store: {kind: duckdb, path: wh.duckdb}\nsteps:\n  - {type: guardian, policy: policy.yaml}\n"
    )
    monkeypatch.setenv("PIPEWARDEN_HASH_KEY", "test-key")
    code = main(["run", str(tmp_path / "pipeline.yaml"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for raw in RAW:
        assert raw not in out and raw not in err
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    loaded = con.execute("select id, email, note from crm order by id").fetchall()
    assert [r[0] for r in loaded] == [1, 3]
    assert all(r[1].startswith("hmac:") for r in loaded)
    assert loaded[0][2] == "call (***) ***-0199 please"
    raw_landing = json.dumps(con.execute("select * from crm__raw").fetchall(), default=str)
    for raw in RAW:
        assert raw not in raw_landing
    held = con.execute("select * from crm__quarantine").fetchall()
    assert len(held) == 1
    assert "123-45-6788" in json.dumps(held, default=str)  # the original payload is kept


def test_a_row_held_for_another_reason_lands_in_quarantine_masked(tmp_path, monkeypatch, capsys):
    """A row the sentinel quarantines (a key the table does not have) carries the guardian's masks into the
    quarantine table: masked PII is never written in clear, whatever step holds the row."""
    duckdb = pytest.importorskip("duckdb")
    from pipewarden.cli import main
    from pipewarden.run import replay_quarantine

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_1.json").write_text(json.dumps(RECORDS[:1]))
    odd = dict(RECORDS[2], coupon="X1", note="reach me at (212) 555-0199")
    (tmp_path / "in" / "a_2.json").write_text(json.dumps([RECORDS[1] | {"note": "ok"}, odd]))
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nrules:\n"
        "  - {entity: EMAIL_ADDRESS, action: mask, method: hash}\n"
        "  - {entity: PHONE_NUMBER, action: mask, method: partial}\n"
    )
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\ndataset: crm\nsource: {path: 'in/*.json'}\n"
        "store: {kind: duckdb, path: wh.duckdb}\n"
        "contract: {columns: quarantine}\n"
        "steps:\n  - {type: guardian, policy: policy.yaml}\n"
    )
    monkeypatch.setenv("PIPEWARDEN_HASH_KEY", "test-key")
    assert main(["run", str(tmp_path / "pipeline.yaml"), "--format", "json"]) == 0
    capsys.readouterr()
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    held = con.execute("select payload from crm__quarantine").fetchall()
    con.close()
    assert len(held) == 1
    payload = json.loads(held[0][0])
    assert payload["coupon"] == "X1"  # the reason it is held stays as it was
    assert payload["email"].startswith("hmac:") and payload["note"] == "reach me at (***) ***-0199"
    text = json.dumps(held)
    for raw in RAW:
        assert raw not in text
    # a replay after the cause is fixed loads the masked values, still never the raw ones
    (tmp_path / "pipeline.yaml").write_text(
        (tmp_path / "pipeline.yaml").read_text().replace("columns: quarantine", "columns: evolve")
    )
    assert replay_quarantine(tmp_path / "pipeline.yaml")["rows_replayed"] == 1
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    rows = json.dumps(con.execute("select * from crm").fetchall(), default=str)
    raw_landing = json.dumps(con.execute("select * from crm__raw").fetchall(), default=str)
    for raw in RAW:
        assert raw not in rows and raw not in raw_landing


@pytest.mark.parametrize("mode", ["quarantine", "discard_value"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_mask_on_a_number_column_follows_the_contract_instead_of_failing(
    tmp_path, capsys, mode, fmt
):
    """A phone number stored as a number is masked to text ('******0199'), which a bigint
    column cannot hold: the rows go where the contract's data_type mode sends any value that
    does not fit (held with the masked payload, or loaded with the value left out), instead of
    the whole batch failing on the load."""
    duckdb = pytest.importorskip("duckdb")
    from pipewarden.cli import main

    rows = [{"id": i, "cust_phone": 2125550190 + i, "qty": i} for i in range(1, 4)]
    if fmt == "json":
        (tmp_path / "b.json").write_text(json.dumps(rows))
    else:
        lines = ["id,cust_phone,qty"] + [f"{r['id']},{r['cust_phone']},{r['qty']}" for r in rows]
        (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nrules:\n  - {entity: PHONE_NUMBER, action: mask, method: partial}\n"
    )
    (tmp_path / "pipeline.yaml").write_text(
        f"version: 1\ndataset: orders\nsource: {{path: b.{fmt}}}\n"
        f"store: {{kind: duckdb, path: wh.duckdb}}\ncontract: {{data_type: {mode}}}\n"
        "steps:\n  - {type: guardian, policy: policy.yaml}\n"
    )
    assert main(["run", str(tmp_path / "pipeline.yaml"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (b,) = doc["batches"]
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    everything = json.dumps(
        [con.execute(f"select * from {t}").fetchall() for t in ("orders", "orders__raw")]
        + [con.execute("select payload from orders__quarantine").fetchall()],
        default=str,
    )
    for r in rows:
        assert str(r["cust_phone"]) not in everything
    if mode == "quarantine":
        assert (b["rows_loaded"], b["rows_quarantined"]) == (0, 3)
        assert b["reasons"] == {"type_mismatch": 3}
        payload = json.loads(con.execute("select payload from orders__quarantine").fetchone()[0])
        assert payload["cust_phone"].endswith("0191") and payload["cust_phone"].startswith("*")
    else:
        assert (b["rows_loaded"], b["rows_quarantined"]) == (3, 0)
        assert con.execute("select cust_phone, qty from orders order by id").fetchall() == [
            (None, 1),
            (None, 2),
            (None, 3),
        ]
