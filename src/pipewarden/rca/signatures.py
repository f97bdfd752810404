"""The signature library: the failure classes a pipeline meets, how to recognise each, whether
a retry can help, and the fixes to try, best first.

A signature matches on three levels, strongest first (see :mod:`pipewarden.rca.classify`):

1. a **structured code**: a SQLSTATE (exact, or a two-character class such as ``08``), an
   errno name (``ENOSPC``), a process exit code (137), an HTTP status (429), or one of our own
   outcome codes (``breaker_open``);
2. an **exception type** (the last component of its name: ``MemoryError``, ``ReadTimeout``);
3. a **message pattern** (a case-insensitive regular expression).

Each :class:`Fix` may carry ``when``: a pattern that, found in the log, moves that fix to the
front (``localhost`` inside a container points at the host name before the server).

The same library decides what a retry policy retries (:func:`pipewarden.conduct.retry.
is_transient`), so the wrapper that retries a command and the report that explains its failure
never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fix:
    id: str
    text: str
    when: str | None = None  # a pattern that moves this fix first when it is in the log


@dataclass(frozen=True)
class Signature:
    cls: str
    title: str
    retryable: bool
    fixes: tuple[Fix, ...]
    sqlstates: tuple[str, ...] = ()
    errnos: tuple[str, ...] = ()
    exit_codes: tuple[int, ...] = ()
    http_statuses: tuple[int, ...] = ()
    outcomes: tuple[str, ...] = ()
    exceptions: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    retry_note: str = ""
    _compiled: tuple = field(default=(), compare=False, repr=False)

    def compiled(self) -> tuple[re.Pattern, ...]:
        if not self._compiled:
            object.__setattr__(
                self, "_compiled", tuple(re.compile(p, re.I | re.M) for p in self.patterns)
            )
        return self._compiled

    def to_dict(self) -> dict:
        return {
            "class": self.cls,
            "title": self.title,
            "retryable": self.retryable,
            "sqlstates": list(self.sqlstates),
            "errnos": list(self.errnos),
            "exit_codes": list(self.exit_codes),
            "http_statuses": list(self.http_statuses),
            "outcomes": list(self.outcomes),
            "exceptions": list(self.exceptions),
            "patterns": list(self.patterns),
            "fixes": [{"id": f.id, "text": f.text} for f in self.fixes],
        }


def _f(id: str, text: str, when: str | None = None) -> Fix:
    return Fix(id, text, when)


# Order matters only between equally strong matches: the more specific class comes first
# (a TLS or DNS failure is also a failed connection; a sensor timeout is also a timeout).
SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "out_of_memory",
        "the process ran out of memory",
        retryable=False,
        sqlstates=("53200",),
        errnos=("ENOMEM",),
        exit_codes=(137, -9),
        exceptions=("MemoryError", "OutOfMemoryError", "ArrayMemoryError", "_ArrayMemoryError"),
        outcomes=("oom_killed",),
        patterns=(
            r"\bOOMKilled\b",
            r"\bout of memory\b",
            r"Unable to allocate [\d.]+ \w?i?B",
            r"Cannot allocate memory",
            r"java\.lang\.OutOfMemoryError",
            r"Java heap space",
            r"GC overhead limit exceeded",
            r"memory limit exceeded|exceeded memory limit|Memory limit reached",
            r"Killed process \d+|oom-kill|oom_reaper",
            r"Negsignal\.SIGKILL",
            r"std::bad_alloc",
            r"^Killed\s*$",
        ),
        fixes=(
            _f(
                "reduce-batch-size",
                "process the data in smaller pieces: lower source.chunk_rows, read with "
                "chunksize=, or split the input",
                r"read_csv|read_json|DataFrame|chunk|fetchall|\.collect\(",
            ),
            _f(
                "raise-memory-limit",
                "give the task more memory (container/pod limit, executor memory, -Xmx)",
                r"OOMKilled|container|pod|Java heap|-Xmx|executor",
            ),
            _f(
                "stream-not-load",
                "stream rows instead of materialising them (server-side cursor, iterators, "
                "fetchmany) and drop large intermediates",
            ),
        ),
        retry_note="the same input on the same limit fails again: fix the memory first",
    ),
    Signature(
        "disk_full",
        "no space left on the device",
        retryable=False,
        sqlstates=("53100",),
        errnos=("ENOSPC", "EDQUOT"),
        exceptions=("DiskFull",),
        patterns=(
            r"No space left on device",
            r"Disk quota exceeded",
            r"could not extend file",
            r"could not write to (?:file|temporary file)",
            r"\bdisk (?:is )?full\b",
            r"not enough (?:free )?(?:disk )?space",
        ),
        fixes=(
            _f(
                "free-disk-space",
                "free space on that volume (old logs, temp files, spilled data, docker images)",
            ),
            _f(
                "move-temp-dir",
                "point temporary/spill files at a larger volume (TMPDIR, temp_directory, "
                "temp_tablespaces)",
                r"tmp|temp|spill",
            ),
            _f("grow-volume", "grow the volume or the database's disk"),
        ),
        retry_note="a retry fails again until space is freed",
    ),
    Signature(
        "tls",
        "the TLS/SSL handshake or certificate check failed",
        retryable=False,
        exceptions=(
            "SSLError",
            "SSLCertVerificationError",
            "SSLZeroReturnError",
            "SSLEOFError",
            "CertificateError",
        ),  # fmt: skip
        patterns=(
            r"CERTIFICATE_VERIFY_FAILED",
            r"certificate verify failed",
            r"\[SSL[:\]]",
            r"SSL(?:V3)?_?(?:routines|error|handshake|alert)",
            r"WRONG_VERSION_NUMBER",
            r"self[- ]signed certificate",
            r"server does not support SSL",
            r"SSL connection has been closed unexpectedly",
            r"hostname .* doesn't match|Hostname mismatch",
            r"unable to get local issuer certificate",
            r"tls: (?:handshake|bad certificate|failed to verify)",
        ),
        fixes=(
            _f(
                "fix-ca-bundle",
                "trust the server's CA (REQUESTS_CA_BUNDLE/SSL_CERT_FILE, sslrootcert, the "
                "system's CA store)",
                r"verify failed|issuer|self[- ]signed",
            ),
            _f(
                "fix-tls-mode",
                "match the TLS mode to the server (https vs http, sslmode=require vs disable, "
                "the right port)",
                r"WRONG_VERSION_NUMBER|does not support SSL|wrong version",
            ),
            _f("fix-hostname", "connect by the name the certificate was issued for"),
        ),
    ),
    Signature(
        "dns",
        "a host name could not be resolved",
        retryable=True,
        errnos=("EAI_NONAME", "EAI_AGAIN", "EAI_FAIL", "ENOTFOUND"),
        exceptions=("gaierror", "NameResolutionError"),
        patterns=(
            r"Name or service not known",
            r"Temporary failure in name resolution",
            r"nodename nor servname provided",
            r"could not translate host name",
            r"getaddrinfo (?:failed|ENOTFOUND|EAI_AGAIN)",
            r"No address associated with hostname",
            r"Failed to resolve",
            r"no such host",
            r"Could not resolve host",
        ),
        fixes=(
            _f(
                "fix-hostname",
                "check the host name in the connection settings (typo, a service name used "
                "outside its network)",
                r"Name or service not known|could not translate|no such host|NONAME",
            ),
            _f(
                "check-dns",
                "check the resolver (DNS server, /etc/resolv.conf, the container network)",
                r"Temporary failure|EAI_AGAIN",
            ),
            _f("retry-with-backoff", "retry with backoff: a resolver hiccup passes"),
        ),
        retry_note="retry a few times (a resolver hiccup passes); a wrong name does not",
    ),
    Signature(
        "authentication",
        "the credentials were refused",
        retryable=False,
        sqlstates=("28P01", "28000"),
        http_statuses=(401,),
        exceptions=(
            "InvalidPassword",
            "InvalidAuthorizationSpecification",
            "AuthenticationError",
            "AuthenticationFailed",
            "NotAuthenticated",
            "Unauthorized",
            "InvalidClientTokenId",
            "ExpiredToken",
            "ExpiredTokenException",
        ),  # fmt: skip
        patterns=(
            r"password authentication failed",
            r"authentication failed",
            r"no pg_hba\.conf entry",
            r"role \S+ does not exist",
            r"is not permitted to log in",
            r"\b401\b.{0,20}Unauthori[sz]ed|Unauthori[sz]ed.{0,20}\b401\b",
            r"invalid (?:api[ _-]?key|token|credentials|access key)",
            r"(?:token|credentials?) (?:has |have )?expired",
            r"Access denied for user",
            r"Login failed for user",
            r"The security token included in the request is invalid",
            r"SignatureDoesNotMatch",
        ),
        fixes=(
            _f(
                "fix-credentials",
                "fix the secret the task uses (password, API key) in the connection or "
                "secret store",
                r"password|api[ _-]?key|credentials|Access denied|Login failed",
            ),
            _f(
                "refresh-token",
                "refresh or rotate the expired token/credentials",
                r"expired|ExpiredToken",
            ),
            _f(
                "fix-auth-config",
                "check the server's auth rules (pg_hba.conf, the role's LOGIN, the key's scopes)",
                r"pg_hba|not permitted to log in|role .* does not exist",
            ),
        ),
    ),
    Signature(
        "permission",
        "permission denied",
        retryable=False,
        sqlstates=("42501",),
        errnos=("EACCES", "EPERM", "EROFS"),
        http_statuses=(403,),
        exceptions=(
            "PermissionError",
            "InsufficientPrivilege",
            "Forbidden",
            "AccessDenied",
            "AccessDeniedException",
            "PermissionDenied",
        ),  # fmt: skip
        patterns=(
            r"permission denied",
            r"must be owner of",
            r"\b403\b.{0,20}Forbidden|Forbidden.{0,20}\b403\b",
            r"AccessDenied",
            r"Read-only file system",
            r"not authori[sz]ed to perform",
            r"insufficient privileges?",
        ),
        fixes=(
            _f(
                "grant-privileges",
                "grant the task's role what it needs (GRANT ... ON ... TO ..., the bucket or "
                "API policy)",
                r"permission denied for|must be owner|privilege|AccessDenied|403|not authori",
            ),
            _f(
                "fix-file-permissions",
                "fix the file or folder's owner/mode, or run as a user that may write there",
                r"Errno 13|EACCES|PermissionError|Read-only file system|\[Errno 1\]",
            ),
            _f("use-right-identity", "run the task as the identity meant for it"),
        ),
    ),
    Signature(
        "schema_mismatch",
        "the data or the query does not match the schema",
        retryable=False,
        sqlstates=(
            "42703",
            "42P01",
            "42804",
            "22P02",
            "42883",
            "22007",
            "22003",
            "23502",
            "42P10",
            "42702",
        ),  # fmt: skip
        exceptions=(
            "UndefinedColumn",
            "UndefinedTable",
            "DatatypeMismatch",
            "InvalidTextRepresentation",
            "UndefinedFunction",
            "NumericValueOutOfRange",
            "NotNullViolation",
            "SchemaError",
            "ArrowInvalid",
            "ArrowTypeError",
            "BinderException",
            "CatalogException",
            "ConversionException",
            "NoSuchColumnError",
            "NoSuchTableError",
            "ColumnNotFoundError",
            "AnalysisException",
        ),  # fmt: skip
        patterns=(
            r"column \S+ (?:of relation \S+ )?does not exist",
            r"relation \S+ does not exist",
            r"is of type \w[\w ]* but expression is of type",
            r"invalid input syntax for (?:type )?\w+",
            r"KeyError: ['\"]?[\w ]+['\"]?\s*$",
            r"not in index",
            r"None of \[.*\] are in the \[?(?:columns|index)",
            r"Referenced column \S+ not found",
            r"Table with name \S+ does not exist",
            r"no such (?:column|table)",
            r"Unknown column",
            r"Could not convert .* with type",
            r"cannot cast|could not convert string to float",
            r"violates not-null constraint",
            r"schema (?:mismatch|changed)|contract.*(?:mismatch|violat)",
            r"Invalid column name",
            r"Unrecognized name:",
            r"cannot resolve '?\S+'? given input columns",
            r"UNRESOLVED_COLUMN",
        ),
        fixes=(
            _f(
                "update-query-or-mapping",
                "update the query/model to the columns the table has now (a column was "
                "renamed or dropped upstream)",
                r"column \S+ does not exist|KeyError|not in index|Unknown column|no such column|"
                r"not found|UNRESOLVED_COLUMN|cannot resolve|Invalid column name",
            ),
            _f(
                "migrate-target-table",
                "create or migrate the target table (run the migration, or let the schema "
                "sentinel evolve it)",
                r"relation \S+ does not exist|no such table|Table with name|UndefinedTable",
            ),
            _f(
                "cast-or-clean-values",
                "cast or clean the offending values upstream (or quarantine them) so they fit "
                "the column type",
                r"invalid input syntax|is of type|Could not convert|cannot cast|convert string",
            ),
            _f("pin-upstream-contract", "agree a data contract with the upstream producer"),
        ),
    ),
    Signature(
        "duplicate_key",
        "a unique key was violated",
        retryable=False,
        sqlstates=("23505",),
        exceptions=("UniqueViolation", "DuplicateKeyError", "ConstraintException"),
        patterns=(
            r"duplicate key value violates unique constraint",
            r"UNIQUE constraint failed",
            r"Duplicate entry .* for key",
            r"duplicate key",
            r"Cannot insert duplicate key",
            r"violates primary key constraint",
        ),
        fixes=(
            _f(
                "upsert-or-merge",
                "make the load idempotent: upsert/merge on the key instead of insert",
            ),
            _f(
                "dedupe-source",
                "de-duplicate the batch on its key before loading",
                r"batch|source|input",
            ),
            _f(
                "rerun-was-partial",
                "a re-run after a partial load: delete the partial rows or load into a staging "
                "table first",
            ),
        ),
    ),
    Signature(
        "concurrency_conflict",
        "a deadlock, serialization failure or lock wait",
        retryable=True,
        sqlstates=("40P01", "40001", "55P03"),
        exceptions=(
            "DeadlockDetected",
            "SerializationFailure",
            "LockNotAvailable",
            "TransactionRollbackError",
        ),  # fmt: skip
        patterns=(
            r"deadlock detected",
            r"could not serialize access",
            r"could not obtain lock",
            r"Deadlock found when trying to get lock",
            r"Lock wait timeout exceeded",
            r"database is locked",
            r"Could not set lock on file",
            r"Conflicting lock is held",
            r"TransactionContext Error: .*[Cc]onflict",
        ),
        fixes=(
            _f("retry-with-backoff", "retry the transaction with jittered backoff"),
            _f(
                "order-locks",
                "take locks in one order in every writer (sort keys before updating), keep "
                "transactions short",
                r"deadlock",
            ),
            _f(
                "serialize-writers",
                "do not run two writers of the same table at once (max_active_runs=1, a pool)",
                r"database is locked|Could not set lock|Conflicting lock|could not obtain lock",
            ),
        ),
    ),
    Signature(
        "rate_limited",
        "the service rate-limited the client",
        retryable=True,
        http_statuses=(429,),
        exceptions=(
            "RateLimitError",
            "TooManyRequests",
            "ThrottlingException",
            "RateLimitExceeded",
            "SlowDown",
        ),  # fmt: skip
        patterns=(
            r"\b429\b",
            r"Too Many Requests",
            r"rate[- ]?limit(?:ed)?(?: exceeded)?",
            r"Throttl(?:ed|ing)",
            r"quota exceeded|Quota exceeded",
            r"Retry-After",
            r"SlowDown",
        ),
        fixes=(
            _f(
                "honour-retry-after",
                "back off and honour Retry-After (pipewarden ingest does this on its own)",
            ),
            _f(
                "lower-concurrency",
                "lower the request concurrency / page size",
                r"concurren|parallel|threads",
            ),
            _f("raise-quota", "ask for a higher quota or spread the load over time"),
        ),
        retry_note="retry after the Retry-After delay, with jittered backoff",
    ),
    Signature(
        "server_error",
        "the remote service failed (HTTP 5xx)",
        retryable=True,
        http_statuses=(500, 502, 503, 504),
        exceptions=(
            "ServiceUnavailable",
            "BadGateway",
            "InternalServerError",
            "GatewayTimeout",
            "ServerError",
        ),  # fmt: skip
        patterns=(
            r"\b50[0234]\b.{0,30}(?:Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)",
            r"Service (?:Temporarily )?Unavailable|Bad Gateway|Internal Server Error",
            r"Server error '5\d\d",
            r"upstream connect error",
        ),
        fixes=(
            _f("retry-with-backoff", "retry with jittered backoff: the service may recover"),
            _f("check-upstream-status", "check the upstream service's status and logs"),
            _f("reduce-request-size", "smaller requests or pages if the service times out"),
        ),
    ),
    Signature(
        "timeout",
        "an operation timed out",
        retryable=True,
        sqlstates=("57014", "25P03"),
        errnos=("ETIMEDOUT",),
        exit_codes=(124,),
        outcomes=("sensor_timeout",),
        http_statuses=(408,),
        exceptions=(
            "TimeoutError",
            "ReadTimeout",
            "ConnectTimeout",
            "WriteTimeout",
            "PoolTimeout",
            "Timeout",
            "TimeoutExpired",
            "QueryCanceled",
            "IdleInTransactionSessionTimeout",
            "AirflowSensorTimeout",
            "AirflowTaskTimeout",
            "DependencyTimeout",
            "ReadTimeoutError",
            "ConnectTimeoutError",
            "CancelledError",
            "DeadlineExceeded",
            "AsyncTimeoutError",
        ),  # fmt: skip
        patterns=(
            r"timed? ?out",
            r"canceling statement due to statement timeout",
            r"idle-in-transaction timeout",
            r"Sensor has timed out",
            r"exceeded (?:the )?(?:time|deadline)",
            r"deadline exceeded",
            r"execution_timeout",
            r"Timeout, PID",
            r"lock_timeout",
        ),
        fixes=(
            _f(
                "raise-timeout",
                "raise the timeout where the work is legitimately slower (statement_timeout, "
                "execution_timeout, client timeout)",
                r"statement timeout|execution_timeout|Timeout, PID|QueryCanceled",
            ),
            _f(
                "wait-for-upstream",
                "the dependency was late: wait longer (a learned sensor timeout) or escalate "
                "to its owner",
                r"Sensor|sensor|DependencyTimeout|upstream|waiting for",
            ),
            _f(
                "optimise-slow-step",
                "speed up the slow step (an index, a smaller batch, fewer round trips)",
                r"statement|query|SELECT|UPDATE",
            ),
            _f("retry-with-backoff", "retry with backoff: a transient slowness passes"),
        ),
    ),
    Signature(
        "connection_refused",
        "the service could not be reached or dropped the connection",
        retryable=True,
        sqlstates=("08001", "08006", "08003", "08004", "57P01", "57P02", "57P03", "53300"),
        errnos=(
            "ECONNREFUSED",
            "ECONNRESET",
            "EHOSTUNREACH",
            "ENETUNREACH",
            "EPIPE",
            "ECONNABORTED",
        ),  # fmt: skip
        exceptions=(
            "ConnectionRefusedError",
            "ConnectError",
            "ConnectionError",
            "ConnectionResetError",
            "ConnectionAbortedError",
            "BrokenPipeError",
            "ServerDisconnectedError",
            "RemoteDisconnected",
            "ClientConnectorError",
            "NewConnectionError",
            "MaxRetryError",
            "CannotConnectNow",
            "AdminShutdown",
            "ConnectionFailure",
            "InterfaceError",
            "TooManyConnections",
            "ServerSelectionTimeoutError",
        ),  # fmt: skip
        patterns=(
            r"Connection refused",
            r"could not connect to server",
            r"connection to server .* failed",
            r"server closed the connection unexpectedly",
            r"Connection reset by peer",
            r"the database system is (?:starting up|shutting down|in recovery mode)",
            r"terminating connection due to administrator command",
            r"too many (?:clients|connections)",
            r"remaining connection slots are reserved",
            r"Failed to establish a new connection",
            r"Cannot connect to host",
            r"connection (?:is )?closed|Connection aborted",
            r"No route to host|Network is unreachable",
            r"Can't connect to (?:MySQL|local MySQL)",
            r"Is the server running",
            r"cannot connect to (?:the )?(?:server|host|database)",
        ),
        fixes=(
            _f(
                "start-service",
                "start (or wait for) the server: it is down or restarting",
                r"Connection refused|starting up|shutting down|Is the server running|"
                r"ECONNREFUSED|Errno 111",
            ),
            _f(
                "check-host-port",
                "check host and port: 'localhost' inside a container is the container itself",
                r"localhost|127\.0\.0\.1|port \d+",
            ),
            _f(
                "raise-connection-limit",
                "use a connection pool (pgbouncer) or raise max_connections",
                r"too many (?:clients|connections)|remaining connection slots",
            ),
            _f(
                "retry-with-backoff",
                "retry with jittered backoff (a restart or failover passes)",
            ),
        ),
    ),
    Signature(
        "missing_module",
        "a Python module or package is missing",
        retryable=False,
        exceptions=(
            "ModuleNotFoundError",
            "ImportError",
            "PackageNotFoundError",
            "DistributionNotFound",
        ),  # fmt: skip
        patterns=(
            r"No module named",
            r"cannot import name",
            r"ImportError: .*\.so",
            r"DLL load failed",
            r"is not installed|pip install",
        ),
        fixes=(
            _f(
                "install-package",
                "install the package into the worker's environment (requirements.txt, the "
                "image, the venv the task runs in)",
                r"No module named|is not installed|pip install",
            ),
            _f(
                "pin-compatible-version",
                "pin a version of the library that still has that name (an upgrade removed "
                "or moved it)",
                r"cannot import name",
            ),
            _f(
                "check-python-env",
                "run the task with the interpreter/venv that has the packages (PYTHONPATH, "
                "the worker image)",
            ),
        ),
    ),
    Signature(
        "breaker_open",
        "pipewarden's circuit breaker is open",
        retryable=False,
        outcomes=("breaker_open",),
        exceptions=("BreakerOpen",),
        patterns=(r"(?:circuit )?breaker (?:of \S+ )?(?:is )?open(?:ed)?\b",),
        fixes=(
            _f(
                "investigate-anomalies",
                "look at the batches that opened it (pipewarden breaker status; quarantine "
                "list), fix the upstream, then reset the breaker",
            ),
            _f(
                "retrain-model",
                "if the data changed for good, refresh the anomaly model from healthy history",
            ),
        ),
    ),
    Signature(
        "contract_reject",
        "the schema contract rejected the batch",
        retryable=False,
        outcomes=("contract_reject",),
        patterns=(
            r"the contract freezes this",
            r"sentinel: the (?:contract|table)",
            r"contract (?:reject|violation)",
        ),
        fixes=(
            _f(
                "relax-contract-or-fix-producer",
                "accept the change (contract evolve, or a new schema version) or have the "
                "producer restore the agreed schema",
            ),
            _f("replay-quarantine", "after the change: pipewarden quarantine replay"),
        ),
    ),
    Signature(
        "pii_block",
        "the compliance policy blocked PII",
        retryable=False,
        outcomes=("pii_block",),
        patterns=(
            r"finding\(s\) with action block",
            r"rows with \w+: rate [\d.]+ above fail threshold",
            r"--strict: \d+ finding",
        ),
        fixes=(
            _f(
                "mask-or-drop-pii",
                "mask or drop the column upstream, or set a mask/hash rule for it in the policy",
            ),
            _f(
                "policy-exception",
                "if the data is allowed there, add a policy exception with an expiry",
            ),
        ),
    ),
    Signature(
        "bad_input",
        "the input file or config is missing or malformed",
        retryable=False,
        errnos=("ENOENT",),
        exit_codes=(2,),
        outcomes=("bad_input",),
        exceptions=(
            "FileNotFoundError",
            "JSONDecodeError",
            "UnicodeDecodeError",
            "ParserError",
            "EmptyDataError",
            "YAMLError",
            "ScannerError",
            "InputError",
            "ConfigError",
            "ValidationError",
            "ArrowInvalid",
            "CsvError",
            "ParseError",
        ),  # fmt: skip
        patterns=(
            r"No such file or directory",
            r"Expecting value: line \d+",
            r"codec can't decode",
            r"Error tokenizing data",
            r"No columns to parse from file",
            r"not valid (?:JSON|YAML)",
            r"is not valid under any of the given schemas|is a required property",
            r"environment variable \w+ is not set",
            r"Unexpected end of (?:JSON|file)",
            r"invalid (?:JSON|CSV|Parquet)\b",
        ),
        fixes=(
            _f(
                "fix-input-file",
                "fix or re-deliver the input (the file is missing, empty, truncated or not "
                "in the expected format/encoding)",
                r"No such file|Expecting value|tokenizing|No columns|codec|Unexpected end",
            ),
            _f(
                "fix-config",
                "fix the config (a key, a path, an unset environment variable)",
                r"config|environment variable|required property|yaml",
            ),
            _f(
                "set-encoding",
                "declare the file's encoding (source.encoding: latin-1, utf-16 ...)",
                r"codec can't decode|UnicodeDecodeError",
            ),
        ),
    ),
    Signature(
        "code_error",
        "a bug in the pipeline's code",
        retryable=False,
        exceptions=(
            "SyntaxError",
            "IndentationError",
            "NameError",
            "TypeError",
            "AttributeError",
            "UnboundLocalError",
            "ZeroDivisionError",
            "AssertionError",
            "NotImplementedError",
            "IndexError",
            "RecursionError",
        ),  # fmt: skip
        patterns=(
            r"object has no attribute",
            r"takes \d+ positional arguments? but \d+ (?:was|were) given",
            r"got an unexpected keyword argument",
            r"is not defined",
            r"unsupported operand type",
            r"object is not (?:subscriptable|callable|iterable)",
        ),
        fixes=(
            _f(
                "fix-code",
                "fix the code at the top in-app frame (see the diff since the last success)",
            ),
            _f(
                "pin-library-version",
                "a library changed its API: pin the version the code was written for",
                r"unexpected keyword argument|has no attribute|positional argument",
            ),
            _f("revert-change", "revert the change since the last successful run"),
        ),
    ),
    Signature(
        "killed",
        "the process was killed or terminated from outside",
        retryable=True,
        exit_codes=(143, -15, 130, -2, 129, -1),
        outcomes=("killed",),
        exceptions=("KeyboardInterrupt", "AirflowTaskTerminated", "SIGTERM"),
        patterns=(
            r"Received SIGTERM",
            r"Terminating on SIGTERM|SIGTERM|SIGINT",
            r"zombie",
            r"heartbeat",
            r"Task received SIGTERM signal",
            r"Evicted|evicted|Preempted|preempted|spot instance",
        ),
        fixes=(
            _f(
                "check-orchestrator-kill",
                "find who stopped it (a deploy, the scheduler's heartbeat/zombie detection, "
                "an eviction) and rerun",
            ),
            _f(
                "raise-task-timeout",
                "if the task outlived its limit, raise execution_timeout or make it faster",
                r"timeout|Timeout",
            ),
            _f("retry-with-backoff", "retry: the task was healthy when it was stopped"),
        ),
    ),
)

BY_CLASS: dict[str, Signature] = {s.cls: s for s in SIGNATURES}
CLASSES: tuple[str, ...] = tuple(BY_CLASS)
UNKNOWN = "unknown"
