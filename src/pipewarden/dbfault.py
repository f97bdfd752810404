"""Database faults as outcomes: every psycopg or duckdb error becomes a
:class:`DatabaseError` that says what happened in words, with the SQLSTATE, and what to do.

Exit codes follow the contract: **2** when the configuration is wrong (no such database,
authentication, an unknown host, a read-only session, a reserved or forbidden name, missing
privileges) and **1** when the server or the moment is (the server refused the connection,
ended it, is starting or shutting down, is out of space or connections, a deadlock or a
serialization failure; a re-run can succeed). The server's own message is never echoed as a
whole (it may quote row values); the classification reads it, and only names the cause.
"""

from __future__ import annotations

from typing import Any

from .errors import EXIT_GATE, EXIT_INPUT, PipewardenError
from .redact import redact

# SQLSTATE (or its two-character class) -> (exit code, cause in words, what to do)
_BY_STATE: dict[str, tuple[int, str, str]] = {
    "3D000": (EXIT_INPUT, "no such database", "create it, or fix the database name in the DSN"),
    "28P01": (EXIT_INPUT, "authentication failed", "check the user and password (or PGPASSWORD)"),
    "28000": (EXIT_INPUT, "authentication refused", "check the user, and the server's pg_hba.conf"),
    "25006": (
        EXIT_INPUT,
        "read-only: the session cannot write (a standby, or default_transaction_read_only)",
        "point the DSN at the primary, or use a role and database that may write",
    ),
    "42939": (
        EXIT_INPUT,
        "reserved name: names starting with pg_ belong to PostgreSQL",
        "choose another store.schema",
    ),
    "42501": (
        EXIT_INPUT,
        "permission denied",
        "grant the role CREATE and USAGE on the schema (or use another schema or role)",
    ),
    "3F000": (EXIT_INPUT, "no such schema", "check store.schema"),
    "57P01": (
        EXIT_GATE,
        "the server ended the connection (terminated by an administrator, or shut down)",
        "re-run: committed batches are skipped",
    ),
    "57P02": (EXIT_GATE, "the server crashed and ended the connection", "re-run when it is back"),
    "57P03": (
        EXIT_GATE,
        "the server cannot take connections now (starting up or shutting down)",
        "re-run in a moment",
    ),
    "53300": (EXIT_GATE, "too many connections", "re-run later, or raise max_connections"),
    "53100": (EXIT_GATE, "the server's disk is full", "free space on the server, then re-run"),
    "53200": (EXIT_GATE, "the server ran out of memory", "re-run, or lower source.chunk_rows"),
    "40001": (EXIT_GATE, "a serialization failure with a concurrent transaction", "re-run"),
    "40P01": (EXIT_GATE, "a deadlock with a concurrent transaction", "re-run"),
    "55P03": (EXIT_GATE, "a lock could not be taken in time", "re-run when the table is free"),
    "57014": (EXIT_GATE, "the statement was cancelled (a timeout or an administrator)", "re-run"),
    "23505": (
        EXIT_GATE,
        "a concurrent run created the same object at the same moment",
        "re-run: what it committed is skipped",
    ),
    "42P06": (EXIT_GATE, "a concurrent run created the same schema", "re-run"),
    "42P07": (EXIT_GATE, "a concurrent run created the same table", "re-run"),
    "08": (EXIT_GATE, "the connection to the server failed", "check the server, then re-run"),
    "53": (EXIT_GATE, "the server is out of a resource", "re-run later"),
    "40": (EXIT_GATE, "the transaction was rolled back by the server", "re-run"),
}

# connection failures psycopg reports without a SQLSTATE, by the words of libpq's message:
# the SQLSTATE the server sent (3D000, 28P01, 28000) or the client's own for a connection
# that could not be made (08001)
_BY_WORDS: list[tuple[str, str, tuple[int, str, str]]] = [
    (
        "connection refused",
        "08001",
        (
            EXIT_GATE,
            "refused: nothing listens at that host and port",
            "is PostgreSQL running there? check the host and port in the DSN",
        ),
    ),
    (
        "could not translate host name",
        "08001",
        (EXIT_INPUT, "unknown host: the name does not resolve", "check the host in the DSN"),
    ),
    (
        "name or service not known",
        "08001",
        (EXIT_INPUT, "unknown host", "check the host in the DSN"),
    ),
    (
        "no route to host",
        "08001",
        (EXIT_GATE, "no route to the host", "check the host and the network"),
    ),
    (
        "timeout expired",
        "08001",
        (EXIT_GATE, "the connection timed out", "is the server reachable?"),
    ),
    ("role", "28000", (EXIT_INPUT, "no such role (user)", "check the user in the DSN")),
    (
        "database",
        "3D000",
        (EXIT_INPUT, "no such database", "create it, or fix the database name in the DSN"),
    ),
    (
        "password authentication failed",
        "28P01",
        (EXIT_INPUT, "authentication failed", "check the user and password (or PGPASSWORD)"),
    ),
    (
        "no password supplied",
        "28P01",
        (EXIT_INPUT, "a password is needed", "give it in the DSN or PGPASSWORD"),
    ),
    (
        "no pg_hba.conf entry",
        "28000",
        (
            EXIT_INPUT,
            "authentication refused by pg_hba.conf",
            "allow this host and user in pg_hba.conf",
        ),
    ),
    (
        "server closed the connection",
        "08006",
        (EXIT_GATE, "the server closed the connection", "re-run: committed batches are skipped"),
    ),
    (
        "consuming input failed",
        "08006",
        (EXIT_GATE, "the connection was lost", "re-run: committed batches are skipped"),
    ),
    (
        "the connection is closed",
        "08003",
        (EXIT_GATE, "the connection was lost", "re-run: committed batches are skipped"),
    ),
    (
        "ssl",
        "08001",
        (
            EXIT_INPUT,
            "the TLS (sslmode) settings do not match the server's",
            "check sslmode and the certificates",
        ),
    ),
]


