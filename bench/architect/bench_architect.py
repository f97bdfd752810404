"""Benchmark of the pipeline validators against their peers, each pair in the same run.

1. Static validation (``validate_dags``) of a folder of generated DAG files vs Airflow's
   ``DagBag`` on the same folder (run in the Airflow test virtualenv, timed inside that process,
   so interpreter start and ``import airflow`` are not counted against Airflow).
   Every in-process measure is the best of ``REPEAT`` runs, DagBag's too. The parse floor
   (``ast.parse`` alone and ``compile()`` alone of the same files) bounds what any validator
   built on CPython's parser can reach.
2. Cycle search on a generated graph of 1M edges vs networkx: strongly connected components,
   ``find_cycle``, and SCC + one ``find_cycle`` per cyclic component (what ``find_cycles``
   returns: every cyclic component with one closed path through it). ``simple_cycles`` lists
   every elementary cycle, which is exponential on such graphs, so it is only run on a small one
   to show what it computes.

Run: .venv/bin/python bench/architect/bench_architect.py [--dags 1000] [--edges 1000000]
(needs `pip install -e '.[bench]'` for networkx; builds the Airflow venv on first use).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipelines"))
sys.path.insert(0, str(ROOT / "bench"))

from measure import run_info  # noqa: E402

DAG_FILE = """\
import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, chain

with DAG(
    dag_id="bench_{i}",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args={{"owner": "bench", "retries": 2}},
    tags=["bench"],
):
{tasks}
    chain({chain})
    t_0 >> [t_3, t_5] >> t_9
"""


def make_dags(folder: Path, n: int, tasks: int = 10) -> None:
    for i in range(n):
        body = "\n".join(f'    t_{j} = EmptyOperator(task_id="task_{j}")' for j in range(tasks))
        text = DAG_FILE.format(i=i, tasks=body, chain=", ".join(f"t_{j}" for j in range(tasks)))
        (folder / f"dag_{i:04d}.py").write_text(text)


DAGBAG = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
from airflow.models.dagbag import DagBag
t1 = time.perf_counter()
times, cpus = [], []
for _ in range(int(sys.argv[2])):
    t, c = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=sys.argv[1], include_examples=False, safe_mode=True)
    times.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
print("@@" + json.dumps({"import_airflow": t1 - t0, "dagbag": min(times), "dagbag_first": times[0],
                         "dagbag_cpu": min(cpus),
                         "dags": len(bag.dags), "errors": len(bag.import_errors)}))
"""

REPEAT = 3  # in-process measures: the best of this many runs, for DagBag and for us alike


CPU: dict[str, float] = {}  # the best CPU seconds of each best_of measure, by label


def best_of(fn, repeat: int = REPEAT, label: str | None = None) -> tuple[float, object]:
    times, cpus, out = [], [], None
    for _ in range(repeat):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    if label:
        CPU[label] = min(cpus)
    return min(times), out


def parse_floor(folder: Path) -> dict:
    """What CPython's own parser costs on the same files: ast.parse alone (the trees are dropped
    at once) and compile() to bytecode alone. No validator built on either can be faster."""
    import ast

    sources = [(str(p), p.read_text()) for p in sorted(folder.glob("*.py"))]

    def parse_all():
        for name, src in sources:
            ast.parse(src, filename=name)

    def compile_all():
        for name, src in sources:
            compile(src, name, "exec", dont_inherit=True)

    return {"ast_parse_s": best_of(parse_all)[0], "compile_s": best_of(compile_all)[0]}


