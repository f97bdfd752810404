"""Steps of ``pipewarden run``: the checks after the schema sentinel.

A step is built from its entry in the pipeline config (``steps: [{type: guardian, ...}]``) and
called once per batch. It returns a :class:`~pipewarden.verdict.Verdict` and never writes;
state it must keep between batches (breaker state, batch statistics) goes through the
``StateStore`` methods of the store it is given in the context.

Two optional hooks run on every chunk before the schema is inferred (in both passes of a run):
``prepare(batch)`` may change the records (the guardian renames keys holding PII: a prepare
that changes records gives ``batch.records`` a new list, or calls ``batch.changed()``, so the
raw landing does not take the chunk's source lines for them), and
``derive(batch)`` adds computed keys, naming them in ``batch.meta["derived"]`` (the features
step): the sentinel types them like any new column, while the raw landing and the quarantine
keep the records without them, and a replayed row gets them computed again. Either returns a
reason to block the batch, or None.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .batch import Batch
from .verdict import Verdict


@dataclass
class StepContext:
    dataset: str
    batch_id: str
    store: Any  # a pipewarden.store.base.Store (has the StateStore methods)
    base_dir: Path  # directory of the pipeline config; relative paths resolve from here
    quarantined: set[int] = field(default_factory=set)  # rows earlier steps already hold
    schema: Any = None  # the dataset's pipewarden.schema.Schema after the sentinel
    primary_key: tuple[str, ...] = ()  # the dataset's key columns (config ``primary_key``)
    write_disposition: str = "append"  # append | merge | replace
    # "run": a batch of a source; "replay": a page of quarantined rows replayed. A replay page
    # is not a batch: steps judge its rows against what they learned (a stored model, the
    # breaker's state) and neither learn from it nor count it (metrics, breaker window)
    mode: str = "run"
    # row -> {column: value}: the cells earlier steps filled (impute), for a step that derives
    # values from them (features)
    fills: dict[int, dict[str, Any]] = field(default_factory=dict)


class Step(Protocol):
    name: str

    def check(self, batch: Batch, ctx: StepContext) -> Verdict: ...


# step type -> "module:factory"; factory(options: dict, base_dir: Path) -> Step
REGISTRY: dict[str, str] = {
    "guardian": "pipewarden.compliance.step:build_step",
    "anomaly": "pipewarden.anomaly.step:build_step",
    "impute": "pipewarden.impute.step:build_step",
    "features": "pipewarden.features.step:build_step",
}


def build(options: dict[str, Any], base_dir: Path) -> Step:
    kind = options.get("type")
    target = REGISTRY.get(kind)  # type: ignore[arg-type]
    if target is None:
        from .errors import InputError

        raise InputError(
            f"unknown step type {kind!r}; known: {', '.join(sorted(REGISTRY))}", key="steps[].type"
        )
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)(options, base_dir)
