"""Batch health monitors catch what row scores miss: fewer rows, nulls, a shifted mean, a new mix."""

from __future__ import annotations

import numpy as np
import pytest

from pipewarden.anomaly.detector import DetectorConfig, check
from pipewarden.anomaly.model import Model
from pipewarden.anomaly.monitors import MonitorConfig, batch_metrics, evaluate
from pipewarden.anomaly.synth import records
from pipewarden.store.base import MemoryStateStore

N = 400
DAYS = 8


@pytest.fixture(scope="module")
def pool():
    recs, _ = records(N * (DAYS + 6), anomaly_share=0.0, seed=11)
    for r in recs:
        r.pop("ts")  # freshness is tested on its own
    return recs


@pytest.fixture(scope="module")
def model(pool):
    return Model.fit(pool[: N * DAYS])


def _history(pool, model, store, clock):
    cfg = DetectorConfig()
    for d in range(DAYS):
        verdict, report = check(
            pool[d * N : (d + 1) * N], dataset="daily", store=store, cfg=cfg, model=model,
            batch_id=f"day{d}", clock=clock,
        )  # fmt: skip
        assert verdict.decision == "pass", report["causes"]
    return cfg


def _shifted(pool, kind):
    fresh = [dict(r) for r in pool[N * DAYS : N * (DAYS + 1)]]
    if kind == "row_count":
        return fresh[: N // 3]
    if kind == "null_rate":
        for r in fresh[: int(0.4 * N)]:
            r["x3"] = None
        return fresh
    if kind == "numeric_shift":
        sd = np.std([r["x2"] for r in pool[: N * DAYS]])
        for r in fresh:
            r["x2"] += 0.5 * sd  # too small for any row to look odd, plain in the batch mean
        return fresh
    if kind == "category_mix":
        rest = pool[N * (DAYS + 1) :]
        west = [dict(r) for r in rest if r["segment"] == "west"][: N // 2]
        other = [dict(r) for r in rest if r["segment"] != "west"][: N - len(west)]
        return west + other
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "column"),
    [
        ("row_count", None),
        ("null_rate", "x3"),
        ("numeric_shift", "x2"),
        ("category_mix", "segment"),
    ],
)
def test_monitor_catches_what_row_scores_miss(pool, model, kind, column):
    store = MemoryStateStore()
    clock = iter(range(1_700_000_000, 1_800_000_000, 86400)).__next__
    cfg = _history(pool, model, store, clock)
    batch = _shifted(pool, kind)
    verdict, report = check(
        batch, dataset="daily", store=store, cfg=cfg, model=model, batch_id="bad", clock=clock
    )
    # the row scores alone stay under the batch threshold ...
    assert report["scored"]["anomaly_rate"] < cfg.breaker.anomaly_rate
    # ... the monitor does not
    hits = [m for m in report["monitors"] if m["monitor"] == kind and m["column"] == column]
    assert hits and hits[0]["status"] in ("alarm", "severe"), report["monitors"]
    assert report["failed"] is True
    assert any(kind in c for c in report["causes"])
    # and nothing else raised a false alarm on the healthy history
    assert all(not m.get("failed") for m in store.metrics_history("daily", "anomaly.batch")[:DAYS])


def test_monitors_learn_before_they_alarm(pool):
    cfg = MonitorConfig(min_history=5)
    cur = batch_metrics(pool[:10], now=0.0)
    hist = [batch_metrics(pool[:N], now=0.0)] * 3
    out = evaluate(cur, hist, cfg)
    assert [m["status"] for m in out] == ["learning"]


def test_freshness_alarms_when_data_stops_moving():
    cfg = MonitorConfig(min_history=3)
    day = 86400.0
    hist = [
        batch_metrics([{"at": f"2024-01-{d:02d}T23:00:00+00:00", "v": 1}], now=(19723 + d) * day)
        for d in range(1, 6)
    ]
    stale = batch_metrics([{"at": "2024-01-05T23:00:00+00:00", "v": 1}], now=(19723 + 9) * day)
    out = {m["monitor"]: m for m in evaluate(stale, hist, cfg)}
    assert out["freshness"]["status"] == "alarm"


def test_category_values_are_not_stored_in_clear(pool):
    m = batch_metrics(pool[:50], now=0.0)
    assert not any(s in str(m) for s in ("north", "south", "west"))


def test_a_pii_column_keeps_no_category_mix():
    emails = [f"buyer{i}@shop.example.com" for i in range(10)]
    recs = [{"contact": emails[i % 10], "channel": ["web", "app"][i % 2]} for i in range(60)]
    m = batch_metrics(recs, now=0.0)
    assert m["columns"]["contact"]["pii"] is True and "shares" not in m["columns"]["contact"]
    assert len(m["columns"]["channel"]["shares"]) == 2
    # no digest of an address either: a short digest of a guessable value is the value
    import hashlib

    digests = {hashlib.sha1(e.encode()).hexdigest()[:12] for e in emails}
    assert not any(d in str(m) for d in digests)


def test_numbers_that_are_pii_keep_no_mean_or_median_and_pii_among_categories_is_pooled():
    import hashlib

    cards = [4111111111111111, 4012888888881881, 5555555555554444]
    status = ["none", "n/a", "pending", "536-22-8726"]
    recs = [
        {"card_number": cards[i % 3], "ssn_num": 536228726, "ref": status[i % 4], "qty": i % 5}
        for i in range(60)
    ]
    m = batch_metrics(recs, now=0.0)
    for col in ("card_number", "ssn_num"):
        assert m["columns"][col]["pii"] is True
        assert not {"mean", "median", "std"} & set(m["columns"][col])
    assert "median" in m["columns"]["qty"]
    shares = m["columns"]["ref"]["shares"]
    assert shares["pii"] == pytest.approx(0.25) and len(shares) == 4
    text = str(m)
    assert "536228726" not in text and "4111111111111111" not in text
    assert hashlib.sha1(b"536-22-8726").hexdigest()[:12] not in text


def test_duplicates_exact_and_on_the_primary_key_are_seen_when_the_row_count_stays():
    from pipewarden.anomaly.monitors import MonitorConfig, batch_metrics, evaluate

    def day(seed, n=200):
        return [{"id": seed * 1000 + i, "v": (i * 7919 + seed) % 97, "s": "ab"[i % 2]}
                for i in range(n)]  # fmt: skip

    cfg = MonitorConfig(min_history=5)
    history = [batch_metrics(day(s), 0, primary_key=("id",)) for s in range(8)]
    half = day(9, 100)
    exact = batch_metrics(half + [dict(r) for r in half], 0, primary_key=("id",))
    found = {m["monitor"]: m for m in evaluate(exact, history, cfg)}
    assert found["row_count"]["status"] == "ok"  # 200 rows, as usual
    assert found["duplicate_rows"]["status"] == "severe"
    keyed = day(10)
    for r in keyed[100:]:
        r["id"] -= 100  # the second half reuses the first half's keys, with other values
        r["v"] += 1
    found = {m["monitor"]: m for m in evaluate(batch_metrics(keyed, 0, primary_key=("id",)), history, cfg)}  # fmt: skip
    assert found["duplicate_keys"]["status"] in ("alarm", "severe")
    assert found["duplicate_rows"]["status"] == "ok"
    clean = {
        m["monitor"]: m
        for m in evaluate(batch_metrics(day(11), 0, primary_key=("id",)), history, cfg)
    }
    assert clean["duplicate_rows"]["status"] == clean["duplicate_keys"]["status"] == "ok"
