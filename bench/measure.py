"""What every figure in bench/ records beside its wall time: the commit it was measured on, the
machine's load while it ran, and CPU time (which load does not inflate the way it inflates wall
time on a shared machine).

    from measure import Meter, run_info
    with Meter() as m:
        work()
    m.as_dict()  # {"wall_s", "cpu_s", "cpu_children_s", "load_start", "load_end"}

``run_info()`` is the header of a results file: the commit of the code measured (the checkout
that ``import pipewarden`` finds, so a ``PYTHONPATH`` at another snapshot is labelled with that
snapshot; ``+dirty`` when it has uncommitted changes), machine, Python, load average, time.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git_commit(where: Path, paths: tuple[str, ...]) -> str:
    """The commit checked out at ``where``, ``+dirty`` when tracked files under ``paths``
    differ from it (a results file the bench just wrote is not a change to the code)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=where, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *paths],
            cwd=where, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def code_dir() -> Path | None:
    """Where the ``pipewarden`` that a bench's subprocesses import comes from: this
    interpreter with this environment (a ``PYTHONPATH`` pointing at another checkout's src
    measures that checkout, not this one)."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import pipewarden; print(pipewarden.__file__)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out).resolve().parent


def commit() -> str:
    """The commit of the code measured: the checkout the imported ``pipewarden`` belongs to,
    ``+dirty`` when its src/ differs from it. Where that is not this checkout (the bench
    scripts), ``@bench <commit>`` names the scripts' own commit too."""
    bench = _git_commit(ROOT, ("src", "bench"))
    where = code_dir()
    if where is None:
        return bench
    code = _git_commit(where, (".",))
    try:
        same = where.is_relative_to(ROOT / "src")
    except ValueError:
        same = False
    return bench if same else f"{code} @bench {bench}"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_info() -> dict:
    return {
        "commit": commit(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB",
        "python": platform.python_version(),
        "load_average": loadavg(),
    }


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, this process's CPU time, its waited-for children's CPU time, and the load
    average before and after."""

    def __enter__(self) -> Meter:
        self.load_start = loadavg()
        self._cpu = _cpu(resource.RUSAGE_SELF)
        self._children = _cpu(resource.RUSAGE_CHILDREN)
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t
        self.cpu = _cpu(resource.RUSAGE_SELF) - self._cpu
        self.cpu_children = _cpu(resource.RUSAGE_CHILDREN) - self._children
        self.load_end = loadavg()

    def as_dict(self) -> dict:
        return {
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "cpu_children_s": round(self.cpu_children, 3),
            "load_start": self.load_start,
            "load_end": self.load_end,
        }


def jsonl_chunks(path, size: int = 10_000):
    """The records of a JSON Lines file in lists of ``size``: how the benches feed dlt."""
    import orjson

    with open(path, "rb") as f:
        chunk = []
        for line in f:
            chunk.append(orjson.loads(line))
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