def _by_words(text: str) -> tuple[str, tuple[int, str, str]] | None:
    for words, state, found in _BY_WORDS:
        if words in ("role", "database"):  # 'role "x" does not exist', 'database "x" ...'
            if f'{words} "' in text and "does not exist" in text:
                return state, found
        elif words in text:
            return state, found
    return None


_DUCKDB: dict[str, tuple[int, str, str]] = {
    "IOException": (EXIT_GATE, "the DuckDB file cannot be read or written", "check the path"),
    "OutOfMemoryException": (
        EXIT_GATE,
        "DuckDB ran out of memory",
        "lower source.chunk_rows, or give it more memory",
    ),
    "TransactionException": (
        EXIT_GATE,
        "a concurrent transaction changed the same rows",
        "re-run: committed batches are skipped",
    ),
    "PermissionException": (EXIT_INPUT, "permission denied", "check the file's permissions"),
    "CatalogException": (EXIT_INPUT, "a table or schema is not as expected", "check store.schema"),
}


class DatabaseError(PipewardenError):
    """A database fault: exit 1 (the server or the moment) or 2 (the configuration)."""

    def __init__(
        self,
        cause: str,
        *,
        hint: str | None = None,
        sqlstate: str | None = None,
        exit_code: int = EXIT_GATE,
        database: str | None = None,
        error_class: str | None = None,
    ) -> None:
        self.cause = cause
        self.hint = hint
        self.sqlstate = sqlstate
        self.exit_code = exit_code
        self.database = redact(database) if database else None
        self.error_class = error_class
        super().__init__(self.render())

    @property
    def message(self) -> str:
        where = f"{self.database}: " if self.database else ""
        state = f" (SQLSTATE {self.sqlstate})" if self.sqlstate else ""
        return f"{where}{self.cause}{state}"

    def render(self) -> str:
        return self.message + (f" ({self.hint})" if self.hint else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "cause": self.cause,
            "sqlstate": self.sqlstate,
            "error_class": self.error_class,
            "database": self.database,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


def is_db_error(exc: BaseException) -> bool:
    """True for an exception of psycopg or duckdb (checked without importing either)."""
    return type(exc).__module__.split(".")[0] in ("psycopg", "duckdb", "_duckdb")


def _lookup(sqlstate: str | None) -> tuple[int, str, str] | None:
    if not sqlstate:
        return None
    return _BY_STATE.get(sqlstate) or _BY_STATE.get(sqlstate[:2])


def db_fault(exc: BaseException, database: str | None = None) -> DatabaseError:
    """The :class:`DatabaseError` for a psycopg or duckdb exception (``database``: where, a
    URL, redacted). Already a DatabaseError: itself."""
    if isinstance(exc, DatabaseError):
        return exc
    name = type(exc).__name__
    if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb"):
        text = str(exc).lower()
        if "could not set lock" in text or "conflicting lock" in text:
            code, cause, hint = (
                EXIT_GATE,
                "the DuckDB file is in use by another process (one process at a time may "
                "write a DuckDB file)",
                "re-run when it has finished, or use PostgreSQL for concurrent runs",
            )
        elif "permission denied" in text:
            code, cause, hint = _DUCKDB["PermissionException"]
        elif "no space left on device" in text or "disk quota exceeded" in text:
            # DuckDB reports a full disk as a failed commit (a TransactionException): the
            # operating system's words say which it is
            code, cause, hint = (
                EXIT_GATE,
                "the disk of the DuckDB file is full (No space left on device)",
                "free space on that volume, or move store.path, then re-run",
            )
        else:
            code, cause, hint = _DUCKDB.get(
                name, (EXIT_GATE, f"DuckDB failed ({name})", "re-run; if it persists, report it")
            )
        return DatabaseError(cause, hint=hint, exit_code=code, database=database, error_class=name)
    sqlstate = getattr(exc, "sqlstate", None)
    found = _lookup(sqlstate)
    if found is None and not sqlstate:
        worded = _by_words(str(exc).lower())
        if worded is not None:
            sqlstate, found = worded
    if found is None and sqlstate and sqlstate[:2] in ("22", "42", "0A"):
        # a data exception, a statement the database cannot take (a name, a type, a feature):
        # re-running the same input does the same
        found = (
            EXIT_INPUT,
            f"the database refused the statement: {name}",
            "check the value or the name it concerns; nothing of it was written",
        )
    if found is None:
        found = (
            EXIT_GATE,
            f"the database refused the statement: {name}",
            "re-run; if it persists, check the server's log",
        )
    code, cause, hint = found
    if sqlstate and sqlstate.startswith("54"):  # a server limit: its message gives sizes only
        from .errors import db_error_text

        cause = db_error_text(exc)
        code = EXIT_GATE  # the batch cannot be stored as it is: it fails, the others go on
        hint = "split the dataset or land the wide part as one JSON column"
    return DatabaseError(
        cause, hint=hint, sqlstate=sqlstate, exit_code=code, database=database, error_class=name
    )
