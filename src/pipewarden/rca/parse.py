"""Read a failure into evidence: Python tracebacks (chained ones too), plain logs, Airflow 3
JSON task logs (``error_detail``), Mage block logs (JSON lines with ``error``/``error_stack``),
a wrapped command's output and exit code, and pipewarden's own run reports.

The result is a :class:`Parsed`: the text as lines, the exceptions found (type, message, frames),
the *primary* region (the last exception chain, or the last error lines of a log: where the
failure is, as opposed to warnings and retries earlier on), and :class:`Evidence` items of the
kinds the signatures match on (``sqlstate``, ``errno``, ``exit_code``, ``http_status``,
``outcome``, ``exception``). Nothing here is printed: excerpts are scrubbed by the report.
"""

from __future__ import annotations

import bisect
import errno as _errno
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_TEXT = 4 * 1024 * 1024  # characters of a log read; a longer log keeps its head and its tail


@dataclass
class Frame:
    file: str
    line: int | None
    func: str

    @property
    def in_app(self) -> bool:
        f = self.file.replace("\\", "/")
        return not (
            "/site-packages/" in f
            or "/dist-packages/" in f
            or f.startswith("<")
            or re.search(r"/lib/python3\.\d+/", f) is not None
            or "/importlib/" in f
        )

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "function": self.func}


@dataclass
class ExcInfo:
    type: str  # as written: "psycopg.errors.UndefinedColumn"
    message: str
    frames: list[Frame] = field(default_factory=list)
    line: int = 0  # 0-based line of the "Type: message" line

    @property
    def name(self) -> str:
        return self.type.rsplit(".", 1)[-1]


@dataclass
class Evidence:
    kind: str  # sqlstate | errno | exit_code | http_status | outcome | exception
    value: Any
    line: int | None  # 0-based line in Parsed.lines, None when not from the text
    primary: bool

    def to_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value,
                "line": None if self.line is None else self.line + 1}  # fmt: skip


@dataclass
class Parsed:
    kind: str  # text | airflow_json | mage_json | command | run_report
    lines: list[str]
    exceptions: list[ExcInfo]
    primary_lines: set[int]
    evidence: list[Evidence]
    exit_code: int | None = None
    retry_after: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    code_lines: set[int] = field(default_factory=set)  # source lines quoted by frames
    _text: str | None = field(default=None, repr=False)
    _starts: list[int] | None = field(default=None, repr=False)
    _keep: list[int] = field(default_factory=list, repr=False)
    _cand: str = field(default="", repr=False)
    _seen: set = field(default_factory=set, repr=False)

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "\n".join(self.lines)
        return self._text

    def _candidates(self) -> None:
        """The lines worth searching: the failure's own lines and every line with a word that
        evidence is made of (error, refused, 429, SQLSTATE ...), source lines left out. A
        100,000-line log of progress messages is mostly skipped by one cheap test per line."""
        keep = [
            i
            for i, line in enumerate(self.lines)
            if i not in self.code_lines
            and (i in self.primary_lines or _CANDIDATE.search(line.lower()) is not None)
        ]
        starts, at = [], 0
        for i in keep:
            starts.append(at)
            at += len(self.lines[i]) + 1
        self._keep = keep
        self._starts = starts
        self._cand = "\n".join(self.lines[i] for i in keep)

    def scan(self, rx: re.Pattern):
        """(line, match) of every match of ``rx`` in the candidate lines: one pass over their
        text in C, not a Python loop over the lines."""
        if self._starts is None:
            self._candidates()
        for m in rx.finditer(self._cand):
            yield self._keep[bisect.bisect_right(self._starts, m.start()) - 1], m

    @property
    def primary_text(self) -> str:
        return "\n".join(self.lines[i] for i in sorted(self.primary_lines))

    @property
    def primary_exception(self) -> ExcInfo | None:
        return self.exceptions[-1] if self.exceptions else None

    def top_frame(self) -> Frame | None:
        """The innermost in-app frame of the failure's chain (the user's code nearest to it)."""
        chain = [e for e in self.exceptions if e.line in self.primary_lines] or self.exceptions
        for exc in reversed(chain):
            for fr in reversed(exc.frames):
                if fr.in_app:
                    return fr
        return None


