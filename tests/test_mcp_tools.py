"""Every MCP tool against the CLI: the same input gives the tool's structured ``result`` equal
to `pipewarden ... --format json` (the clocks aside), its exit code, and the CLI's error
message for a refused call. Two identical twins (folders, and stores: DuckDB files or two
PostgreSQL schemas) take the same steps, the CLI on one, the MCP client on the other, so the
tools that write are compared on the same state."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from mcpkit import Session, cli_json, normal
from runkit import Project, jsonl, orders

import pipewarden

SAMPLE = Path(pipewarden.__file__).parent / "data" / "sample"


class Twins:
    def __init__(self, capsys, session: Session, a: Project, b: Project, subs: dict[str, str]):
        self.capsys, self.session, self.a, self.b, self.subs = capsys, session, a, b, subs

    def same(self, tool: str, make) -> dict:
        """``make(project) -> (tool arguments, CLI words)``: the CLI on twin a, the tool on
        twin b; asserts they agree and returns the tool's structured content."""
        _, words = make(self.a)
        arguments, _ = make(self.b)
        code, doc, err = cli_json(self.capsys, *words)
        res = self.session.call(tool, **arguments)
        if code == 2 or (code == 1 and doc is not None and "error" in doc and len(doc) <= 8
                         and "sqlstate" in doc):  # fmt: skip
            assert res.is_error, (tool, res.structured_content)
            text = res.content[0].text
            assert f"exit {code} (" in text
            message = (doc or {}).get("error") or err.split("error:", 1)[-1].strip()
            assert normal(message, self.subs)[:60] in normal(text, self.subs), (text, err)
            return {"error": text}
        assert not res.is_error, (tool, words, res.content[0].text, err)
        got = res.structured_content
        assert got["exit_code"] == code and got["passed"] is (code == 0), (tool, got, err)
        mine, theirs = normal(got["result"], self.subs), normal(doc, self.subs)
        assert mine == theirs, (
            f"{tool}\nmcp: {json.dumps(mine)[:3000]}\ncli: {json.dumps(theirs)[:3000]}"
        )
        return got


def _write_twin(root: Path, store_yaml: str, url: str, ns: str | None, kind: str) -> Project:
    root.mkdir()
    p = Project(root, store_yaml, url, ns, kind)
    p.config(
        contract="contract:\n  columns: evolve\n  data_type: quarantine\n",
        extra="steps:\n  - type: guardian\n    policy: policy.yaml\n"
        "docs:\n  path: docs\n  git: 'off'\n",
    )
    shutil.copy(SAMPLE / "policy.yaml", root / "policy.yaml")
    jsonl(root / "in" / "b1.jsonl", orders(1, 30))
    jsonl(root / "in" / "b2.jsonl", orders(30, 40) + [{"order_id": 40, "email": "x@y.org",
                                                        "amount": "lots", "quantity": 1}])  # fmt: skip
    (root / "task.log").write_text(
        "Traceback (most recent call last):\n"
        '  File "etl.py", line 3, in <module>\n'
        'psycopg.errors.UndefinedColumn: column "amount" does not exist\n'
    )
    return p


@pytest.fixture(params=["duckdb", "postgres"])
def twins(request, tmp_path, capsys):
    if request.param == "duckdb":
        pair = []
        for name in ("a", "b"):
            root = tmp_path / name
            store_yaml = "store:\n  kind: duckdb\n  path: wh.duckdb\n"
            pair.append(_write_twin(root, store_yaml, str(root / "wh.duckdb"), None, "duckdb"))
        subs = {}
    else:
        import psycopg

        dsn, schema_a = request.getfixturevalue("pg_schema")
        schema_b = f"pwtest_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'create schema "{schema_b}"')
        request.addfinalizer(lambda: _drop(dsn, schema_b))
        pair = []
        for name, schema in (("a", schema_a), ("b", schema_b)):
            store_yaml = f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
            pair.append(_write_twin(tmp_path / name, store_yaml, dsn, schema, "postgres"))
        subs = {schema_a: "<ns>", schema_b: "<ns>"}
    subs = {str(tmp_path / "a"): "<root>", str(tmp_path / "b"): "<root>", **subs}
    with Session() as session:
        yield Twins(capsys, session, pair[0], pair[1], subs)


