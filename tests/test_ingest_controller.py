"""The adaptive controller and its limit laws, driven by a fake clock and synthetic samples
(no I/O; the real server tests are in test_ingest_http.py)."""

from __future__ import annotations

import heapq
import math
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from pipewarden.ingest.adaptive import Controller, ControllerConfig, Outcome, Permit, Wait
from pipewarden.ingest.headers import rate_limit, retry_after
from pipewarden.ingest.limits import AimdLimit, CubicLimit, GradientLimit, MinLimit, Sample


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def ok(sent, now, inflight, rtt=0.02):
    return Sample(sent, now, rtt, inflight, False)


def drop(sent, now, inflight):
    return Sample(sent, now, 0.001, inflight, True)


# ---------------------------------------------------------------- laws


def test_aimd_adds_one_per_used_sample_and_multiplies_on_a_drop():
    law = AimdLimit(initial=20, min_limit=1, max_limit=200)
    assert law.update(ok(0, 1, inflight=15)) == 21
    assert law.update(ok(1, 2, inflight=5)) == 21  # app-limited: 5 < 21 / 2
    assert law.update(drop(2, 3, inflight=21)) == pytest.approx(18.9)


def test_a_burst_of_drops_from_one_overshoot_is_one_decrease():
    law = AimdLimit(initial=20)
    law.update(drop(1.0, 2.0, 20))
    # sent before the decrease at t=2: decided under the old limit
    for _ in range(5):
        law.update(drop(1.5, 2.1, 20))
    assert law.limit == pytest.approx(18.0)
    law.update(drop(2.5, 3.0, 18))  # sent after it: a new signal
    assert law.limit == pytest.approx(16.2)


def test_limits_stay_within_their_bounds():
    law = AimdLimit(initial=3, min_limit=2, max_limit=4)
    for i in range(10):
        law.update(ok(i, i + 0.1, 4))
    assert law.limit == 4
    for i in range(20):
        law.update(drop(10 + i, 10.5 + i, 4))
    assert law.limit == 2
    with pytest.raises(ValueError):
        AimdLimit(min_limit=5, max_limit=2)


def test_cubic_slow_start_then_the_cubic_curve_back_to_the_ceiling():
    law = CubicLimit(initial=4, max_limit=256)
    t = 0.0
    while law.limit < 20:  # slow start: +1 per sample that uses the limit
        t += 0.01
        law.update(ok(t - 0.01, t, math.floor(law.limit)))
    assert law.w_max is None
    law.update(drop(t, t + 0.01, 20))
    assert law.w_max == 20 and law.limit == pytest.approx(14)
    k = law.k
    assert k == pytest.approx(math.cbrt(20 * 0.3 / 0.4))
    # half-way through K it is well on its way back, at K it is at the ceiling, flat
    law.update(ok(t + k / 2, t + 0.01 + k / 2, 14))
    assert 17 < law.limit < 20
    law.update(ok(t + k, t + 0.01 + k, 19))
    assert law.limit == pytest.approx(20, abs=0.05)
    law.update(ok(t + k + 0.3, t + 0.01 + k + 0.3, 20))
    assert law.limit < 20.1  # the plateau: it lingers near the ceiling
    law.update(ok(t + k + 3, t + 0.01 + k + 3, 20))
    assert law.limit > 30 or law.limit == 40  # then it probes (at most twice what was used)


def test_cubic_never_grows_beyond_twice_what_was_in_flight():
    law = CubicLimit(initial=10)
    law.update(drop(0, 0.01, 10))
    law.update(ok(100, 100.01, 6))
    assert law.limit <= 12


def test_cubic_warm_start_sits_below_the_ceiling_on_the_flat_part():
    law = CubicLimit(initial=4)
    law.restore({"limit": 16, "ceiling": 17}, now=50.0)
    assert law.limit == 16 and law.w_max == 17
    # a few hundred milliseconds later it has not probed above the ceiling
    law.update(ok(50.2, 50.3, 16))
    assert 16 <= law.limit < 17


