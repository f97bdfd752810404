"""The reflection loop: docs regenerated from the store when a schema changes, committed with
the change.

- :func:`build_docs` (``pipewarden docs build``) writes every dataset's page, the index and
  the migrations, writes the descriptions to the database, and commits or stages the files
  as ``docs.git`` says;
- :func:`check_docs` (``pipewarden docs check``) compares the files with what the store says
  now: exit 1 on a difference (a CI gate, a pre-commit hook);
- :func:`after_batch` is the hook ``pipewarden run`` calls after a batch committed: when the
  batch applied a schema change (or the guardian found PII where the docs say none), the
  dataset's docs are regenerated, written and committed in the same step;
- :func:`after_apply` is the same for ``pipewarden sentinel --apply``.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import descriptions as descmod
from . import render
from .catalog import Db
from .git import GitError, commit_paths, repo_root, stage_paths
from .model import DatasetFacts, dataset_facts, fold_pii

STATE_KEY = "reflect.docs"
GIT_MODES = ("commit", "stage", "off")


@dataclass
class DocsSettings:
    path: Path  # the docs folder
    git: str = "off"  # commit | stage | off
    repo: Path | None = None  # the work tree (found from path when None)
    descriptions: Path | None = None  # the descriptions file
    comments: bool = True  # write descriptions as COMMENT ON
    keys: dict[str, list[str]] = field(default_factory=dict)  # dataset -> primary key

    @property
    def descriptions_file(self) -> Path:
        return self.descriptions or self.path / "descriptions.yaml"

    def root(self) -> Path:
        return self.repo.resolve() if self.repo else repo_root(self.path)


def settings_from_config(cfg: dict[str, Any]) -> DocsSettings | None:
    """The ``docs`` section of a loaded pipeline config, or None when it has none. A
    ``docs.git`` of commit or stage needs a git repository: checked here, before a batch
    runs."""
    doc = cfg.get("docs")
    if doc is None:
        return None
    base = Path(cfg["_base_dir"])
    s = DocsSettings(
        path=(base / doc.get("path", "docs/data")).resolve(),
        git=doc.get("git") or "off",  # YAML 1.1 reads a bare `off` as false
        repo=(base / doc["repo"]).resolve() if doc.get("repo") else None,
        descriptions=(base / doc["descriptions"]).resolve() if doc.get("descriptions") else None,
        comments=doc.get("comments", True),
    )
    key = cfg.get("primary_key")
    if key:
        s.keys[cfg["dataset"]] = [key] if isinstance(key, str) else list(key)
    if s.git != "off":
        root = s.root()
        try:
            s.path.relative_to(root)
        except ValueError:
            raise InputError(
                f"docs.path {s.path} is outside the repository {root}",
                file=cfg.get("_file"),
                key="docs.path",
                hint="put the docs inside the repository, or set docs.repo",
            ) from None
    return s


# ---------------------------------------------------------------- generation


@dataclass
class Generated:
    files: dict[str, str]  # path relative to the docs folder -> text
    facts: dict[str, DatasetFacts]
    descriptions: dict[str, dict[str, Any]]
    notes: list[str]


def generate(db: Db, s: DocsSettings, datasets: list[str] | None = None) -> Generated:
    """The docs of ``datasets`` (default: every dataset of the store) and the index."""
    every = db.datasets()
    wanted = every if datasets is None else [d for d in datasets if d in every]
    from_file = descmod.read_file(s.descriptions_file)
    facts: dict[str, DatasetFacts] = {}
    for name in every:
        facts[name] = dataset_facts(db, name, key=s.keys.get(name))
    files: dict[str, str] = {}
    descs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for name in wanted:
        f = facts[name]
        page_file = s.path / render.page_path(name)
        on_page = (
            descmod.read_page(page_file.read_text(encoding="utf-8"), f)
            if page_file.is_file()
            else None
        )
        desc, why = descmod.merge(f, from_file.get(name), on_page)
        descs[name] = desc
        notes += why
        files.update(render.dataset_files(f, desc))
    files["index.md"] = render.index([facts[n] for n in every])
    return Generated(files, facts, descs, notes)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(s: DocsSettings, files: dict[str, str]) -> list[str]:
    """Write the files that differ; returns their relative paths."""
    changed = []
    for rel, text in sorted(files.items()):
        p = s.path / rel
        if p.is_file() and p.read_text(encoding="utf-8") == text:
            continue
        _write(p, text)
        changed.append(rel)
    return changed


def apply_comments(db: Db, g: Generated) -> list[str]:
    done = []
    for name, desc in g.descriptions.items():
        for stmt in descmod.comment_statements(db, g.facts[name], desc):
            db.execute(stmt)
            done.append(stmt)
    return done


def _message(g: Generated, dataset: str | None, reason: str) -> str:
    if dataset is None or dataset not in g.facts or not g.facts[dataset].versions:
        return f"docs: regenerate from the store ({reason})\n"
    f = g.facts[dataset]
    cur = f.current
    prev = f.versions[-2] if len(f.versions) > 1 else None
    kind = "breaking" if cur.breaking else "compatible"
    head = (
        f"docs({render._plain(dataset)[:60]}): schema "
        f"{prev.version if prev else 'new'} -> {cur.version}, docs "
        f"{prev.docs_version if prev else '-'} -> {cur.docs_version} ({kind})"
    )
    body = [f"Dataset {render._plain(dataset)} in {f.dialect} schema {render._plain(f.namespace)}."]
    body.append("Cause: " + render._plain(render.cause_text(cur)).replace("`", ""))
    for c in cur.changes[:20]:
        body.append("- " + render._plain(render.change_text(c)).replace("`", "").replace("*", ""))
    if len(cur.changes) > 20:
        body.append(f"- ... and {len(cur.changes) - 20} more")
    body.append(f"Reason: {reason}.")
    return head + "\n\n" + "\n".join(body) + "\n"


def _publish(
    db: Db, s: DocsSettings, g: Generated, dataset: str | None, reason: str, git_mode: str
) -> dict[str, Any]:
    """Write, comment, commit/stage. Returns what was done."""
    out: dict[str, Any] = {"path": str(s.path), "notes": g.notes}
    out["written"] = write_files(s, g.files)
    if s.comments:
        out["comments"] = len(apply_comments(db, g))
    paths = [s.path / rel for rel in sorted(g.files)]
    out["commit"] = None
    out["staged"] = []
    if git_mode != "off":
        root = s.root()
        if git_mode == "stage":
            out["staged"] = stage_paths(root, paths)
        else:
            out["commit"] = commit_paths(root, paths, _message(g, dataset, reason))
    if dataset and dataset in g.facts and g.facts[dataset].current:
        cur = g.facts[dataset].current
        out["schema_version"] = cur.version
        out["docs_version"] = cur.docs_version
    return out


# ---------------------------------------------------------------- the commands


def build_docs(
    db: Db, s: DocsSettings, *, datasets: list[str] | None = None, git_mode: str | None = None
) -> dict[str, Any]:
    """``pipewarden docs build``: regenerate, write, comment, commit/stage."""
    g = generate(db, s, datasets)
    mode = git_mode or s.git
    try:
        done = _publish(db, s, g, datasets[0] if datasets and len(datasets) == 1 else None,
                        "docs build", mode)  # fmt: skip
    except GitError as exc:
        raise InputError(f"the docs are written but git failed: {exc}", key="docs.git") from None
    _remember(db, g)
    return {"datasets": sorted(g.facts if datasets is None else datasets), **done}


def check_docs(db: Db, s: DocsSettings, *, datasets: list[str] | None = None) -> dict[str, Any]:
    """``pipewarden docs check``: ``ok`` False when a file is missing, differs from what the
    store says (a page's quality section aside) or is a migration the store does not know."""
    g = generate(db, s, datasets)
    drift: list[dict[str, Any]] = []
    for rel, text in sorted(g.files.items()):
        p = s.path / rel
        if not p.is_file():
            drift.append({"file": rel, "status": "missing"})
            continue
        have = p.read_text(encoding="utf-8", errors="replace")
        a, b = have, text
        if rel.endswith(".md") and rel != "index.md":
            a, b = render.without_quality(have), render.without_quality(text)
        if a != b:
            diff = list(difflib.unified_diff(a.splitlines(), b.splitlines(), f"committed/{rel}",
                                             f"store/{rel}", lineterm="", n=1))  # fmt: skip
            drift.append({"file": rel, "status": "differs", "diff": diff[:40]})
    names = g.facts if datasets is None else datasets
    for name in names:
        folder = s.path / "migrations" / render.file_name(name)
        if folder.is_dir():
            for p in sorted(folder.glob("*.sql")):
                rel = p.relative_to(s.path).as_posix()
                if rel not in g.files:
                    drift.append({"file": rel, "status": "unknown to the store"})
    stale_comments = 0
    for name, desc in g.descriptions.items():
        stale_comments += len(descmod.comment_statements(db, g.facts[name], desc))
    return {
        "path": str(s.path),
        "datasets": sorted(names),
        "ok": not drift,
        "drift": drift,
        "comments_to_update": stale_comments,
        "notes": g.notes,
    }


def _open(config, store_url, namespace, path):
    """(store, Db, settings) from a pipeline config, or from a store URL and a docs folder."""
    from ..run import load_config, open_config_store
    from ..store import open_store

    if config:
        cfg = load_config(config)
        settings = settings_from_config(cfg) or settings_from_config({**cfg, "docs": {}})
        if path:
            settings.path = Path(path).resolve()
        store = open_config_store(cfg, create=False)
    elif store_url:
        if not path:
            raise InputError("--store needs --path (the docs folder)", key="path")
        settings = DocsSettings(path=Path(path).resolve())
        store = open_store(store_url, namespace=namespace, create=False)
    else:
        raise InputError("give a pipeline config, or --store and --path", hint="-h for help")
    return store, Db.of_store(store), settings


def docs_build(
    config: str | os.PathLike | None = None,
    *,
    store_url: str | None = None,
    namespace: str | None = None,
    path: str | os.PathLike | None = None,
    datasets: list[str] | None = None,
    git_mode: str | None = None,
) -> dict[str, Any]:
    """``pipewarden docs build`` as a call (what a Mage block or an Airflow task runs after a
    load): the store and the docs folder from a pipeline config, or ``store_url`` and
    ``path``; ``git_mode`` overrides the config's ``docs.git``."""
    store, db, settings = _open(config, store_url, namespace, path)
    try:
        return build_docs(db, settings, datasets=datasets, git_mode=git_mode)
    finally:
        store.close()


def docs_check(
    config: str | os.PathLike | None = None,
    *,
    store_url: str | None = None,
    namespace: str | None = None,
    path: str | os.PathLike | None = None,
    datasets: list[str] | None = None,
) -> dict[str, Any]:
    """``pipewarden docs check`` as a call: ``result["ok"]`` False when the docs drifted."""
    store, db, settings = _open(config, store_url, namespace, path)
    try:
        return check_docs(db, settings, datasets=datasets)
    finally:
        store.close()


# ---------------------------------------------------------------- the hooks


def _pii_pairs(pii: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """(column, entity) the guardian found (not those known by the column's name only)."""
    return {(c, e) for c, v in pii.items() if v["how"] != ["name"] for e in v["entities"]}


def _remember(db: Db, g: Generated) -> None:
    """What the docs now say, per dataset (what the hook compares a batch with)."""
    save = db.save_state
    if save is None:
        return
    for name, f in g.facts.items():
        if name in g.descriptions:
            save(name, STATE_KEY, {"schema_version": f.current.version if f.current else None,
                                   "pii": sorted(map(list, _pii_pairs(f.pii)))})  # fmt: skip


def _new_pii(db: Db, dataset: str, entry: dict[str, Any]) -> bool:
    """Whether the batch's guardian report names PII (column, entity) the docs lack."""
    g = (entry.get("steps") or {}).get("guardian")
    if not g:
        return False
    hist = db.history(dataset)
    names = [c["name"] for c in hist[-1]["schema"]["columns"]] if hist else []
    acc: dict[str, dict[str, Any]] = {}
    for part in g if isinstance(g, list) else [g]:
        if isinstance(part, dict):
            fold_pii(acc, part, names)
    found = {(c, e) for c, v in acc.items() for e in v["entities"]}
    if not found:
        return False
    state = db.state(dataset, STATE_KEY) or {}
    known = {tuple(x) for x in state.get("pii") or []}
    return not found <= known


def after_batch(store: Any, s: DocsSettings, dataset: str, entry: dict[str, Any]) -> None:
    """The hook of ``pipewarden run``, after a batch committed: regenerate the dataset's docs
    when the batch changed its schema, found PII the docs lack, or the page is missing.
    Records what it did in ``entry["docs"]``; a failure there never fails the batch (it is
    loaded), it is reported."""
    if entry.get("status") != "loaded":
        return
    db = Db.of_store(store)
    try:
        reason = None
        if entry.get("ddl"):
            reason = "schema change"
        elif not (s.path / render.page_path(dataset)).is_file():
            reason = "no page yet"
        elif _new_pii(db, dataset, entry):
            reason = "PII found"
        if reason is None:
            return
        g = generate(db, s, [dataset])
        entry["docs"] = {"reason": reason, **_publish(db, s, g, dataset, reason, s.git)}
        _remember(db, g)
    except (GitError, InputError, OSError) as exc:
        what = "committed" if s.git == "commit" else "written"
        entry["docs"] = {"error": f"the docs were not {what}: {exc}"}


def docs_hook(cfg: dict[str, Any]):
    """``hook(store, entry)`` for ``pipewarden run`` (see :func:`after_batch`), or None when the
    config has no ``docs`` section. Checks the section first (InputError, exit 2)."""
    s = settings_from_config(cfg)
    if s is None:
        return None
    dataset = cfg["dataset"]
    return lambda store, entry: after_batch(store, s, dataset, entry)


def after_apply(conn: Any, dialect: str, namespace: str | None, table: str,
                s: DocsSettings) -> dict[str, Any]:  # fmt: skip
    """The hook of ``pipewarden sentinel --apply`` once the change committed."""
    db = Db.of_connection(conn, dialect, namespace)
    try:
        g = generate(db, s, [table])
        return {"reason": "schema change", **_publish(db, s, g, table, "schema change", s.git)}
    except (GitError, InputError, OSError) as exc:
        return {"error": f"the docs were not written: {exc}"}
