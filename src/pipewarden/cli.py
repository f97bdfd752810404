"""The command line. Each command is a thin wrapper over one library call.

Commands live beside their library code (``pipewarden/<part>/cli.py``) and export ``COMMANDS``,
a list of click commands or groups registered here (:data:`COMMAND_MODULES` names the module of
each command, which is imported when the command runs). Exit codes: 0 passed, 1 the gate failed,
2 the input or the call was wrong (click's own usage errors are 2 as well).
"""

from __future__ import annotations

import importlib
import sys

import click

from . import __version__
from .dbfault import DatabaseError
from .errors import EXIT_INPUT, GateFailed, InputError, PipewardenError

# top-level modules that come with an extra (pip install 'pipewarden[extra]')
EXTRAS = {"h2o": "h2o", "mcp": "mcp"}

# command name -> the module that defines it (in its ``COMMANDS``). A module is imported only
# when one of its commands runs (or for --help), so `pipewarden validate dag`, which pre-commit
# runs on every commit, does not load the other parts and their dependencies.
COMMAND_MODULES = {
    "sentinel": "pipewarden.schema.cli",
    "run": "pipewarden.run_cli",
    "quarantine": "pipewarden.run_cli",
    "demo": "pipewarden.run_cli",
    "guard": "pipewarden.compliance.cli",
    "anomaly": "pipewarden.anomaly.cli",
    "breaker": "pipewarden.anomaly.cli",
    "validate": "pipewarden.pipelines.cli",
    "scaffold": "pipewarden.pipelines.cli",
    "docs": "pipewarden.reflect.cli",
    "serve": "pipewarden.serve.cli",
    "ingest": "pipewarden.ingest.cli",
    "impute": "pipewarden.impute.cli",
    "rca": "pipewarden.rca.cli",
    "incidents": "pipewarden.rca.cli",
    "wait": "pipewarden.conduct.cli",
    "features": "pipewarden.features.cli",
    "mcp": "pipewarden.agent.cli",
    "skill": "pipewarden.agent.cli",
}

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: a readable summary; json: exactly one JSON document on stdout.",
)


class _LazyGroup(click.Group):
    """A group whose commands are registered from their module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_all()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMAND_MODULES:
            _load(COMMAND_MODULES[name])
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipewarden")
def cli() -> None:
    """pipewarden: guardrails in front of the warehouse."""


def _load(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:  # that part is not built yet
            return
        raise
    for command in getattr(module, "COMMANDS", []):
        cli.add_command(command)


def load_all() -> None:
    """Register every command (for --help and for tools that walk the whole command tree)."""
    for name in dict.fromkeys(COMMAND_MODULES.values()):
        _load(name)


def _wants_json(argv: list[str]) -> bool:
    return any(a == "--format=json" for a in argv) or any(
        a == "--format" and i + 1 < len(argv) and argv[i + 1] == "json" for i, a in enumerate(argv)
    )


def missing_module_message(exc: ModuleNotFoundError) -> str:
    """A module that is not installed: which extra brings it, in one line."""
    top = (exc.name or "").split(".")[0]
    if top in EXTRAS:
        return (
            f"{exc.name or 'a module'} is not installed in this interpreter ({sys.executable}): "
            f"pip install 'pipewarden[{EXTRAS[top]}]'"
        )
    return (
        f"{exc.name or 'a module'} is not installed in this interpreter "
        f"({sys.executable}): reinstall pipewarden (pip install pipewarden)"
    )


def failure(exc: BaseException) -> tuple[int, str, dict | None] | None:
    """How the exit-code contract reports ``exc``: (exit code, the message in one piece, the
    JSON document ``--format json`` prints, or None), credentials redacted; None when ``exc``
    is not an outcome but a bug. The CLI and the MCP server (pipewarden.agent) share it."""
    from .redact import redact, redact_doc

    if isinstance(exc, click.exceptions.Abort):
        return EXIT_INPUT, "aborted", None
    if isinstance(exc, click.ClickException):
        return EXIT_INPUT, redact(exc.format_message()), None
    if isinstance(exc, GateFailed):
        return exc.exit_code, redact(str(exc)), None
    if isinstance(exc, InputError | DatabaseError):
        return exc.exit_code, exc.render(), redact_doc(exc.to_dict())
    if isinstance(exc, PipewardenError):
        return exc.exit_code, redact(str(exc)), None
    if isinstance(exc, ModuleNotFoundError):
        # a part that needs an extra, or a broken installation: one line, no traceback
        msg = missing_module_message(exc)
        return EXIT_INPUT, msg, {"error": msg, "module": exc.name}
    from .dbfault import db_fault, is_db_error

    if isinstance(exc, Exception) and is_db_error(exc):
        fault = db_fault(exc)  # a database error no command turned into an outcome
        return fault.exit_code, fault.render(), redact_doc(fault.to_dict())
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map pipewarden's errors onto the exit-code contract."""
    from .output import dumps, err_console, printable

    args = list(sys.argv[1:] if argv is None else argv)

    def escape(text: str) -> str:
        from rich.markup import escape

        return escape(printable(text))

    try:
        rv = cli.main(args=args, prog_name="pipewarden", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        err_console().print("aborted")
        return EXIT_INPUT
    except click.ClickException as exc:
        exc.show()
        return EXIT_INPUT
    except Exception as exc:
        mapped = failure(exc)
        if mapped is None:
            raise
        code, message, doc = mapped
        if isinstance(exc, GateFailed):
            # the command has already printed its result; say why on stderr
            err_console().print(f"[bold red]gate failed:[/] {escape(message)}")
            return code
        if doc is not None and _wants_json(args):
            sys.stdout.write(dumps(doc) + "\n")
        err_console().print(f"[bold red]error:[/] {escape(message)}")
        return code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
