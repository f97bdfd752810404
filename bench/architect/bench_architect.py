"""Benchmark of the pipeline validators against their peers, each pair in the same run.

1. Static validation (``validate_dags``) of a folder of generated DAG files vs Airflow's
   ``DagBag`` on the same folder (run in the Airflow test virtualenv, timed inside that process,
   so interpreter start and ``import airflow`` are not counted against Airflow).
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
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipelines"))

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
bag = DagBag(dag_folder=sys.argv[1], include_examples=False, safe_mode=True)
t2 = time.perf_counter()
print("@@" + json.dumps({"import_airflow": t1 - t0, "dagbag": t2 - t1, "dags": len(bag.dags),
                         "errors": len(bag.import_errors)}))
"""


def bench_dags(n: int) -> dict:
    from venvs import ensure_venv, python_of

    from pipewarden.pipelines.airflow import validate_dags

    airflow_python = str(python_of(ensure_venv("airflow")))
    with tempfile.TemporaryDirectory(prefix="pw-bench-dags-") as tmp:
        folder = Path(tmp) / "dags"
        folder.mkdir()
        make_dags(folder, n)
        cache = Path(tmp) / "cache"
        gc.collect()
        t0 = time.perf_counter()
        doc = validate_dags([folder])
        ours = time.perf_counter() - t0
        assert doc["ok"] and len(doc["dags"]) == n, doc["findings"][:3]
        validate_dags([folder], cache=cache)  # fills the cache
        t0 = time.perf_counter()
        warm = validate_dags([folder], cache=cache)
        ours_warm = time.perf_counter() - t0
        assert warm == doc
        walls = {}
        for label, flag in (("cold", "--no-cache"), ("warm", "--cache")):
            t0 = time.perf_counter()
            cli = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pipewarden",
                    "validate",
                    "dag",
                    str(folder),
                    flag,
                    "--format",
                    "json",
                ],
                capture_output=True,
                check=True,
                env={**os.environ, "PIPEWARDEN_CACHE_DIR": str(cache)},
            )
            walls[label] = time.perf_counter() - t0
            assert json.loads(cli.stdout)["ok"]
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(Path(tmp) / "home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        t0 = time.perf_counter()
        res = subprocess.run(
            [airflow_python, "-c", DAGBAG, str(folder)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        dagbag_wall = time.perf_counter() - t0
        peer = json.loads(res.stdout.rsplit("@@", 1)[1])
        assert peer["dags"] == n and peer["errors"] == 0, peer
    return {
        "files": n,
        "pipewarden_static_s": round(ours, 3),
        "pipewarden_static_cached_s": round(ours_warm, 3),
        "pipewarden_cli_wall_s": round(walls["cold"], 3),
        "pipewarden_cli_wall_cached_s": round(walls["warm"], 3),
        "dagbag_s": round(peer["dagbag"], 3),
        "dagbag_wall_s": round(dagbag_wall, 3),
        "speedup_vs_dagbag": round(peer["dagbag"] / ours, 1),
        "speedup_cached_vs_dagbag": round(peer["dagbag"] / ours_warm, 1),
        "speedup_cli_vs_dagbag_wall": round(dagbag_wall / walls["cold"], 1),
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
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "dags": bench_dags(args.dags),
        "cycles": bench_cycles(args.edges),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
