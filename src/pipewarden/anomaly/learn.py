"""The dataset's model, learned from its own healthy history and kept in the store.

Without a ``model:`` in the step, the run learns one per dataset:

- **warm-up**: the first ``warmup_batches`` healthy batches (no monitor alarm, not held by the
  breaker) are monitored and scored for the report, but no row is quarantined for its score
  (unless ``quarantine_before_model``), since a batch scored against itself has its top 1%
  above 0.7 by construction;
- **training**: at the start of the next batch the model is fitted on the rows those batches
  loaded (read back from the raw landing, so the guardian's masks are applied and quarantined
  rows are left out; at most ``max_train_rows``, spread over the batches, every k-th row of
  each) and saved in the store's state with a version, the schema version and the columns it
  saw, and the batches it learned from. Every later chunk is scored with it: no refit per chunk;
- **refresh**: it is trained again on the latest ``train_batches`` healthy batches every
  ``refresh.every_batches`` healthy batches, and on **drift**: when ``refresh.drift_batches``
  healthy batches in a row have flagged at least three times the expected share of rows, or
  all had columns the model never saw (or lacked columns it knew): the data moved on and the
  monitors found nothing wrong with it;
- a breaker reset with ``--rebaseline`` starts a new epoch: the model of an earlier epoch is
  not used, and warm-up starts again.

The state holds two keys per dataset: ``anomaly.model`` (what the model is: version, epoch,
rows, batches, columns, when and why it was trained; small, read on every batch) and
``anomaly.model.blob`` (the model itself, :meth:`Model.to_blob`; read when the version changes).
The functions here that decide are pure; :func:`ensure_model` does the reading and writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .model import Model, NoFeatures

KEY = "anomaly.model"
BLOB_KEY = "anomaly.model.blob"
DRIFT_FACTOR = 3.0  # flagged share / expected share that counts as drift


@dataclass
class LearnConfig:
    warmup_batches: int = 3
    train_batches: int = 10
    max_train_rows: int = 50_000
    refresh_every_batches: int = 30  # 0: never on a schedule
    refresh_on_drift: bool = True
    drift_batches: int = 3

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> LearnConfig:
        refresh = dict(options.get("refresh") or {})
        return cls(
            warmup_batches=int(options.get("warmup_batches", 3)),
            train_batches=int(options.get("train_batches", 10)),
            max_train_rows=int(options.get("max_train_rows", 50_000)),
            refresh_every_batches=int(refresh.get("every_batches", 30)),
            refresh_on_drift=bool(refresh.get("on_drift", True)),
            drift_batches=int(refresh.get("drift_batches", 3)),
        )


def healthy_batches(history: list[dict[str, Any]], epoch: int) -> list[str]:
    """Batch ids of the healthy batches in ``history`` (the monitors' metrics, oldest
    first) of this epoch, oldest first, each once."""
    out: dict[str, None] = {}
    for h in history:
        if not h.get("failed") and h.get("epoch", 0) == epoch and h.get("batch_id"):
            out[h["batch_id"]] = None
    return list(out)


def why_train(
    meta: dict[str, Any] | None,
    history: list[dict[str, Any]],
    epoch: int,
    cfg: LearnConfig,
    expected_share: float,
) -> str | None:
    """Why the dataset's model must be (re)trained now, or None. Pure: ``meta`` is the
    stored model's description (None: no model), ``history`` the batch metrics."""
    healthy = healthy_batches(history, epoch)
    if meta is None or meta.get("epoch", 0) != epoch:
        if len(healthy) >= cfg.warmup_batches:
            return f"warm-up over: {len(healthy)} healthy batches"
        return None
    version = meta.get("version")
    trained_on = set(meta.get("batches", []))
    since = [
        h
        for h in history
        if h.get("model_version") == version
        and not h.get("failed")
        and h.get("epoch", 0) == epoch
        and h.get("batch_id") not in trained_on
    ]
    if cfg.refresh_every_batches and len(since) >= cfg.refresh_every_batches:
        return f"schedule: {len(since)} healthy batches since version {version}"
    if cfg.refresh_on_drift and len(since) >= cfg.drift_batches:
        last = since[-cfg.drift_batches :]
        limit = DRIFT_FACTOR * expected_share
        if all(h.get("flagged_share", 0.0) >= limit for h in last):
            return (
                f"drift: the last {len(last)} healthy batches each flagged "
                f">= {limit:.1%} of their rows"
            )
        if all(h.get("unknown_columns") or h.get("absent_columns") for h in last):
            return f"drift: the last {len(last)} healthy batches had columns the model lacks"
    return None


class ModelCache:
    """The dataset's stored model, loaded once per version."""

    def __init__(self) -> None:
        self.version: Any = None
        self.model: Model | None = None

    def get(self, store: Any, dataset: str, meta: dict[str, Any], options: dict) -> Model | None:
        if self.model is not None and self.version == meta.get("version"):
            return self.model
        self.close()
        blob = store.load_state(dataset, BLOB_KEY)
        if not blob or blob.get("version") != meta.get("version"):
            return None
        self.model = Model.from_blob(blob["model"], options)
        self.version = meta.get("version")
        return self.model

    def put(self, model: Model, version: Any) -> None:
        if self.model is not model:
            self.close()
        self.model, self.version = model, version

    def close(self) -> None:
        if self.model is not None:
            self.model.close()
        self.model = None
        self.version = None


def train(
    store: Any,
    dataset: str,
    batches: list[str],
    fit: Any,
    *,
    epoch: int,
    reason: str,
    previous: dict[str, Any] | None,
    schema_version: Any = None,
    max_rows: int = 50_000,
) -> tuple[Model | None, dict[str, Any]]:
    """Fit a model on the rows ``batches`` loaded (``fit(records) -> Model``) and store it.
    Returns the model (None when there was nothing to learn from) and its description."""
    rows = store.landed_rows(dataset, batches, max_rows) if hasattr(store, "landed_rows") else []
    version = int((previous or {}).get("version", 0)) + 1
    meta: dict[str, Any] = {
        "version": version,
        "epoch": epoch,
        "reason": reason,
        "batches": list(batches),
        "rows": len(rows),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "schema_version": schema_version,
    }
    if len(rows) < 10:
        meta["error"] = (
            f"{len(rows)} landed row(s) to learn from: the store keeps no raw landing "
            "for these batches (store.raw_landing: false?); train a model with "
            "`pipewarden anomaly train` and set the step's `model:`"
        )
        return None, meta
    try:
        model = fit(rows)
    except NoFeatures as exc:
        meta["error"] = "no column can be scored: " + ", ".join(
            f"{c}: {w}" for c, w in sorted(exc.excluded.items())
        )
        return None, meta
    meta["columns"] = sorted({f.column for f in model.encoder.features})
    meta["excluded"] = model.encoder.excluded
    meta["engine"] = model.info.get("engine")
    store.save_state(dataset, BLOB_KEY, {"version": version, "model": model.to_blob()})
    store.save_state(dataset, KEY, meta)
    return model, meta


def unknown_columns(model: Model, records: list[dict[str, Any]]) -> list[str]:
    """Columns of ``records`` the model neither scores nor left out on purpose."""
    known = {f.column for f in model.encoder.features} | set(model.encoder.excluded)
    seen: dict[str, None] = {}
    for r in records[:1000]:
        for k in r:
            if k not in known:
                seen[k] = None
    return list(seen)
