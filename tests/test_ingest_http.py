"""The http source of ``pipewarden run`` against a real local API in a subprocess
(tests/apiserver.py under uvicorn) that throttles above a hidden concurrency threshold, slows
down, fails with 5xx, drops connections, truncates bodies and changes shape mid-stream; on
DuckDB and a real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from httpkit import ApiServer

from pipewarden.cli import main
from pipewarden.ingest import memory
from pipewarden.store import open_store

TOKEN = "tok-Zq8rW2vX9kLm"
API_KEY = "key-Hy5tPp3sN7aa"


@pytest.fixture(scope="module")
def api():
    server = ApiServer(max_seconds=600)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["duckdb", "postgres"])
def target(request, tmp_path):
    """(store yaml, store URL, namespace or None)."""
    if request.param == "duckdb":
        return "store: {kind: duckdb, path: wh.duckdb}\n", f"duckdb:///{tmp_path}/wh.duckdb", None
    dsn, schema = request.getfixturevalue("pg_schema")
    return f"store: {{kind: postgres, dsn: '{dsn}', schema: {schema}}}\n", dsn, schema


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("API_KEY", API_KEY)


def write_config(tmp_path: Path, api: ApiServer, store_yaml: str, *, path="/items",
                 paginate="{type: page, size: 10, size_param: per_page}", extra="",
                 source_extra="", headers=True) -> Path:  # fmt: skip
    auth = '  headers: {Authorization: "Bearer ${API_TOKEN}"}\n' if headers else ""
    p = tmp_path / "pipeline.yaml"
    p.write_text(
        "version: 1\ndataset: items\n"
        + extra
        + "source:\n  kind: http\n  name: items_api\n"
        + f"  url: {api.base}{path}\n"
        + auth
        + "  records_path: data.items\n"
        + f"  paginate: {paginate}\n"
        + source_extra
        + store_yaml
    )
    return p


def run_json(capsys, config: Path) -> tuple[int, dict, str]:
    code = main(["run", str(config), "--format", "json"])
    cap = capsys.readouterr()
    return code, json.loads(cap.out), cap.out + cap.err


def table(url: str, ns: str | None, sql: str) -> list[tuple]:
    store = open_store(url, namespace=ns)
    try:
        return store._aux_query(sql.replace("{ns}", store.namespace))
    finally:
        store.close()


def dump(url: str, ns: str | None) -> str:
    """Every table of the store's namespace as text."""
    store = open_store(url, namespace=ns)
    try:
        names = [
            r[0]
            for r in store._aux_query(
                store.sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
                ),
                (store.namespace,),
            )
        ]
        return "\n".join(
            json.dumps(store._aux_query(f"SELECT * FROM {store.qualify(n)}"), default=str)
            for n in names
        )
    finally:
        store.close()


def state(url, ns) -> dict | None:
    store = open_store(url, namespace=ns)
    try:
        return store.load_state("items", "source:http")
    finally:
        store.close()


# ---------------------------------------------------------------- loading


def test_pages_load_once_through_faults_and_secrets_stay_out(api, target, tmp_path, env, capsys):
    store_yaml, url, ns = target
    api.configure(
        total=95, per_page=10, token=TOKEN, api_key=API_KEY, latency_ms=3,
        faults={"1": ["reset"], "2": ["truncate", "badjson"], "4": ["500", "503"], "6": ["502"]},
    )  # fmt: skip
    cfg = write_config(
        tmp_path, api, store_yaml, source_extra='  params: {api_key: "${API_KEY}"}\n'
    )
    code, doc, out = run_json(capsys, cfg)
    assert code == 0, out
    t = doc["totals"]
    assert t["rows_read"] == 95 == t["rows_loaded"] + t["rows_quarantined"]
    assert t["batches_loaded"] == 10
    ctl = doc["ingest"]["controller"]
    assert ctl["drops"] >= 2 and ctl["server_errors"] >= 2 and ctl["gave_up"] == 0
    ids = table(url, ns, 'SELECT id FROM "{ns}".items ORDER BY id')
    assert [r[0] for r in ids] == list(range(1, 96))
    assert state(url, ns)["position"] is None
    # the faults were met and retried: page 2 (index) was asked three times
    log = api.log()
    assert sum(1 for e in log if e["page"] == 2) >= 3
    # no secret in the output, the report or anything stored
    for secret in (TOKEN, API_KEY):
        assert secret not in out
        assert secret not in dump(url, ns)