def _drop(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'drop schema if exists "{schema}" cascade')


def _store(p: Project) -> dict:
    """The store as tools name it: a DuckDB file, or the DSN and the schema."""
    return {"store": p.url} if p.ns is None else {"store": p.url, "schema": p.ns}


@pytest.mark.postgres
def test_every_store_tool_agrees_with_the_cli(twins):
    t = twins
    cfg = lambda p: str(p.cfg)  # noqa: E731
    # nothing loaded yet: a store that does not exist is the CLI's exit 2 (DuckDB), or empty
    t.same("quarantine_list", lambda p: ({"config": cfg(p)}, ["quarantine", "list", cfg(p)]))
    # the run: writes, so it refuses without confirm
    assert "confirm=true" in t.session.error("run", config=cfg(t.b))
    got = t.same("run", lambda p: ({"config": cfg(p), "confirm": True}, ["run", cfg(p)]))
    assert got["result"]["totals"]["rows_quarantined"] == 1
    t.same("quarantine_list", lambda p: ({"config": cfg(p)}, ["quarantine", "list", cfg(p)]))
    t.same("quarantine_list", lambda p: (
        {**_store(p), "dataset": "orders", "reason": "type_mismatch", "limit": 5},
        ["quarantine", "list", f"--store={p.url}", *([f"--schema={p.ns}"] if p.ns else []),
         "--dataset=orders", "--reason=type_mismatch", "--limit=5"]))  # fmt: skip
    # the schema sentinel against the table's current version
    t.same("sentinel_plan", lambda p: (
        {"source": str(p.root / "in" / "b2.jsonl"), "dsn": p.url, "table": "orders",
         **({"namespace": p.ns} if p.ns else {}), "contract": "freeze"},
        ["sentinel", f"--source={p.root / 'in' / 'b2.jsonl'}", f"--dsn={p.url}",
         "--table=orders", *([f"--namespace={p.ns}"] if p.ns else []),
         "--contract=freeze"]))  # fmt: skip
    jsonl(t.a.root / "new.jsonl", orders(50, 52, channel="web"))
    jsonl(t.b.root / "new.jsonl", orders(50, 52, channel="web"))
    got = t.same("sentinel_apply", lambda p: (
        {"source": str(p.root / "new.jsonl"), "dsn": p.url, "table": "orders",
         **({"namespace": p.ns} if p.ns else {}), "confirm": True},
        ["sentinel", f"--source={p.root / 'new.jsonl'}", f"--dsn={p.url}", "--table=orders",
         *([f"--namespace={p.ns}"] if p.ns else []), "--apply"]))  # fmt: skip
    assert got["result"]["applied"]
    # the breaker: a config without an anomaly step has none yet
    t.same("breaker_status", lambda p: ({"config": cfg(p)}, ["breaker", "status",
                                                             f"--config={cfg(p)}"]))  # fmt: skip
    t.same("anomaly_check_batch", lambda p: (
        {"data": str(p.root / "in" / "b1.jsonl"), "config": cfg(p), "dataset": "orders",
         "confirm": True},
        ["anomaly", "score", f"--data={p.root / 'in' / 'b1.jsonl'}", "--circuit-breaker",
         f"--config={cfg(p)}", "--dataset=orders"]))  # fmt: skip
    t.same("breaker_status", lambda p: ({"config": cfg(p), "dataset": "orders"},
                                        ["breaker", "status", f"--config={cfg(p)}",
                                         "--dataset=orders"]))  # fmt: skip
    t.same(
        "breaker_reset",
        lambda p: (
            {"config": cfg(p), "dataset": "orders", "rebaseline": True, "confirm": True},
            ["breaker", "reset", f"--config={cfg(p)}", "--dataset=orders", "--rebaseline"],
        ),
    )
    # the docs of the store
    t.same("docs_check", lambda p: ({"config": cfg(p)}, ["docs", "check", cfg(p)]))
    t.same("docs_build", lambda p: ({"config": cfg(p), "confirm": True},
                                    ["docs", "build", cfg(p)]))  # fmt: skip
    t.same("docs_check", lambda p: ({"config": cfg(p), "datasets": ["orders"]},
                                    ["docs", "check", cfg(p), "--dataset=orders"]))  # fmt: skip
    # the ingestion memory, the incident memory and the failure explained
    t.same("ingest_status", lambda p: ({"config": cfg(p)}, ["ingest", "status",
                                                           f"--config={cfg(p)}"]))  # fmt: skip
    t.same("ingest_reset", lambda p: ({"config": cfg(p), "source": "api", "confirm": True},
                                      ["ingest", "reset", f"--config={cfg(p)}", "api"]))  # fmt: skip
    t.same("rca", lambda p: ({"log": str(p.root / "task.log"), "config": cfg(p)},
                             ["rca", str(p.root / "task.log"), f"--config={cfg(p)}",
                              "--no-record"]))  # fmt: skip
    t.same("incidents_list", lambda p: ({"config": cfg(p)}, ["incidents", "list",
                                                             f"--config={cfg(p)}"]))  # fmt: skip
    t.same(
        "incidents_resolve",
        lambda p: (
            {"fingerprint": "0123abcd", "fix": "add-column", "config": cfg(p), "confirm": True},
            ["incidents", "resolve", "0123abcd", "--fix=add-column", f"--config={cfg(p)}"],
        ),
    )
    # the contract relaxed (text in a number column is now discarded): the replay loads it
    for p in (t.a, t.b):
        p.config(contract="contract:\n  columns: evolve\n  data_type: discard_value\n",
                 extra="steps:\n  - type: guardian\n    policy: policy.yaml\n")  # fmt: skip
    got = t.same("quarantine_replay", lambda p: ({"config": cfg(p), "confirm": True},
                                                 ["quarantine", "replay", cfg(p)]))  # fmt: skip
    assert got["result"]["rows_replayed"] == 1
    t.same("impute", lambda p: (
        {"data": str(p.root / "in" / "b1.jsonl"), **_store(p), "dataset": "orders"},
        ["impute", f"--data={p.root / 'in' / 'b1.jsonl'}", f"--store={p.url}",
         *([f"--schema={p.ns}"] if p.ns else []), "--dataset=orders"]))  # fmt: skip


