"""Static validation of Airflow DAG files: the AST is read, the file is never executed.

What is recognised: ``with DAG(...)``, ``x = DAG(...)``, ``@dag`` / ``@dag(...)`` functions and
their calls, operators (any call with a ``task_id=`` keyword), TaskFlow ``@task`` functions
(``@task.bash`` etc. too), ``TaskGroup`` / ``@task_group``, and dependencies written with
``>>``, ``<<``, ``set_upstream`` / ``set_downstream``, ``chain``, ``cross_downstream`` and lists,
with names imported from ``airflow.sdk`` or the legacy modules (``airflow``, ``airflow.models``,
``airflow.decorators``, ...). Anything built dynamically (ids from f-strings, tasks made in a
loop, a DAG factory) is skipped rather than guessed, so a finding is always a real problem.

``--mode import`` also loads each file with the real Airflow (:mod:`.importcheck`).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import hashlib
import os
import pickle
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .config import ValidateConfig, load_config
from .findings import TOO_DEEP, Finding, not_text, python_text, summarize
from .graph import find_cycles

ID_RE = re.compile(r"[\w.-]+")  # Airflow's KEY_REGEX: Unicode letters and digits count
ID_MAX = 250

# DAG constructor / @dag arguments Airflow 3 removed (value: what to use instead)
REMOVED_DAG_ARGS = {
    "schedule_interval": "use schedule=",
    "timetable": "pass the timetable as schedule=",
    "sla_miss_callback": "SLAs are gone: use deadline=DeadlineAlert(...)",
    "concurrency": "use max_active_tasks=",
    "full_filepath": "remove it",
    "default_view": "remove it (the UI chooses)",
    "orientation": "remove it (the UI chooses)",
    "fail_stop": "use fail_fast=",
}
# operator / @task / default_args arguments Airflow 3 removed
REMOVED_TASK_ARGS = {
    "sla": "SLAs are gone: use a DAG deadline=DeadlineAlert(...)",
    "task_concurrency": "use max_active_tis_per_dag=",
}
# imports gone in Airflow 3: (module, name or None for the whole module) -> hint
REMOVED_IMPORTS = {
    ("airflow.operators.subdag", None): "SubDAGs are gone: use TaskGroup or assets",
    (
        "airflow.operators.dummy",
        None,
    ): "use airflow.providers.standard.operators.empty.EmptyOperator",
    ("airflow.operators.dummy_operator", None): "use EmptyOperator from the standard provider",
    ("airflow.contrib", None): "use the provider packages",
    (
        "airflow.utils.dates",
        "days_ago",
    ): "use pendulum.today('UTC').add(days=-N) or a fixed start_date",
    ("airflow.utils.dates", "date_range"): "use pendulum or pandas date ranges",
    ("airflow.utils.decorators", "apply_defaults"): "remove it: defaults are applied automatically",
    ("airflow.models.baseoperator", "BaseOperatorLink"): "use airflow.sdk.BaseOperatorLink",
}
REMOVED_NAMES = {
    "SubDagOperator": "SubDAGs are gone: use TaskGroup",
    "DummyOperator": "use EmptyOperator",
}
# modules Airflow 3 only keeps as deprecated aliases
DEPRECATED_MODULES = {
    "airflow.operators": "import operators from airflow.providers.standard.operators",
    "airflow.sensors": "import sensors from airflow.providers.standard.sensors",
    "airflow.decorators": "import dag/task from airflow.sdk",
    "airflow.datasets": "datasets are assets now: airflow.sdk.Asset",
}
# template / context keys Airflow 3 removed (its Context has no such key any more)
REMOVED_CONTEXT = {
    "execution_date": "use logical_date",
    "next_execution_date": "use data_interval_end",
    "prev_execution_date": "use prev_data_interval_start_success or the dag_run",
    "prev_execution_date_success": "use prev_data_interval_start_success",
    "next_ds": "use data_interval_end | ds",
    "next_ds_nodash": "use data_interval_end | ds_nodash",
    "prev_ds": "use data_interval_start | ds",
    "prev_ds_nodash": "use data_interval_start | ds_nodash",
    "tomorrow_ds": "use macros.ds_add(ds, 1)",
    "tomorrow_ds_nodash": "use macros.ds_add(ds, 1) without dashes",
    "yesterday_ds": "use macros.ds_add(ds, -1)",
    "yesterday_ds_nodash": "use macros.ds_add(ds, -1) without dashes",
}
_CTX_NAMES = "|".join(sorted(REMOVED_CONTEXT, key=len, reverse=True))
# {{ execution_date }}, {{ prev_ds_nodash | ... }}, context["execution_date"], kwargs.get("next_ds")
# the names a task's context goes by: a dict key elsewhere (row["execution_date"]) is data
_CTX_OWNER = r"\b(?:context|ctx|kwargs|kw|get_current_context\(\))\s*"
_CTX_RE = re.compile(
    r"\{\{[^}]*?(?<![\w.])(" + _CTX_NAMES + r")\b"
    r"|" + _CTX_OWNER + r"\[\s*['\"](" + _CTX_NAMES + r")['\"]\s*\]"
    r"|" + _CTX_OWNER + r"\.get\(\s*['\"](" + _CTX_NAMES + r")['\"]"
)
_OLD_MODULE_RE = re.compile(r"^airflow\.(operators|sensors|hooks)\.\w+_(operator|sensor|hook)$")


@dataclass(slots=True)
class TaskRef:
    label: str
    dag: DagInfo | None


@dataclass
class DagInfo:
    dag_id: str | None
    line: int
    file: str
    certain: bool
    kind: str  # "with", "call", "decorator"
    default_args: frozenset | None  # keys known statically, or None when it cannot be told
    tasks: list[tuple[str, int, set, bool]] = field(
        default_factory=list
    )  # label, line, kwargs, certain
    # (from, to, line, if-arms the edge was made in: ((id of the if, 0 body / 1 else), ...))
    edges: list[tuple[str, str, int, tuple]] = field(default_factory=list)
    func_name: str | None = None


LABEL = object()  # Label("...") in a dependency chain: passes the left side through


# node classes bound once: the analysis compares type(node) with them, which is cheaper than
# isinstance and matches the same nodes (the parser makes no subclasses)
_Name, _Attribute, _Call, _Constant = ast.Name, ast.Attribute, ast.Call, ast.Constant
_Import, _ImportFrom = ast.Import, ast.ImportFrom
_Assign, _AnnAssign, _Expr = ast.Assign, ast.AnnAssign, ast.Expr
_BinOp, _RShift, _LShift = ast.BinOp, ast.RShift, ast.LShift
_List, _Tuple, _Set = ast.List, ast.Tuple, ast.Set


def _const_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _kw(call: ast.Call, name: str) -> ast.keyword | None:
    for k in call.keywords:
        if k.arg == name:
            return k
    return None


_FUNC_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
# statements that hold other statements (the only ones _scan descends into)
_COMPOUND = {
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.With,
    ast.AsyncWith,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.If,
    ast.Try,
    ast.TryStar,
    ast.Match,
}


def _scan(tree: ast.Module) -> tuple[list, list]:
    """Imports (in source order) and function definitions, found by walking statements only
    (they cannot hide inside expressions), which is a fraction of the nodes of a full walk."""
    imports: list = []
    funcs: list = []
    stack: list = [tree.body]
    compound = _COMPOUND
    while stack:
        for st in stack.pop():
            t = type(st)
            if t is _Import or t is _ImportFrom:
                imports.append(st)
                continue
            if t not in compound:
                continue
            if t in _FUNC_TYPES:
                funcs.append(st)
            if t is ast.Match:
                for c in st.cases:
                    stack.append(c.body)
                continue
            stack.append(st.body)
            orelse = getattr(st, "orelse", None)
            if orelse:
                stack.append(orelse)
            if t is ast.Try or t is ast.TryStar:
                if st.finalbody:
                    stack.append(st.finalbody)
                for h in st.handlers:
                    stack.append(h.body)
    imports.sort(key=lambda n: (n.lineno, n.col_offset))
    return imports, funcs


_IMPORT_VERDICTS: dict[tuple[str, str | None], tuple[str, str] | None] = {}


def _import_verdict(module: str, name: str | None) -> tuple[str, str] | None:
    """(rule, message) for an import from an airflow module, or None when it is fine."""
    for (mod, nm), hint in REMOVED_IMPORTS.items():
        if (module == mod or module.startswith(mod + ".")) and (nm is None or nm == name):
            what = f"{module}.{name}" if name and nm else module
            return "airflow3-removed-import", f"{what} was removed in Airflow 3: {hint}"
    if name in REMOVED_NAMES:
        return (
            "airflow3-removed-import",
            f"{name} was removed in Airflow 3: {REMOVED_NAMES[name]}",
        )
    if _OLD_MODULE_RE.match(module):
        return (
            "airflow3-removed-import",
            f"{module} was removed in Airflow 3: import from the provider packages",
        )
    for mod, hint in DEPRECATED_MODULES.items():
        if module == mod or module.startswith(mod + "."):
            return "airflow3-deprecated-import", f"{module} is deprecated in Airflow 3: {hint}"
    return None


class FileAnalyzer:
    def __init__(self, path: str, tree: ast.Module, findings: list[Finding]) -> None:
        self.path = path
        self.tree = tree
        self.findings = findings
        self.aliases: dict[str, str] = {}
        self.dags: list[DagInfo] = []
        self.dag_funcs: dict[str, DagInfo] = {}
        self.task_funcs: dict[str, tuple[str, set]] = {}  # fn name -> (task_id, decorator kwargs)
        self.group_funcs: set[str] = set()
        self.module_dicts: dict[str, ast.Dict] = {}
        self.taskflow_calls: dict[tuple[int, str], int] = {}
        self.airflow_names: dict[str, str] = {}  # local name -> last part, for airflow imports
        # the arms of the if statements the walk is inside: (id of the if, 0 body / 1 else);
        # edges made in different arms of one if never exist together
        self.arms: tuple[tuple[int, int], ...] = ()

    # ---- names -------------------------------------------------------------------------
    def qualname(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def airflow_name(self, node: ast.AST) -> str | None:
        """The last part of the node's qualified name when it comes from an airflow module."""
        t = type(node)
        if t is _Name:
            return self.airflow_names.get(node.id)
        if t is _Attribute:
            base = self.qualname(node.value)
            return node.attr if base and base.startswith("airflow") else None
        return None

    def _is(self, node: ast.AST, last: str) -> bool:
        return self.airflow_name(node) == last

    def is_dag_class(self, func: ast.AST) -> bool:
        return self.airflow_name(func) == "DAG"

    def _decorator_target(self, dec: ast.AST) -> ast.AST:
        return dec.func if isinstance(dec, ast.Call) else dec

    def is_dag_decorator(self, dec: ast.AST) -> bool:
        return self._is(self._decorator_target(dec), "dag")

    def is_task_decorator(self, dec: ast.AST) -> bool:
        q = self.qualname(self._decorator_target(dec))
        if not q or not q.startswith("airflow"):
            return False
        parts = q.split(".")
        return parts[-1] == "task" or (len(parts) >= 2 and parts[-2] == "task")

    def is_group_decorator(self, dec: ast.AST) -> bool:
        return self._is(self._decorator_target(dec), "task_group")

    # ---- passes ------------------------------------------------------------------------
    def run(self) -> None:
        imports, funcs = _scan(self.tree)
        self.collect_imports(imports)
        self.airflow_names = {
            local: q.rsplit(".", 1)[-1]
            for local, q in self.aliases.items()
            if q.startswith("airflow")
        }
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Dict):
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        self.module_dicts[t.id] = stmt.value
        for node in funcs:
            for dec in node.decorator_list:
                if self.is_task_decorator(dec):
                    kws = dec.keywords if isinstance(dec, ast.Call) else []
                    tid = next((_const_str(k.value) for k in kws if k.arg == "task_id"), None)
                    self.task_funcs[node.name] = (tid or node.name, {k.arg for k in kws if k.arg})
                    self.check_task_args(kws, node.lineno)
                elif self.is_group_decorator(dec):
                    self.group_funcs.add(node.name)
        self.walk(self.tree.body, dag=None, prefix="", certain=True, scope={})
        self.check_dag_calls()

    def collect_imports(self, imports: list) -> None:
        for node in imports:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.aliases[top] = top
                    self.check_import(a.name, None, node.lineno)
            elif node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    self.check_import(node.module, a.name, node.lineno)

    def check_import(self, module: str, name: str | None, line: int) -> None:
        if not module.startswith("airflow"):
            return
        key = (module, name)
        verdict = _IMPORT_VERDICTS.get(key, False)
        if verdict is False:
            verdict = _IMPORT_VERDICTS[key] = _import_verdict(module, name)
        if verdict is not None:
            self.add(line, *verdict)

    def add(self, line: int | None, rule: str, message: str, **extra) -> None:
        self.findings.append(Finding(self.path, line, rule, message, extra=extra))

    # ---- DAG objects -------------------------------------------------------------------
    def default_args_keys(self, node: ast.AST | None) -> dict | None:
        if node is None:
            return {}
        if isinstance(node, ast.Name):
            node = self.module_dicts.get(node.id)
        if not isinstance(node, ast.Dict):
            return None
        keys = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:  # **other: cannot tell statically
                return None
            s = _const_str(k)
            if s is not None:
                keys[s] = v
        return keys

    def new_dag(
        self, call_or_dec: ast.AST, line: int, kind: str, certain: bool, func_name=None
    ) -> DagInfo:
        call = call_or_dec if isinstance(call_or_dec, ast.Call) else None
        dag_id: str | None = None
        kwargs: set[str] = set()
        has_star = False
        default_args: dict | None = {}
        if call is not None:
            kwargs = {k.arg for k in call.keywords if k.arg}
            has_star = any(k.arg is None for k in call.keywords)
            k = _kw(call, "dag_id")
            if k is not None:
                dag_id = _const_str(k.value)
            elif call.args:  # DAG("id") and @dag("id") alike
                dag_id = _const_str(call.args[0])
            elif kind != "decorator" and not has_star:
                dag_id = None
            da = _kw(call, "default_args")
            default_args = self.default_args_keys(da.value if da else None)
            if has_star:
                default_args = None if da is None else default_args
        if (
            kind == "decorator"
            and dag_id is None
            and (call is None or (_kw(call, "dag_id") is None and not call.args))
        ):
            dag_id = func_name
        keys = None if default_args is None else frozenset(default_args)
        info = DagInfo(dag_id, line, self.path, certain, kind, keys, func_name=func_name)
        self.dags.append(info)
        if dag_id is not None and (len(dag_id) > ID_MAX or not ID_RE.fullmatch(dag_id)):
            self.add(
                line,
                "dag-id-invalid",
                f"dag_id {dag_id[:60]!r} must be 1-{ID_MAX} letters, digits, '_', '.' or '-'",
            )
        if call is not None:
            for arg in sorted(kwargs & REMOVED_DAG_ARGS.keys()):
                k = _kw(call, arg)
                self.add(
                    k.value.lineno if k is not None else line,  # the argument's own line
                    "airflow3-removed-arg",
                    f"DAG argument {arg!r} was removed in Airflow 3: {REMOVED_DAG_ARGS[arg]}",
                )
            if default_args:
                for arg in sorted(default_args.keys() & REMOVED_TASK_ARGS.keys()):
                    self.add(
                        line,
                        "airflow3-removed-arg",
                        f"default_args {arg!r} was removed in Airflow 3: {REMOVED_TASK_ARGS[arg]}",
                    )
        if (
            "schedule" not in kwargs
            and "schedule_interval" not in kwargs
            and "timetable" not in kwargs
            and not has_star
        ):
            self.add(
                line,
                "schedule-missing",
                f"DAG {dag_id or '(dynamic id)'} has no explicit schedule: Airflow 3 then never "
                "schedules it; pass schedule=... (schedule=None for manual runs)",
            )
        return info

    def check_task_args(self, keywords: list[ast.keyword], line: int) -> None:
        for k in keywords:
            if k.arg in REMOVED_TASK_ARGS:
                self.add(
                    line,
                    "airflow3-removed-arg",
                    f"task argument {k.arg!r} was removed in Airflow 3: {REMOVED_TASK_ARGS[k.arg]}",
                )

    def check_dag_calls(self) -> None:
        if not self.dag_funcs:
            return
        # a @dag function counts as called when some expression loads its name (a call, or a
        # reference that may be called elsewhere): only a name never used is reported
        used = {
            n.id
            for n in ast.walk(self.tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in self.dag_funcs
        }
        for name, info in self.dag_funcs.items():
            if name not in used:
                self.add(
                    info.line,
                    "dag-not-called",
                    f"@dag function {name}() is never called, so DAG {info.dag_id} is not "
                    f"registered: add `{name}()` at module level",
                )
                info.certain = False  # it registers nothing: no duplicate-id clash either

    # ---- statements --------------------------------------------------------------------
    def walk(
        self, stmts: Iterable[ast.stmt], dag, prefix: str | None, certain: bool, scope: dict
    ) -> None:
        for stmt in stmts:
            self.stmt(stmt, dag, prefix, certain, scope)

    def stmt(self, s: ast.stmt, dag, prefix, certain, scope) -> None:
        t = type(s)
        if t is _Assign or t is _AnnAssign:
            value = s.value
            if value is None:
                return
            targets = s.targets if t is _Assign else [s.target]
            if type(value) is _Call:
                name = self.airflow_name(value.func)
                if name == "DAG":
                    info = self.new_dag(value, value.lineno, "call", certain)
                    for tg in targets:
                        if isinstance(tg, ast.Name):
                            scope[tg.id] = info
                    return
                refs = self.call(value, dag, prefix, certain, scope, name)
            else:
                refs = self.expr(value, dag, prefix, certain, scope)
            for tg in targets:
                if isinstance(tg, ast.Name):
                    if refs:
                        scope[tg.id] = refs
                    else:
                        scope.pop(tg.id, None)
                elif isinstance(tg, ast.Tuple | ast.List) and isinstance(
                    value, ast.Tuple | ast.List
                ):
                    for tt, vv in zip(tg.elts, value.elts, strict=False):
                        if isinstance(tt, ast.Name):
                            r = self.expr(vv, dag, prefix, certain, {**scope, "__noreg__": True})
                            if r:
                                scope[tt.id] = r
        elif t is _Expr:
            self.expr(s.value, dag, prefix, certain, scope)
        elif t is ast.With or t is ast.AsyncWith:
            inner_dag, inner_prefix = dag, prefix
            for item in s.items:
                ce = item.context_expr
                name = self.airflow_name(ce.func) if type(ce) is _Call else None
                if name == "DAG":
                    inner_dag = self.new_dag(ce, ce.lineno, "with", certain)
                    if isinstance(item.optional_vars, ast.Name):
                        scope[item.optional_vars.id] = inner_dag
                elif name == "TaskGroup":
                    k = _kw(ce, "group_id")
                    gid = _const_str(k.value if k else (ce.args[0] if ce.args else None))
                    inner_prefix = (
                        f"{prefix}{gid}." if gid is not None and prefix is not None else None
                    )
                elif isinstance(ce, ast.Name) and isinstance(scope.get(ce.id), DagInfo):
                    inner_dag = scope[ce.id]  # dag = DAG(...); with dag: ...
                    inner_prefix = "" if inner_prefix is None else inner_prefix
                else:
                    self.expr(ce, inner_dag, inner_prefix, certain, scope)
            self.walk(s.body, inner_dag, inner_prefix, certain, scope)
        elif t is ast.FunctionDef or t is ast.AsyncFunctionDef:
            decs = s.decorator_list
            dag_dec = next((d for d in decs if self.is_dag_decorator(d)), None)
            if dag_dec is not None:
                info = self.new_dag(dag_dec, s.lineno, "decorator", certain, func_name=s.name)
                self.dag_funcs[s.name] = info
                self.walk(s.body, info, "", certain, dict(scope))
            elif s.name in self.group_funcs or s.name in self.task_funcs:
                return  # bodies of tasks and groups run per call: nothing certain to record
            else:
                self.walk(s.body, None, None, False, dict(scope))
        elif t is ast.ClassDef:
            self.walk(s.body, None, None, False, dict(scope))
        elif t is ast.For or t is ast.AsyncFor or t is ast.While:
            self.expr(
                getattr(s, "iter", None) or getattr(s, "test", None), dag, prefix, certain, scope
            )
            self.walk(s.body, dag, prefix, False, scope)
            self.walk(s.orelse, dag, prefix, False, scope)
        elif t is ast.If:
            self.expr(s.test, dag, prefix, certain, scope)
            outer = self.arms
            for arm, body in enumerate((s.body, s.orelse)):
                self.arms = (*outer, (id(s), arm))
                self.walk(body, dag, prefix, False, scope)
            self.arms = outer
        elif t is ast.Try:
            self.walk(s.body, dag, prefix, certain, scope)
            for h in s.handlers:
                self.walk(h.body, dag, prefix, False, scope)
            self.walk(s.orelse, dag, prefix, certain, scope)
            self.walk(s.finalbody, dag, prefix, certain, scope)
        elif t is ast.Return and s.value is not None:
            self.expr(s.value, dag, prefix, certain, scope)

    # ---- expressions -------------------------------------------------------------------
    def expr(self, node, dag, prefix, certain, scope):
        """Evaluate an expression for tasks and dependencies; returns the task refs it denotes."""
        t = type(node)
        if t is _Call:
            return self.call(node, dag, prefix, certain, scope)
        if t is _Name:
            v = scope.get(node.id)
            return v if isinstance(v, list) else None
        if t is _Constant:
            return None
        if t is _BinOp:
            return self.shifts(node, dag, prefix, certain, scope)
        if t is _List or t is _Tuple or t is _Set:
            out = []
            for e in node.elts:
                r = self.expr(e, dag, prefix, certain, scope)
                if r and r is not LABEL:
                    out.extend(r)
            return out or None
        if t is _Attribute:
            return (
                self.expr(node.value, dag, prefix, certain, scope)
                if node.attr == "output"
                else None
            )
        return None

    def shifts(self, node, dag, prefix, certain, scope):
        """``a >> b >> c ...``: a left-deep tree as deep as the chain is long, walked without
        recursion (a generated DAG chains thousands of tasks in one statement)."""
        spine = []
        while type(node) is _BinOp and type(node.op) in (_RShift, _LShift):
            spine.append(node)
            node = node.left
        if not spine:
            return None  # another operator: no dependency
        left = self.expr(node, dag, prefix, certain, scope)
        for op_node in reversed(spine):
            right = self.expr(op_node.right, dag, prefix, certain, scope)
            if right is LABEL:
                continue  # the chain's value stays the left side
            if left is not LABEL and left and right:
                a, b = (left, right) if type(op_node.op) is _RShift else (right, left)
                self.edges(a, b, op_node.lineno)
            left = right
        return left

    def edges(self, src: list[TaskRef], dst: list[TaskRef], line: int) -> None:
        for a in src:
            for b in dst:
                owner = a.dag or b.dag
                if owner is not None:
                    owner.edges.append((a.label, b.label, line, self.arms))

    def register(self, label: str, line: int, kwargs: set, dag, certain, scope) -> list[TaskRef]:
        if dag is not None and not scope.get("__noreg__"):
            dag.tasks.append((label, line, kwargs, certain))
        return [TaskRef(label, dag)]

    def call(self, node: ast.Call, dag, prefix, certain, scope, name: str | None | bool = False):
        """``name``: the callee's airflow name when the caller has resolved it already."""
        func = node.func
        if name is False:
            name = self.airflow_name(func)
        # Label("...") between tasks
        if name == "Label":
            return LABEL
        # chain(a, b, [c, d]) / cross_downstream([a], [b])
        if name == "chain" or name == "cross_downstream":
            parts = [self.expr(a, dag, prefix, certain, scope) for a in node.args]
            if name == "cross_downstream" and len(parts) == 2 and parts[0] and parts[1]:
                self.edges(parts[0], parts[1], node.lineno)
                return None
            for (a_node, a), (b_node, b) in zip(
                zip(node.args, parts, strict=True),
                list(zip(node.args, parts, strict=True))[1:],
                strict=False,
            ):
                if not a or not b or a is LABEL or b is LABEL:
                    continue
                if (
                    isinstance(a_node, ast.List | ast.Tuple)
                    and isinstance(b_node, ast.List | ast.Tuple)
                    and len(a) == len(b)
                ):
                    for x, y in zip(a, b, strict=True):
                        self.edges([x], [y], node.lineno)
                else:
                    self.edges(a, b, node.lineno)
            return None
        # a.set_downstream(b) / a.set_upstream(b)
        if type(func) is _Attribute and func.attr in ("set_downstream", "set_upstream"):
            me = self.expr(func.value, dag, prefix, certain, scope)
            other = self.expr(node.args[0], dag, prefix, certain, scope) if node.args else None
            if me and other and me is not LABEL and other is not LABEL:
                if func.attr == "set_downstream":
                    self.edges(me, other, node.lineno)
                else:
                    self.edges(other, me, node.lineno)
            return None
        # a DAG built inline
        if name == "DAG":
            self.new_dag(node, node.lineno, "call", certain)
            return None
        args_refs = []
        for a in node.args:
            if type(a) is not _Constant:
                r = self.expr(a, dag, prefix, certain, scope)
                if r and r is not LABEL:
                    args_refs.extend(r)
        # one pass over the keywords: their values, dag=..., task_id=...
        k_dag = tid_node = None
        kwargs = set()
        for k in node.keywords:
            v = k.value
            if type(v) is not _Constant:
                r = self.expr(v, dag, prefix, certain, scope)
                if r and r is not LABEL:
                    args_refs.extend(r)
            arg = k.arg
            if arg is None:
                continue
            kwargs.add(arg)
            if arg == "task_id":
                if tid_node is None:
                    tid_node = k
            elif arg == "dag" and k_dag is None:
                k_dag = k
        # dict(task_id=...) and d.update(task_id=...) build data (op_kwargs=dict(task_id=...)),
        # not a task
        if tid_node is not None and (
            (type(func) is _Name and func.id == "dict")
            or (type(func) is _Attribute and func.attr in ("update", "setdefault"))
        ):
            return args_refs or None
        # the DAG a task names with dag=...
        if k_dag is not None and isinstance(k_dag.value, ast.Name):
            d = scope.get(k_dag.value.id)
            if isinstance(d, DagInfo):
                dag = d
                prefix = "" if prefix is None else prefix
        # operator with an explicit task_id (also X.partial(task_id=...).expand(...))
        if tid_node is None:
            c = func.value if type(func) is _Attribute and type(func.value) is _Call else None
            while c is not None:
                k = _kw(c, "task_id")
                if k is not None:
                    tid_node = k
                    kwargs |= {k.arg for k in c.keywords if k.arg}  # X.partial(retries=3)
                    break
                c = (
                    c.func.value
                    if isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Call)
                    else None
                )
        if tid_node is not None:
            tid = _const_str(tid_node.value)
            if not kwargs.isdisjoint(REMOVED_TASK_ARGS):
                self.check_task_args(node.keywords, node.lineno)
            if tid is None:
                return None
            full = tid if prefix is None else prefix + tid  # a group's id is part of it
            if len(full) > ID_MAX or not ID_RE.fullmatch(tid):
                self.add(
                    node.lineno,
                    "task-id-invalid",
                    f"task_id {full[:60]!r} must be 1-{ID_MAX} letters, digits, '_', '.' or '-'",
                )
            if prefix is None:
                return None
            refs = self.register(prefix + tid, node.lineno, kwargs, dag, certain, scope)
            if args_refs:
                self.edges(args_refs, refs, node.lineno)
            return refs
        # TaskFlow call: fn(), fn.override(...)(), fn.partial(...).expand(...)
        base = func
        chained: list[ast.Call] = []  # .override(...) / .partial(...) calls on the way
        while True:
            if isinstance(base, ast.Call):
                chained.append(base)
                base = base.func
            elif isinstance(base, ast.Attribute) and base.attr in (
                "override",
                "partial",
                "expand",
                "expand_kwargs",
            ):
                base = base.value
            else:
                break
        if isinstance(base, ast.Name) and (
            base.id in self.task_funcs or base.id in self.group_funcs
        ):
            if prefix is None:
                return None
            name, dec_kwargs = self.task_funcs.get(base.id, (base.id, set()))
            if base.id in self.group_funcs:
                name = f"{base.id}(group)"
            # fn.override(task_id="x", retries=3)(): its arguments count as the decorator's
            for c in chained:
                dec_kwargs = dec_kwargs | {k.arg for k in c.keywords if k.arg}
                k = _kw(c, "task_id")
                if k is not None and _const_str(k.value) is not None:
                    name = _const_str(k.value)
            key = (id(dag), prefix + name)
            n = self.taskflow_calls.get(key, 0)
            # like Airflow, the next free suffix: an operator may hold the plain id already
            taken = {t[0] for t in dag.tasks} if isinstance(dag, DagInfo) else set()
            while (label := prefix + name + (f"__{n}" if n else "")) in taken:
                n += 1
            self.taskflow_calls[key] = n + 1
            refs = self.register(
                label, node.lineno, dec_kwargs | {"__taskflow__"}, dag, False, scope
            )
            self.edges(args_refs, refs, node.lineno)
            return refs
        return None


