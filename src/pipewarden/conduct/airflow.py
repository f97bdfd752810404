"""The dependency sensor as an Airflow 3 operator: ``PipewardenDependencySensor``.

A ``BaseSensorOperator`` in ``reschedule`` mode by default (the worker slot is freed between
pokes) whose ``timeout`` is learned, at each execution, from the dependency's wait history
in the pipewarden store, as ``pipewarden wait`` does; Airflow counts it from the first poke
(``get_first_reschedule_date``), so rescheduling does not restart it. Pokes back off
exponentially up to the dependency's ``max_interval``. While it waits it escalates along the
pipeline's criticality ladder; the finished wait (satisfied or timed out) is recorded, so
the next timeout learns from it.

Importing this module needs only Airflow: pipewarden's store and checks are loaded when the
task runs, so the DAG processor parses the DAG file quickly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator


class PipewardenDependencySensor(BaseSensorOperator):
    """Wait for ``dependency`` of the pipewarden pipeline config at ``config``."""

    template_fields = ("config", "dependency")

    def __init__(
        self,
        *,
        config: str,
        dependency: str,
        mode: str = "reschedule",
        poke_interval: float | None = None,
        timeout: float | None = None,
        exponential_backoff: bool = True,
        max_wait: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            mode=mode,
            poke_interval=poke_interval if poke_interval is not None else 30,
            timeout=timeout if timeout is not None else 7 * 24 * 3600,  # replaced at execute
            exponential_backoff=exponential_backoff,
            max_wait=max_wait if max_wait is not None else timedelta(minutes=10),
            **kwargs,
        )
        self.config = config
        self.dependency = dependency
        self._sensor: Any = None
        self._store: Any = None
        self._started: float | None = None

    # the pipewarden side, built when the task runs
    def _open(self, context: Any) -> None:
        from pipewarden.conduct.wait import build_sensor, dependency
        from pipewarden.run import load_config, open_config_store

        cfg = load_config(self.config)
        dep = dependency(cfg, self.dependency)[0]
        self._store = open_config_store(cfg)
        started = None
        if self.reschedule:
            first = context["ti"].get_first_reschedule_date(context)
            started = first.timestamp() if first else None
        self._started = started if started is not None else time.time()
        since = datetime.fromtimestamp(self._started, UTC).isoformat(timespec="seconds")
        self._sensor = build_sensor(cfg, dep, self._store, since=since)
        learned, why = self._sensor.timeout()
        self.timeout = float(learned)
        self.poke_interval = float(dep.get("poke_interval", self.poke_interval))
        self.max_wait = timedelta(seconds=float(dep.get("max_interval", 600)))
        self.soft_fail = self.soft_fail or bool(dep.get("soft_fail"))
        self.log.info("pipewarden: waiting for %s, timeout %.0f s (%s)", self._sensor.name,
                      learned, why)  # fmt: skip

    def execute(self, context: Any) -> Any:
        from airflow.exceptions import AirflowSensorTimeout, AirflowSkipException

        self._open(context)
        try:
            result = super().execute(context)
        except (AirflowSensorTimeout, AirflowSkipException):
            waited = time.time() - (self._started or time.time())
            if waited >= self.timeout:
                self._sensor.record("timed_out", waited, 0, self.timeout)
                if self._sensor.escalator is not None:
                    self._sensor.escalator.update(
                        f"wait:{self._sensor.name}", waited,
                        f"{self._sensor.name} did not arrive within {self.timeout:.0f} s",
                        failed=True,
                    )  # fmt: skip
            raise
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None
        return result

    def poke(self, context: Any) -> bool:
        ok, detail = self._sensor.condition.check()
        waited = time.time() - (self._started or time.time())
        if ok:
            self._sensor.record("satisfied", waited, 0, self.timeout)
            if self._sensor.escalator is not None:
                self._sensor.escalator.resolve(f"wait:{self._sensor.name}", "arrived")
            self.log.info("pipewarden: %s arrived after %.0f s: %s", self._sensor.name,
                          waited, detail)  # fmt: skip
            return True
        if self._sensor.escalator is not None:
            self._sensor.escalator.update(f"wait:{self._sensor.name}", waited,
                                          f"waiting {waited:.0f} s for {self._sensor.name}")  # fmt: skip
        return False