# --------------------------------------------------------------------------- code tables


@functools.cache
def sqlstate_by_name() -> dict[str, str]:
    """psycopg's exception class names (the same as psycopg2's, and asyncpg's without the
    'Error' suffix) -> SQLSTATE, for the leaf classes that name one condition."""
    try:
        import psycopg.errors as pe
    except ImportError:  # pragma: no cover - a dependency of the package
        return {}
    out: dict[str, str] = {}
    for name, cls in vars(pe).items():
        code = getattr(cls, "sqlstate", None)
        if isinstance(code, str) and len(code) == 5 and not code.endswith("000"):
            out[name] = code
    out.update({"InvalidAuthorizationSpecification": "28000", "InvalidPassword": "28P01"})
    return out


# PostgreSQL's primary messages for the conditions we classify (psql and most drivers print
# the message without its SQLSTATE)
PG_MESSAGES: tuple[tuple[str, str], ...] = (
    (r"password authentication failed for user", "28P01"),
    (r"no pg_hba\.conf entry for", "28000"),
    (r"role \S+ does not exist", "28000"),
    (r"role \S+ is not permitted to log in", "28000"),
    (r"permission denied for (?:table|schema|relation|database|sequence|function)", "42501"),
    (r"must be owner of", "42501"),
    (r"column \S+ (?:of relation \S+ )?does not exist", "42703"),
    (r"relation \S+ does not exist", "42P01"),
    (r"is of type \w[\w ]* but expression is of type", "42804"),
    (r"invalid input syntax for (?:type )?\w+", "22P02"),
    (r"duplicate key value violates unique constraint", "23505"),
    (r"null value in column \S+ (?:of relation \S+ )?violates not-null constraint", "23502"),
    (r"deadlock detected", "40P01"),
    (r"could not serialize access due to", "40001"),
    (r"could not obtain lock on", "55P03"),
    (r"canceling statement due to statement timeout", "57014"),
    (r"canceling statement due to lock timeout", "55P03"),
    (r"terminating connection due to idle-in-transaction timeout", "25P03"),
    (r"the database system is (?:starting up|shutting down|in recovery mode)", "57P03"),
    (r"terminating connection due to administrator command", "57P01"),
    (r"sorry, too many clients already|remaining connection slots are reserved", "53300"),
    (r"could not extend file .*No space left on device", "53100"),
    (r"ERROR:\s+out of memory", "53200"),
    (r"server closed the connection unexpectedly", "08006"),
)

_STRERROR: tuple[tuple[str, str], ...] = (
    (r"No space left on device", "ENOSPC"),
    (r"Disk quota exceeded", "EDQUOT"),
    (r"Connection refused", "ECONNREFUSED"),
    (r"Connection reset by peer", "ECONNRESET"),
    (r"Broken pipe", "EPIPE"),
    (r"Connection timed out", "ETIMEDOUT"),
    (r"No route to host", "EHOSTUNREACH"),
    (r"Network is unreachable", "ENETUNREACH"),
    (r"Cannot allocate memory", "ENOMEM"),
    (r"Read-only file system", "EROFS"),
    (r"\bPermission denied\b", "EACCES"),
    (r"Operation not permitted", "EPERM"),
    (r"No such file or directory", "ENOENT"),
    (r"Name or service not known|nodename nor servname provided", "EAI_NONAME"),
    (r"Temporary failure in name resolution", "EAI_AGAIN"),
    (r"No address associated with hostname", "EAI_NODATA"),
    (r"\bENOTFOUND\b", "ENOTFOUND"),
)
_EAI = {-2: "EAI_NONAME", -3: "EAI_AGAIN", -4: "EAI_FAIL", -5: "EAI_NODATA", 8: "EAI_NONAME"}

