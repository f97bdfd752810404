"""YAML from files users and other tools write (configs, policies, Mage metadata).

``yaml.safe_load`` builds no objects but follows anchors and aliases: a 1 kB "billion laughs"
document of nine aliases to nine aliases ... is one list of 387 million strings to every loop
that walks it (``policy-check`` spent minutes in one). :func:`safe_load` counts the nodes a
document expands to before building it and refuses more than ``MAX_NODES``; nesting deeper
than the parser can follow is refused too. Both are ``yaml.YAMLError``, so the callers'
"not valid YAML" handling (file, line, what to do) covers them.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 1_000_000


class YAMLTooLarge(yaml.YAMLError):
    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark

    def __str__(self) -> str:
        return self.problem


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of the document with every alias expanded, computed once per distinct node."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.ScalarNode):
            size[id(node)] = 1
            continue
        kids = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children_done:
            size[id(node)] = 1 + sum(size.get(id(k), 0) for k in kids)
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
    return size[id(root)]


class _Loader(yaml.SafeLoader):
    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node) > MAX_NODES:
            raise YAMLTooLarge(
                f"the document expands to more than {MAX_NODES:,} values through anchors and "
                "aliases; write the values out, or use fewer aliases",
                node.start_mark,
            )
        return node


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with the bounds above."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: no objects are built
    except RecursionError:
        raise YAMLTooLarge("the document nests too deeply to read") from None


def compose(text: str) -> Any:
    """``yaml.compose`` (nodes with their line marks); deep nesting is a YAMLError too."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise YAMLTooLarge("the document nests too deeply to read") from None
