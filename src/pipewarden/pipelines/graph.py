"""Cycles in a directed graph, in time linear in its size.

:func:`find_cycles` runs an iterative Tarjan strongly-connected-components pass (no recursion,
so a path of a million nodes is fine), then, inside every component that holds a cycle, a
breadth-first search from the component's first node back to itself. That search only walks
edges inside the component, so the whole is O(V + E). Each cyclic component gives one
:class:`Cycle`: a concrete closed path through it (the shortest one through that node) and the
full list of the component's nodes (every node that sits on some cycle with it).

Listing every elementary cycle instead (what ``networkx.simple_cycles`` does) can be
exponential in the graph size; one witness path per component plus its members names every
node involved, and fixing the witness and re-running reveals the next one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass


@dataclass
class Cycle:
    path: list  # closed: path[0] == path[-1]
    members: list  # every node of the strongly connected component, in discovery order

    def render(self, arrow: str = " -> ") -> str:
        return arrow.join(str(n) for n in self.path)


class Graph:
    """A directed graph over hashable labels, stored as integer adjacency lists."""

    __slots__ = ("ids", "labels", "succ")

    def __init__(self) -> None:
        self.ids: dict[Hashable, int] = {}
        self.labels: list = []
        self.succ: list[list[int]] = []

    def node(self, label: Hashable) -> int:
        i = self.ids.get(label)
        if i is None:
            i = self.ids[label] = len(self.labels)
            self.labels.append(label)
            self.succ.append([])
        return i

    def add_edge(self, u: Hashable, v: Hashable) -> None:
        self.succ[self.node(u)].append(self.node(v))

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[Hashable, Hashable]]) -> Graph:
        g = cls()
        ids, node, succ = g.ids, g.node, g.succ
        for u, v in edges:
            iu = ids.get(u)
            if iu is None:
                iu = node(u)
            iv = ids.get(v)
            if iv is None:
                iv = node(v)
            succ[iu].append(iv)
        return g

    def __len__(self) -> int:
        return len(self.labels)


def strongly_connected_components(succ: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Iterative Tarjan. Returns (component id of each node, the cyclic components' members).

    A component is cyclic when it has two or more nodes, or one node with an edge to itself.
    """
    n = len(succ)
    index = [-1] * n
    low = [0] * n
    pos = [0] * n  # next successor to visit, per node
    onstack = [False] * n
    comp = [-1] * n
    stack: list[int] = []
    cyclic: list[list[int]] = []
    counter = 0
    ncomp = 0
    for root in range(n):
        if index[root] != -1:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        onstack[root] = True
        work = [root]
        while work:
            v = work[-1]
            nbrs = succ[v]
            i = pos[v]
            descended = False
            while i < len(nbrs):
                w = nbrs[i]
                i += 1
                if index[w] == -1:
                    pos[v] = i
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    onstack[w] = True
                    work.append(w)
                    descended = True
                    break
                if onstack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            pos[v] = i
            work.pop()
            if work:
                u = work[-1]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                w = stack.pop()
                onstack[w] = False
                comp[w] = ncomp
                if w == v:
                    if v in succ[v]:
                        cyclic.append([v])
                else:
                    members = [w]
                    while w != v:
                        w = stack.pop()
                        onstack[w] = False
                        comp[w] = ncomp
                        members.append(w)
                    members.reverse()
                    cyclic.append(members)
                ncomp += 1
    return comp, cyclic


def _witness(succ: list[list[int]], comp: list[int], start: int) -> list[int]:
    """The shortest closed path start -> ... -> start inside start's component (BFS)."""
    c = comp[start]
    parent = {start: -1}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in succ[v]:
                if w == start:
                    path = [v]
                    while parent[path[-1]] != -1:
                        path.append(parent[path[-1]])
                    path.reverse()
                    path.append(start)
                    return path
                if comp[w] == c and w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a cyclic component always has a closed path")  # pragma: no cover


def find_cycles(graph: Graph | Iterable[tuple[Hashable, Hashable]]) -> list[Cycle]:
    """One :class:`Cycle` per cyclic strongly connected component, in discovery order."""
    g = graph if isinstance(graph, Graph) else Graph.from_edges(graph)
    comp, cyclic = strongly_connected_components(g.succ)
    labels = g.labels
    out = []
    for members in cyclic:
        path = _witness(g.succ, comp, members[0])
        out.append(Cycle([labels[i] for i in path], [labels[i] for i in members]))
    return out
