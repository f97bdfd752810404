"""Retry policies (fake clock, seeded jitter), learned sensor timeouts (injected clock), the
dependency conditions against real parts (files, a DuckDB and a PostgreSQL store, a local HTTP
server), and escalation ladders against a real local HTTP receiver."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rca_provoke import http_server, pg, pipeline_config, tb

from pipewarden.conduct import (
    DecorrelatedJitter,
    DependencySensor,
    DependencyTimeout,
    EscalationConfig,
    Escalator,
    FileAppeared,
    FullJitter,
    HttpHealthy,
    LearnedTimeout,
    PokeSchedule,
    PostgresQueryTrue,
    RetryBudget,
    RetryError,
    RetryPolicy,
    TableHasNewBatch,
    UpstreamSucceeded,
    call_with_retry,
    classify_exception,
    dedup_key,
    is_transient,
)
from pipewarden.store import MemoryStateStore, open_store


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


# --------------------------------------------------------------------------- retry


def test_full_jitter_stays_within_the_exponential_envelope_and_the_cap():
    b = FullJitter(base=1, cap=30, rng=random.Random(1))
    for attempt in range(12):
        d = b.delay(attempt, 0)
        assert 0 <= d <= min(30, 2**attempt)
    spread = {round(b.delay(3, 0), 3) for _ in range(50)}
    assert len(spread) > 40  # jitter: callers do not retry in lockstep


def test_decorrelated_jitter_grows_from_the_previous_delay_and_is_capped():
    b = DecorrelatedJitter(base=1, cap=20, rng=random.Random(2))
    prev = 0.0
    for _ in range(30):
        d = b.delay(0, prev)
        assert 1 <= d <= 20 and d <= max(prev, 1) * 3
        prev = d


def test_retry_budget_limits_retries_to_a_share_of_calls_in_the_window():
    clock = Clock()
    budget = RetryBudget(ratio=0.1, window=10, min_retries=2, clock=clock)
    for _ in range(20):
        budget.record_call()
    spent = sum(budget.spend() for _ in range(10))
    assert spent == 4  # 2 + 0.1 * 20
    clock.t += 11  # the window moved on
    assert budget.spend()


def test_transient_failures_are_retried_permanent_ones_are_not():
    import psycopg

    port_closed = tb(lambda: psycopg.connect("postgresql://x@127.0.0.1:1/x", connect_timeout=1))
    assert "Connection refused" in port_closed
    calls = {"n": 0}
    clock = Clock()

    def flaky():
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionRefusedError(111, "Connection refused")
        return "ok"

    seen = []
    out = call_with_retry(
        flaky,
        RetryPolicy(max_attempts=5, backoff=FullJitter(rng=random.Random(0))),
        clock=clock,
        sleep=clock.sleep,
        on_retry=lambda n, exc, cls, wait: seen.append(cls),
    )
    assert out == "ok" and calls["n"] == 3 and seen == ["connection_refused"] * 2
    assert len(clock.slept) == 2

    def broken():
        raise ModuleNotFoundError("No module named 'pandas'")

    with pytest.raises(ModuleNotFoundError):  # permanent: raised at once, as itself
        call_with_retry(broken, clock=clock, sleep=clock.sleep)


def test_retries_end_at_attempts_deadline_or_budget():
    clock = Clock()

    def down():
        raise TimeoutError("timed out")

    with pytest.raises(RetryError) as e:
        call_with_retry(down, RetryPolicy(max_attempts=3), clock=clock, sleep=clock.sleep)
    assert e.value.attempts == 3 and e.value.reason == "attempts exhausted"
    with pytest.raises(RetryError) as e:
        call_with_retry(down, RetryPolicy(max_attempts=50, deadline=5,
                                          backoff=FullJitter(base=4, rng=random.Random(3))),
                        clock=clock, sleep=clock.sleep)  # fmt: skip
    assert e.value.reason == "deadline reached"
    budget = RetryBudget(ratio=0.0, min_retries=1, clock=clock)
    with pytest.raises(RetryError) as e:
        call_with_retry(down, RetryPolicy(max_attempts=50, budget=budget), clock=clock,
                        sleep=clock.sleep)  # fmt: skip
    assert e.value.reason == "retry budget spent" and e.value.attempts == 2


def test_a_real_429_is_retried_after_its_retry_after():
    import urllib.error
    import urllib.request

    with http_server() as url:
        try:
            urllib.request.urlopen(f"{url}/status/429", timeout=5)
        except urllib.error.HTTPError as exc:
            err = exc
    cls, retryable, after = classify_exception(err)
    assert (cls, retryable, after) == ("rate_limited", True, 7.0)
    clock = Clock()
    calls = []

    def limited():
        calls.append(1)
        if len(calls) == 1:
            raise err
        return 1

    call_with_retry(limited, RetryPolicy(backoff=FullJitter(base=0.01, rng=random.Random(0))),
                    clock=clock, sleep=clock.sleep)  # fmt: skip
    assert clock.slept == [7.0]


@pytest.mark.postgres
def test_a_real_deadlock_is_transient_and_a_missing_column_is_not(pg_schema):
    import psycopg

    try:
        pg("select no_such_col from pg_class")
    except psycopg.Error as exc:
        assert not is_transient(exc)
        assert classify_exception(exc)[0] == "schema_mismatch"
    try:
        pg("set statement_timeout = 20; select pg_sleep(1)")
    except psycopg.Error as exc:
        assert is_transient(exc) and classify_exception(exc)[0] == "timeout"


# --------------------------------------------------------------------------- learned timeout


def test_learned_timeout_default_without_history_then_p95_times_factor_within_bounds():
    lt = LearnedTimeout(default=3600, factor=2, quantile=0.95, floor=60, ceiling=7200,
                        min_history=5)  # fmt: skip
    assert lt.compute([10, 20])[0] == 3600
    waits = [100.0] * 19 + [400.0]
    value, why = lt.compute(waits)
    assert value == 200.0 and "p95 of 20 past waits 100 s x 2" in why  # nearest rank
    assert lt.compute([1.0] * 10)[0] == 60  # floor
    assert lt.compute([10_000.0] * 10)[0] == 7200  # ceiling


def test_sensor_learns_its_timeout_from_the_waits_it_recorded():
    store = MemoryStateStore()
    clock = Clock()
    arrive_after = {"t": 0.0}

    class Arrives:
        def describe(self):
            return "fake"

        def check(self):
            return clock.t >= arrive_after["t"], {}

    policy = LearnedTimeout(default=1000, factor=2, min_history=3, floor=10, ceiling=10_000)
    for wait in (100, 120, 110):
        arrive_after["t"] = clock.t + wait
        s = DependencySensor("orders_file", Arrives(), store, timeout=policy,
                             schedule=PokeSchedule(interval=10, factor=1),
                             clock=clock, sleep=clock.sleep)  # fmt: skip
        res = s.wait()
        assert res["status"] == "satisfied" and res["timeout_seconds"] == 1000
        assert wait <= res["waited_seconds"] <= wait + 10
    s = DependencySensor("orders_file", Arrives(), store, timeout=policy,
                         schedule=PokeSchedule(interval=10, factor=1), clock=clock,
                         sleep=clock.sleep)  # fmt: skip
    timeout, why = s.timeout()
    assert timeout == 240.0 and "p95 of 3 past waits" in why
    arrive_after["t"] = clock.t + 10_000  # far too late
    start = clock.t
    with pytest.raises(DependencyTimeout) as e:
        s.wait()
    assert 240 <= clock.t - start <= 250 and "Sensor has timed out" in str(e.value)
    hist = store.metrics_history("orders_file", "sensor_wait")
    assert [h["outcome"] for h in hist] == ["satisfied"] * 3 + ["timed_out"]
    # soft_fail: the same timeout is a skip, not an error
    s.soft_fail = True
    assert s.wait()["status"] == "skipped"


def test_poke_interval_backs_off_up_to_its_max():
    sched = PokeSchedule(interval=5, factor=2, max_interval=60)
    assert [sched.next(n) for n in range(6)] == [5, 10, 20, 40, 60, 60]


# --------------------------------------------------------------------------- real conditions


def test_file_condition_and_stable_size(tmp_path):
    cond = FileAppeared(str(tmp_path / "in" / "*.jsonl"))
    assert cond.check()[0] is False
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("{}\n")
    assert cond.check()[0] is True
    stable = FileAppeared(str(tmp_path / "in" / "*.jsonl"), stable=True)
    assert stable.check()[0] is False  # first sight: not known to be complete
    assert stable.check()[0] is True
    (tmp_path / "in" / "a.jsonl").write_text("{}\n{}\n")  # still being written
    assert stable.check()[0] is False


def _load_batch(tmp_path, store_cfg: str) -> None:
    from pipewarden.run import run_pipeline

    (tmp_path / "in").mkdir(exist_ok=True)
    n = len(list((tmp_path / "in").iterdir()))
    (tmp_path / "in" / f"b{n}.jsonl").write_text(json.dumps({"id": n}) + "\n")
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f'version: 1\ndataset: orders\nsource:\n  path: "in/*.jsonl"\n{store_cfg}')
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0


def test_table_and_upstream_conditions_on_a_real_duckdb_store(tmp_path):
    url = f"duckdb:///{tmp_path}/wh.duckdb"
    _load_batch(tmp_path, "store:\n  kind: duckdb\n  path: wh.duckdb\n")
    store = open_store(url)
    try:
        assert TableHasNewBatch(store, "orders").check()[0] is True
        last = store.latest_batch("orders")
        since = last["loaded_at"].isoformat()
        assert TableHasNewBatch(store, "orders", since=since).check()[0] is False
        assert TableHasNewBatch(store, "other").check()[0] is False
        assert UpstreamSucceeded(store, "orders").check()[0] is True  # the run recorded it
        assert UpstreamSucceeded(store, "orders", since="2999-01-01").check()[0] is False
    finally:
        store.close()
    _load_batch(tmp_path, "store:\n  kind: duckdb\n  path: wh.duckdb\n")
    store = open_store(url)
    try:
        assert TableHasNewBatch(store, "orders", since=since).check()[0] is True
    finally:
        store.close()


@pytest.mark.postgres
def test_table_condition_and_query_condition_on_postgres(pg_schema, tmp_path):
    dsn, schema = pg_schema
    _load_batch(tmp_path, f"store:\n  kind: postgres\n  dsn: {dsn}\n  schema: {schema}\n")
    store = open_store(dsn, namespace=schema)
    try:
        assert TableHasNewBatch(store, "orders").check()[0] is True
    finally:
        store.close()
    q = PostgresQueryTrue(dsn, f'select count(*) > 0 from "{schema}".orders')
    assert q.check()[0] is True
    assert PostgresQueryTrue(dsn, f'select count(*) > 5 from "{schema}".orders').check()[0] is False
    bad = PostgresQueryTrue(dsn, "select nope from nothing")
    ok, detail = bad.check()
    assert ok is False and "42P01" in detail["error"]


def test_http_health_condition_against_a_real_local_server():
    with http_server() as url:
        assert HttpHealthy(f"{url}/").check() == (True, {"status": 200})
        assert HttpHealthy(f"{url}/status/503").check()[0] is False
    ok, detail = HttpHealthy(url + "/", timeout=1).check()  # the server is gone
    assert ok is False and detail["error"]


# --------------------------------------------------------------------------- escalation


class _Receiver(BaseHTTPRequestHandler):
    got: list = []
    fail_next = 0

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Receiver.fail_next:
            _Receiver.fail_next -= 1
            self.send_response(500)
            self.end_headers()
            return
        _Receiver.got.append((self.path, body))
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "success", "message": "Event processed"}')


@pytest.fixture
def receiver():
    _Receiver.got = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_escalation_ladder_by_tier_with_a_real_receiver(receiver):
    store = MemoryStateStore()
    clock = Clock()
    cfg = EscalationConfig(tier="critical", webhook_url=f"{receiver}/hook",
                           pagerduty_routing_key="R0UTINGKEY0123456789abcdef",
                           pagerduty_url=f"{receiver}/v2/enqueue")  # fmt: skip
    esc = Escalator("orders", cfg, store, clock=clock)
    sent = esc.update("wait:orders_file", 10, "waiting 10 s for orders_file")
    assert [s["action"] for s in sent] == ["log"] and _Receiver.got == []
    assert esc.update("wait:orders_file", 60, "waiting 60 s") == []  # nothing new is due
    sent = esc.update("wait:orders_file", 400, "waiting 400 s for orders_file")
    assert [s["action"] for s in sent] == ["webhook"] and sent[0]["ok"]
    sent = esc.update("wait:orders_file", 1000, "waiting 1000 s for orders_file")
    assert [s["action"] for s in sent] == ["pagerduty"] and sent[0]["status"] == 202
    # a second process (a new Escalator on the same store) does not page again
    again = Escalator("orders", cfg, store, clock=clock)
    assert again.update("wait:orders_file", 1100, "still waiting") == []
    paths = [p for p, _ in _Receiver.got]
    assert paths == ["/hook", "/v2/enqueue"]
    pd = _Receiver.got[1][1]
    key = dedup_key("orders", "wait:orders_file")
    assert pd["event_action"] == "trigger" and pd["dedup_key"] == key
    assert pd["routing_key"] == "R0UTINGKEY0123456789abcdef"
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["component"] == "orders"
    assert set(pd["payload"]) >= {"summary", "source", "severity"}
    # healed: PagerDuty gets resolve with the same dedup_key, the webhook a resolved event
    resolved = again.resolve("wait:orders_file", "orders_file arrived")
    assert {r["action"] for r in resolved} == {"webhook", "pagerduty"}
    assert _Receiver.got[-1][1] == {"routing_key": "R0UTINGKEY0123456789abcdef",
                                    "event_action": "resolve", "dedup_key": key}  # fmt: skip
    assert _Receiver.got[-2][1]["status"] == "resolved"
    assert esc.open_incidents() == {}


def test_low_tier_never_pages_and_a_receiver_outage_is_not_an_error(receiver):
    store = MemoryStateStore()
    cfg = EscalationConfig(tier="low", webhook_url=f"{receiver}/hook",
                           pagerduty_routing_key="k" * 32, pagerduty_url=f"{receiver}/pd")  # fmt: skip
    esc = Escalator("p", cfg, store, clock=Clock())
    _Receiver.fail_next = 1
    sent = esc.update("failure", 10**6, "failing for days", failed=True)
    assert [s["action"] for s in sent] == ["log", "webhook"]
    assert sent[1]["ok"] is False and sent[1]["status"] == 500
    assert all(p != "/pd" for p, _ in _Receiver.got)
    gone = Escalator("q", EscalationConfig(tier="critical", webhook_url="http://127.0.0.1:9/x"),
                     store, clock=Clock())  # fmt: skip
    res = gone.update("failure", 10**6, "x", failed=True)
    assert any(r["action"] == "webhook" and r["ok"] is False for r in res)


def test_a_timed_out_sensor_escalates_to_the_top_and_resolves_on_arrival(receiver, tmp_path):
    store = MemoryStateStore()
    clock = Clock()
    cfg = EscalationConfig(tier="high", webhook_url=f"{receiver}/hook",
                           pagerduty_routing_key="k" * 32, pagerduty_url=f"{receiver}/pd")  # fmt: skip
    esc = Escalator("orders", cfg, store, clock=clock)
    cond = FileAppeared(str(tmp_path / "*.csv"))
    s = DependencySensor("orders_csv", cond, store, escalator=esc,
                         timeout=LearnedTimeout(default=120),
                         schedule=PokeSchedule(interval=30, factor=1),
                         clock=clock, sleep=clock.sleep)  # fmt: skip
    with pytest.raises(DependencyTimeout):
        s.wait()
    assert [p for p, _ in _Receiver.got] == ["/hook", "/pd"]  # ran out: climbed to the top
    (tmp_path / "a.csv").write_text("id\n1\n")
    assert s.wait()["status"] == "satisfied"
    assert _Receiver.got[-1][1]["event_action"] == "resolve"
    secret_free = json.dumps(_Receiver.got)
    assert "kkkk" not in secret_free.replace("k" * 32, "")  # only the routing key field has it


# --------------------------------------------------------------------------- the config's faces


def _config(tmp_path, extra: str) -> str:
    return str(pipeline_config(tmp_path, extra))


def test_pipewarden_wait_for_a_file_records_the_wait_and_times_out(tmp_path, receiver):
    from pipewarden.cli import main

    cfg = _config(tmp_path, (
        "criticality: critical\n"
        f"escalation:\n  webhook: {{url: '{receiver}/hook'}}\n"
        "  ladder: [{after: 0, action: log}, {after: 0.2, action: webhook}]\n"
        "dependencies:\n"
        "  - name: orders_file\n    file: 'in/*.jsonl'\n    poke_interval: 0.05\n"
        "    max_interval: 0.05\n    timeout: {default: 0.6, floor: 0.1, min_history: 2}\n"
    ))  # fmt: skip
    assert main(["wait", cfg, "--format", "json"]) == 1  # nothing there: timed out
    assert [p for p, _ in _Receiver.got] == ["/hook"]
    assert (
        _Receiver.got[0][1]["status"] == "triggered" and _Receiver.got[0][1]["tier"] == "critical"
    )
    (tmp_path / "in" / "a.jsonl").write_text("{}\n")
    for _ in range(2):
        assert main(["wait", cfg]) == 0
    assert _Receiver.got[-1][1]["status"] == "resolved"
    store = open_store(f"duckdb:///{tmp_path}/wh.duckdb")
    try:
        hist = store.metrics_history("orders:orders_file", "sensor_wait")
        assert [h["outcome"] for h in hist] == ["timed_out", "satisfied", "satisfied"]
        # two satisfied waits: the next timeout is learned (floor 0.1 s), not the default
        from pipewarden.conduct.wait import build_sensor, dependency
        from pipewarden.run import load_config

        c = load_config(cfg)
        s = build_sensor(c, dependency(c, "orders_file")[0], store, escalate=False)
        value, why = s.timeout()
        assert value == 0.1 and "past waits" in why
    finally:
        store.close()


def test_wait_config_errors_are_exit_2(tmp_path):
    from pipewarden.cli import main

    cfg = _config(tmp_path, "dependencies:\n  - name: x\n    file: a\n    table: b\n")
    assert main(["wait", cfg]) == 2
    cfg = _config(tmp_path, "")
    assert main(["wait", cfg]) == 2
    cfg = _config(tmp_path, "dependencies:\n  - name: x\n    file: a\n")
    assert main(["wait", cfg, "--dependency", "nope"]) == 2


def test_a_failing_run_escalates_and_its_success_resolves(tmp_path, receiver):
    from pipewarden.run import run_pipeline

    cfg = _config(tmp_path, (
        "contract: {tables: evolve, columns: freeze}\n"
        f"escalation:\n  webhook: {{url: '{receiver}/hook'}}\n"
        f"  pagerduty: {{routing_key: 'rk-0123456789abcdef0123', url: '{receiver}/pd'}}\n"
        "  ladder: [{after: 0, action: webhook}, {after: 0, action: pagerduty, severity: error}]\n"
    ))  # fmt: skip
    (tmp_path / "in" / "a.jsonl").write_text('{"id": 1}\n')
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0
    (tmp_path / "in" / "b.jsonl").write_text('{"id": 2, "new_col": 1}\n')
    rep = run_pipeline(cfg, fmt="json")
    assert rep["exit_code"] == 1 and rep["rca"]["class"] == "contract_reject"
    assert [p for p, _ in _Receiver.got] == ["/hook", "/pd"]
    pd = _Receiver.got[1][1]
    assert pd["event_action"] == "trigger" and pd["payload"]["severity"] == "error"
    assert "contract_reject" in pd["payload"]["summary"]
    (tmp_path / "in" / "b.jsonl").unlink()
    assert run_pipeline(cfg, fmt="json")["exit_code"] == 0  # healed (the bad batch is gone)
    assert _Receiver.got[-1][1]["event_action"] == "resolve"
    assert _Receiver.got[-1][1]["dedup_key"] == pd["dedup_key"]