def _dag_files(paths: Iterable[str | Path]) -> list[tuple[str, bool]]:
    """(file, named explicitly) for every .py file under the given paths, sorted; each file
    once (a file named twice, or inside a folder also given, is one file). Linked folders are
    followed, as Airflow does, each real folder once; only regular files are read (a FIFO named
    x.py would block the run)."""
    out: dict[str, tuple[str, bool]] = {}  # real path -> (name, explicit)
    join, isfile, realpath = os.path.join, os.path.isfile, os.path.realpath

    def add(name: str, explicit: bool) -> None:
        real = realpath(name)
        seen = out.get(real)
        if seen is None or (explicit and not seen[1]):
            out[real] = (seen[0] if seen else name, explicit or bool(seen and seen[1]))

    for p in paths:
        path = str(Path(p))  # names as pathlib spells them ("./a/" -> "a"), once per argument
        if os.path.isfile(path):
            add(path, True)
        elif os.path.isdir(path):
            walked: set[str] = set()
            ignores: dict[str, list[tuple[str, str]]] = {}  # folder -> (holder, pattern) in force
            for root, dirs, files in os.walk(path, followlinks=True, onerror=_unreadable):
                real = realpath(root)
                if real in walked:  # a link back up the tree, or a second link to a folder
                    dirs[:] = []
                    continue
                walked.add(real)
                rules = ignores.get(root, []) + _airflowignore(root)
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if not d.startswith(".")
                    and d not in ("__pycache__", "node_modules")
                    and not _ignored(join(root, d), rules, folder=True)
                )
                for d in dirs:
                    ignores[join(root, d)] = rules
                base = str(Path(root))
                for f in sorted(files):
                    name = f if base == "." else join(base, f)
                    if f.endswith(".py") and isfile(name) and not _ignored(join(root, f), rules):
                        add(name, False)
        else:
            raise InputError("no such file or folder", file=path, hint="give DAG files or folders")
    return sorted(out.values())