def test_a_rerun_skips_pages_already_loaded(api, tmp_path, env, capsys):
    api.configure(total=30, per_page=10, token=TOKEN)
    cfg = write_config(tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n")
    assert run_json(capsys, cfg)[0] == 0
    code, doc, _ = run_json(capsys, cfg)
    assert code == 0 and doc["totals"]["rows_loaded"] == 0
    assert {b["status"] for b in doc["batches"]} == {"skipped"}


@pytest.mark.parametrize("status", [401, 404])
def test_a_client_error_stops_the_run_without_retry_or_state(api, tmp_path, env, capsys, status):
    api.configure(total=50, per_page=10, token=TOKEN)
    if status == 401:
        os.environ["API_TOKEN"] = "wrong-token-value"
        cfg = write_config(tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n")
    else:
        cfg = write_config(tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n", path="/nope")
    code, doc, out = run_json(capsys, cfg)
    assert code == 2, out
    bad = doc["batches"][-1]
    assert bad["status"] == "invalid" and f"HTTP {status}" in bad["error"]
    assert "not retried" in bad["error"]
    assert doc["totals"]["rows_loaded"] == 0
    assert doc["ingest"]["controller"]["retries"] == 0
    if status == 401:  # every request the server saw was a first attempt
        pages = [e["page"] for e in api.log()]
        assert len(pages) == len(set(pages))
        assert "wrong-token-value" not in out
    assert state(f"duckdb:///{tmp_path}/wh.duckdb", None) is None


def test_config_errors_are_exit_2(api, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("API_TOKEN", raising=False)
    cfg = write_config(tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n")
    code, doc, out = run_json(capsys, cfg)
    assert code == 2 and "API_TOKEN is not set" in out
    monkeypatch.setenv("API_TOKEN", TOKEN)
    cfg = write_config(tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n",
                       paginate="{type: offset}")  # fmt: skip
    code, doc, out = run_json(capsys, cfg)
    assert code == 2 and "source.paginate.size" in out
    cfg = write_config(tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n",
                       paginate="{type: cursor}")  # fmt: skip
    code, doc, out = run_json(capsys, cfg)
    assert code == 2 and "cursor_path" in out
    assert not (tmp_path / "wh.duckdb").exists()


def test_a_page_whose_shape_changes_stops_the_run_and_the_rerun_resumes(api, tmp_path, env, capsys):
    """Link pagination with the API key in the query: the server echoes it in its next links;
    the position kept in the store holds ${API_KEY}, never the key."""
    url = f"duckdb:///{tmp_path}/wh.duckdb"
    api.configure(total=60, per_page=10, token=TOKEN, api_key=API_KEY, shape_from=3,
                  field_from=1)  # fmt: skip
    cfg = write_config(
        tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n",
        paginate="{type: link}",
        source_extra='  params: {api_key: "${API_KEY}", per_page: 10}\n'
        "  controller: {max_attempts: 3, base_delay: 0.01}\n",
    )  # fmt: skip
    code, doc, out = run_json(capsys, cfg)
    assert code == 1, out
    bad = doc["batches"][-1]
    assert bad["status"] == "failed" and "records_path data.items" in bad["error"]
    assert doc["totals"]["rows_loaded"] == 30  # pages 1-3 committed, each with its position
    # page 2 on brought a new field: the sentinel added the column
    assert any("channel" in json.dumps(b.get("delta")) for b in doc["batches"][:3])
    kept = state(url, None)
    assert "${API_KEY}" in kept["position"]["url"] and API_KEY not in json.dumps(kept)
    assert API_KEY not in out and API_KEY not in dump(url, None)
    api.configure(total=60, per_page=10, token=TOKEN, api_key=API_KEY, field_from=1)
    code, doc, out = run_json(capsys, cfg)
    assert code == 0, out
    assert doc["ingest"]["resumed_at"] and doc["totals"]["rows_loaded"] == 30
    assert min(e["page"] for e in api.log()) == 3  # it started where the last run stopped
    ids = table(url, None, 'SELECT id FROM "{ns}".items ORDER BY id')
    assert [r[0] for r in ids] == list(range(1, 61))


def test_incremental_sends_the_highest_value_seen(api, tmp_path, env, capsys):
    url = f"duckdb:///{tmp_path}/wh.duckdb"
    api.configure(total=25, per_page=10, token=TOKEN)
    cfg = write_config(
        tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n",
        extra="primary_key: id\nwrite_disposition: merge\n",
        paginate="{type: offset, size: 10}",
        source_extra="  incremental: {field: updated_at, param: updated_since}\n",
    )  # fmt: skip
    assert run_json(capsys, cfg)[0] == 0
    assert state(url, None)["since"] == "2024-01-01T00:00:25"
    api.add(5)
    code, doc, out = run_json(capsys, cfg)
    assert code == 0, out
    # the boundary record (updated_since is inclusive) and the 5 new ones; merged by id
    assert doc["totals"]["rows_read"] == 6 and doc["ingest"]["since"] == "2024-01-01T00:00:25"
    assert table(url, None, 'SELECT count(*), count(DISTINCT id) FROM "{ns}".items') == [(30, 30)]


# ---------------------------------------------------------------- the controller


def test_the_controller_converges_near_the_hidden_limit_and_the_next_run_starts_there(
    api, tmp_path, env, capsys
):
    threshold = 8
    url = f"duckdb:///{tmp_path}/wh.duckdb"
    api.configure(total=400, per_page=2, token=TOKEN, threshold=threshold, latency_ms=80,
                  spike_every=50, spike_ms=100)  # fmt: skip
    cfg = write_config(
        tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n",
        paginate="{type: page, size: 2, size_param: per_page}",
        # a cold start four times above the threshold: its ramp down is throttled plainly,
        # where a warm start at the learned limit is not (a start below the threshold gave
        # both runs a handful of 429s, too few to compare on a loaded machine)
        source_extra="  pages_per_batch: 50\n  controller: {initial_limit: 32}\n",
    )  # fmt: skip
    code, doc, out = run_json(capsys, cfg)
    assert code == 0, out
    cold = doc["ingest"]["controller"]
    assert doc["totals"]["rows_loaded"] == 400
    assert cold["throttled"] >= 8 and not cold["warm_start"], cold
    learned = memory.load(open_store(url), "items_api", api.base.split("//")[1])
    # near the threshold, far from max_limit (64); the client counts as in flight what the
    # kernel still queues, so on a loaded machine it may sit a little above
    assert 0.6 * threshold <= learned["limit"] <= 2 * threshold, learned
    # the second run starts at the learned limit, and is throttled less
    api.configure(total=400, per_page=2, token=TOKEN, threshold=threshold, latency_ms=80,
                  spike_every=50, spike_ms=100)  # fmt: skip
    (tmp_path / "wh.duckdb").unlink()  # same memory, fresh data: keep the learned limit
    store = open_store(url)
    memory.save(store, "items_api", api.base.split("//")[1], learned, {})
    store.close()
    code, doc, out = run_json(capsys, cfg)
    warm = doc["ingest"]["controller"]
    assert code == 0 and warm["warm_start"]
    assert warm["start_limit"] == pytest.approx(learned["limit"], abs=0.01)
    assert warm["throttled"] <= cold["throttled"] // 2, (cold, warm)
    # and pipewarden ingest status shows it
    assert main(["ingest", "status", "items_api", "--config", str(cfg), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["hosts"][0]["runs"] == 2


@pytest.mark.parametrize("form", ["1", "date"])
def test_retry_after_is_honoured(api, tmp_path, env, capsys, form):
    api.configure(total=40, per_page=2, token=TOKEN, threshold=2, latency_ms=40,
                  retry_after=1 if form == "1" else "date")  # fmt: skip
    cfg = write_config(
        tmp_path, api, "store: {kind: duckdb, path: wh.duckdb}\n",
        paginate="{type: page, size: 2, size_param: per_page}",
        source_extra="  pages_per_batch: 20\n  controller: {initial_limit: 6}\n",
    )  # fmt: skip
    code, doc, out = run_json(capsys, cfg)
    assert code == 0, out
    log = api.log()
    # pages past the last (fetched ahead, then abandoned at the end) are not retried
    refused = [e for e in log if e.get("status") == 429 and e["page"] < 20]
    assert refused, "the threshold was never crossed"
    for e in refused:
        later = [x["t"] for x in log if x["page"] == e["page"] and x["n"] > e["n"]]
        # an HTTP date has a resolution of a second: it may mean a little less than 1 s
        assert later and min(later) - e["t"] >= (0.95 if form == "1" else 0.0), e
    if form == "1":
        assert doc["ingest"]["controller"]["memory"]["conventions"]["retry_after"] == "seconds"


# ---------------------------------------------------------------- crash safety


@pytest.mark.parametrize(
    "paginate,extra,overlap",
    [
        ("{type: cursor, cursor_path: meta.next_cursor}", "", 0),
        ("{type: page, size: 10, size_param: per_page}",
         "primary_key: id\nwrite_disposition: merge\n", 3),
    ],
    ids=["cursor-append", "page-overlap-merge"],
)  # fmt: skip
def test_kill_9_mid_run_then_rerun_loads_every_record_once(
    api, target, tmp_path, env, paginate, extra, overlap
):
    store_yaml, url, ns = target
    api.configure(total=400, per_page=10, token=TOKEN, latency_ms=100, overlap=overlap)
    cfg = write_config(tmp_path, api, store_yaml, paginate=paginate, extra=extra)
    cmd = [sys.executable, "-m", "pipewarden", "run", str(cfg), "--format", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ.copy())  # fmt: skip
    deadline = time.monotonic() + 30
    # the source fetches at most a page or two ahead of its loads: after 10 requests, pages
    # have committed (cursor: sequential)
    while time.monotonic() < deadline and len(api.log()) < 10:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(api.log()) < 40, "the run finished before it was killed"
    api.configure(total=400, per_page=10, token=TOKEN, latency_ms=2, overlap=overlap)
    got = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
    doc = json.loads(got.stdout)
    if overlap == 0:
        assert doc["ingest"]["resumed_at"], "the first run committed no page before the kill"
    assert table(url, ns, 'SELECT count(*), count(DISTINCT id) FROM "{ns}".items') == [(400, 400)]
    assert state(url, ns)["position"] is None
