"""Failure logs from public issue trackers (part C), as labelled for bench/rca."""

ENTRIES = [
    dict(
        source="https://github.com/openssl/openssl/issues/20037",
        cls="tls",
        fix="fix-ca-bundle",
        log="""ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:997)""",
    ),
    dict(
        source="https://github.com/EastItem/auto-daka/issues/5",
        cls="tls",
        fix="fix-ca-bundle",
        log="""requests.exceptions.SSLError: HTTPSConnectionPool(host='ygj.gduf.edu.cn', port=443): Max retries exceeded with url: /Handler/device.ashx?flag=getNotice (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1129)')))""",
    ),
    dict(
        source="https://github.com/x0rz/phishing_catcher/pull/55",
        cls="tls",
        fix="fix-ca-bundle",
        log="""[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1108) - Sleeping for a few seconds and trying again...""",
    ),
    dict(
        source="https://github.com/acamso/demos/issues/2",
        cls="tls",
        fix="fix-ca-bundle",
        log="""ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate.""",
    ),
    dict(
        source="https://github.com/itsmehacker/CardPwn/issues/8",
        cls="tls",
        fix="fix-ca-bundle",
        log="""urllib.error.URLError: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1129)>""",
    ),
    dict(
        source="https://github.com/richarvey/getAWSdocs/issues/13",
        cls="tls",
        fix="fix-ca-bundle",
        log="""ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate (_ssl.c:1056)""",
    ),
    dict(
        source="https://github.com/opensanctions/opensanctions/issues/44",
        cls="dns",
        fix="fix-hostname",
        log="""ERROR:coe_assembly.init:(psycopg2.OperationalError) could not translate host name "postgres" to address: Name does not resolve""",
    ),
    dict(
        source="https://github.com/GeographicaGS/Docker-PostGIS/issues/69",
        cls="dns",
        fix="fix-hostname",
        log="""psql: error: could not connect to server: could not translate host name "postgis" to address: Name or service not known""",
    ),
    dict(
        source="https://github.com/docker-library/postgres/issues/970",
        cls="dns",
        fix="check-dns",
        log='''"could not translate host name "postgres" to address: Name or service not known"''',
    ),
    dict(
        source="https://github.com/PostgresApp/PostgresApp/issues/331",
        cls="dns",
        fix="fix-hostname",
        log="""Unable to connect to server:
could not translate host name "localhost " to address: Name or service not known""",
    ),
    dict(
        source="https://github.com/rinormaloku/postgre-backup-container/issues/1",
        cls="dns",
        fix="fix-hostname",
        log="""Creating dump: backupOn2019-08-26-18-22.dump
pg_dumpall: could not connect to database "template1": could not translate host name "localhost:5432" to address: Name does not resolve Back up not created, check db connection settings""",
    ),
    dict(
        source="https://github.com/getsentry/self-hosted/issues/424",
        cls="dns",
        fix="check-dns",
        log="""django.db.utils.OperationalError: could not translate host name "postgres" to address: Name or service not known""",
    ),
    dict(
        source="https://github.com/whythawk/full-stack-fastapi-postgresql/issues/36",
        cls="dns",
        fix="check-dns",
        log="""test-celeryworker-1  | ERROR:__main__:(psycopg2.OperationalError) could not translate host name "db" to address: Temporary failure in name resolution
test-celeryworker-1  |
test-celeryworker-1  | (Background on this error at: https://sqlalche.me/e/20/e3q8)
test-celeryworker-1  | WARNING:__main__:Finished call to '__main__.init' after 26.012(s), this was the 3rd time calling it.""",
    ),
    dict(
        source="https://github.com/qvarforth/trackdirect/issues/66",
        cls="dns",
        fix="check-dns",
        log="""collector-1 | 2025-11-12 13:30:21,531 - trackdirect - WARNING - Creating DB connection to db
collector-1 | 2025-11-12 13:30:21,564 - trackdirect - ERROR - could not translate host name "db" to address: Temporary failure in name resolution
collector-1 | Traceback (most recent call last):
collector-1 | File "/root/trackdirect/server/scripts/../bin/collector.py", line 62, in <module>
collector-1 | track_direct_data_collector.run(sys.argv[1])""",
    ),
    dict(
        source="https://github.com/keylime/keylime/issues/1239",
        cls="permission",
        fix="grant-privileges",
        log="""psycopg2.errors.InsufficientPrivilege: permission denied for schema public""",
    ),
    dict(
        source="https://github.com/lorinkoz/django-pgschemas/issues/81",
        cls="permission",
        fix="grant-privileges",
        log="""Traceback (most recent call last):
  File "/var/www/vhosts/website/.pyenv/versions/3.9.1/lib/python3.9/site-packages/django/db/backends/utils.py", line 82, in _execute
    return self.cursor.execute(sql)
psycopg2.errors.InsufficientPrivilege: permission denied for database webdb""",
    ),
    dict(
        source="https://github.com/langflow-ai/langflow/issues/1594",
        cls="permission",
        fix="grant-privileges",
        log="""[04/04/24 00:17:35] ERROR    2024-04-04 00:17:35 - ERROR    - service - Error creating table user:        service.py:233
                             (psycopg2.errors.InsufficientPrivilege) permission denied for schema public
                             LINE 2: CREATE TABLE "user" (""",
    ),
    dict(
        source="https://github.com/koordinates/kart/issues/391",
        cls="permission",
        fix="grant-privileges",
        log="""Traceback (most recent call last):
  File "site-packages/sqlalchemy/engine/base.py", line 1277, in _execute_context
  File "site-packages/sqlalchemy/engine/default.py", line 608, in do_execute
psycopg2.errors.InsufficientPrivilege: permission denied for database <dbname>""",
    ),
    dict(
        source="https://github.com/rundeck/docs/issues/1149",
        cls="permission",
        fix="grant-privileges",
        log="""SQL Error [42501]: ERROR: permission denied for schema publicPosition: 14
ERROR: permission denied for schema publicPosition: 14""",
    ),
    dict(
        source="https://github.com/goauthentik/authentik/issues/12154",
        cls="permission",
        fix="grant-privileges",
        log="""  File "/ak-root/venv/lib/python3.12/site-packages/psycopg/cursor.py", line 97, in execute
    raise ex.with_traceback(None)
psycopg.errors.InsufficientPrivilege: permission denied for schema public
LINE 1: CREATE TABLE "django_migrations" ("id" integer NOT NULL PRIM...
                     ^""",
    ),
    dict(
        source="https://github.com/travisluong/nfp-boilerplate/issues/2",
        cls="permission",
        fix="grant-privileges",
        log="""  psycopg2.errors.InsufficientPrivilege: permission denied for schema public
  LINE 2: CREATE TABLE alembic_version (
                       ^""",
    ),
    dict(
        source="https://github.com/psycopg/psycopg2/issues/1611",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log=""" [23:55:26] - ERROR - (psycopg2.errors.UndefinedColumn) column flow.user_id does not exist                    endpoints.py:134
                    LINE 1: SELECT flow.data AS flow_data, flow.user_id AS flow_user_id,...
                                                           ^""",
    ),
    dict(
        source="https://github.com/tsatsujnr139/fastapi-role-based-access-control-auth-service/issues/3",
        cls="schema_mismatch",
        fix="migrate-target-table",
        log="""go24-pos24-fastapi  | psycopg2.errors.UndefinedColumn: column accounts.plan_id does not exist
go24-pos24-fastapi  | LINE 1: ...iption, accounts.is_active AS accounts_is_active, accounts.p...
go24-pos24-fastapi  |
go24-pos24-fastapi  | The above exception was the direct cause of the following exception:
go24-pos24-fastapi  |
go24-pos24-fastapi  | Traceback (most recent call last):
go24-pos24-fastapi  |   File "/app/app/initial_data.py", line 22, in <module>
go24-pos24-fastapi  |     main()
go24-pos24-fastapi  |   File "/app/app/crud/crud_account.py", line 11, in get_by_name
go24-pos24-fastapi  |     return db.query(self.model).filter(Account.name == name).first()""",
    ),
    dict(
        source="https://github.com/brianc/node-postgres/issues/2460",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log="""error: column "f2xuxt" does not exist
    at Parser.parseErrorMessage (D:\\Projects\\apxub\\parser\\node_modules\\pg-protocol\\dist\\parser.js:278:15)
    at Parser.handlePacket (D:\\Projects\\apxub\\parser\\node_modules\\pg-protocol\\dist\\parser.js:126:29)
  length: 99,
  name: 'error',
  severity: 'ERROR',
  code: '42703',
  routine: 'errorMissingColumn'
}""",
    ),
    dict(
        source="https://github.com/mrmarchone/laravel-auto-crud/issues/1",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log="""  SQLSTATE[42703]: Undefined column: 7 ERROR:  column "column_key" does not exist
LINE 1: SELECT COLUMN_NAME, COLUMN_KEY, IS_NULLABLE, DATA_TYPE, CHAR...""",
    ),
    dict(
        source="https://github.com/psycopg/psycopg2/issues/1477",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log=""" cur.execute("INSERT INTO public.sensor_data (temperature, pressure) VALUES (%s, %s) RETURNING * ;",(temperature, pressure))
psycopg2.errors.UndefinedColumn: column "temperature" of relation "sensor_data" does not exist""",
    ),
    dict(
        source="https://github.com/psycopg/psycopg2/issues/1605",
        cls="schema_mismatch",
        fix="migrate-target-table",
        log="""SELECT "CREATION_DATE" FROM abbotsley_271."AREA_BUILD_PHASE_BOUNDARIES";
psycopg2.errors.UndefinedTable: relation "abbotsley_271.AREA_BUILD_PHASE_BOUNDARIES" does not exist""",
    ),
    dict(
        source="https://github.com/Brideau/pokelyzer/issues/30",
        cls="schema_mismatch",
        fix="update-query-or-mapping",
        log="""[2016-07-31T23:34:07.982Z] ERROR: MainApp/876 on localhost:
    Error running query { [error: column "undefined" does not exist]
      name: 'error',
      severity: 'ERROR',
      code: '42703',
      routine: 'errorMissingColumn' }""",
    ),
]
