"""The linear-time cycle search: correct witnesses, no recursion limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipewarden.pipelines.graph import Graph, find_cycles


def _reaches_itself(edges, node) -> bool:
    succ: dict = {}
    for u, v in edges:
        succ.setdefault(u, []).append(v)
    seen, stack = set(), list(succ.get(node, []))
    while stack:
        v = stack.pop()
        if v == node:
            return True
        if v not in seen:
            seen.add(v)
            stack.extend(succ.get(v, []))
    return False


def test_simple_cycle_self_loop_and_acyclic_parts():
    cycles = find_cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d"), ("x", "y")])
    paths = sorted(c.render() for c in cycles)
    assert paths == ["a -> b -> c -> a", "d -> d"]


def test_acyclic_graph_has_no_cycle():
    assert find_cycles([(i, i + 1) for i in range(1000)]) == []


def test_a_million_node_cycle_needs_no_recursion():
    n = 1_000_000
    g = Graph()
    g.succ = [[i + 1] for i in range(n)] + [[0]]
    g.labels = list(range(n + 1))
    (cycle,) = find_cycles(g)
    assert len(cycle.path) == n + 2 and cycle.path[0] == cycle.path[-1] == 0
    assert len(cycle.members) == n + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=40))
def test_witnesses_are_real_cycles_and_cover_every_cyclic_node(edges):
    cycles = find_cycles(edges)
    edge_set = set(edges)
    on_cycle = set()
    for c in cycles:
        assert c.path[0] == c.path[-1]
        assert all((a, b) in edge_set for a, b in zip(c.path, c.path[1:], strict=False))
        assert set(c.path) <= set(c.members)
        on_cycle |= set(c.members)
    nodes = {x for e in edges for x in e}
    assert on_cycle == {n for n in nodes if _reaches_itself(edges, n)}
    # one witness per strongly connected component: members never overlap
    assert sum(len(c.members) for c in cycles) == len(on_cycle)
