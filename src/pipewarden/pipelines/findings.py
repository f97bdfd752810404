"""Findings and the rule catalogue shared by every validator.

A :class:`Finding` is one problem at one place: file, line, rule id, severity, message. The
catalogue :data:`RULES` is the single list of rule ids (``docs/rules.md`` documents each one with
a failing and a passing example, and a test checks the two agree). A report is ``errors`` when
any finding has severity ``error``: the command then exits 1.
"""

from __future__ import annotations

import codecs
from dataclasses import asdict, dataclass, field

ERROR, WARNING, INFO = "error", "warning", "info"


def python_text(data: bytes) -> str:
    """A Python file's text as the interpreter reads it: UTF-8, a leading byte-order mark
    dropped, or the encoding a PEP 263 line names (``# -*- coding: latin-1 -*-`` on line 1 or
    2). Raises ``UnicodeDecodeError`` for bytes that are not text in that encoding and
    ``SyntaxError`` for an unknown one, as Python would."""
    end = data.find(b"\n")
    end = data.find(b"\n", end + 1) if end != -1 else -1
    if data.startswith(codecs.BOM_UTF8) or b"coding" in (data if end == -1 else data[:end]):
        import io
        import tokenize

        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)  # utf-8-sig drops the mark
    return data.decode("utf-8")


def not_text(exc: UnicodeDecodeError) -> str:
    """The finding's message for a file that is not text in its encoding."""
    name = "UTF-8" if exc.encoding.replace("_", "-") in ("utf-8", "utf-8-sig") else exc.encoding
    return f"not {name} text (byte {exc.start}); save it as UTF-8 or declare its encoding"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    summary: str


_RULES = [
    # Airflow DAG files
    Rule("syntax-error", ERROR, "The file is not valid Python."),
    Rule("dag-id-invalid", ERROR, "A dag_id is not 1-250 letters, digits, '_', '.', '-'."),
    Rule(
        "task-id-invalid",
        ERROR,
        "A task_id (with its task group's prefix) is not 1-250 letters, digits, '_', '.', '-'.",
    ),
    Rule("dag-id-duplicate", ERROR, "Two DAGs (in one file or across files) share a dag_id."),
    Rule("task-id-duplicate", ERROR, "Two tasks of one DAG share a task_id."),
    Rule("dag-not-called", ERROR, "A @dag function is never called, so it registers no DAG."),
    Rule(
        "schedule-missing",
        WARNING,
        "A DAG has no explicit schedule (Airflow 3 defaults to None: never scheduled).",
    ),
    Rule("airflow3-removed-arg", ERROR, "A DAG or task argument removed in Airflow 3."),
    Rule("airflow3-removed-import", ERROR, "An import removed in Airflow 3."),
    Rule(
        "airflow3-removed-context",
        ERROR,
        "A template or context key removed in Airflow 3 (execution_date, prev_ds, ...).",
    ),
    Rule(
        "airflow3-deprecated-import",
        WARNING,
        "An import that Airflow 3 only keeps as a deprecated alias.",
    ),
    Rule("retries-missing", ERROR, "The project requires retries and a DAG's tasks have none."),
    Rule("owner-missing", ERROR, "The project requires an owner and a DAG's tasks have none."),
    Rule("import-error", ERROR, "The real Airflow could not import the file (--mode import)."),
    # Mage pipelines
    Rule("mage-metadata-invalid", ERROR, "metadata.yaml is missing, not YAML, or not a mapping."),
    Rule("mage-block-uuid-missing", ERROR, "A block has no uuid."),
    Rule("mage-block-duplicate", ERROR, "Two blocks share a uuid."),
    Rule("mage-block-type-invalid", ERROR, "A block type Mage does not know."),
    Rule("mage-language-invalid", ERROR, "A block language Mage does not know."),
    Rule("mage-executor-type-invalid", ERROR, "An executor_type Mage does not know."),
    Rule(
        "mage-upstream-unknown", ERROR, "upstream_blocks names a block that is not in the pipeline."
    ),
    Rule(
        "mage-downstream-unknown",
        ERROR,
        "downstream_blocks names a block that is not in the pipeline.",
    ),
    Rule(
        "mage-edge-mismatch", ERROR, "An edge is in one block's list but not in the other block's."
    ),
    Rule(
        "mage-edge-duplicate",
        WARNING,
        "The same block is listed twice in one upstream/downstream list.",
    ),
    Rule("mage-block-file-missing", ERROR, "The block's code file does not exist."),
    Rule(
        "mage-decorator-mismatch", ERROR, "A Python block has no function decorated for its type."
    ),
    Rule(
        "mage-retry-config-invalid",
        ERROR,
        "retry_config has an unknown key or a non-integer value.",
    ),
    Rule("mage-timeout-invalid", ERROR, "A block timeout is not a whole number of seconds."),
    # every graph
    Rule("cycle", ERROR, "A dependency cycle; the message gives the full path."),
]
RULES: dict[str, Rule] = {r.id: r for r in _RULES}


@dataclass
class Finding:
    file: str
    line: int | None
    rule: str
    message: str
    severity: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rule not in RULES:  # pragma: no cover - a programming error
            raise KeyError(f"unknown rule {self.rule!r}")
        if not self.severity:
            self.severity = RULES[self.rule].severity

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["extra"]:
            d.pop("extra")
        return d


def summarize(validator: str, findings: list[Finding], **extra) -> dict:
    """The result document of a validator: findings sorted by place, counts, and ``ok``."""
    findings = sorted(findings, key=lambda f: (f.file, f.line or 0, f.rule, f.message))
    counts = {ERROR: 0, WARNING: 0, INFO: 0}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    return {
        "validator": validator,
        "ok": counts[ERROR] == 0,
        "errors": counts[ERROR],
        "warnings": counts[WARNING],
        "findings": [f.to_dict() for f in findings],
        **extra,
    }


TOO_DEEP = (
    "Python cannot compile this file: an expression nests too deeply (thousands of operators "
    "in one expression, e.g. a >> b >> ... over thousands of tasks); split it, or use "
    "chain(*tasks)"
)
