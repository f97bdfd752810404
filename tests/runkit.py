"""What the tests of the main job share: a project directory with a pipeline.yaml for either
store (the ``project`` fixture in conftest.py), sample orders, and the conservation check."""

from __future__ import annotations

import json
from pathlib import Path

from pipewarden.store import open_store

# Debian's distro-info-data ubuntu.csv shape: trailing empty fields are left off
UBUNTU = (
    "version,codename,series,created,release,eol,eol-server,eol-esm,eol-elts\n"
    "4.10,Warty Warthog,warty,2004-03-05,2004-10-20,2006-04-30\n"
    "6.06 LTS,Dapper Drake,dapper,2005-10-20,2006-06-01,2009-07-14,2011-06-01\n"
    "14.04 LTS,Trusty Tahr,trusty,2013-10-17,2014-04-17,2019-04-25,2019-04-25,2024-04-25,"
    "2034-04-25\n"
)


def jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def orders(lo: int, hi: int, **extra) -> list[dict]:
    return [
        {
            "order_id": i,
            "email": f"user{i}@example.com",
            "amount": round(i * 1.5, 2),
            "quantity": i % 5,
            **extra,
        }
        for i in range(lo, hi)
    ]


def make_project(request, tmp_path):
    """A directory with a pipeline.yaml for the store under test; returns a helper."""
    if request.param == "duckdb":
        store_yaml = "store:\n  kind: duckdb\n  path: wh.duckdb\n"
        url, ns = str(tmp_path / "wh.duckdb"), None
    else:
        dsn, schema = request.getfixturevalue("pg_schema")
        store_yaml = f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
        url, ns = dsn, schema
    return Project(tmp_path, store_yaml, url, ns, request.param)


class Project:
    def __init__(self, root: Path, store_yaml: str, url: str, ns: str | None, kind: str):
        self.root, self.store_yaml, self.url, self.ns, self.kind = root, store_yaml, url, ns, kind
        (root / "in").mkdir()
        self.config(contract="contract:\n  columns: evolve\n  data_type: quarantine\n")

    def config(self, contract: str = "", chunk_rows: int = 4, extra: str = "") -> Path:
        p = self.root / "pipeline.yaml"
        p.write_text(
            "version: 1\ndataset: orders\n"
            f'source:\n  path: "in/*.jsonl"\n  chunk_rows: {chunk_rows}\n'
            + self.store_yaml
            + contract
            + extra
        )
        return p

    @property
    def cfg(self) -> Path:
        return self.root / "pipeline.yaml"

    def store(self):
        return open_store(self.url, namespace=self.ns)

    def counts(self) -> dict[str, int]:
        s = self.store()
        try:
            out = {}
            for t in ("orders", "orders__raw", "orders__quarantine", "_pw_batches"):
                out[t] = s.count(t) if s.has_table(t) else 0
            out["history"] = (
                s.count("_pw_schema_history") if s.has_table("_pw_schema_history") else 0
            )
            return out
        finally:
            s.close()


NOTHING = {"orders": 0, "orders__raw": 0, "orders__quarantine": 0, "_pw_batches": 0, "history": 0}


def _pg_project(pg_schema, tmp_path: Path) -> Project:
    dsn, schema = pg_schema
    store_yaml = f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
    return Project(tmp_path, store_yaml, dsn, schema, "postgres")


def assert_conserved(report: dict) -> None:
    for b in report["batches"]:
        if b["status"] == "loaded":
            assert b["rows_loaded"] + b["rows_quarantined"] == b["rows_read"], b
        else:
            assert b["rows_loaded"] == b["rows_quarantined"] == 0, b