def test_the_file_tools_agree_with_the_cli(tmp_path, capsys):
    """The tools that need no store: scaffold, validate, guard, anomaly, impute, features."""
    roots = {}
    for name in ("a", "b"):
        root = roots[name] = tmp_path / name
        root.mkdir()
        shutil.copy(SAMPLE / "policy.yaml", root / "policy.yaml")
        rows = [{**r, "ssn": "123-45-6789" if r["order_id"] % 7 == 0 else None,
                 "day": f"2024-05-{1 + r['order_id'] % 28:02d}",
                 "total": r["amount"] * r["quantity"] + (r["order_id"] % 3)}
                for r in orders(1, 121)]  # fmt: skip
        for r in rows[::9]:
            r["amount"] = None
        jsonl(root / "batch.jsonl", rows)
        (root / "graph.json").write_text(json.dumps([["a", "b"], ["b", "c"], ["c", "a"]]))
        (root / "bad_policy.yaml").write_text(
            "version: 1\nrules:\n  - entity: EMAIL\n    action: shred\n"
        )
    a, b = Project.__new__(Project), Project.__new__(Project)
    a.root, b.root = roots["a"], roots["b"]
    subs = {str(roots["a"]): "<root>", str(roots["b"]): "<root>"}
    with Session() as session:
        t = Twins(capsys, session, a, b, subs)
        f = lambda p, name: str(p.root / name)  # noqa: E731
        for kind in ("airflow", "mage", "dbt"):
            assert "confirm=true" in session.error("scaffold", kind=kind, name="orders",
                                                   dir=str(b.root / kind))  # fmt: skip
            t.same("scaffold", lambda p, k=kind: (
                {"kind": k, "name": "orders", "dir": f(p, k), "confirm": True},
                ["scaffold", k, "orders", f"--dir={f(p, k)}"]))  # fmt: skip
        # a clash is the CLI's exit 2, word for word
        t.same("scaffold", lambda p: ({"kind": "dbt", "name": "orders", "dir": f(p, "dbt"),
                                       "confirm": True},
                                      ["scaffold", "dbt", "orders", f"--dir={f(p, 'dbt')}"]))  # fmt: skip
        t.same("validate_dag", lambda p: ({"paths": [f(p, "airflow/dags")], "cache": False},
                                          ["validate", "dag", f(p, "airflow/dags"),
                                           "--no-cache"]))  # fmt: skip
        t.same("validate_pipeline", lambda p: ({"paths": [f(p, "mage")]},
                                               ["validate", "pipeline", f(p, "mage")]))  # fmt: skip
        t.same("validate_cycles", lambda p: ({"paths": [f(p, "graph.json")]},
                                             ["validate", "cycles", f(p, "graph.json")]))  # fmt: skip
        t.same("guard_scan", lambda p: ({"data": f(p, "batch.jsonl"), "policy": f(p, "policy.yaml"),
                                         "strict": True, "max_findings": 5},
                                        ["guard", "scan", f"--data={f(p, 'batch.jsonl')}",
                                         f"--policy={f(p, 'policy.yaml')}", "--strict",
                                         "--max-findings=5"]))  # fmt: skip
        t.same("guard_mask", lambda p: (
            {"data": f(p, "batch.jsonl"), "output": f(p, "masked.jsonl"), "confirm": True},
            ["guard", "scan", f"--data={f(p, 'batch.jsonl')}",
             f"--output={f(p, 'masked.jsonl')}"]))  # fmt: skip
        assert (a.root / "masked.jsonl").read_bytes() == (b.root / "masked.jsonl").read_bytes()
        t.same("guard_policy_check", lambda p: ({"policy": f(p, "bad_policy.yaml")},
                                                ["guard", "policy-check",
                                                 f(p, "bad_policy.yaml")]))  # fmt: skip
        t.same("guard_eval", lambda p: ({"min_f2": 0.5}, ["guard", "eval", "--min-f2=0.5"]))
        t.same("anomaly_train", lambda p: (
            {"data": f(p, "batch.jsonl"), "out": f(p, "model"), "exclude": ["ssn"],
             "confirm": True},
            ["anomaly", "train", f"--data={f(p, 'batch.jsonl')}", f"--out={f(p, 'model')}",
             "--exclude=ssn"]))  # fmt: skip
        t.same("anomaly_score", lambda p: (
            {"data": f(p, "batch.jsonl"), "model": f(p, "model"), "threshold": 0.6},
            ["anomaly", "score", f"--data={f(p, 'batch.jsonl')}", f"--model={f(p, 'model')}",
             "--threshold=0.6"]))  # fmt: skip
        t.same("impute", lambda p: ({"data": f(p, "batch.jsonl"), "seed": 1},
                                    ["impute", f"--data={f(p, 'batch.jsonl')}", "--seed=1"]))  # fmt: skip
        t.same("impute_fill", lambda p: (
            {"data": f(p, "batch.jsonl"), "out": f(p, "filled.jsonl"), "seed": 1,
             "confirm": True},
            ["impute", f"--data={f(p, 'batch.jsonl')}", f"--out={f(p, 'filled.jsonl')}",
             "--seed=1"]))  # fmt: skip
        t.same("features_discover", lambda p: (
            {"data": f(p, "batch.jsonl"), "target": "total", "out": f(p, "spec.json"),
             "max_features": 3, "confirm": True},
            ["features", "discover", f"--data={f(p, 'batch.jsonl')}", "--target=total",
             f"--out={f(p, 'spec.json')}", "--max-features=3"]))  # fmt: skip
        t.same(
            "features_emit",
            lambda p: (
                {"spec": f(p, "spec.json"), "dir": f(p, "dbt"), "confirm": True},
                ["features", "emit", f"--spec={f(p, 'spec.json')}", f"--dir={f(p, 'dbt')}"],
            ),
        )
        # a missing file: the CLI's message, the exit class, no traceback
        text = session.error("guard_scan", data=f(b, "nope.jsonl"))
        assert text.startswith("Error executing tool guard_scan: exit 2 (bad input or call): ")
        assert "no such file" in text and "Traceback" not in text
