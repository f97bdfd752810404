"""The reflection loop with a real git repository in a temporary folder, on DuckDB and on the
real PostgreSQL: a schema change makes exactly one commit holding the docs and the migration
(nothing else of the user's, staged or not), a re-run makes none, descriptions survive
regeneration and reach the database as comments, `docs check` is a gate."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from pipewarden.cli import main
from pipewarden.reflect.model import bump, diff_schemas
from pipewarden.reflect.render import code, mermaid
from pipewarden.run import run_pipeline


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                         env=env, check=True)  # fmt: skip
    return out.stdout


def jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(params=["duckdb", "postgres"])
def repo(request, tmp_path, monkeypatch):
    """A git repository holding a pipeline config with docs.git: commit, on either store."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)  # no identity: the fallback is used
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(tmp_path, "init", "-q", "-b", "main")
    if request.param == "duckdb":
        store = "store:\n  kind: duckdb\n  path: wh.duckdb\n"
        conn = None
    else:
        dsn, schema = request.getfixturevalue("pg_schema")
        store = f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n"
        conn = (dsn, schema)
    (tmp_path / "in").mkdir()
    (tmp_path / ".gitignore").write_text("wh.duckdb*\nin/\n")
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\ndataset: orders\nsource:\n  path: in/*.jsonl\n" + store
        + "docs:\n  path: docs/data\n  git: commit\n"
    )  # fmt: skip
    git(tmp_path, "add", ".gitignore", "pipeline.yaml")
    git(tmp_path, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "init")
    out = RepoPath(tmp_path)
    out.kind, out.pg = request.param, conn
    return out


class RepoPath(type(Path())):
    """The repository's path, with the store under test (kind, PostgreSQL dsn and schema)."""


def commits(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%H").split()


def files_of(repo: Path, sha: str) -> list[str]:
    return sorted(git(repo, "show", "--name-only", "--format=", sha).split())


def test_a_schema_change_makes_one_commit_of_docs_and_migration_only(repo):
    # the user's own work: one file staged, one modified and not staged
    (repo / "notes.txt").write_text("mine, staged\n")
    git(repo, "add", "notes.txt")
    (repo / "pipeline.yaml").write_text((repo / "pipeline.yaml").read_text() + "# edited\n")
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1, "amount": 2.5}])
    before = commits(repo)
    report = run_pipeline(repo / "pipeline.yaml", fmt="json")
    assert report["exit_code"] == 0
    new = commits(repo)[: len(commits(repo)) - len(before)]
    assert len(new) == 1
    assert files_of(repo, new[0]) == [
        "docs/data/index.md", "docs/data/migrations/orders/0001_create.sql", "docs/data/orders.md",
    ]  # fmt: skip
    msg = git(repo, "log", "-1", "--format=%B")
    assert "docs(orders): schema new -> 1, docs - -> 0.1" in msg
    assert report["batches"][0]["batch_id"][:16] in msg and "b1.jsonl" in msg
    # the user's staged file is still staged, their edit still unstaged, neither committed
    status = git(repo, "status", "--porcelain")
    assert "A  notes.txt" in status and " M pipeline.yaml" in status
    assert "pipewarden" in git(repo, "log", "-1", "--format=%an")  # identity fallback

    # a second batch adding a column: one more commit, with the new migration
    jsonl(repo / "in" / "b2.jsonl", [{"order_id": 2, "amount": 1.0, "coupon": "X1"}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    new2 = commits(repo)
    assert len(new2) == len(before) + 2
    assert "docs/data/migrations/orders/0002_add_coupon.sql" in files_of(repo, new2[0])
    assert "notes.txt" not in files_of(repo, new2[0])
    mig = (repo / "docs/data/migrations/orders/0002_add_coupon.sql").read_text()
    assert "ADD COLUMN" in mig and "coupon" in mig and mig.startswith("-- pipewarden migration")
    # a re-run: every batch skipped, no commit
    again = run_pipeline(repo / "pipeline.yaml", fmt="json")
    assert {b["status"] for b in again["batches"]} == {"skipped"}
    assert commits(repo) == new2
    # a batch without a schema change: no commit either
    jsonl(repo / "in" / "b3.jsonl", [{"order_id": 3, "amount": 4.0, "coupon": "Y"}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    assert commits(repo) == new2
    assert "A  notes.txt" in git(repo, "status", "--porcelain")
    assert main(["docs", "check", str(repo / "pipeline.yaml")]) == 0


def test_breaking_change_bumps_major_and_the_changelog_names_the_batch(repo):
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1, "at": "2024-05-01T10:00:00"}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    # `at` gets a time zone: a type change (a widening done in place), breaking by
    # OpenMetadata's rule
    jsonl(repo / "in" / "b2.jsonl", [{"order_id": 2, "at": "2024-05-01T10:00:00+02:00"},
                                     {"order_id": 3, "at": "2024-05-02T10:00:00Z"}])  # fmt: skip
    rep = run_pipeline(repo / "pipeline.yaml", fmt="json")
    b2 = rep["batches"][1]
    assert b2["ddl"], "the widening is applied"
    page = (repo / "docs/data/orders.md").read_text()
    assert "### 1.1: schema version 2 (breaking)" in page
    assert "type of `at` changed: timestamp -> timestamptz **(breaking)**" in page
    assert f"`{b2['batch_id'][:16]}` (`b2.jsonl`)" in page
    assert "2 rows read, 2 loaded, 0 quarantined" in page
    assert "| docs version | 1.1 |" in page
    assert "0.1 -> 1.1 (breaking)" in git(repo, "log", "-1", "--format=%s")


def test_version_rule():
    s1 = {"columns": [{"name": "a", "type": "bigint", "nullable": True}]}
    s2 = {"columns": [*s1["columns"], {"name": "b", "type": "text", "nullable": True}]}
    s3 = {"columns": [{"name": "a", "type": "double", "nullable": True}, s2["columns"][1]]}
    s4 = {"columns": [{"name": "a", "type": "double", "nullable": False}]}
    assert diff_schemas(None, s1)[0]["op"] == "create"
    assert [c["op"] for c in diff_schemas(s1, s2)] == ["add"]
    assert not any(c["breaking"] for c in diff_schemas(s1, s2))
    assert all(c["breaking"] for c in diff_schemas(s2, s3))
    assert {c["op"] for c in diff_schemas(s3, s4)} == {"not_null", "drop"}
    v = bump(None, False)
    assert v == (0, 1)
    for _ in range(9):
        v = bump(v, False)
    assert v == (0, 10), "the tenth compatible change is 0.10, not a breaking-looking 1.0"
    assert bump(v, True) == (1, 10)


def _comments(repo: Path) -> dict[str, str | None]:
    if repo.kind == "duckdb":
        import duckdb

        con = duckdb.connect(str(repo / "wh.duckdb"), read_only=True)
        try:
            rows = con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'orders'"
            ).fetchall()
            rows += con.execute(
                "SELECT '<table>', comment FROM duckdb_tables() WHERE table_name = 'orders'"
            ).fetchall()
        finally:
            con.close()
    else:
        dsn, schema = repo.pg
        with psycopg.connect(dsn) as c:
            rows = c.execute(
                "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                "WHERE a.attrelid = %s::regclass AND a.attnum > 0",
                (f'"{schema}"."orders"',),
            ).fetchall()
            rows += c.execute(
                "SELECT '<table>', obj_description(%s::regclass, 'pg_class')",
                (f'"{schema}"."orders"',),
            ).fetchall()
    return dict(rows)


def test_descriptions_from_file_and_page_survive_and_become_comments(repo):
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1, "email": "a@b.com", "note": "x"}])
    (repo / "docs/data").mkdir(parents=True)
    (repo / "docs/data/descriptions.yaml").write_text(
        "orders:\n  description: One row per order.\n  columns:\n"
        '    order_id: "The shop\'s id | unique"\n'
    )
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    page = (repo / "docs/data/orders.md").read_text()
    assert "One row per order." in page
    assert "The shop's id \\| unique" in page  # a pipe in a cell is escaped
    # a person describes a column in the page itself and commits it
    lines = page.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("| `note` |"))
    assert lines[i].endswith("|  |")  # the description cell, empty
    lines[i] = lines[i][:-3] + " Free text from the buyer; may hold PII |"
    (repo / "docs/data/orders.md").write_text("\n".join(lines) + "\n")
    git(repo, "add", "docs/data/orders.md")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "describe")
    assert main(["docs", "check", str(repo / "pipeline.yaml")]) == 0
    # the next schema change regenerates the page: both descriptions are kept
    jsonl(repo / "in" / "b2.jsonl", [{"order_id": 2, "email": "c@d.com", "note": "y", "n": 1}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    page = (repo / "docs/data/orders.md").read_text()
    assert "Free text from the buyer; may hold PII" in page
    assert "The shop's id \\| unique" in page and "One row per order." in page
    got = _comments(repo)
    assert got["order_id"] == "The shop's id | unique"
    assert got["note"] == "Free text from the buyer; may hold PII"
    assert got["<table>"] == "One row per order."
    # the docs folder deleted: the descriptions come back from the database's comments
    import shutil

    shutil.rmtree(repo / "docs")
    assert main(["docs", "check", str(repo / "pipeline.yaml")]) == 1
    assert main(["docs", "build", str(repo / "pipeline.yaml"), "--git", "off"]) == 0
    page = (repo / "docs/data/orders.md").read_text()
    assert "Free text from the buyer; may hold PII" in page and "One row per order." in page


def test_docs_check_is_a_gate(repo, capsys):
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    cfg = str(repo / "pipeline.yaml")
    assert main(["docs", "check", cfg]) == 0
    # the store moves on without the docs (a run from a config without the docs section)
    nodocs = repo / "nodocs.yaml"
    nodocs.write_text((repo / "pipeline.yaml").read_text().split("docs:")[0])
    jsonl(repo / "in" / "b2.jsonl", [{"order_id": 2, "extra": True}])
    run_pipeline(nodocs, fmt="json")
    capsys.readouterr()
    assert main(["docs", "check", cfg, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert not doc["ok"]
    by_file = {d["file"]: d["status"] for d in doc["drift"]}
    assert by_file["orders.md"] == "differs"
    assert by_file["migrations/orders/0002_add_extra.sql"] == "missing"
    # a stray migration is drift too
    stray = repo / "docs/data/migrations/orders/0009_made_up.sql"
    stray.write_text("-- not from the store\n")
    assert main(["docs", "check", cfg]) == 1
    stray.unlink()
    # docs build brings the docs back in step (staging only: the user commits)
    assert main(["docs", "build", cfg, "--git", "stage"]) == 0
    staged = git(repo, "diff", "--cached", "--name-only").split()
    assert "docs/data/migrations/orders/0002_add_extra.sql" in staged
    assert main(["docs", "check", cfg]) == 0
    # the quality section is not compared: new batches alone do not fail the gate
    jsonl(repo / "in" / "b3.jsonl", [{"order_id": 3, "extra": False}])
    run_pipeline(nodocs, fmt="json")
    assert main(["docs", "check", cfg]) == 0


def test_stage_and_off_modes(repo):
    cfg = repo / "pipeline.yaml"
    cfg.write_text(cfg.read_text().replace("git: commit", "git: stage"))
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1}])
    before = commits(repo)
    rep = run_pipeline(cfg, fmt="json")
    assert commits(repo) == before
    assert rep["batches"][0]["docs"]["staged"]
    assert "A  docs/data/orders.md" in git(repo, "status", "--porcelain")
    cfg.write_text(cfg.read_text().replace("git: stage", "git: off"))
    jsonl(repo / "in" / "b2.jsonl", [{"order_id": 2, "more": "x"}])
    run_pipeline(cfg, fmt="json")
    assert commits(repo) == before
    assert "?? docs/data/migrations/orders/0002_add_more.sql" in git(
        repo, "status", "--porcelain", "--untracked-files=all"
    )


def test_guardian_findings_classify_columns_and_trigger_the_docs(repo):
    (repo / "policy.yaml").write_text(
        "version: 1\nrules:\n  - entity: EMAIL_ADDRESS\n    action: mask\n"
    )
    cfg = repo / "pipeline.yaml"
    cfg.write_text(cfg.read_text() + "steps:\n  - type: guardian\n    policy: policy.yaml\n")
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": i, "contact": "none"} for i in range(5)])
    run_pipeline(cfg, fmt="json")
    page = (repo / "docs/data/orders.md").read_text()
    assert "| `contact` | text | yes |  |" in page
    n = len(commits(repo))
    # no schema change, but the guardian now finds emails in `contact`: the docs follow
    jsonl(repo / "in" / "b2.jsonl",
          [{"order_id": i, "contact": f"user{i}@example.com"} for i in range(5, 30)])  # fmt: skip
    rep = run_pipeline(cfg, fmt="json")
    assert rep["batches"][1]["docs"]["reason"] == "PII found"
    assert len(commits(repo)) == n + 1
    page = (repo / "docs/data/orders.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `contact` |"))
    assert "EMAIL_ADDRESS" in row and "mask" in row
    assert "user5@example.com" not in page and "user5" not in page
    assert main(["docs", "check", str(cfg)]) == 0


HOSTILE = ["a|b", "x`y", "<script>alert(1)</script>", "line\nbreak", 'q"uote', "ünï cödé",
           "--; DROP TABLE orders", " sp ", "```", "x ```` y"]  # fmt: skip


def test_hostile_column_names_stay_data_in_every_file(repo):
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1, **{h: "v" for h in HOSTILE}}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    page = (repo / "docs/data/orders.md").read_text()
    for h in HOSTILE:
        assert code(h, True) in page
    # outside code spans and fenced blocks, no name is markup
    import re

    prose = re.sub(r"(`{3,})sql\n.*?\n\1\n", "", page, flags=re.S)
    for h in HOSTILE:
        prose = prose.replace(code(h, True), "").replace(code(h), "")
    assert "<script>" not in prose and "DROP TABLE" not in prose and "```" not in prose
    assert "line\nbreak" not in prose  # (the DDL keeps it: SQL, in its fence)
    index = (repo / "docs/data/index.md").read_text()
    block = index.split("```mermaid\n")[1].split("```")[0]
    for line in block.splitlines()[2:-1]:
        parts = line.split('"')[0].split()
        assert len(parts) >= 2 and all(p.replace("_", "").isalnum() for p in parts[:2]), line
    # descriptions round-trip through the page for every such column
    lines = page.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("| `") and "| text |" in line:
            lines[k] = line[:-3] + " described |"
    (repo / "docs/data/orders.md").write_text("\n".join(lines) + "\n")
    assert main(["docs", "build", str(repo / "pipeline.yaml"), "--git", "off"]) == 0
    page = (repo / "docs/data/orders.md").read_text()
    assert page.count(" described |") == len(HOSTILE)
    assert main(["docs", "check", str(repo / "pipeline.yaml")]) == 0


def test_mermaid_references_by_name():
    from pipewarden.reflect.model import DatasetFacts

    def facts(name, cols, key=None):
        return DatasetFacts(name, "duckdb", "main", [], [
            {"name": c, "type": "bigint", "nullable": True, "ident": c} for c in cols], {}, key)  # fmt: skip

    lines = mermaid([facts("customers", ["id", "name"], ["id"]),
                     facts("orders", ["order_id", "customer_id"], ["order_id"])])  # fmt: skip
    assert '    customers ||--o{ orders : "customer_id"' in lines
    assert "        bigint id PK" in lines


def test_sentinel_apply_commits_the_docs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)
    git(tmp_path, "init", "-q")
    jsonl(tmp_path / "people.jsonl", [{"id": 1, "name": "a"}])
    (tmp_path / "mine.txt").write_text("x")
    git(tmp_path, "add", "mine.txt")
    args = ["sentinel", "--source", "people.jsonl", "--dsn", "s.duckdb", "--apply",
            "--docs", "docs", "--docs-git", "commit", "--format", "json"]  # fmt: skip
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["docs"]["commit"] and doc["docs"]["docs_version"] == "0.1"
    assert files_of(tmp_path, "HEAD") == [
        "docs/index.md", "docs/migrations/people/0001_create.sql", "docs/people.md"]  # fmt: skip
    page = (tmp_path / "docs/people.md").read_text()
    assert "`pipewarden sentinel --apply` on `people.jsonl`: 1 rows read" in page
    assert "A  mine.txt" in git(tmp_path, "status", "--porcelain")
    assert main(args) == 0  # the same batch again: nothing to apply, no commit
    assert len(commits(tmp_path)) == 1
    assert (
        main(["sentinel", "--source", "people.jsonl", "--docs", "docs", "--target", "x.json"]) == 2
    )


def test_docs_git_commit_outside_a_repository_is_exit_2_before_any_batch(tmp_path):
    jsonl(tmp_path / "b.jsonl", [{"a": 1}])
    (tmp_path / "p.yaml").write_text(
        "version: 1\ndataset: t\nsource:\n  path: b.jsonl\nstore:\n  path: wh.duckdb\n"
        "docs:\n  git: commit\n"
    )
    assert main(["run", str(tmp_path / "p.yaml")]) == 2
    assert not (tmp_path / "wh.duckdb").exists()


def test_a_replay_that_evolves_the_schema_commits_the_docs(repo):
    from pipewarden.run import replay_quarantine

    cfg = repo / "pipeline.yaml"
    cfg.write_text(cfg.read_text() + "contract:\n  columns: quarantine\n")
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1}])
    run_pipeline(cfg, fmt="json")
    jsonl(repo / "in" / "b2.jsonl", [{"order_id": 2, "promo": "X"}])  # held: a new column
    assert run_pipeline(cfg, fmt="json")["totals"]["rows_quarantined"] == 1
    n = len(commits(repo))
    cfg.write_text(cfg.read_text().replace("columns: quarantine", "columns: evolve"))
    rep = replay_quarantine(cfg)
    assert rep["rows_replayed"] == 1 and rep["ddl"] and rep["docs"]["commit"]
    assert len(commits(repo)) == n + 1
    page = (repo / "docs/data/orders.md").read_text()
    assert "quarantine replay" in page and "column `promo` added" in page


def test_the_script_is_the_command(repo):
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    script = Path(__file__).resolve().parents[1] / "scripts" / "reflect_docs.py"
    import sys

    ok = subprocess.run([sys.executable, str(script), "check", str(repo / "pipeline.yaml")],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (repo / "docs/data/orders.md").write_text("edited\n")
    bad = subprocess.run([sys.executable, str(script), "check", str(repo / "pipeline.yaml")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "differs: orders.md" in bad.stdout


def test_a_bad_descriptions_file_is_exit_2_naming_it(repo, capsys):
    jsonl(repo / "in" / "b1.jsonl", [{"order_id": 1}])
    run_pipeline(repo / "pipeline.yaml", fmt="json")
    bad = repo / "docs/data/descriptions.yaml"
    bad.write_text("orders:\n  description: [unclosed\n")
    capsys.readouterr()
    assert main(["docs", "build", str(repo / "pipeline.yaml")]) == 2
    err = capsys.readouterr().err
    assert "descriptions.yaml" in err and "line" in err and "Traceback" not in err
    bad.write_text("orders:\n  columns:\n    order_id: 5\n")
    assert main(["docs", "check", str(repo / "pipeline.yaml")]) == 2
    assert "orders.columns" in capsys.readouterr().err
