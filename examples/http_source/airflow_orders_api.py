"""orders_api: an Airflow 3 DAG whose task loads an HTTP API through pipewarden.

The task runs pipewarden's http source (pipeline.yaml beside this file): the API's new pages,
each a batch through the sentinel, guardian and quarantine, at the concurrency the adaptive
controller learned for the host. A 4xx (bad credentials, a wrong URL) or a blocked batch fails
the task without retries; anything else is retried by Airflow, and the source resumes after
the last batch that committed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.exceptions import AirflowFailException
from airflow.sdk import dag, task

log = logging.getLogger(__name__)

PIPELINE_CONFIG = Path(__file__).resolve().parent / "pipeline.yaml"


@dag(
    dag_id="orders_api",
    schedule="@hourly",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    tags=["pipewarden", "http"],
)
def orders_api():
    @task(execution_timeout=timedelta(minutes=30))
    def load_orders_api() -> dict:
        from pipewarden.errors import InputError
        from pipewarden.run import run_pipeline

        try:
            report = run_pipeline(str(PIPELINE_CONFIG), fmt="json")
        except InputError as exc:  # bad config: retrying cannot help
            raise AirflowFailException(f"pipewarden: {exc}") from exc
        if report["exit_code"] == 2:  # a 4xx: credentials or URL
            raise AirflowFailException(f"pipewarden: {report['batches'][-1].get('error')}")
        if report["exit_code"] == 1:
            raise RuntimeError(f"pipewarden: {report['batches'][-1].get('error')}")
        ingest = report["ingest"]["controller"]
        log.info(
            "loaded %s rows; concurrency limit %s (warm start: %s), %s throttled",
            report["totals"]["rows_loaded"],
            ingest["limit"],
            ingest["warm_start"],
            ingest["throttled"],
        )
        return report["totals"]

    load_orders_api()


orders_api()
