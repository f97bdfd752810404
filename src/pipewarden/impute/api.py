"""``impute_file``: the one call behind ``pipewarden impute`` and ``scripts/smart_imputer.py``.

Fit an imputer on a history (a file, the store's table of a dataset, or the batch itself), or
load a saved one, fill the batch's missing cells that the rules allow, and report per column
what was filled, by which model, with what expected error. The filled records can be written
to a file, each with a companion column (``_pw_imputed`` by default) listing the columns that
were filled in that row: an imputed value is never silent.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..batch import json_bytes, read_batch
from ..errors import InputError
from .model import ENGINES, MODES, ImputerModel

FLAG_COLUMN = "_pw_imputed"
HISTORY_ROWS = 50_000


def history_records(store: Any, dataset: str, limit: int = HISTORY_ROWS) -> tuple[list[dict], str]:
    """The latest ``limit`` rows of a dataset as records, and where they came from: the raw
    landing (which keeps the nulls as they arrived, before any fill) when it has rows, else
    the typed table."""
    from ..store.base import jload, quote

    raw = dataset + "__raw"
    if store.has_table(raw):
        rows = store._aux_query(
            f"SELECT payload FROM {store.qualify(raw)} "
            f'ORDER BY loaded_at DESC, batch_id, "offset" LIMIT {int(limit)}'
        )
        if rows:
            out = [jload(r[0]) for r in rows]
            return [r for r in out if isinstance(r, dict)][::-1], "raw landing"
    if not store.has_table(dataset):
        raise InputError(
            f"the store has no dataset {dataset!r}",
            key="dataset",
            hint="load it first with `pipewarden run`, or give --history FILE",
        )
    cols = [
        r[0]
        for r in store._aux_query(
            store.sql(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = ? ORDER BY ordinal_position"
            ),
            (store.namespace, dataset),
        )
    ]
    names = ", ".join(quote(c) for c in cols)
    rows = store._aux_query(f"SELECT {names} FROM {store.qualify(dataset)} LIMIT {int(limit)}")
    return [dict(zip(cols, r, strict=True)) for r in rows], "typed table"


def _write_records(path: str, records: list[dict], fills: dict, flag: str) -> None:
    """JSONL, written to a temporary sibling and moved into place (never half-written)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            for i, rec in enumerate(records):
                filled = fills.get(i) or {}
                out = {**rec, **filled, flag: sorted(filled) or None}
                f.write(json_bytes(out) + b"\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def impute_file(
    data: str,
    *,
    history: str | None = None,
    store_url: str | None = None,
    namespace: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    save_model: str | None = None,
    columns: list[str] | None = None,
    mode: str = "accurate",
    engine: str = "embedded",
    engine_options: dict[str, Any] | None = None,
    max_error: float | None = None,
    seed: int = 0,
    exclude: list[str] | tuple[str, ...] = (),
    region: str = "US",
    out: str | None = None,
    flag_column: str = FLAG_COLUMN,
) -> dict[str, Any]:
    """Fill the missing cells of the batch ``data``; returns the report (see module doc)."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}", key="mode", hint=" or ".join(MODES))
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}", key="engine", hint=" or ".join(ENGINES))
    if sum(x is not None for x in (history, model, store_url)) > 1:
        raise InputError("give one of --history, --store or --model", hint="pipewarden impute -h")
    if store_url and not dataset:
        raise InputError("--store needs --dataset", hint="the dataset whose table is the history")
    batch = read_batch(data)
    records = batch.records
    t0 = time.perf_counter()
    source: dict[str, Any]
    if model is not None:
        imp = ImputerModel.load(model, engine_options)
        source = {"model": model}
    else:
        if history is not None:
            train = read_batch(history).records
            source = {"history": history}
        elif store_url:
            from ..store import open_store

            store = open_store(store_url, namespace=namespace, create=False)
            try:
                train, where = history_records(store, dataset)
            finally:
                store.close()
            source = {"store": store.url, "dataset": dataset, "table": where}
        else:
            train = records
            source = {"history": "the batch itself"}
        source["rows"] = len(train)
        kw: dict[str, Any] = {} if max_error is None else {"max_error": max_error}
        imp = ImputerModel.fit(
            train, engine=engine, engine_options=engine_options, exclude=exclude,
            region=region, seed=seed, **kw,
        )  # fmt: skip
        imp.info["version"] = 1
    try:
        fit_s = time.perf_counter() - t0
        if max_error is not None:
            imp.max_error = max_error
        result = imp.impute(
            records, columns=columns, mode=mode, seed=seed, key=batch.batch_id or ""
        )
        report = {
            "data": data,
            "trained_from": source,
            **result.report,
            "seconds": {"fit": round(fit_s, 3), "total": round(time.perf_counter() - t0, 3)},
        }
        if save_model:
            imp.save(save_model)
            report["model_saved"] = save_model
    finally:
        imp.close()
    if out:
        if flag_column in {k for r in records[:1000] for k in r}:
            raise InputError(
                f"the batch already has a column {flag_column!r}",
                key="flag_column",
                hint="choose another name with --flag-column",
            )
        _write_records(out, records, result.fills, flag_column)
        report["out"] = out
        report["flag_column"] = flag_column
    return report
