"""Sensors from a pipeline config's ``dependencies``, and ``pipewarden wait``.

The same builder serves the command, the Airflow sensor operator and the Mage sensor block,
so the three wait for the same thing with the same learned timeout and the same history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from .escalation import EscalationConfig, Escalator
from .sensors import (
    DependencySensor,
    DependencyTimeout,
    FileAppeared,
    HttpHealthy,
    LearnedTimeout,
    PokeSchedule,
    PostgresQueryTrue,
    TableHasNewBatch,
    UpstreamSucceeded,
)

KINDS = ("file", "table", "upstream", "http", "postgres")


def escalation_config(cfg: dict[str, Any]) -> EscalationConfig:
    """The config's escalation with ``${ENV}`` expanded in its URLs and routing key."""
    from ..run import expand_env

    esc = EscalationConfig.from_config(cfg)
    file = cfg.get("_file", "<config>")
    if esc.webhook_url:
        esc.webhook_url = expand_env(esc.webhook_url, "escalation.webhook.url", file)
    if esc.pagerduty_routing_key:
        esc.pagerduty_routing_key = expand_env(
            esc.pagerduty_routing_key, "escalation.pagerduty.routing_key", file
        )
    if esc.pagerduty_url:
        esc.pagerduty_url = expand_env(esc.pagerduty_url, "escalation.pagerduty.url", file)
    return esc


def dependency(cfg: dict[str, Any], name: str | None) -> list[dict[str, Any]]:
    deps = list(cfg.get("dependencies") or [])
    if not deps:
        raise InputError("the pipeline config has no dependencies", file=cfg.get("_file"),
                         hint="add dependencies: [{name: ..., file: ...}] (docs/rca.md)")  # fmt: skip
    if name is None:
        return deps
    chosen = [d for d in deps if d["name"] == name]
    if not chosen:
        raise InputError(f"no dependency named {name!r}", file=cfg.get("_file"),
                         hint="one of: " + ", ".join(d["name"] for d in deps))  # fmt: skip
    return chosen


def build_sensor(
    cfg: dict[str, Any],
    dep: dict[str, Any],
    store: Any,
    *,
    since: str | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Any] = time.sleep,
    escalate: bool = True,
) -> DependencySensor:
    """A sensor for one ``dependencies`` entry. ``since``: the ISO time the wait began (a
    table or upstream must have something newer; default now)."""
    from ..run import expand_env

    file = cfg.get("_file", "<config>")
    given = [k for k in KINDS if k in dep]
    if len(given) != 1:
        raise InputError(
            f"dependency {dep.get('name')!r} gives {', '.join(given) or 'none'} of "
            f"{', '.join(KINDS)}: give exactly one",
            file=file,
            key="dependencies",
        )
    kind = given[0]
    since = since or datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds")
    if kind == "file":
        pattern = Path(dep["file"])
        if not pattern.is_absolute():
            pattern = Path(cfg["_base_dir"]) / pattern
        cond: Any = FileAppeared(str(pattern), stable=bool(dep.get("stable")))
    elif kind == "table":
        cond = TableHasNewBatch(store, dep["table"], since=since)
    elif kind == "upstream":
        cond = UpstreamSucceeded(store, dep["upstream"], since=since)
    elif kind == "http":
        cond = HttpHealthy(expand_env(dep["http"], "dependencies[].http", file),
                           status=int(dep.get("status", 200)))  # fmt: skip
    else:
        pgdep = dep["postgres"]
        cond = PostgresQueryTrue(expand_env(pgdep["dsn"], "dependencies[].postgres.dsn", file),
                                 pgdep["sql"])  # fmt: skip
    escalator = (
        Escalator(cfg["name"], escalation_config(cfg), store, clock=clock) if escalate else None
    )
    return DependencySensor(
        f"{cfg['name']}:{dep['name']}",
        cond,
        store,
        timeout=LearnedTimeout.from_dict(dep.get("timeout")),
        schedule=PokeSchedule(
            interval=float(dep.get("poke_interval", 30)),
            max_interval=float(dep.get("max_interval", 600)),
        ),
        escalator=escalator,
        soft_fail=bool(dep.get("soft_fail")),
        clock=clock,
        sleep=sleep,
    )


def wait_for(
    config_path: str,
    name: str | None = None,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Any] = time.sleep,
) -> dict[str, Any]:
    """Wait for the config's dependencies (or the one named), one after the other. Returns
    the report; ``exit_code`` 0 when all arrived (or were skipped with soft_fail), 1 when one
    timed out (the rest are not waited for)."""
    from ..rca.memory import record_execution
    from ..run import load_config, open_config_store

    cfg = load_config(config_path)
    deps = dependency(cfg, name)
    store = open_config_store(cfg)
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    code = 0
    try:
        for dep in deps:
            sensor = build_sensor(cfg, dep, store, clock=clock, sleep=sleep)
            try:
                results.append(sensor.wait())
            except DependencyTimeout as exc:
                results.append({"dependency": sensor.name, "status": "timed_out",
                                "reason": str(exc), "waited_seconds": round(exc.waited, 3),
                                "timeout_seconds": exc.timeout})  # fmt: skip
                code = 1
                break
        record_execution(store, f"{cfg['name']}:sensors", {
            "run_id": None, "kind": "sensor", "status": "succeeded" if code == 0 else "failed",
            "exit_code": code, "seconds": round(time.perf_counter() - t0, 3),
            "waits": [{k: r.get(k) for k in ("dependency", "status", "waited_seconds",
                                              "timeout_seconds")} for r in results],
        })  # fmt: skip
    finally:
        store.close()
    return {"pipeline": cfg["name"], "criticality": cfg.get("criticality", "high"),
            "dependencies": results, "exit_code": code}  # fmt: skip