_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+\(?([\w ,\t\n]+)", re.M)


def _names(m: re.Match) -> set[str]:
    """The names a ``from x import a, b as c`` line imports (the original names)."""
    return {part.split()[0] for part in m.group(1).split(",") if part.split()}


def _dag_func_of(message: str) -> str | None:
    m = re.match(r"@dag function (\w+)\(\)", message)
    return m.group(1) if m else None


def _unreadable(exc: OSError) -> None:
    """A folder under a given one that cannot be listed: its DAGs would go unchecked."""
    raise InputError(
        f"cannot read the folder: {exc.strerror}",
        file=str(exc.filename),
        hint="give the validator read access, or list it in .airflowignore",
    )


def _airflowignore(folder: str) -> list[tuple[str, str]]:
    """The patterns of ``folder/.airflowignore`` (Airflow 3's default glob syntax: one pattern
    per line, ``#`` comments), each with the folder it is relative to."""
    try:
        with open(os.path.join(folder, ".airflowignore"), encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [(folder, ln.strip()) for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _ignored(path: str, rules: list[tuple[str, str]], folder: bool = False) -> bool:
    """Whether an .airflowignore pattern in force matches ``path``: a pattern with a ``/`` is
    matched against the path relative to its file's folder, one without against the name;
    a trailing ``/`` matches folders only."""
    import fnmatch

    for holder, pattern in rules:
        if pattern.endswith("/"):
            if not folder:
                continue
            pattern = pattern.rstrip("/")
        rel = os.path.relpath(path, holder).replace(os.sep, "/")
        target = rel if "/" in pattern.strip("/") else os.path.basename(path)
        if fnmatch.fnmatchcase(target, pattern.lstrip("/")) or fnmatch.fnmatchcase(
            rel, pattern.lstrip("/") + "/*"
        ):
            return True
    return False


def _check_context(path: str, source: str, findings: list[Finding]) -> None:
    """Template and context keys removed in Airflow 3 (a text search: comments are skipped)."""
    if not _CTX_RE.search(source):
        return
    for m in _CTX_RE.finditer(source):
        start = source.rfind("\n", 0, m.start()) + 1
        if source[start : m.start()].lstrip().startswith("#"):
            continue
        key = next(g for g in m.groups() if g)
        findings.append(
            Finding(
                path,
                source.count("\n", 0, m.start()) + 1,
                "airflow3-removed-context",
                f"context key {key!r} was removed in Airflow 3: {REMOVED_CONTEXT[key]}",
            )
        )


def analyze_file(path: str, source: str, findings: list[Finding]) -> list[DagInfo]:
    """Findings of one file (appended to ``findings``) and the DAGs it defines."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes, before Python 3.11.4
        line = getattr(exc, "lineno", None)
        nul = source.find("\x00")
        if line is None and nul >= 0:  # Python names no line for a null byte
            line = source.count("\n", 0, nul) + 1
        findings.append(
            Finding(path, line, "syntax-error", f"invalid Python: {getattr(exc, 'msg', exc)}")
        )
        return []
    except (RecursionError, MemoryError):
        findings.append(Finding(path, None, "syntax-error", TOO_DEEP))
        return []
    fa = FileAnalyzer(path, tree, findings)
    limit = sys.getrecursionlimit()
    # the analyser recurses with the expression: a.set_downstream(b).set_downstream(c)... is as
    # deep as it is long, and Python compiles such a file (pure Python frames, no C stack)
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        fa.run()
    except RecursionError:
        findings.append(Finding(path, None, "syntax-error", TOO_DEEP))
        return []
    finally:
        sys.setrecursionlimit(limit)
    if fa.dags:  # a DAG file, not a library module that supports several Airflow versions
        _check_context(path, source, findings)
    for info in fa.dags:
        _check_structure(info, findings)
    return fa.dags


def _check_structure(info: DagInfo, findings: list[Finding]) -> None:
    """Findings of one DAG that depend on the file alone: duplicate task ids, cycles."""
    seen: dict[str, int] = {}
    for label, line, _kwargs, certain in info.tasks:
        if not certain or "__taskflow__" in _kwargs:
            continue
        if label in seen:
            findings.append(
                Finding(
                    info.file,
                    line,
                    "task-id-duplicate",
                    f"task_id {label!r} is already used in DAG {info.dag_id} (line {seen[label]})",
                )
            )
        else:
            seen[label] = line
    if _in_task_order(info):
        return
    for cyc in _cycles(info.edges):
        first = cyc.path[0], cyc.path[1]
        line = next((e[2] for e in info.edges if (e[0], e[1]) == first), info.line)
        findings.append(
            Finding(
                info.file,
                line,
                "cycle",
                f"DAG {info.dag_id} has a cycle: {cyc.render()}",
                extra={"path": cyc.path},
            )
        )


MAX_ARM_IFS = 10  # ifs whose arms are told apart when looking for cycles (2**10 runs)


def _cycles(edges: list[tuple]) -> list:
    """The cycles some run of the DAG file can have: edges made in different arms of one if
    never exist together (``if x: b >> a`` / ``else: a >> b`` is no cycle), so each combination
    of arms is searched on its own, when the merged graph has a cycle at all and at most
    ``MAX_ARM_IFS`` ifs make edges (beyond that, all edges count together)."""
    merged = find_cycles((e[0], e[1]) for e in edges)
    ifs = sorted({i for e in edges for i, _ in e[3]})
    if not merged or not ifs or len(ifs) > MAX_ARM_IFS:
        return merged
    found: dict[frozenset, object] = {}
    for choice in range(2 ** len(ifs)):
        world = {i: (choice >> k) & 1 for k, i in enumerate(ifs)}
        live = ((e[0], e[1]) for e in edges if all(world[i] == arm for i, arm in e[3]))
        for cyc in find_cycles(live):
            found.setdefault(frozenset(zip(cyc.path, cyc.path[1:], strict=False)), cyc)
    return list(found.values())


def _in_task_order(info: DagInfo) -> bool:
    """True when every edge goes from a task to one registered after it: that order is then a
    topological order, so there is no cycle (the common case, checked in one pass)."""
    if not info.edges:
        return True
    pos: dict[str, int] = {}
    for t in info.tasks:
        pos.setdefault(t[0], len(pos))
    get = pos.get
    for a, b, *_ in info.edges:
        i = get(a)
        j = get(b)
        if i is None or j is None or i >= j:
            return False
    return True


def _check_dag(info: DagInfo, config: ValidateConfig, findings: list[Finding]) -> None:
    """Findings of one DAG that depend on the project's config."""
    for key, want, rule in (
        ("retries", config.require_retries, "retries-missing"),
        ("owner", config.require_owner, "owner-missing"),
    ):
        if not want or info.default_args is None or key in info.default_args:
            continue
        lacking = [(lab, ln) for lab, ln, kw, _ in info.tasks if key not in kw]
        if not info.tasks:
            findings.append(
                Finding(
                    info.file,
                    info.line,
                    rule,
                    f"DAG {info.dag_id}: the project requires {key}; set it in default_args",
                )
            )
        for lab, ln in lacking:
            findings.append(
                Finding(
                    info.file,
                    ln,
                    rule,
                    f"task {lab!r} of DAG {info.dag_id} has no {key} (the project requires it): set {key}= or default_args",
                )
            )


def _analyze_one(item: tuple[str, str]) -> tuple[list, list]:
    """One file's analysis as plain tuples, cheap to pickle for the cache and to send back from
    a worker process: findings as ``(line, rule, message, extra)`` and DAGs as ``(dag_id, line,
    certain, kind, default_args, tasks, func_name)``; the file is the item's name. Edges are not
    kept: the file-local checks that need them are done."""
    name, source = item
    found: list[Finding] = []
    dags = analyze_file(name, source, found)
    return (
        [(f.line, f.rule, f.message, f.extra) for f in found],
        [(d.dag_id, d.line, d.certain, d.kind, d.default_args, d.tasks, d.func_name) for d in dags],
    )


def _analyze_slice(items: list[tuple[str, str]]) -> list:
    return [_analyze_one(i) for i in items]


# with --jobs 0, worker processes start from this many files to parse: below it, starting them
# and sending the results back costs more than they save (bench/architect/README.md)
PARALLEL_MIN_FILES = 300


def _analyze_many(items: list[tuple[str, str]], jobs: int) -> list:
    if jobs == 0:
        jobs = (os.cpu_count() or 1) if len(items) >= PARALLEL_MIN_FILES else 1
    jobs = min(jobs, len(items))
    if jobs <= 1:
        return _analyze_slice(items)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # one share per process; this process takes the first one while jobs - 1 workers take the rest
    cut = [len(items) * k // jobs for k in range(jobs + 1)]
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=ctx) as pool:
        futures = [pool.submit(_analyze_slice, items[cut[k] : cut[k + 1]]) for k in range(1, jobs)]
        out = _analyze_slice(items[: cut[1]])
        for fut in futures:
            out.extend(fut.result())
    return out


_CODE = hashlib.blake2b(
    b"".join(
        (Path(__file__).parent / n).read_bytes() for n in ("airflow.py", "findings.py", "graph.py")
    ),
    digest_size=8,
).hexdigest()


@contextlib.contextmanager
def _gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _well_formed(hit) -> bool:
    """A cached result has the shape _analyze_one gives (a cache someone else wrote may not)."""
    try:
        found, dags = hit
        return (
            isinstance(found, list)
            and isinstance(dags, list)
            and all(isinstance(f, tuple) and len(f) == 4 for f in found)
            and all(
                isinstance(d, tuple)
                and len(d) == 7
                and isinstance(d[5], list)
                and all(isinstance(t, tuple) and len(t) == 4 for t in d[5])
                for d in dags
            )
        )
    except (TypeError, ValueError):
        return False


class _PlainUnpickler(pickle.Unpickler):
    """Reads plain data only (tuples, lists, dicts, strings, numbers): the cache names no class
    or function, so a cache file someone else wrote (a shared CI cache) cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"the cache refers to {module}.{name}")


class _Cache:
    """Per-file analysis results keyed by path and content hash, in one pickle per code version."""

    MAX = 50_000

    def __init__(self, where: str | Path | bool) -> None:
        if where is True:
            where = os.environ.get("PIPEWARDEN_CACHE_DIR") or Path.home() / ".cache" / "pipewarden"
        self.path = Path(where) / f"validate-dag-{_CODE}.pickle"
        self.entries: dict = {}
        self.dirty = False
        try:
            with open(self.path, "rb") as fh:
                self.entries = _PlainUnpickler(fh).load()
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            self.entries = {}
        if not isinstance(self.entries, dict):
            self.entries = {}  # plain data of another shape: rebuilt

    @staticmethod
    def key(name: str, data: bytes) -> str:
        return name + "\0" + hashlib.blake2b(data, digest_size=16).hexdigest()

    def get(self, name: str, data: bytes):
        hit = self.entries.get(self.key(name, data))
        return hit if hit is None or _well_formed(hit) else None

    def put(self, name: str, data: bytes, result) -> None:
        if len(self.entries) >= self.MAX:
            self.entries.clear()
        self.entries[self.key(name, data)] = result
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(self.entries, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs speed


def validate_dags(
    paths: Iterable[str | Path],
    *,
    mode: str = "static",
    config: ValidateConfig | str | Path | None = None,
    airflow_python: str | None = None,
    timeout: float = 120.0,
    jobs: int = 1,
    cache: str | Path | bool | None = None,
) -> dict:
    """Validate Airflow DAG files; returns the result document (``ok`` False on any error).

    ``jobs``: processes for the analysis (1 by default; 0: one per core when at least
    :data:`PARALLEL_MIN_FILES` files are to be parsed, else 1).
    ``cache``: a folder (or True for ``$PIPEWARDEN_CACHE_DIR`` / ``~/.cache/pipewarden``) where
    each file's analysis is kept by content hash, so unchanged files are not parsed again.
    """
    paths = list(paths)
    if not paths:
        raise InputError("no path given", hint="give DAG files or folders")
    if mode not in ("static", "import"):
        raise InputError(f"unknown mode {mode!r}", hint="static or import")
    files = _dag_files(paths)
    cfg = config if isinstance(config, ValidateConfig) else load_config(paths[0], config)
    findings: list[Finding] = []
    dags: list[DagInfo] = []
    checked = []
    todo: list[tuple[str, str, bytes]] = []
    results: dict[str, tuple[list, list]] = {}
    imported: dict[str, set[str]] = {}  # file -> names it imports with "from x import"
    # the trees and results are freed by reference counting: cyclic collections of the growing
    # heap while they are built would only cost time
    with _gc_paused():
        store = _Cache(cache) if cache else None
        for path, explicit in files:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
                source = python_text(data)
            except UnicodeDecodeError as exc:
                findings.append(Finding(path, None, "syntax-error", not_text(exc)))
                continue
            except SyntaxError as exc:  # an unknown encoding named by a coding line
                findings.append(Finding(path, exc.lineno, "syntax-error", str(exc.msg)))
                continue
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", file=path) from None
            # Airflow's own heuristic: a file that mentions neither "airflow" nor "dag" holds no DAG
            low = source.lower()
            if not explicit and ("airflow" not in low or "dag" not in low):
                continue
            checked.append(path)
            if "import" in source:
                imported[path] = {n for m in _FROM_IMPORT.finditer(source) for n in _names(m)}
            hit = store.get(path, data) if store else None
            if hit is not None:
                results[path] = hit
            else:
                todo.append((path, source, data))
        for (name, _src, data), res in zip(
            todo, _analyze_many([(n, s) for n, s, _ in todo], jobs), strict=True
        ):
            results[name] = res
            if store:
                store.put(name, data, res)
        if store:
            store.save()
    # a @dag function another file imports is called there (a DAG factory module): a name is
    # imported elsewhere when more files import it than this one (one count for all files, not
    # a union of the other files' sets per file, which was quadratic in the number of files)
    import_count = Counter(n for names in imported.values() for n in names)

    def imported_elsewhere(func: str | None, name: str) -> bool:
        return import_count[func] > (func in imported.get(name, ()))

    for name in checked:
        file_findings, file_dags = results[name]
        # new objects each run: severities change below, and cached results stay as they are
        findings.extend(
            Finding(name, ln, rule, msg, extra=ex)
            for ln, rule, msg, ex in file_findings
            if rule != "dag-not-called" or not imported_elsewhere(_dag_func_of(msg), name)
        )
        dags.extend(
            DagInfo(dag_id, ln, name, certain, kind, da, tasks, [], func)
            for dag_id, ln, certain, kind, da, tasks, func in file_dags
        )
    by_id: dict[str, DagInfo] = {}
    for info in dags:
        _check_dag(info, cfg, findings)
        if info.dag_id is None or not info.certain:
            continue
        first = by_id.get(info.dag_id)
        if first is None:
            by_id[info.dag_id] = info
        else:
            findings.append(
                Finding(
                    info.file,
                    info.line,
                    "dag-id-duplicate",
                    f"dag_id {info.dag_id!r} is already defined at {first.file}:{first.line}",
                )
            )
    if mode == "import" and checked:
        from .importcheck import import_errors

        findings.extend(import_errors(checked, python=airflow_python, timeout=timeout))
    findings = cfg.apply(findings)
    return summarize(
        "dag",
        findings,
        files=len(checked),
        dags=[
            {"dag_id": d.dag_id, "file": d.file, "line": d.line, "tasks": len(d.tasks)}
            for d in dags
        ],
        mode=mode,
        config=cfg.source,
    )