def test_gradient_lowers_the_limit_when_latency_rises():
    law = GradientLimit(initial=20, max_limit=100)
    t = 0.0
    for _ in range(200):
        t += 0.02
        law.update(ok(t, t, 20, rtt=0.02))
    before = law.limit
    for _ in range(30):
        t += 0.1
        law.update(ok(t, t, math.floor(law.limit), rtt=0.2))  # ten times slower
    assert law.limit < before * 0.7


def test_min_limit_takes_the_lower_law():
    both = MinLimit(AimdLimit(initial=10), GradientLimit(initial=5))
    assert both.limit == 5
    assert both.state()["law"] == "aimd+gradient"


# ---------------------------------------------------------------- headers


def test_retry_after_in_seconds_and_as_an_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after({"retry-after": "3"}, now).delay == 3
    later = format_datetime(datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC), usegmt=True)
    got = retry_after({"retry-after": later}, now)
    assert got.form == "date" and got.delay == pytest.approx(7)
    past = format_datetime(datetime(2025, 1, 1, tzinfo=UTC), usegmt=True)
    assert retry_after({"retry-after": past}, now).delay == 0
    assert retry_after({"retry-after": "soon"}, now) is None
    assert retry_after({}, now) is None
    assert retry_after({"retry-after": "99999999"}, now).delay == 24 * 3600


def test_rate_limit_headers_in_their_three_forms():
    now = 1_700_000_000.0
    ietf = rate_limit(
        {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "5"}, now
    )
    assert (ietf.remaining, ietf.reset, ietf.convention) == (0, 5, "ratelimit")
    combined = rate_limit({"ratelimit": "limit=100, remaining=40, reset=9"}, now)
    assert (combined.limit, combined.remaining, combined.reset) == (100, 40, 9)
    github = rate_limit(
        {"x-ratelimit-remaining": "3", "x-ratelimit-reset": str(int(now) + 30)}, now
    )
    assert github.convention == "x-ratelimit" and github.reset == pytest.approx(30)
    assert rate_limit({"content-type": "application/json"}, now) is None


# ---------------------------------------------------------------- controller


def controller(**options) -> tuple[Controller, Clock]:
    clock = Clock()
    return Controller(ControllerConfig(**options), clock=clock, rng=random.Random(1)), clock


def test_client_errors_are_never_retried_and_transient_ones_are():
    ctl, clock = controller()
    for status in (400, 401, 403, 404, 422):
        p = ctl.acquire()
        d = ctl.release(p, Outcome.CLIENT_ERROR, status=status)
        assert not d.retry and f"HTTP {status}" in d.reason
    for outcome in (Outcome.THROTTLED, Outcome.SERVER_ERROR, Outcome.TIMEOUT, Outcome.RESET):
        p = ctl.acquire()
        assert ctl.release(p, outcome, status=None).retry
    assert ctl.stats.client_errors == 5 and ctl.stats.retries == 0


def test_a_429_with_retry_after_is_retried_no_sooner():
    ctl, clock = controller(base_delay=0.01)
    p = ctl.acquire()
    d = ctl.release(p, Outcome.THROTTLED, status=429, headers={"retry-after": "2"})
    assert d.retry and 2 <= d.delay <= 2.2
    assert ctl.conventions == {"retry_after": "seconds"}
    # one 429 among others in flight delays that request only: the host is not paused
    assert isinstance(ctl.acquire(1), Permit)


def test_a_503_with_retry_after_pauses_the_host():
    ctl, clock = controller()
    p = ctl.acquire()
    ctl.release(p, Outcome.THROTTLED, status=503, headers={"retry-after": "3"})
    w = ctl.acquire()
    assert isinstance(w, Wait) and w.reason == "pause" and w.seconds == pytest.approx(3)
    clock.t += 3.01
    assert isinstance(ctl.acquire(), Permit)


