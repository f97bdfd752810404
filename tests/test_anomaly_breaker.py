"""The circuit breaker: closed -> open -> half-open -> closed/open, its state in the store."""

from __future__ import annotations

import pytest

from pipewarden.anomaly.breaker import Breaker, BreakerConfig
from pipewarden.anomaly.detector import DetectorConfig, check
from pipewarden.anomaly.synth import records
from pipewarden.store.base import MemoryStateStore


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


CFG = BreakerConfig(window=4, min_batches=3, failure_rate=0.5, cool_down_seconds=600, unit="seconds",
                    half_open_batches=2)  # fmt: skip


def _breaker(store=None, clock=None):
    return Breaker(store or MemoryStateStore(), "sales", CFG, clock or Clock())


def test_opens_on_failure_rate_only_after_min_batches():
    b = _breaker()
    assert b.record(True, False, "x")["state"] == "closed"  # 1 of 1 failed, but < min_batches
    assert b.record(False, False, None)["state"] == "closed"
    state = b.record(True, False, "null spike")  # 2 of 3 failed >= 50%
    assert state["state"] == "open"
    assert "2 of the last 3 batches failed" in state["reason"] and "null spike" in state["reason"]


def test_sliding_window_forgets_old_failures():
    b = _breaker()
    for failed in (True, False, False, False, False):
        assert b.record(failed, False, "x")["state"] == "closed"
    assert b.load()["window"] == [0, 0, 0, 0]


def test_severe_breach_opens_at_once():
    state = _breaker().record(True, True, "row count 10 against 1000")
    assert state["state"] == "open" and state["reason"].startswith("severe breach")


def test_half_open_after_cool_down_then_closes_after_good_canaries():
    clock = Clock()
    b = _breaker(clock=clock)
    b.record(True, True, "boom")
    assert b.allow()[0] is False
    clock.t += 599
    assert b.allow()[0] is False
    clock.t += 1
    allowed, state = b.allow()
    assert allowed and state["state"] == "half_open"
    assert b.record(False, False, None)["state"] == "half_open"
    closed = b.record(False, False, None)
    assert closed["state"] == "closed" and closed["window"] == []


def test_failed_canary_opens_again_with_a_new_cool_down():
    clock = Clock()
    b = _breaker(clock=clock)
    b.record(True, True, "boom")
    clock.t += 600
    b.allow()
    state = b.record(True, False, "still bad")
    assert state["state"] == "open" and state["opened_at"] == clock.t
    assert b.allow()[0] is False


def test_reset_closes_and_rebaseline_starts_a_new_epoch():
    b = _breaker()
    b.record(True, True, "boom")
    state = b.reset(rebaseline=True)
    assert state["state"] == "closed" and state["epoch"] == 1
    assert [h["to"] for h in state["history"]] == ["open", "closed"]


def test_open_breaker_quarantines_whole_batches_through_the_step_check():
    recs, _ = records(300, anomaly_share=0.0, seed=5)
    store, clock = MemoryStateStore(), Clock()
    cfg = DetectorConfig(breaker=CFG)
    # a batch where most rows are extreme is a severe breach: the breaker opens at once
    model_batch = recs[:200]
    from pipewarden.anomaly.model import Model

    model = Model.fit(model_batch)
    bad = [dict(r, x1=r["x1"] * 1000 + 1e6) for r in recs[200:300]]
    verdict, report = check(bad, dataset="sales", store=store, cfg=cfg, model=model, clock=clock)
    assert verdict.decision == "quarantine_batch" and "severe breach" in verdict.reason
    # while open the next (good) batch is held whole: evaluated for the report, counted nowhere
    verdict, report = check(recs[:50], dataset="sales", store=store, cfg=cfg, model=model,
                            clock=clock)  # fmt: skip
    assert verdict.decision == "quarantine_batch" and report["held"] is True
    assert "held by the circuit breaker" in verdict.reason and report["scored"]["flagged_rows"] <= 2
    assert "quarantine replay" in report["release"] and verdict.issues == []
    # after the cool-down good canaries close it
    clock.t += 600
    for _ in range(2):
        verdict, report = check(recs[:50], dataset="sales", store=store, cfg=cfg, model=model,
                                clock=clock)  # fmt: skip
        assert verdict.decision == "pass"
    assert report["breaker"]["state"] == "closed"


def _round_trip(store):
    clock = Clock()
    b = Breaker(store, "sales", CFG, clock)
    b.record(True, True, "boom")
    again = Breaker(store, "sales", CFG, clock)
    assert again.load()["state"] == "open"
    clock.t += 600
    assert again.allow()[1]["state"] == "half_open"
    assert Breaker(store, "sales", CFG, clock).load()["state"] == "half_open"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def real_store(request, tmp_path):
    """A real store: a DuckDB file, and PostgreSQL in a schema of its own."""
    from pipewarden.store import open_store

    if request.param == "duckdb":
        url, namespace = f"duckdb:///{tmp_path}/s.duckdb", None
    else:
        url, namespace = request.getfixturevalue("pg_schema")
    store = open_store(url, namespace=namespace)
    yield store
    store.close()


def test_state_survives_in_a_real_store(real_store):
    _round_trip(real_store)


def _history_then_drop(store):
    recs, _ = records(1200, anomaly_share=0.0, seed=8)
    clock = Clock()
    cfg = DetectorConfig(breaker=CFG)
    for d in range(5):
        clock.t += 86400
        verdict, _ = check(recs[d * 200 : (d + 1) * 200], dataset="daily", store=store, cfg=cfg,
                           batch_id=f"d{d}", clock=clock)  # fmt: skip
        assert verdict.decision == "pass"
    clock.t += 86400
    verdict, report = check(recs[1000:1030], dataset="daily", store=store, cfg=cfg, clock=clock)
    rows = next(m for m in report["monitors"] if m["monitor"] == "row_count")
    assert rows["status"] == "severe" and rows["baseline"] == 200
    assert verdict.decision == "quarantine_batch"
    assert len(store.metrics_history("daily", "anomaly.batch")) == 6


def test_history_and_breaker_in_a_real_store(real_store):
    _history_then_drop(real_store)


def test_cool_down_in_batches_holds_the_next_batches_then_lets_canaries_through():
    """A backfill runs in seconds: counted in batches, one bad file holds the next
    cool_down_batches files, then canaries close the breaker."""
    cfg = BreakerConfig(cool_down_batches=2, half_open_batches=2)
    b = Breaker(MemoryStateStore(), "sales", cfg, Clock())
    assert b.unit == "batches"
    assert b.record(True, True, "row count 3 against 300")["state"] == "open"
    assert b.allow("day2")[0] is False and b.allow("day3")[0] is False
    assert b.describe()["held"] == ["day2", "day3"] and b.describe()["batches_to_hold"] == 0
    allowed, state = b.allow("day4")
    assert allowed and state["state"] == "half_open"
    b.record(False, False, None)
    assert b.record(False, False, None)["state"] == "closed"
    # a stream counts seconds: the same config reads its cool-down in seconds there
    assert Breaker(MemoryStateStore(), "s", cfg, Clock(), stream=True).unit == "seconds"