_SQLSTATE = re.compile(
    r"(?:SQLSTATE|sqlstate|pgcode|SQL ?state|sql_state|error code)\W{0,4}([0-9A-Z]{2}[0-9A-Z]{3})\b"
)
_ERRNO_NUM = re.compile(r"\[Errno (-?\d+)\]|errno[ =:]+(-?\d+)\b|os error (\d+)", re.I)
_ERRNO_NAME = re.compile(r"\b(E[A-Z]{3,12}|EAI_[A-Z]+)\b")
_EXIT = re.compile(
    r"(?:exit(?:ed)?(?: with)?(?: status| code)?|return(?:ed)? ?code|returncode|"
    r"exit status|Exit Code|exitCode|exit_code)\W{0,3}(-?\d{1,3})\b",
    re.I,
)
_NEG_SIGNAL = re.compile(
    r"Negsignal\.(SIG[A-Z]+)|killed by signal (\d+)|signal (\d+) \((SIG\w+)\)"
    r"|terminated by signal.*?signal=-?(\d+)|signal_name=\W?(SIG[A-Z]+)"
)
_HTTP = re.compile(
    r"(?:\bHTTP(?:/\d(?:\.\d)?)?|status(?:[_ ]code)?|Status|response|Client error|Server error|"
    r"HTTPError|HTTPStatusError|HTTP ?Error|code)\W{0,4}([1-5]\d\d)\b"
    r"|\b([1-5]\d\d)\W{1,3}(?:Too Many Requests|Unauthori[sz]ed|Forbidden|Not Found|"
    r"Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out|Request Timeout)",
    re.I,
)
_RETRY_AFTER = re.compile(r"Retry-After\W{0,4}(\d+(?:\.\d+)?)", re.I)
_TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\):")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?')
_EXC_LINE = re.compile(r"^(?P<type>(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*)(?::\s?(?P<msg>.*))?$")
_TIMESTAMP = re.compile(
    r"^\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]? ?"
)
_CHAIN = re.compile(
    r"The above exception was the direct cause|During handling of the above exception"
)
# a line without one of these (lower-cased) cannot hold evidence a signature reads
_CANDIDATE = re.compile(
    r"err|fail|fatal|panic|critical|except|traceback|refus|denied|reset|timeout|timed out|"
    r"kill|oom|sig[a-z]|signal|exit|return ?code|status|http|\b[45]\d\d\b|sqlstate|code|"
    r"space|quota|memory|alloc|heap|unavailable|gateway|too many|rate|throttl|retry|quota|"
    r"certificate|ssl|tls|resolve|name or service|host|no such|no module|import|cannot|"
    r"could not|unable|invalid|does not exist|not exist|violat|duplicate|deadlock|serializ|"
    r"lock|breaker|contract|finding|keyerror|not in index|not found|unknown|expecting|codec|"
    r"decode|tokeniz|terminat|evict|preempt|zombie|heartbeat|read-only|permission|privilege|"
    r"owner|authori|password|token|credential|forbidden|canceling|cancel|statement|limit|"
    r"killed|full|enospc|errno|timedout|eacces|eperm|erofs|epipe|nomem|unreach|dquot|"
    r"unexpected|no columns|object|argument|defined"
)
_ERRORISH = re.compile(
    r"\b(?:ERROR|FATAL|CRITICAL|PANIC|Error|error|Exception|exception|failed|Failed|FAILED|"
    r"Killed|OOMKilled|refused|denied|timed out|Traceback)\b"
)


@functools.cache
def _known_exceptions() -> re.Pattern:
    from .signatures import SIGNATURES

    names = set(sqlstate_by_name())
    for s in SIGNATURES:
        names.update(s.exceptions)
    alt = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(rf"(?<![\w])(?:[A-Za-z_][\w]*\.)*(?P<name>{alt})(?:Error)?(?![\w])")


# --------------------------------------------------------------------------- tracebacks


def _exception_line(line: str) -> tuple[str, str] | None:
    """("pkg.Type", "message") when a line is the last line of a traceback."""
    m = _EXC_LINE.match(line)
    if not m:
        return None
    typ = m.group("type")
    last = typ.rsplit(".", 1)[-1]
    if not (last[:1].isupper() or last in ("gaierror", "timeout", "error", "herror")):
        return None
    return typ, (m.group("msg") or "").strip()


