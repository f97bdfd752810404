"""``pipewarden ingest status|reset``: what the controller remembers about each host."""

from __future__ import annotations

import os
from typing import Any

from ..errors import InputError
from . import memory


def _open(config_path: str | None, store_url: str | None, namespace: str | None):
    """(store, source name from the config or None)."""
    if config_path:
        from ..run import load_config, open_config_store

        cfg = load_config(config_path)
        src = cfg["source"]
        name = src.get("name") or cfg["dataset"]
        return open_config_store(cfg, create=False), name
    url = store_url or os.environ.get("PIPEWARDEN_STORE")
    if not url:
        raise InputError(
            "which store?", key="--store", hint="pass --store URL, --config PIPELINE.yaml, "
            "or set $PIPEWARDEN_STORE"
        )  # fmt: skip
    from ..store import open_store

    return open_store(url, namespace=namespace, create=False), None


def ingest_status(
    source: str | None = None,
    *,
    config_path: str | None = None,
    store_url: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The learned limits of a source (or of every source in the store), per host: limit,
    ceiling, latency baseline, last throttle, header conventions, runs and requests."""
    store, from_config = _open(config_path, store_url, namespace)
    source = source or from_config
    try:
        hosts = memory.entries(store, source)
        known = sorted({e["source"] for e in memory.entries(store)})
        doc = {
            "store": {"kind": store.dialect, "url": store.url, "schema": store.namespace},
            "source": source,
            "hosts": hosts,
            "known": known,
        }
    finally:
        store.close()
    return doc


def ingest_reset(
    source: str | None = None,
    *,
    host: str | None = None,
    config_path: str | None = None,
    store_url: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """Forget what was learned about a source (one host, or all): the next run starts cold.
    A source with nothing to forget is exit 2, naming the sources that have a memory."""
    store, from_config = _open(config_path, store_url, namespace)
    source = source or from_config
    try:
        if not source:
            raise InputError("which source?", key="SOURCE", hint="pass SOURCE or --config")
        known = sorted({e["source"] for e in memory.entries(store)})
        deleted = memory.forget(store, source, host)
        if not deleted:
            raise InputError(
                f"no memory of source {source!r}" + (f" for host {host!r}" if host else "")
                + " in this store",
                hint="sources with a memory here: " + (", ".join(known) or "none"),
            )  # fmt: skip
    finally:
        store.close()
    return {"source": source, "host": host, "deleted": deleted}
