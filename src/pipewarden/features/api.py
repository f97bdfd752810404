"""``discover_rows``: the rows of a file or of a store's dataset, then :func:`discover`."""

from __future__ import annotations

from typing import Any

from ..batch import read_batch
from ..errors import InputError
from .discover import discover


def discover_rows(
    *,
    data: str | None = None,
    store_url: str | None = None,
    namespace: str | None = None,
    dataset: str | None = None,
    target: str,
    **options: Any,
) -> dict[str, Any]:
    if (data is None) == (store_url is None):
        raise InputError(
            "give --data FILE or --store URL --dataset NAME", hint="features discover -h"
        )
    if data is not None:
        rows = read_batch(data).records
        source = {"data": data}
    else:
        if not dataset:
            raise InputError("--store needs --dataset")
        from ..impute.api import history_records
        from ..store import open_store

        store = open_store(store_url, namespace=namespace, create=False)
        try:
            rows, where = history_records(store, dataset)
        finally:
            store.close()
        source = {"store": store.url, "dataset": dataset, "table": where}
    doc = discover(rows, target, **options)
    doc["source"] = source
    if dataset:
        doc["dataset"] = dataset
    return doc
