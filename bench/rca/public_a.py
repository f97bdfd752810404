"""Failure logs from public issue trackers (part A), each with its source and the fix the
thread settled on, as labelled for bench/rca. Logs are excerpts as the reporters posted them."""

ENTRIES = [
    dict(
        source="https://github.com/thenewboston-blockchain/Validator/issues/76",
        cls="connection_refused",
        fix="start-service",
        log="""OperationalError psycopg2 in connect
could not connect to server: Connection refused Is the server running on host "localhost" (127.0.0.1) and accepting TCP/IP connections on port 5432?""",
    ),
    dict(
        source="https://github.com/Django-CRM/Django-CRM/issues/447",
        cls="connection_refused",
        fix="start-service",
        log="""  conn = _connect(dsn, connection_factory=connection_factory, **kwasync)
psycopg2.OperationalError: could not connect to server: Connection refused (0x0000274D/10061)
        Is the server running on host "localhost" (::1) and accepting
        TCP/IP connections on port 5432?
could not connect to server: Connection refused (0x0000274D/10061)
        Is the server running on host "localhost" (127.0.0.1) and accepting
        TCP/IP connections on port 5432?""",
    ),
    dict(
        source="https://github.com/mgurg/malgori_cmms_api/issues/22",
        cls="connection_refused",
        fix="check-host-port",
        log="""(psycopg.OperationalError) connection failed: Connection refused web-1 |Is the server running on that host and accepting TCP/IP connections?""",
    ),
    dict(
        source="https://github.com/mikeizbicki/cmc-csci143/issues/331",
        cls="connection_refused",
        fix="start-service",
        log="""sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) could not connect to server: Connection refused""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/16830",
        cls="connection_refused",
        fix="start-service",
        log="""Traceback (most recent call last):
  File "/home/airflow/.local/lib/python3.6/site-packages/sqlalchemy/engine/base.py", line 2336, in _wrap_pool_connect
    return fn()
  File "/home/airflow/.local/lib/python3.6/site-packages/sqlalchemy/pool/base.py", line 364, in connect
    return _ConnectionFairy._checkout(self)
psycopg2.OperationalError: ERROR: pgbouncer cannot connect to server""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/27741",
        cls="out_of_memory",
        fix="raise-memory-limit",
        log="""INFO - Task exited with return code Negsignal.SIGKILL
task running fine on local machine but getting error on production (Kubernetes, pods: 28, Memory: 60 GB)""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/10435",
        cls="out_of_memory",
        fix="raise-memory-limit",
        log="""[2020-08-20 10:11:12,345] {local_task_job.py:102} INFO - Task exited with return code Negsignal.SIGKILL""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/55599",
        cls="out_of_memory",
        fix="raise-memory-limit",
        log='''CRITICAL - Process terminated by signal. For more information, see https://airflow.apache.org/docs/apache-airflow/stable/troubleshooting.html#TaskRunner-killed: signal=-9: signal_name="SIGKILL": source="task"''',
    ),
    dict(
        source="https://github.com/bitnami/charts/issues/17754",
        cls="out_of_memory",
        fix="raise-memory-limit",
        log="""[2023-07-17 16:09:21,326: ERROR/MainProcess] Process 'ForkPoolWorker-410' pid:600 exited with 'signal 9 (SIGKILL)'
[2023-07-17 16:09:22,426: ERROR/MainProcess] Process 'ForkPoolWorker-411' pid:601 exited with 'signal 9 (SIGKILL)'
[2023-07-17 16:09:23,551: WARNING/MainProcess] process with pid=600 already exited
[2023-07-17 16:09:23,552: ERROR/MainProcess] Process 'ForkPoolWorker-412' pid:602 exited with 'signal 9 (SIGKILL)\'""",
    ),
    dict(
        source="https://github.com/metinsenturk/flat_table/issues/14",
        cls="out_of_memory",
        fix="reduce-batch-size",
        log="""MemoryError: Unable to allocate 4.51 GiB for an array with shape (4, 151393970) and data type object""",
    ),
    dict(
        source="https://github.com/theislab/single-cell-tutorial/issues/85",
        cls="out_of_memory",
        fix="reduce-batch-size",
        log="""numpy.core._exceptions.MemoryError: Unable to allocate 926. GiB for an array with shape (6794880, 36601) and data type float32""",
    ),
    dict(
        source="https://github.com/parklab/HiNT/issues/12",
        cls="out_of_memory",
        fix="reduce-batch-size",
        log="""MemoryError: Unable to allocate 18.7 GiB for an array with shape (50095, 50095) and data type float64""",
    ),
    dict(
        source="https://github.com/cod3licious/autofeat/issues/24",
        cls="out_of_memory",
        fix="reduce-batch-size",
        log="""MemoryError: Unable to allocate 2.05 GiB for an array with shape (501, 550174) and data type float64""",
    ),
    dict(
        source="https://github.com/pandas-dev/pandas/issues/8525",
        cls="out_of_memory",
        fix="reduce-batch-size",
        log=""">>> df2 = pandas.DataFrame(df_data, index=df_ind, columns=df_cols)
python(86000,0x7fff7a7aa310) malloc: *** mach_vm_map(size=200447690256384) failed (error code=3)
*** error: can't allocate region
Traceback (most recent call last):
  File "<stdin>", line 1, in <module>
  File "/Library/Python/2.7/site-packages/pandas/core/frame.py", line 243, in __init__
    arrays, columns = _to_arrays(data, columns, dtype=dtype)
  File "lib.pyx", line 443, in pandas.lib.dicts_to_array (pandas/lib.c:9308)
MemoryError""",
    ),
    dict(
        source="https://github.com/spacetelescope/jwql/issues/751",
        cls="disk_full",
        fix="free-disk-space",
        log="""--- Logging error ---
Traceback (most recent call last):
  File "jwql/miniconda3/envs/jwql-3.7/lib/python3.7/logging/__init__.py", line 1029, in emit
    self.flush()
  File "jwql/miniconda3/envs/jwql-3.7/lib/python3.7/logging/__init__.py", line 1009, in flush
    self.stream.flush()
OSError: [Errno 28] No space left on device""",
    ),
    dict(
        source="https://github.com/GoogleCloudPlatform/composer-local-dev/issues/40",
        cls="disk_full",
        fix="free-disk-space",
        log="""2024-03-06T11:35:53.018866217Z + pip3 install --upgrade -r composer_requirements.txt
2024-03-06T11:36:02.712495513Z Collecting boto3
2024-03-06T11:37:16.164684714Z ERROR: Could not install packages due to an EnvironmentError: [Errno 28] No space left on device:
'/home/airflow/.local/lib/python3.8/site-packages/botocore/data/outposts\'""",
    ),
    dict(
        source="https://github.com/bitnami/charts/issues/5538",
        cls="disk_full",
        fix="free-disk-space",
        log="""Error executing 'postInstallation': ENOSPC: no space left on device, mkdir '/opt/bitnami/airflow/tmp\'""",
    ),
    dict(
        source="https://github.com/scylladb/scylla-cluster-tests/issues/6026",
        cls="disk_full",
        fix="free-disk-space",
        log="""11:15:18  [Errno 28] No space left on device: '/home/ubuntu/sct-results/20230413-155605-322382/hosts/db-node-16/messages.log' -> '/home/ubuntu/sct-results/20230413-155628-294000/collected_logs/messages.log\'""",
    ),
    dict(
        source="https://github.com/apache/airflow/issues/19957",
        cls="concurrency_conflict",
        fix="retry-with-backoff",
        log='''Traceback (most recent call last):
  File "/usr/local/lib/python3.9/dist-packages/sqlalchemy/engine/base.py", line 1276, in _execute_context
    self.dialect.do_execute(
  File "/usr/local/lib/python3.9/dist-packages/sqlalchemy/engine/default.py", line 608, in do_execute
    cursor.execute(statement, parameters)
psycopg2.errors.DeadlockDetected: deadlock detected
DETAIL:  Process 1766598 waits for ShareLock on transaction 13026090; blocked by process 1767489.
Process 1767489 waits for ShareLock on transaction 13026085; blocked by process 1766598.
HINT:  See server log for query details.
CONTEXT:  while updating tuple (6805,13) in relation "task_instance"''',
    ),
    dict(
        source="https://github.com/apache/airflow/issues/23361",
        cls="concurrency_conflict",
        fix="order-locks",
        log="""2022-07-06 18:54:25.816 UTC [100639] ERROR:  deadlock detected
2022-07-06 18:54:25.816 UTC [100639] DETAIL:  Process 100639 waits for ShareLock on transaction 527390039; blocked by process 99711.
    Process 99711 waits for ShareLock on transaction 527390130; blocked by process 100639.""",
    ),
    dict(
        source="https://github.com/apache/airflow/pull/66765",
        cls="concurrency_conflict",
        fix="order-locks",
        log="""2026-05-12 10:25:09.658 UTC [pid_XXXXXX] ERROR:  deadlock detected
2026-05-12 10:25:09.658 UTC [pid_XXXXXX] DETAIL:  Process pid_XXXXXX waits for ShareLock on transaction txn_XXXXXXXX; blocked by process pid_YYYYYY.""",
    ),
]
