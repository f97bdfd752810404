"""The ``features`` step of ``pipewarden run``: the emitted features as typed columns of the table.

``steps: [{type: features, spec: orders-features.json}]`` (the ``features_step`` definition of
the pipeline config schema; docs/features.md). Before the schema is inferred, :meth:`derive`
adds each feature of the spec to every record, computed by :func:`~.spec.value` (the values the
discovery measured and the emitted dbt model and Mage block compute). The schema sentinel then
sees them as it sees any new column: the contract decides whether they may be added, and they
are typed (double precision) in the table. They are derived, not received: the raw landing and
the quarantine keep the records as they arrived, without them (``batch.meta["derived"]``), and a
replayed row gets them computed again.

A feature of a cell another step fills (``impute`` listed before ``features``) is computed again
from the filled value and recorded as filled too (``<dataset>__imputed``). A record that already
has a key with a feature's name blocks the batch: the step never overwrites a value it received.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..batch import Batch
from ..errors import InputError
from ..steps import StepContext
from ..verdict import Verdict
from .spec import Feature, load_spec, value

DERIVED = "derived"  # batch.meta key: the keys the steps added to the records


class FeaturesStep:
    name = "features"

    def __init__(self, spec_path: Path, spec: dict[str, Any], features: list[Feature]) -> None:
        self.spec_path = spec_path
        self.spec = spec
        self.features = features
        self.names = [f.name for f in features]
        self.inputs = sorted({c for f in features for c in f.inputs})

    def derive(self, batch: Batch) -> str | None:
        """Add the features to every record of ``batch`` (before the schema is inferred).
        Returns why the batch must not load (a record already has a feature's key), else None."""
        names = set(self.names)
        for i, r in enumerate(batch.records):
            if not names.isdisjoint(r):
                clash = sorted(names.intersection(r))[0]
                return (
                    f"features: row {batch.row_number(i)} already has a key {clash!r}, the name "
                    f"of a feature of {self.spec_path.name}; rename the feature in the spec "
                    "or the key in the source"
                )
        features = self.features
        for r in batch.records:
            for f in features:
                r[f.name] = value(f, r)
        batch.changed()  # the records gained keys in place: their columns are made again
        derived = batch.meta.setdefault(DERIVED, [])
        derived.extend(n for n in self.names if n not in derived)
        return None

    def check(self, batch: Batch, ctx: StepContext) -> Verdict:
        t0 = time.perf_counter()
        verdict = Verdict(self.name)
        records = batch.records
        typed = set(ctx.schema.columns) if ctx.schema is not None else set(self.names)
        inputs = set(self.inputs)
        refilled = 0
        for i, fill in ctx.fills.items():  # features of cells an earlier step filled
            if inputs.isdisjoint(fill) or i in ctx.quarantined:
                continue
            row = {**records[i], **fill}
            new = {}
            for f in self.features:
                if f.name in typed and not set(f.inputs).isdisjoint(fill):
                    v = value(f, row)
                    if v is not None and v != records[i].get(f.name):
                        new[f.name] = v
            if new:
                verdict.fills[i] = new
                refilled += len(new)
        rows = len(records) - len(ctx.quarantined)
        columns = {}
        for f in self.features:
            nulls = sum(
                1
                for i, r in enumerate(records)
                if r.get(f.name) is None
                and i not in ctx.quarantined
                and f.name not in verdict.fills.get(i, ())
            )
            columns[f.name] = {"kind": f.kind, "inputs": f.inputs, "values": rows - nulls,
                               "nulls": nulls}  # fmt: skip
            if f.name not in typed:
                columns[f.name]["note"] = "no typed column yet (only nulls seen)"
        absent = [c for c in self.inputs if records and not any(c in r for r in records)]
        verdict.report = {
            "spec": self.spec_path.name,
            "target": self.spec.get("target"),
            "columns": columns,
            "cells_from_fills": refilled,
            "seconds": round(time.perf_counter() - t0, 3),
            "summary": (
                f"{len(self.names)} feature(s) on {rows} row(s)"
                + (f", {refilled} from filled cells" if refilled else "")
                + (f"; inputs absent from the batch: {', '.join(absent)}" if absent else "")
            ),
        }
        if absent:
            verdict.report["absent_inputs"] = absent
        return verdict


def build_step(options: dict[str, Any], base_dir: Path) -> FeaturesStep:
    spec = options.get("spec")
    if not isinstance(spec, str) or not spec:
        raise InputError("a features step needs spec: FILE", key="steps[].spec",
                         hint="the JSON of `pipewarden features discover --out`")  # fmt: skip
    path = Path(spec) if Path(spec).is_absolute() else Path(base_dir) / spec
    doc, features = load_spec(path)
    return FeaturesStep(path, doc, features)
