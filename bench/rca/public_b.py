"""Failure logs from public issue trackers (part B), as labelled for bench/rca."""

ENTRIES = [
    dict(
        source="https://github.com/jabrell/pyeutl/issues/1",
        cls="authentication",
        fix="fix-credentials",
        log='''OperationalError: (psycopg2.OperationalError) FATAL:  password authentication failed for user "eutlAdmin"''',
    ),
    dict(
        source="https://github.com/psycopg/psycopg/issues/538",
        cls="authentication",
        fix="fix-credentials",
        log="""Connection failed with error message: FATAL: password authentication failed for user 'user\'""",
    ),
    dict(
        source="https://github.com/fedora-infra/faitout/issues/7",
        cls="authentication",
        fix="fix-credentials",
        log='''E       OperationalError: (psycopg2.OperationalError) FATAL:  password authentication failed for user "ucpnt0uddGygEhwqXjG9"''',
    ),
    dict(
        source="https://github.com/vitorfs/bootcamp/issues/80",
        cls="authentication",
        fix="fix-credentials",
        log='''  conn = _connect(dsn, connection_factory=connection_factory, **kwasync)
django.db.utils.OperationalError: FATAL:  password authentication failed for user "u_bootcamp"
FATAL:  password authentication failed for user "u_bootcamp"''',
    ),
    dict(
        source="https://github.com/perfsonar/pscheduler/issues/1039",
        cls="authentication",
        fix="fix-credentials",
        log="""Jul 23 09:28:33 r74 journal: safe_run/ticker ERROR        db = pscheduler.pg_connection(dsn)
Jul 23 09:28:33 r74 journal: safe_run/ticker ERROR      File "/usr/lib/python3.6/site-packages/pscheduler/db.py", line 37, in pg_connection
Jul 23 09:28:33 r74 journal: safe_run/ticker ERROR        pg = psycopg2.connect(dsn)
Jul 23 09:28:33 r74 journal: safe_run/ticker ERROR    psycopg2.OperationalError: FATAL:  password authentication failed for user "pscheduler"
Jul 23 09:28:33 r74 journal: safe_run/ticker ERROR    Waiting 0.25 seconds before restarting""",
    ),
    dict(
        source="https://github.com/BurntSushi/nfldb/issues/245",
        cls="authentication",
        fix="fix-credentials",
        log='''Traceback (most recent call last):
  File "ten-qbs.py", line 3, in <module>
    db = nfldb.connect()
  File "C:\\Python27\\lib\\site-packages\\nfldb\\db.py", line 126, in connect
    host=host, port=port)
  File "C:\\Python27\\lib\\site-packages\\psycopg2\\__init__.py", line 130, in connect
    conn = _connect(dsn, connection_factory=connection_factory, **kwasync)
psycopg2.OperationalError: FATAL:  password authentication failed for user "nfldb"''',
    ),
    dict(
        source="https://github.com/Django-CRM/Django-CRM/issues/280",
        cls="authentication",
        fix="fix-credentials",
        log=''' File "/home/amol/.local/lib/python3.6/site-packages/psycopg2/__init__.py", line 126, in connect
    conn = _connect(dsn, connection_factory=connection_factory, **kwasync)
django.db.utils.OperationalError: FATAL:  password authentication failed for user "postgres"
FATAL:  password authentication failed for user "postgres"''',
    ),
    dict(
        source="https://github.com/apache/airflow/issues/11651",
        cls="missing_module",
        fix="check-python-env",
        log="""Traceback (most recent call last):
  File "test1.py", line 8, in <module>
    from custom.custom_PostgresToGCSOperator import custom_PostgresToGCSOperator
  File "/root/airflow/dags/custom/custom_PostgresToGCSOperator.py", line 8, in <module>
    from airflow.providers.google.cloud.transfers.sql_to_gcs import BaseSQLToGCSOperator
ModuleNotFoundError: No module named 'airflow.providers\'""",
    ),
    dict(
        source="https://github.com/bitnami/charts/issues/2305",
        cls="missing_module",
        fix="check-python-env",
        log="""[2020-04-16 17:56:07,280] {dagbag.py:246} ERROR - Failed to import: /opt/bitnami/airflow/dags/git/load2mssql.py
Traceback (most recent call last):
  File "/opt/bitnami/airflow/venv/lib/python3.6/site-packages/airflow/models/dagbag.py", line 243, in process_file
    m = imp.load_source(mod_name, filepath)
  File "<frozen importlib._bootstrap>", line 219, in _call_with_frames_removed
  File "/opt/bitnami/airflow/dags/git/load2mssql.py", line 18, in <module>
    from acme.operators.mssql_operator import MsSqlLoadOperator
ModuleNotFoundError: No module named 'acme\'""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/24913",
        cls="missing_module",
        fix="pin-compatible-version",
        log="""from airflow.operators.empty import EmptyOperator
ModuleNotFoundError: No module named 'airflow.operators.empty\'""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/47197",
        cls="missing_module",
        fix="install-package",
        log=""" from airflow.providers.postgres.operators.postgres import PostgresOperator
ModuleNotFoundError: No module named 'airflow.providers.postgres.operators\'""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/12247",
        cls="missing_module",
        fix="install-package",
        log="""[2020-11-10 19:04:24,553] {dagbag.py:297} ERROR - Failed to import: /Users/abagri/Workspace/airflow2.0/venv/lib/python3.8/site-packages/airflow/example_dags/example_kubernetes_executor_config.py
Traceback (most recent call last):
  File "/Users/abagri/Workspace/airflow2.0/venv/lib/python3.8/site-packages/airflow/models/dagbag.py", line 294, in _load_modules_from_file
    loader.exec_module(new_module)
  File "/Users/abagri/Workspace/airflow2.0/venv/lib/python3.8/site-packages/airflow/example_dags/example_kubernetes_executor_config.py", line 23, in <module>
    from kubernetes.client import models as k8s
ModuleNotFoundError: No module named 'kubernetes\'""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/53124",
        cls="missing_module",
        fix="install-package",
        log="""Traceback (most recent call last):
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/Users/develop2025/Desktop/code/airflow/.venv/lib/python3.10/site-packages/airflow/example_dags/standard/example_external_task_parent_deferrable.py", line 60, in <module>
    from tests_common.test_utils.watcher import watcher
ModuleNotFoundError: No module named 'tests_common\'""",
    ),
    dict(
        source="https://github.com/gtoonstra/etl-with-airflow/issues/21",
        cls="missing_module",
        fix="check-python-env",
        log="""ERROR - Failed to import: /home/trent/airflow/dags/product_staging.py
Traceback (most recent call last):
  File "/home/trent/.local/lib/python2.7/site-packages/airflow/models/dagbag.py", line 236, in process_file
    m = imp.load_source(mod_name, filepath)
  File "/home/trent/airflow/dags/product_staging.py", line 18, in <module>
    from acme.operators.dwh_operators import PostgresToPostgresOperator
ImportError: No module named acme.operators.dwh_operators""",
    ),
    dict(
        source="https://github.com/BasPH/data-pipelines-with-apache-airflow/issues/72",
        cls="missing_module",
        fix="install-package",
        log="""FAILED test_daily_pipeline_integration.py::test_dag_integrity[PATH\\\\TO\\\\MY\\\\DIRECTORY\\\\..\\\\dags\\\\ip_address_mapping.py] - ModuleNotFoundError: No module
named 'airflow.providers.google\'""",
    ),
    dict(
        source="https://github.com/opencybersecurityalliance/firepit/issues/60",
        cls="duplicate_key",
        fix="upsert-or-merge",
        log='''psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "__columns_otype_path_key"''',
    ),
    dict(
        source="https://github.com/zulip/zulip/issues/19622",
        cls="duplicate_key",
        fix="upsert-or-merge",
        log=""""/Users/godseye/PycharmProjects/Python/pythonProject/Test_File.py", line 29, in <module>
    cursor.execute(f"INSERT INTO richpeople (ID, NAME, NETWORTH) VALUES({ID}, 'Ali Zafar', '{NET}')")
psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "richpeople_pkey"
DETAIL:  Key (id)=(0) already exists.""",
    ),
    dict(
        source="https://github.com/rucio/rucio/issues/3108",
        cls="duplicate_key",
        fix="upsert-or-merge",
        log="""InvalidRequestError: This Session's transaction has been rolled back due to a previous exception during flush. To begin a new transaction with this Session, first issue Session.rollback(). Original exception was: (psycopg2.errors.UniqueViolation) duplicate key value violates unique cons
traint "ACCOUNT_ATTR_MAP_PK"
DETAIL:  Key (account, key)=(root, jdoe-6803bb40932c423f99c0) already exists.""",
    ),
    dict(
        source="https://github.com/linuxserver/Heimdall/issues/429",
        cls="duplicate_key",
        fix="upsert-or-merge",
        log="""SQLSTATE[23505]: Unique violation: 7 ERROR: duplicate key value violates unique constraint "users_pkey" DETAIL: Key (id)=(1) already exists.""",
    ),
    dict(
        source="https://github.com/biopython/biopython/issues/1999",
        cls="duplicate_key",
        fix="dedupe-source",
        log="""Traceback (most recent call last):
  File "/home/travis/build/biopython/biopython/Tests/common_BioSQL.py", line 790, in test_duplicate_id_load
    count = self.db.load([record1, record2])
psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "bioentry_accession_biodatabase_id_version_key"
DETAIL:  Key (accession, biodatabase_id, version)=(TestA, 1, 0) already exists.""",
    ),
    dict(
        source="https://github.com/Weasyl/weasyl/issues/107",
        cls="duplicate_key",
        fix="upsert-or-merge",
        log="""2016-07-14 17:21:23 PDT [30231-1] weasyl@weasyl ERROR:  duplicate key value violates unique constraint "authbcrypt_pkey"
2016-07-14 17:21:23 PDT [30231-2] weasyl@weasyl DETAIL:  Key (userid)=(44084) already exists.""",
    ),
    dict(
        source="https://github.com/C3n7ral051nt4g3ncy/Prot1ntelligence/issues/1",
        cls="rate_limited",
        fix="honour-retry-after",
        log=""" raise HTTPError(req.full_url, code, msg, hdrs, fp)
urllib.error.HTTPError: HTTP Error 429: Too Many Requests""",
    ),
    dict(
        source="https://github.com/random-robbie/bugbountydork/issues/3",
        cls="rate_limited",
        fix="honour-retry-after",
        log="""urllib.error.HTTPError: HTTP Error 429: Too Many Requests""",
    ),
    dict(
        source="https://github.com/IBM-Blockchain/ansible-collection/issues/189",
        cls="rate_limited",
        fix="honour-retry-after",
        log="""{"error":"[AK Requests] exceeded the high volume rate limit - too many requests, try again later","rate_limit":"100/min"}""",
    ),
]
