"""``pipewarden features emit``: the chosen features as a permanent transformation block.

Writes, from a spec of ``features discover``:

- ``models/pipewarden/<name>.sql``: a dbt model selecting every column of the source table plus
  the features, in SQL that PostgreSQL and DuckDB both run (identifiers quoted, numbers cast to
  double precision, a ratio null when its denominator is 0, dates through ``EXTRACT``);
- ``models/pipewarden/_<name>.yml``: its documentation (each feature, its inputs and the lift
  it was chosen for);
- ``transformers/<name>.py``: a Mage transformer block computing the same values with pandas
  (a ``@test`` checks the columns are there).

Files are written all or none, and nothing is overwritten without ``force``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from .spec import Feature, load_spec

NUM = "CAST({} AS DOUBLE PRECISION)"
PARTS = {"month": "MONTH", "isodow": "ISODOW", "dayofyear": "DOY"}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_expression(f: Feature) -> str:
    if f.kind in ("product", "ratio"):
        a, b = (NUM.format(_ident(x)) for x in f.inputs)
        if f.kind == "product":
            return f"{a} * {b}"
        return f"CASE WHEN {b} = 0 THEN NULL ELSE {a} / {b} END"
    col = _ident(f.inputs[0])
    if f.kind == "date_part":
        return NUM.format(f"EXTRACT({PARTS[f.part]} FROM CAST({col} AS DATE))")
    whens = "".join(
        f" WHEN CAST({col} AS TEXT) = {_lit(k)} THEN {float(v)!r}"
        for k, v in sorted(f.shares.items())
    )
    return f"CASE WHEN {col} IS NULL THEN NULL{whens} ELSE 0.0 END"


def dbt_model(features: list[Feature], source: str, spec: dict[str, Any]) -> str:
    cols = ",\n".join(f"    {sql_expression(f)} AS {_ident(f.name)}" for f in features)
    lift = spec.get("lift", {}).get("test", {})
    return (
        f"-- Features of {source} for the target {spec.get('target')!r}, found by\n"
        f"-- `pipewarden features discover` (test-split lift {lift.get('lift')}: "
        f"{lift.get('raw')} -> {lift.get('with_features')}).\n"
        "-- Written by `pipewarden features emit`; the same values as the Mage block beside it.\n"
        "{{ config(materialized='view', tags=['pipewarden', 'features']) }}\n\n"
        "select\n    source_rows.*,\n"
        + cols.replace("    ", "    ", 1)
        + f"\nfrom {{{{ source('pipewarden', '{source}') }}}} as source_rows\n"
    )


def _py(f: Feature) -> str:
    a = f"pd.to_numeric(out[{f.inputs[0]!r}], errors='coerce').astype('float64')"
    if f.kind in ("product", "ratio"):
        b = f"pd.to_numeric(out[{f.inputs[1]!r}], errors='coerce').astype('float64')"
        if f.kind == "product":
            return f"out[{f.name!r}] = {a} * {b}"
        return f"den = {b}\n    out[{f.name!r}] = {a} / den.where(den != 0)"
    if f.kind == "date_part":
        d = f"pd.to_datetime(out[{f.inputs[0]!r}], errors='coerce', format='mixed')"
        attr = {"month": "month", "isodow": "dayofweek", "dayofyear": "dayofyear"}[f.part]
        plus = " + 1" if f.part == "isodow" else ""
        return f"out[{f.name!r}] = ({d}.dt.{attr}{plus}).astype('float64')"
    shares = json.dumps(dict(sorted(f.shares.items())))
    return (
        f"shares = {shares}\n"
        f"    out[{f.name!r}] = out[{f.inputs[0]!r}].map(\n"
        "        lambda v: None if v is None or v != v else shares.get(str(v), 0.0)\n"
        "    ).astype('float64')"
    )


def mage_block(features: list[Feature], name: str, spec: dict[str, Any]) -> str:
    body = "\n    ".join(_py(f) for f in features)
    names = [f.name for f in features]
    return f'''"""{name}: features for the target {spec.get("target")!r}, found by `pipewarden features
discover` and written by `pipewarden features emit` (the dbt model beside it computes the same
values)."""

if 'transformer' not in globals():
    from mage_ai.data_preparation.decorators import transformer
if 'test' not in globals():
    from mage_ai.data_preparation.decorators import test

FEATURES = {names!r}


@transformer
def add_features(df, *args, **kwargs):
    """Every column of the rows, plus the features."""
    import pandas as pd

    out = df.copy()
    {body}
    return out


@test
def test_output(output, *args) -> None:
    """The features are there, one value (or null) per row."""
    assert output is not None, 'The output is undefined'
    for name in FEATURES:
        assert name in output.columns, f'feature {{name}} is missing'
'''


def emit_features(
    spec: dict[str, Any] | str | Path,
    directory: str | Path = ".",
    *,
    name: str | None = None,
    source: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the dbt model, its docs and the Mage block for the chosen features of ``spec``."""
    from ..pipelines.scaffold import NAME_RE, _write_all

    spec, features = load_spec(spec)
    source = source or spec.get("dataset") or "dataset"
    name = name or f"{source}_features"
    for label, value in (("name", name), ("source table", source)):
        if not NAME_RE.fullmatch(value):
            raise InputError(f"{label} {value!r} is not valid", hint="letters, digits and '_'")
    files = {
        f"models/pipewarden/{name}.sql": dbt_model(features, source, spec),
        f"models/pipewarden/_{name}.yml": yaml.safe_dump(
            {
                "version": 2,
                "models": [
                    {
                        "name": name,
                        "description": f"{source} with features for {spec.get('target')!r} "
                        "(pipewarden features emit).",
                        "columns": [
                            {
                                "name": f.name,
                                "description": f"{f.kind} of {', '.join(f.inputs)}"
                                + (f" ({f.part})" if f.part else "")
                                + (f"; held-out lift {f.lift}" if f.lift is not None else ""),
                            }
                            for f in features
                        ],  # fmt: skip
                    }
                ],
            },
            sort_keys=False,
        ),
        f"transformers/{name}.py": mage_block(features, name, spec),
    }
    root = Path(directory)
    clashes = [p for p in files if (root / p).exists()]
    if clashes and not force:
        raise InputError(f"would overwrite {', '.join(clashes)}", file=str(root),
                         hint="pass --force to overwrite")  # fmt: skip
    _write_all(root, files)
    return {"name": name, "source": source, "features": [f.name for f in features],
            "directory": str(root), "files": sorted(files)}  # fmt: skip