def test_an_exhausted_quota_pauses_until_its_reset_and_a_low_one_paces():
    ctl, clock = controller(initial_limit=8)
    p = ctl.acquire()
    ctl.release(
        p, Outcome.OK, status=200, headers={"ratelimit-remaining": "0", "ratelimit-reset": "4"}
    )
    w = ctl.acquire()
    assert isinstance(w, Wait) and w.seconds == pytest.approx(4)
    clock.t += 4
    p = ctl.acquire()
    ctl.release(
        p, Outcome.OK, status=200, headers={"ratelimit-remaining": "2", "ratelimit-reset": "10"}
    )
    assert isinstance(ctl.acquire(), Permit)
    w = ctl.acquire()  # paced: 10 s for 2 requests
    assert isinstance(w, Wait) and w.reason == "pacing" and w.seconds == pytest.approx(5)


def test_max_attempts_and_the_retry_budget_bound_retries():
    ctl, clock = controller(max_attempts=3, budget_min=0, budget_ratio=10, throttle_k=0)
    p = ctl.acquire(0)
    assert ctl.release(p, Outcome.SERVER_ERROR, status=500).retry
    p = ctl.acquire(1)
    assert ctl.release(p, Outcome.SERVER_ERROR, status=500).retry
    p = ctl.acquire(2)
    d = ctl.release(p, Outcome.SERVER_ERROR, status=500)
    assert not d.retry and "after 3 attempts" in d.reason

    ctl, clock = controller(budget_min=2, budget_ratio=0.0, throttle_k=0)
    decisions = []
    for attempt in range(3):  # one request: the first attempt and two retries
        p = ctl.acquire(attempt)
        decisions.append(ctl.release(p, Outcome.SERVER_ERROR, status=500))
    assert [d.retry for d in decisions] == [True, True, False]
    assert "retry budget" in decisions[2].reason and ctl.stats.budget_exhausted


def test_full_and_decorrelated_jitter_stay_within_their_caps():
    ctl, _ = controller(base_delay=0.1, max_delay=1.0, jitter="full")
    delays = [ctl._backoff(a, 0) for a in range(10) for _ in range(20)]
    assert all(0 <= d <= 1.0 for d in delays) and max(delays) > 0.5
    ctl, _ = controller(base_delay=0.1, max_delay=1.0, jitter="decorrelated")
    delays = [ctl._backoff(0, 7) for _ in range(50)]
    assert all(0.1 <= d <= 1.0 for d in delays)
    with pytest.raises(ValueError):
        ControllerConfig.from_dict({"jitter": "none"})


def test_client_side_throttling_holds_requests_back_when_the_server_refuses_most():
    ctl, clock = controller(initial_limit=64, max_limit=64, budget_min=10_000)
    rejects = 0
    for _ in range(400):
        got = ctl.acquire(1)
        if isinstance(got, Wait):
            rejects += got.reason == "throttle"
        else:
            ctl.release(got, Outcome.SERVER_ERROR, status=500)
        clock.t += 0.01
    assert rejects > 100  # p -> (requests - 2 * 0) / (requests + 1): most are held back
    # a healthy server: nothing is held back
    ctl, clock = controller(initial_limit=64, max_limit=64)
    for _ in range(400):
        got = ctl.acquire()
        assert isinstance(got, Permit)
        ctl.release(got, Outcome.OK, status=200)
        clock.t += 0.01


def test_memory_round_trip_warm_starts_at_the_learned_limit():
    ctl, clock = controller(initial_limit=4)
    ctl.law.limit = 17
    ctl.law.update(drop(clock.t, clock.t, 17))  # refused at 17
    mem = ctl.memory()
    assert mem["ceiling"] == pytest.approx(17) and mem["limit"] == pytest.approx(16.15)
    warm, _ = controller(initial_limit=4)
    warm.restore(mem)
    assert warm.warm and math.floor(warm.limit) == 16


# ---------------------------------------------------------------- simulation