def cli_wall(args: list[str], env: dict, repeat: int = REPEAT) -> float:
    """Best wall time of the whole `pipewarden ...` process (interpreter start included)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "pipewarden", *args], capture_output=True, check=True, env=env
        )
        times.append(time.perf_counter() - t0)
        if "--format" in args:
            assert json.loads(out.stdout)["ok"]
    return min(times)


def bench_dags(n: int) -> dict:
    from venvs import ensure_venv, python_of

    from pipewarden.pipelines.airflow import validate_dags

    airflow_python = str(python_of(ensure_venv("airflow")))
    with tempfile.TemporaryDirectory(prefix="pw-bench-dags-") as tmp:
        folder = Path(tmp) / "dags"
        folder.mkdir()
        make_dags(folder, n)
        cache = Path(tmp) / "cache"
        ours, doc = best_of(lambda: validate_dags([folder]), label="cold")
        assert doc["ok"] and len(doc["dags"]) == n, doc["findings"][:3]
        ours_jobs, doc_jobs = best_of(lambda: validate_dags([folder], jobs=0))
        assert doc_jobs == doc
        floor = parse_floor(folder)
        validate_dags([folder], cache=cache)  # fills the cache
        ours_warm, warm = best_of(lambda: validate_dags([folder], cache=cache), label="cached")
        assert warm == doc
        env = {**os.environ, "PIPEWARDEN_CACHE_DIR": str(cache)}
        walls = {
            label: cli_wall(["validate", "dag", str(folder), *flags, "--format", "json"], env)
            for label, flags in (
                ("cold", ["--no-cache", "--jobs", "1"]),
                ("cold_jobs", ["--no-cache", "--jobs", "0"]),
                ("warm", ["--cache"]),
            )
        }
        one = sorted(folder.glob("*.py"))[0]
        walls["one_file"] = cli_wall(["validate", "dag", str(one), "--no-cache"], env, repeat=5)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(Path(tmp) / "home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        t0 = time.perf_counter()
        res = subprocess.run(
            [airflow_python, "-c", DAGBAG, str(folder), "1"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        dagbag_wall = time.perf_counter() - t0
        res = subprocess.run(
            [airflow_python, "-c", DAGBAG, str(folder), str(REPEAT)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        peer = json.loads(res.stdout.rsplit("@@", 1)[1])
        assert peer["dags"] == n and peer["errors"] == 0, peer
    r3 = lambda x: round(x, 3)  # noqa: E731
    return {
        "files": n,
        "repeat": REPEAT,
        "pipewarden_static_s": r3(ours),
        "pipewarden_static_jobs0_s": r3(ours_jobs),
        "pipewarden_static_cached_s": r3(ours_warm),
        "parse_floor_ast_parse_s": r3(floor["ast_parse_s"]),
        "parse_floor_compile_s": r3(floor["compile_s"]),
        "pipewarden_cli_wall_s": r3(walls["cold"]),
        "pipewarden_cli_wall_jobs0_s": r3(walls["cold_jobs"]),
        "pipewarden_cli_wall_cached_s": r3(walls["warm"]),
        "pipewarden_cli_wall_one_file_s": r3(walls["one_file"]),
        "dagbag_s": r3(peer["dagbag"]),
        "dagbag_first_run_s": r3(peer["dagbag_first"]),
        "dagbag_wall_s": r3(dagbag_wall),
        "pipewarden_static_cpu_s": r3(CPU["cold"]),
        "pipewarden_static_cached_cpu_s": r3(CPU["cached"]),
        "dagbag_cpu_s": r3(peer["dagbag_cpu"]),
        "speedup_cpu_vs_dagbag": round(peer["dagbag_cpu"] / CPU["cold"], 1),
        "speedup_cached_cpu_vs_dagbag": round(peer["dagbag_cpu"] / CPU["cached"], 1),
        "speedup_vs_dagbag": round(peer["dagbag"] / ours, 1),
        "speedup_jobs0_vs_dagbag": round(peer["dagbag"] / ours_jobs, 1),
        "speedup_cached_vs_dagbag": round(peer["dagbag"] / ours_warm, 1),
        "speedup_ceiling_ast_parse": round(peer["dagbag"] / floor["ast_parse_s"], 1),
        "speedup_ceiling_compile": round(peer["dagbag"] / floor["compile_s"], 1),
        "speedup_cli_vs_dagbag_wall": round(dagbag_wall / walls["cold"], 1),
        "speedup_cli_jobs0_vs_dagbag_wall": round(dagbag_wall / walls["cold_jobs"], 1),
        "speedup_cli_cached_vs_dagbag_wall": round(dagbag_wall / walls["warm"], 1),
    }


def make_graph(edges: int, seed: int = 7) -> list[tuple[int, int]]:
    """A pipeline-like graph: a layered DAG of `edges` forward edges plus planted back edges
    (one in 2,000) that close cycles of various lengths."""
    rnd = random.Random(seed)
    n = edges // 4
    out = []
    for _ in range(edges):
        u = rnd.randrange(n - 1)
        v = rnd.randrange(u + 1, min(n, u + 50))
        if rnd.random() < 0.0005:
            u, v = v, u  # a back edge: closes a cycle when a forward path v ~> u exists
        out.append((u, v))
    return out


def bench_cycles(edges: int) -> dict:
    import networkx as nx

    from pipewarden.pipelines.graph import Graph, find_cycles

    e = make_graph(edges)
    gc.collect()
    t0 = time.perf_counter()
    g = Graph.from_edges(e)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    cycles = find_cycles(g)
    search = time.perf_counter() - t0
    cyclic_nodes = sum(len(c.members) for c in cycles)

    gc.collect()
    t0 = time.perf_counter()
    G = nx.DiGraph(e)
    nx_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    comps = [
        c
        for c in nx.strongly_connected_components(G)
        if len(c) > 1 or G.has_edge(*(next(iter(c)),) * 2)
    ]
    nx_scc = time.perf_counter() - t0
    t0 = time.perf_counter()
    with contextlib.suppress(nx.NetworkXNoCycle):
        nx.find_cycle(G)
    nx_find = time.perf_counter() - t0
    t0 = time.perf_counter()
    comps2 = [
        c
        for c in nx.strongly_connected_components(G)
        if len(c) > 1 or G.has_edge(*(next(iter(c)),) * 2)
    ]
    witnesses = [nx.find_cycle(G.subgraph(c)) for c in comps2]
    nx_like = time.perf_counter() - t0
    assert len(comps) == len(cycles) == len(witnesses)
    assert sum(len(c) for c in comps) == cyclic_nodes

    small = make_graph(2_000, seed=3)
    t0 = time.perf_counter()
    n_simple = sum(1 for _ in nx.simple_cycles(nx.DiGraph(small)))
    simple_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_ours_small = len(find_cycles(small))
    ours_small = time.perf_counter() - t0
    return {
        "edges": len(e),
        "nodes": len(g),
        "cyclic_components": len(cycles),
        "nodes_on_cycles": cyclic_nodes,
        "pipewarden_build_s": round(build, 3),
        "pipewarden_find_cycles_s": round(search, 3),
        "networkx_build_s": round(nx_build, 3),
        "networkx_scc_s": round(nx_scc, 3),
        "networkx_find_cycle_s": round(nx_find, 3),
        "networkx_scc_plus_find_cycle_per_component_s": round(nx_like, 3),
        "speedup_vs_networkx_like_for_like": round(nx_like / search, 2),
        "speedup_build_plus_search": round((nx_build + nx_like) / (build + search), 2),
        "small_graph_edges": len(small),
        "small_networkx_simple_cycles": n_simple,
        "small_networkx_simple_cycles_s": round(simple_small, 3),
        "small_pipewarden_components": n_ours_small,
        "small_pipewarden_s": round(ours_small, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dags", type=int, default=1000)
    ap.add_argument("--edges", type=int, default=1_000_000)
    args = ap.parse_args()
    load_start = os.getloadavg()
    result = {
        **run_info(),
        "load_average_start": [round(x, 2) for x in load_start],
        "dags": bench_dags(args.dags),
        "cycles": bench_cycles(args.edges),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
