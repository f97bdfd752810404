"""One pipewarden command, called in this process, its result taken as a document.

The MCP tools do not re-implement the commands: each builds the command's words from its
typed arguments and calls the command through :func:`invoke`, which runs it as the CLI does
with ``--format json`` and keeps the one document the command emits (``output.capturing``)
instead of printing it. So a tool's structured output *is* the CLI's JSON document for the
same input, and its errors are the CLI's errors, mapped by the same
:func:`pipewarden.cli.failure`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from ..errors import EXIT_GATE, EXIT_OK, GateFailed


@dataclass
class Outcome:
    """What a command ended with: ``exit_code`` 0 (passed) or 1 (the gate failed) with the
    command's JSON ``document``."""

    exit_code: int
    document: dict[str, Any]


class CommandFailed(Exception):
    """The command refused its input or failed (exit 2, or a database fault): ``message``
    is the CLI's error line (file, row or line, what to do), ``document`` its JSON error
    document when it has one."""

    def __init__(self, exit_code: int, message: str, document: dict | None, kind: str) -> None:
        self.exit_code = exit_code
        self.message = message
        self.document = document
        self.kind = kind
        super().__init__(message)

    def render(self) -> str:
        return f"exit {self.exit_code} ({self.kind}): {self.message}"


def _kind(exc: BaseException, code: int) -> str:
    from ..dbfault import DatabaseError, is_db_error

    if isinstance(exc, DatabaseError) or (isinstance(exc, Exception) and is_db_error(exc)):
        return "database fault, a re-run can succeed" if code == EXIT_GATE else "database"
    if isinstance(exc, ModuleNotFoundError):
        return "missing extra"
    return "gate failed" if code == EXIT_GATE else "bad input or call"


def invoke(words: list[str]) -> Outcome:
    """Run ``pipewarden <words> --format json`` in this process: the :class:`Outcome`, or
    :class:`CommandFailed` with the CLI's message. An exception the contract does not map (a
    bug) propagates."""
    from ..cli import cli, failure
    from ..output import capturing

    with capturing() as docs:
        try:
            rv = cli.main(
                args=[*words, "--format", "json"], prog_name="pipewarden", standalone_mode=False
            )
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except GateFailed as exc:
            code = exc.exit_code
            if not docs and exc.result:
                from ..redact import redact_doc

                docs.append(redact_doc(exc.result))
        except Exception as exc:
            mapped = failure(exc)
            if mapped is None:
                raise
            code, message, doc = mapped
            raise CommandFailed(code, message, doc, _kind(exc, code)) from None
    if code not in (EXIT_OK, EXIT_GATE):
        raise CommandFailed(code, f"pipewarden {' '.join(words[:2])} exited {code}", None,
                            "bad input or call")  # fmt: skip
    if not docs:  # pragma: no cover - every command emits its result
        raise CommandFailed(2, f"pipewarden {' '.join(words[:2])} printed no result", None,
                            "bad input or call")  # fmt: skip
    return Outcome(code, docs[-1])
