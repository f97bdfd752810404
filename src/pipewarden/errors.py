"""Errors with the contract every command shares.

A :class:`InputError` is the user's mistake (bad file, bad config, bad call): the CLI prints its
message without a traceback and exits 2. A :class:`GateFailed` means the input was fine but a
check rejected it: exit 1. Messages name the file, the row or line, and what to do, and never
contain a raw value that could be PII (use :func:`pipewarden.errors.preview`). Credentials are
redacted on the way out (:func:`pipewarden.redact.redact`): an error that quotes a DSN shows
``postgresql://user:***@host/db``.
"""

from __future__ import annotations

from .redact import redact

EXIT_OK = 0
EXIT_GATE = 1
EXIT_INPUT = 2


class PipewardenError(Exception):
    """Base class of every error pipewarden raises on purpose."""

    exit_code = EXIT_INPUT


class InputError(PipewardenError):
    """The input or the call was wrong: exit 2.

    ``file``, ``row`` (1-based), ``line`` (1-based), ``key`` (a dotted config key) and ``hint``
    (what to do) are rendered into the message when given.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.row = row
        self.line = line
        self.key = key
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(shown_file(self.file))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.key:
            where.append(f"key '{self.key}'")
        text = ": ".join([", ".join(where), self.message]) if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return redact(text)

    def to_dict(self) -> dict:
        return {
            "error": redact(self.message),
            "file": shown_file(self.file) if self.file else self.file,
            "line": self.line,
            "row": self.row,
            "key": self.key,
            "hint": redact(self.hint),
        }


def shown_file(file: object) -> str:
    """A file name as messages show it: PII in it masked (``batch_[US_SSN].jsonl``), and a
    URL's password redacted."""
    text = str(file)
    if any(ch.isdigit() or ch == "@" for ch in text):
        from .compliance.names import mask_name

        text = mask_name(text)
    return redact(text)


class GateFailed(PipewardenError):
    """A check rejected the input: exit 1. Carries the result document to print."""

    exit_code = EXIT_GATE

    def __init__(self, message: str, result: dict | None = None) -> None:
        self.result = result or {}
        super().__init__(message)


def preview(value: object, keep: int = 2) -> str:
    """A masked preview of a value for messages: the shape survives, the content does not.

    ``preview("john@example.com") == "jo**************"``; never returns more than ``keep``
    original characters, and nothing at all for values shorter than 8 characters.
    """
    text = str(value)
    if len(text) < 8:
        return "*" * len(text)
    return text[:keep] + "*" * min(len(text) - keep, 24)


ROW_TOO_BIG = (
    "PostgreSQL keeps a row in one 8 kB page, apart from long text and JSON values, so a row "
    "with about a thousand non-null numbers, booleans or timestamps cannot be stored: split "
    "the dataset into narrower ones (the columns that belong together), or land the wide part "
    "as one JSON column"
)


def db_error_text(exc: BaseException) -> str:
    """A database error without its message, which may quote row values: the class and the
    SQLSTATE; for a server limit (SQLSTATE class 54), whose message gives only sizes and
    counts, the message too, with what to do when a row is too big."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = type(exc).__name__ + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
    if sqlstate and sqlstate.startswith("54"):
        primary = getattr(getattr(exc, "diag", None), "message_primary", None)
        if primary:
            text += f": {primary}"
        if sqlstate == "54000" and primary and primary.startswith("row is too big"):
            text += f"; {ROW_TOO_BIG}"
    # the operating system's own words for a resource that ran out hold no row value, and
    # they are the cause (DuckDB reports a full disk as a failed commit)
    message = str(exc)
    for cause in OS_CAUSES:
        if cause in message:
            text += f": {cause}"
            break
    return text


OS_CAUSES = (
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Cannot allocate memory",
    "Too many open files",
    "Permission denied",
)
