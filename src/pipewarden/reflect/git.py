"""Committing the docs with the change, through the ``git`` command.

:func:`commit_paths` commits exactly the given paths: ``git commit --only -- <paths>`` takes
their working-tree content and leaves whatever else the user has staged staged and out of the
commit. Nothing is committed when the paths did not change (a re-run makes no commit). The
repository's hooks run (a pre-commit hook running ``pipewarden docs check`` passes, the docs
being fresh); a commit that fails leaves the files written and says why.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError

# variables a git hook sets, which would point our commands at the hook's index or tree
_HOOK_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX")
FALLBACK_NAME, FALLBACK_EMAIL = "pipewarden", "pipewarden@localhost"


class GitError(Exception):
    pass


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HOOK_ENV}
    env["GIT_LITERAL_PATHSPECS"] = "1"  # a path is a path, never a glob or magic
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("LC_ALL", "C")
    return env


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
    except FileNotFoundError:
        raise GitError("the git command is not installed") from None
    if check and proc.returncode != 0:
        raise GitError((proc.stderr or proc.stdout).strip() or f"git {args[0]} failed")
    return proc


def repo_root(path: Path) -> Path:
    """The work tree holding ``path`` (which may not exist yet); InputError when none."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    proc = git(probe if probe.is_dir() else probe.parent, "rev-parse", "--show-toplevel",
               check=False)  # fmt: skip
    if proc.returncode != 0:
        raise InputError(
            f"{path} is not inside a git repository",
            key="docs.git",
            hint="git init it, point docs.repo at one, or set docs.git: off",
        )
    return Path(proc.stdout.strip()).resolve()


def _identity(root: Path) -> list[str]:
    """``-c user.name/-c user.email`` when the repository has no identity (a CI machine)."""
    out = []
    if git(root, "config", "user.name", check=False).returncode != 0:
        out += ["-c", f"user.name={FALLBACK_NAME}"]
    if git(root, "config", "user.email", check=False).returncode != 0:
        out += ["-c", f"user.email={FALLBACK_EMAIL}"]
    return out


def _retry(fn, attempts: int = 20):
    """Retry while another git process holds the index lock."""
    for i in range(attempts):
        try:
            return fn()
        except GitError as exc:
            if "index.lock" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(0.25)
    return None  # pragma: no cover


def stage_paths(root: Path, paths: Sequence[Path]) -> list[str]:
    """``git add`` the paths; returns those that differ from HEAD after staging."""
    rel = [str(Path(p).resolve().relative_to(root)) for p in paths]
    if not rel:
        return []
    _retry(lambda: git(root, "add", "--", *rel))
    has_head = git(root, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode == 0
    if has_head:
        proc = git(root, "diff", "--cached", "--name-only", "-z", "HEAD", "--", *rel)
    else:
        proc = git(root, "diff", "--cached", "--name-only", "-z", "--", *rel)
    return [p for p in proc.stdout.split("\0") if p]


def commit_paths(root: Path, paths: Sequence[Path], message: str) -> str | None:
    """Commit exactly ``paths`` (their working-tree content) with ``message``; None when they
    do not differ from HEAD. Other staged changes stay staged and out of the commit."""
    changed = stage_paths(root, paths)
    if not changed:
        return None
    _retry(lambda: _commit(root, changed, message))
    return git(root, "rev-parse", "HEAD").stdout.strip()


def _commit(root: Path, changed: list[str], message: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *_identity(root), "commit", "--only", "--quiet", "-F", "-",
             "--", *changed],
            input=message,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )  # fmt: skip
    except FileNotFoundError:
        raise GitError("the git command is not installed") from None
    if proc.returncode != 0:
        raise GitError((proc.stderr or proc.stdout).strip() or "git commit failed")
    return proc
