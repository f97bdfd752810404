"""``pipewarden validate cycles``: dependency cycles in any pipeline graph, each with its full path.

Inputs, told apart by their shape:

- an Airflow DAG file (``.py``): ``>>``, ``<<``, ``set_upstream`` / ``set_downstream``,
  ``chain``, ``cross_downstream`` and lists, per DAG;
- a Mage project or pipeline folder (or its ``metadata.yaml``): ``upstream_blocks`` and
  ``downstream_blocks``, each list on its own;
- a dbt ``manifest.json`` (has ``nodes`` and ``child_map`` / ``parent_map``);
- any other JSON: an edge list ``[["a", "b"], ...]``, ``{"edges": [...]}`` with pairs or
  ``{"from"/"source": .., "to"/"target": ..}`` objects, or an adjacency mapping
  ``{"a": ["b", "c"], ...}`` (edges point from a node to the nodes that run after it).

The search is :func:`pipewarden.pipelines.graph.find_cycles`: linear in nodes + edges.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from ..errors import InputError
from .findings import Finding, python_text, summarize
from .graph import Graph, find_cycles


def _pair(item, i: int, file: str):
    if isinstance(item, list | tuple) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, dict):
        src = item.get("from", item.get("source", item.get("upstream")))
        dst = item.get("to", item.get("target", item.get("downstream")))
        if src is not None and dst is not None:
            return src, dst
    raise InputError(
        "an edge must be [from, to] or {from: .., to: ..}",
        file=file,
        row=i + 1,
        hint="fix that edge",
    )


def _hashable(x):
    """A node's identity: a string as is, anything else as its JSON text, so that 1, 1.0 and
    true (equal as Python keys) stay three nodes."""
    return x if isinstance(x, str) else orjson.dumps(x).decode()


def _list_of(value, what: str, file: str, key: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list", file=file, key=key, hint="fix the manifest")
    return [_hashable(v) for v in value]


def graph_from_json(doc, file: str) -> tuple[Graph, str]:
    """(graph, kind) from a parsed JSON document: a dbt manifest, an edge list or an adjacency map."""
    g = Graph()
    if isinstance(doc, dict) and "nodes" in doc and ("child_map" in doc or "parent_map" in doc):
        key = "child_map" if isinstance(doc.get("child_map"), dict) else "parent_map"
        if not isinstance(doc.get(key), dict):
            raise InputError(
                "child_map or parent_map must map each node to a list",
                file=file,
                key=key,
                hint="fix the manifest, or regenerate it with dbt compile",
            )
        for name, others in doc[key].items():
            g.node(name)
            for o in _list_of(others, f"{key}[{name!r}]", file, f"{key}.{name}"):
                g.add_edge(name, o) if key == "child_map" else g.add_edge(o, name)
        return g, "dbt-manifest"
    if isinstance(doc, dict) and "nodes" in doc and isinstance(doc["nodes"], dict):
        # a manifest without the maps: depends_on.nodes of each node
        for name, node in doc["nodes"].items():
            g.node(name)
            depends = node.get("depends_on") if isinstance(node, dict) else None
            deps = depends.get("nodes") if isinstance(depends, dict) else None
            if node is not None and not isinstance(node, dict):
                raise InputError(
                    f"node {name!r} must be an object", file=file, key=f"nodes.{name}",
                    hint="fix the manifest, or regenerate it with dbt compile",
                )  # fmt: skip
            for d in _list_of(deps, f"nodes[{name!r}].depends_on.nodes", file, f"nodes.{name}"):
                g.add_edge(d, name)
        return g, "dbt-manifest"
    edges = doc.get("edges") if isinstance(doc, dict) and "edges" in doc else doc
    if isinstance(edges, list):

        def pairs():
            for i, item in enumerate(edges):
                u, v = _pair(item, i, file)
                yield _hashable(u), _hashable(v)

        return Graph.from_edges(pairs()), "edge-list"
    if isinstance(doc, dict):
        for src, dsts in doc.items():
            g.node(src)
            if not isinstance(dsts, list):
                raise InputError(
                    f"node {src!r}: expected a list of the nodes after it",
                    file=file,
                    key=str(src),
                    hint="an adjacency map is {node: [next, ...]}",
                )
            for d in dsts:
                g.add_edge(src, _hashable(d))
        return g, "adjacency"
    raise InputError(
        "not a graph: expected an edge list, an adjacency map or a dbt manifest", file=file
    )


def check_cycles(path: str | Path | list) -> dict:
    """Every cyclic part of the graph(s) at ``path`` (one path or a list), each as a full path."""
    if isinstance(path, str | Path):
        return _check_one(path)
    paths = list(path)
    if not paths:
        raise InputError(
            "no path given",
            hint="give a DAG file, a Mage pipeline, a manifest.json or an edge list",
        )
    docs = [_check_one(p) for p in paths]
    if len(docs) == 1:
        return docs[0]
    findings = [Finding(**f) for d in docs for f in d["findings"]]
    kinds = sorted({d["kind"] for d in docs})
    return summarize(
        "cycles",
        findings,
        kind="+".join(kinds),
        nodes=sum(d["nodes"] for d in docs),
        edges=sum(d["edges"] for d in docs),
    )


def _check_one(path: str | Path) -> dict:
    p = Path(path)
    file = str(p)
    findings: list[Finding] = []
    if p.is_dir() or p.name == "metadata.yaml" or p.suffix in (".yaml", ".yml"):
        from .mage import pipeline_folders, validate_pipeline_folder

        root, folders = pipeline_folders(p)
        nodes = edges = 0
        for folder in folders:
            fs, info = validate_pipeline_folder(folder, root)
            findings.extend(f for f in fs if f.rule in ("cycle", "mage-metadata-invalid"))
            nodes += info.get("blocks", 0)
            edges += info.get("edges", 0)
        return summarize("cycles", findings, kind="mage", nodes=nodes, edges=edges)
    if not p.is_file():
        raise InputError(
            "no such file or folder",
            file=file,
            hint="give a DAG file, a Mage pipeline, a manifest.json or a JSON edge list",
        )
    if p.suffix == ".py":
        from .airflow import analyze_file

        try:
            source = python_text(p.read_bytes())
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            raise InputError(f"cannot read: {exc}", file=file) from None
        raw: list[Finding] = []
        dags = analyze_file(file, source, raw)
        findings = [f for f in raw if f.rule in ("syntax-error", "cycle")]
        return summarize(
            "cycles",
            findings,
            kind="airflow",
            nodes=sum(len({x for e in d.edges for x in e[:2]}) for d in dags),
            edges=sum(len(d.edges) for d in dags),
        )
    try:
        doc = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc}", file=file, hint="give a JSON edge list or a manifest.json"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=file) from None
    g, kind = graph_from_json(doc, file)
    for cyc in find_cycles(g):
        findings.append(
            Finding(
                file,
                None,
                "cycle",
                f"cycle: {cyc.render()}",
                extra={"path": cyc.path, "members": len(cyc.members)},
            )
        )
    return summarize("cycles", findings, kind=kind, nodes=len(g), edges=sum(map(len, g.succ)))