def _tracebacks(lines: list[str]) -> list[ExcInfo]:
    """Every exception of every Python traceback in the lines, in order."""
    out: list[ExcInfo] = []
    i, n = 0, len(lines)
    while i < n:
        if not _TRACEBACK.match(lines[i]):
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        frames: list[Frame] = []
        i += 1
        while i < n:
            line = lines[i]
            fm = _FRAME.match(line)
            if fm:
                frames.append(Frame(fm["file"], int(fm["line"]), (fm["func"] or "").strip()))
                i += 1
                continue
            body = line[indent:] if len(line) - len(line.lstrip()) >= indent else line
            if body[:1].isspace() or not body.strip() or body.strip().startswith(("^", "~")):
                i += 1  # a source line, a caret line or a blank between frames
                continue
            got = _exception_line(body)
            if got:
                typ, msg = got
                # a message continues on the next lines until a blank line or a new block
                j = i + 1
                more = []
                while (
                    j < n
                    and lines[j].strip()
                    and not _TRACEBACK.match(lines[j])
                    and not (_CHAIN.search(lines[j]))
                    and len(more) < 20
                    and not re.match(r"^\[?\d{4}-\d\d-\d\d", lines[j])
                ):
                    more.append(lines[j].strip())
                    j += 1
                if more:
                    msg = (msg + " " + " ".join(more)).strip()
                out.append(ExcInfo(typ, msg, frames, i))
            i += 1
            break
    return out


# --------------------------------------------------------------------------- structured logs


def _structlog_exc(detail: Any) -> list[tuple[str, str, list[Frame]]]:
    """Exceptions of a structlog ``ExceptionDictTransformer`` list (Airflow 3's
    ``error_detail``), cause first."""
    out = []
    items = detail if isinstance(detail, list) else [detail]
    for d in items:
        if not isinstance(d, dict):
            continue
        frames = [
            Frame(str(f.get("filename", "")), f.get("lineno"), str(f.get("name", "")))
            for f in d.get("frames") or []
            if isinstance(f, dict)
        ]
        out.append((str(d.get("exc_type", "Exception")), str(d.get("exc_value", "")), frames))
        for sub in d.get("exceptions") or []:
            out.extend(_structlog_exc(sub))
    return out


def _render_traceback(typ: str, msg: str, frames: list[Frame]) -> list[str]:
    lines = ["Traceback (most recent call last):"]
    for f in frames:
        lines.append(f'  File "{f.file}", line {f.line}, in {f.func}')
    lines.append(f"{typ}: {msg}" if msg else typ)
    return lines


def _json_lines(text: str) -> list[dict] | None:
    """The JSON objects of a JSON-lines log (a line may have a timestamp before its JSON, as
    Mage writes them), or None when the log is not one."""
    objs, other = [], 0
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        brace = s.find("{")
        if brace < 0 or brace > 40:
            other += 1
            continue
        try:
            obj = orjson.loads(s[brace:])
        except orjson.JSONDecodeError:
            other += 1
            continue
        if isinstance(obj, dict):
            objs.append(obj)
    if not objs or other > len(objs):
        return None
    return objs


def _from_json_log(objs: list[dict]) -> tuple[str, list[str]]:
    """(kind, text lines) of a JSON log: messages as lines, exception details as tracebacks."""
    kind = "airflow_json" if any("error_detail" in o or "event" in o for o in objs) else "mage_json"
    lines: list[str] = []
    for o in objs:
        level = str(o.get("level") or o.get("levelname") or "").upper()
        msg = o.get("event") if "event" in o else o.get("message", o.get("msg", ""))
        if msg not in (None, ""):
            lines.append(f"{level + ' ' if level else ''}{msg}".rstrip())
        for key in ("error_detail", "exception"):
            if isinstance(o.get(key), list | dict):
                excs = _structlog_exc(o[key])
                for k, (typ, val, frames) in enumerate(excs):
                    if k:
                        lines.append("")
                        lines.append(
                            "The above exception was the direct cause of the following exception:"
                        )
                        lines.append("")
                    for part in _render_traceback(typ, val, frames):
                        lines.extend(part.split("\n"))
            elif isinstance(o.get(key), str):
                lines.extend(o[key].splitlines())
        # Mage's DictLogger: error (the traceback), error_stacktrace (str of the error);
        # error_stack is the logging call's own stack, not the failure's: left out
        for key in ("error", "error_stacktrace", "stacktrace"):
            val = o.get(key)
            if isinstance(val, str):
                lines.extend(val.splitlines())
            elif isinstance(val, list):
                for part in val:
                    if isinstance(part, list):
                        lines.extend(str(x).rstrip("\n") for x in part)
                    elif part is not None:
                        lines.extend(str(part).splitlines())
    return kind, lines


