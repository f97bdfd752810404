"""__PW_NAME__: ingest a source through pipewarden's checks into the warehouse (Airflow 3).

Written by `pipewarden scaffold airflow`. One run reads the source named in
__PW_CONFIG_REL__, passes every batch through pipewarden's schema sentinel, compliance
guardian and anomaly detector, and loads what passes into the warehouse (rows that do not
pass go to the quarantine with their reason). A batch the gate blocks fails the task without
retries; infrastructure errors are retried with exponential backoff. After the load, the
dataset's docs are rebuilt from the store (`pipewarden docs build`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pendulum

from airflow.exceptions import AirflowFailException
from airflow.sdk import dag, task
from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

log = logging.getLogger(__name__)

PIPELINE_CONFIG = Path(__file__).resolve().parent / "__PW_CONFIG_REL__"


async def on_deadline_missed(**kwargs) -> None:
    """Deadline alert callback (runs in the triggerer): the run took longer than promised."""
    log.warning("pipeline __PW_NAME__ missed its deadline: %s", kwargs.get("context", {}))


default_args = {
    "owner": "data-platform",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=30),
}


@dag(
    dag_id="__PW_NAME__",
    description="Ingest __PW_NAME__ through pipewarden's sentinel, guardian and anomaly steps",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=default_args,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=1),
        callback=AsyncCallback(on_deadline_missed),
    ),
    tags=["pipewarden"],
)
def pipewarden___PW_NAME__():
    @task
    def check_config() -> str:
        if not PIPELINE_CONFIG.is_file():
            raise AirflowFailException(f"pipeline config {PIPELINE_CONFIG} is missing")
        log.info("pipeline config: %s", PIPELINE_CONFIG)
        return str(PIPELINE_CONFIG)

    @task
    def guard_and_load(config_path: str) -> dict:
        from pipewarden.errors import GateFailed, InputError
        from pipewarden.run import run_pipeline

        try:
            report = run_pipeline(config_path)
        except (GateFailed, InputError) as exc:  # deterministic: retrying cannot help
            raise AirflowFailException(f"pipewarden gate: {exc}") from exc
        log.info("pipewarden report: %s", {k: report.get(k) for k in sorted(report)[:12]})
        return report

    @task
    def build_docs(report: dict) -> dict:
        """The reflection loop after the load: the dataset's docs (pages, changelog,
        migrations) regenerated from the store, committed or staged as the config's docs.git
        says."""
        from pipewarden.reflect import docs_build

        docs = docs_build(str(PIPELINE_CONFIG))
        log.info("docs: %s file(s) written, commit %s", len(docs["written"]), docs["commit"])
        return {**report, "docs": {k: docs[k] for k in ("written", "commit", "path")}}

    @task
    def summarize(report: dict) -> None:
        log.info(
            "run of __PW_NAME__ finished: exit code %s, %s",
            report.get("exit_code"),
            report.get("totals"),
        )

    summarize(build_docs(guard_and_load(check_config())))


pipewarden___PW_NAME__()