def simulate(ctl: Controller, clock: Clock, *, pages: int, threshold: int, latency: float):
    """A server that refuses (429, at once) every request above `threshold` in flight and
    answers the others after `latency`; returns (seconds, 429s, mean in flight)."""
    events: list[tuple[float, int, str, object]] = []  # (time, seq, kind, payload)
    seq = 0
    todo = list(range(pages))[::-1]
    retry_at: list[tuple[float, int, int]] = []  # (time, page, attempt)
    server_inflight = 0
    done = throttled = 0
    start = clock.t
    area = 0.0
    last = clock.t
    while done < pages:
        progressed = True
        while progressed:
            progressed = False
            if retry_at and retry_at[0][0] <= clock.t:
                item = (retry_at[0][1], retry_at[0][2])
            elif todo:
                item = (todo[-1], 0)
            else:
                break
            got = ctl.acquire(item[1])
            if isinstance(got, Wait):
                break
            if retry_at and item == (retry_at[0][1], retry_at[0][2]):
                heapq.heappop(retry_at)
            else:
                todo.pop()
            if server_inflight >= threshold:
                heapq.heappush(events, (clock.t + 0.001, seq, "429", (got, item)))
            else:
                server_inflight += 1
                heapq.heappush(events, (clock.t + latency, seq, "200", (got, item)))
            seq += 1
            progressed = True
        nxt = [e[0] for e in events[:1]] + [r[0] for r in retry_at[:1] if r[0] > clock.t]
        if isinstance(got, Wait) and math.isfinite(got.seconds):
            nxt.append(clock.t + got.seconds)
        t = min(nxt)
        area += server_inflight * (t - last)
        last = clock.t = max(clock.t, t)
        while events and events[0][0] <= clock.t:
            _, _, kind, (permit, (page, attempt)) = heapq.heappop(events)
            if kind == "200":
                server_inflight -= 1
                ctl.release(permit, Outcome.OK, status=200)
                done += 1
            else:
                throttled += 1
                d = ctl.release(permit, Outcome.THROTTLED, status=429)
                assert d.retry
                heapq.heappush(retry_at, (clock.t + d.delay, page, attempt + 1))
    elapsed = clock.t - start
    return elapsed, throttled, area / elapsed


@pytest.mark.parametrize("threshold", [4, 16, 40])
def test_cold_start_converges_near_a_hidden_threshold(threshold):
    ctl, clock = controller(initial_limit=4, max_limit=128, budget_min=100_000)
    seconds, throttled, mean_inflight = simulate(
        ctl, clock, pages=3000, threshold=threshold, latency=0.02
    )
    ideal = 3000 / threshold * 0.02
    assert seconds < 1.3 * ideal
    assert mean_inflight > 0.8 * threshold
    assert throttled < 0.03 * 3000
    assert threshold - 3 <= ctl.memory()["limit"] <= threshold + 1


def test_warm_start_is_throttled_under_one_percent():
    cold, clock = controller(initial_limit=4, max_limit=128, budget_min=100_000)
    simulate(cold, clock, pages=2000, threshold=16, latency=0.02)
    warm, clock = controller(initial_limit=4, max_limit=128, budget_min=100_000)
    warm.restore(cold.memory())
    seconds, throttled, _ = simulate(warm, clock, pages=10_000, threshold=16, latency=0.02)
    assert throttled < 0.01 * 10_000
    assert seconds < 1.1 * (10_000 / 16 * 0.02)


def test_fixed_aimd_is_throttled_far_more_than_cubic_against_a_hard_threshold():
    """Why cubic is the default: Netflix's AIMD probes again right after each drop."""
    aimd, clock = controller(law="aimd", initial_limit=4, max_limit=128, budget_min=100_000)
    _, aimd_429, _ = simulate(aimd, clock, pages=3000, threshold=16, latency=0.02)
    cubic, clock = controller(initial_limit=4, max_limit=128, budget_min=100_000)
    _, cubic_429, _ = simulate(cubic, clock, pages=3000, threshold=16, latency=0.02)
    assert cubic_429 * 5 < aimd_429