def _from_run_report(doc: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """(lines, outcomes) of a pipewarden run report: a line per batch that did not load."""
    lines, outcomes = [], []
    for b in doc.get("batches") or []:
        status, reason = b.get("status"), str(b.get("reason") or "")
        error = str(b.get("error") or "")
        if status in ("blocked", "failed", "invalid") or b.get("decision") == "quarantine_batch":
            lines.append(
                f"batch {b.get('source')}: {status} ({b.get('decision')}): {reason or error}"
            )
            outcome = outcome_of_batch(b)
            if outcome:
                outcomes.append((outcome, lines[-1]))
    return lines, outcomes


def outcome_of_batch(b: dict) -> str | None:
    """Our own outcome code of a run report's batch entry (None when it loaded cleanly)."""
    reason = str(b.get("reason") or "")
    if b.get("status") == "invalid":  # pipewarden read the input and refused it (exit 2)
        return "bad_input"
    if b.get("decision") == "reject" or reason.startswith("sentinel:"):
        return "contract_reject"
    if "circuit breaker" in reason:
        return "breaker_open"
    if b.get("status") == "blocked":
        steps = b.get("steps") or {}
        guard = steps.get("guardian") if isinstance(steps, dict) else None
        if guard or "finding" in reason or "rows with" in reason:
            return "pii_block"
        return "blocked"
    return None


# --------------------------------------------------------------------------- the parser


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    half = MAX_TEXT // 2
    return text[:half] + "\n[... log clipped ...]\n" + text[-half:]


def parse(
    text: str,
    *,
    exit_code: int | None = None,
    kind: str | None = None,
    report: dict | None = None,
    outcomes: list[str] | None = None,
) -> Parsed:
    """Read a log (and, for a wrapped command, its exit code; for a run, its report)."""
    text = _clip(text.replace("\r\n", "\n").replace("\r", "\n"))
    found: list[tuple[str, str]] = [(o, "") for o in outcomes or ()]
    if report is not None:
        extra, more = _from_run_report(report)
        found.extend(more)
        text = "\n".join([*extra, text]) if text else "\n".join(extra)
        kind = kind or "run_report"
    objs = _json_lines(text) if kind in (None, "airflow_json", "mage_json") else None
    if objs is not None:
        kind, lines = _from_json_log(objs)
    else:
        kind = kind or "text"
        lines = [_TIMESTAMP.sub("", line) for line in text.split("\n")]
    excs = _tracebacks(lines)
    code = _source_lines(lines)
    primary = _primary_lines(lines, excs) - code
    p = Parsed(kind, lines, excs, primary, [], exit_code=exit_code, code_lines=code)
    _collect(p, found)
    return p


def _source_lines(lines: list[str]) -> set[int]:
    """The lines a traceback quotes from the source under each frame (and their caret
    lines): code, not evidence of the failure (``timeout=10`` in a call is not a timeout)."""
    out: set[int] = set()
    for i, line in enumerate(lines[:-1]):
        if _FRAME.match(line):
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and j <= i + 3:
                nxt = lines[j]
                deeper = len(nxt) - len(nxt.lstrip()) > indent
                if not nxt.strip() or _FRAME.match(nxt) or not deeper:
                    break
                out.add(j)
                j += 1
    return out


def _primary_lines(lines: list[str], excs: list[ExcInfo]) -> set[int]:
    """The failure's own lines: the last traceback chain and the error lines after it, or the
    last error lines of the log."""
    out: set[int] = set()
    n = len(lines)
    if excs:
        last = excs[-1].line
        # walk back over the chain: the tracebacks joined by "direct cause"/"During handling"
        start = last
        k = len(excs) - 1
        while k >= 0:
            tb = excs[k].line
            j = tb
            while j > 0 and not _TRACEBACK.match(lines[j]):
                j -= 1
            start = j
            above = lines[max(0, j - 3) : j]
            if k > 0 and any(_CHAIN.search(x) for x in above):
                k -= 1
                continue
            break
        out.update(range(start, min(n, last + 1)))
        # the exception's message lines and error lines just after it (a wrapped re-raise)
        tail = [i for i in range(last + 1, n) if _ERRORISH.search(lines[i])]
        out.update(tail[-5:])
        out.update(range(last, min(n, last + 4)))
    else:
        errorish = [i for i in range(n) if _ERRORISH.search(lines[i])]
        if errorish:
            lastone = errorish[-1]
            out.update(errorish[-6:])
            out.update(range(max(0, lastone - 2), min(n, lastone + 3)))
        else:
            out.update(range(max(0, n - 5), n))
    return {i for i in out if lines[i].strip()}


def _add(p: Parsed, kind: str, value: Any, line: int | None) -> None:
    primary = line is None or line in p.primary_lines
    key = (kind, value, primary)
    if key in p._seen:
        return
    p._seen.add(key)
    p.evidence.append(Evidence(kind, value, line, primary))


@functools.cache
def _compiled_tables() -> tuple:
    pg = tuple((re.compile(rx, re.I), code) for rx, code in PG_MESSAGES)
    se = tuple((re.compile(rx), name) for rx, name in _STRERROR)
    return pg, se, re.compile(r"\bOOMKilled\b")


def _collect(p: Parsed, outcomes: list[tuple[str, str]]) -> None:
    names = sqlstate_by_name()
    known = _known_exceptions()
    codes = {c for c in names.values()}
    if p.exit_code is not None:
        _add(p, "exit_code", int(p.exit_code), None)
    for outcome, _line in outcomes:
        _add(p, "outcome", outcome, None)
    for exc in p.exceptions:
        _add(p, "exception", exc.name, exc.line)
        code = names.get(exc.name) or names.get(exc.name.removesuffix("Error"))
        if code:
            _add(p, "sqlstate", code, exc.line)
    pg_rx, strerror_rx, oom_rx = _compiled_tables()
    for i, m in p.scan(_SQLSTATE):
        if m.group(1) in codes or m.group(1)[:2].isdigit():
            _add(p, "sqlstate", m.group(1), i)
    for i, m in p.scan(known):
        name = m.group("name")
        _add(p, "exception", name, i)
        code = names.get(name)
        if code:
            _add(p, "sqlstate", code, i)
    for rx, code in pg_rx:
        for i, _m in p.scan(rx):
            _add(p, "sqlstate", code, i)
    for i, m in p.scan(_ERRNO_NUM):
        num = int(next(g for g in m.groups() if g is not None))
        name = _EAI.get(num) if num < 0 else _errno.errorcode.get(num)
        if name and ("Errno" in m.group(0) or "errno" in m.group(0).lower()):
            _add(p, "errno", name, i)
    for i, m in p.scan(_ERRNO_NAME):
        if m.group(1) in _errno.errorcode.values() or m.group(1).startswith("EAI_"):
            _add(p, "errno", m.group(1), i)
    for rx, name in strerror_rx:
        for i, _m in p.scan(rx):
            _add(p, "errno", name, i)
    for i, m in p.scan(_EXIT):
        _add(p, "exit_code", int(m.group(1)), i)
    for i, m in p.scan(_NEG_SIGNAL):
        sig = m.group(1) or m.group(4) or m.group(6)
        num = m.group(2) or m.group(3) or m.group(5)
        if sig:
            import signal

            num = getattr(signal, sig, None)
            num = int(num) if num is not None else None
        if num:
            _add(p, "exit_code", -int(num), i)
    for i, _m in p.scan(oom_rx):
        _add(p, "outcome", "oom_killed", i)
    for i, m in p.scan(_HTTP):
        code = int(m.group(1) or m.group(2))
        if code >= 400:
            _add(p, "http_status", code, i)
    for _i, m in p.scan(_RETRY_AFTER):
        p.retry_after = float(m.group(1))
        break
