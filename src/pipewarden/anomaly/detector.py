"""The anomaly detector's library API: score rows, watch batch health, drive the breaker.

- :func:`score_rows`: normalised row scores and the flagged rows with the columns to blame;
- :func:`check`: one batch through the breaker, the row scores and the monitors -> a
  :class:`~pipewarden.verdict.Verdict` and a JSON-ready report (what the run step calls);
- :func:`score` / :func:`train`: the files-in, dict-out functions behind ``pipewarden anomaly``;
- :func:`breaker_status` / :func:`breaker_reset`: behind ``pipewarden breaker``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..verdict import RowIssue, Verdict
from . import DEFAULT_STORE
from .breaker import KEY as BREAKER_KEY
from .breaker import RELEASE, Breaker, BreakerConfig
from .calibrate import share_above
from .engines import make_engine
from .learn import LearnConfig
from .model import Model, NoFeatures
from .monitors import KIND, MonitorConfig, batch_metrics, evaluate

STEP = "anomaly"
MAX_LISTED = 100  # flagged rows listed in a report
# rows at or above this score are quarantined (by default): one in 100,000 rows like the
# reference, where the flag threshold 0.7 marks one in 100 for a person to look at
QUARANTINE_THRESHOLD = 0.95


@dataclass
class DetectorConfig:
    engine: str = "sklearn"
    model: str | None = None
    threshold: float = 0.7
    quarantine_threshold: float | None = None  # None: max(threshold, QUARANTINE_THRESHOLD)
    quarantine_rows: bool = True
    quarantine_before_model: bool = False
    min_fit_rows: int = 10
    scores_out: str | None = None
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    region: str = "US"  # phone numbers without a country code, for the PII check
    sklearn: dict[str, Any] = field(default_factory=dict)
    h2o: dict[str, Any] = field(default_factory=dict)
    monitors: MonitorConfig = field(default_factory=MonitorConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    learn: LearnConfig = field(default_factory=LearnConfig)

    @property
    def row_cut(self) -> float:
        """The score at or above which a row is quarantined."""
        if self.quarantine_threshold is not None:
            return self.quarantine_threshold
        return max(self.threshold, QUARANTINE_THRESHOLD)

    @property
    def engine_options(self) -> dict[str, Any]:
        return self.h2o if self.engine == "h2o" else self.sklearn


def _step_schema() -> dict[str, Any]:
    text = resources.files("pipewarden").joinpath("pipeline_config_schema.json").read_text()
    doc = json.loads(text)
    return {"$ref": "#/$defs/anomaly_step", "$defs": doc["$defs"]}


def parse_config(options: dict[str, Any] | None, key: str = "steps[].") -> DetectorConfig:
    """Validate an ``anomaly`` step's options against the pipeline config schema.

    An error names the key, e.g. ``steps[].breaker.window``."""
    import jsonschema

    options = dict(options or {})
    options.setdefault("type", "anomaly")
    validator = jsonschema.Draft202012Validator(_step_schema())
    errors = sorted(validator.iter_errors(options), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            if extra:
                path = ".".join([p for p in (path, extra[0]) if p])
                raise InputError("unknown option", key=key + path, hint=_hint(err.schema))
        raise InputError(err.message, key=key + path if path else key.rstrip("."))
    options.pop("type")
    return DetectorConfig(
        engine=options.get("engine", "sklearn"),
        model=options.get("model"),
        threshold=float(options.get("threshold", 0.7)),
        quarantine_threshold=(
            None
            if options.get("quarantine_threshold") is None
            else float(options["quarantine_threshold"])
        ),
        quarantine_rows=bool(options.get("quarantine_rows", True)),
        quarantine_before_model=bool(options.get("quarantine_before_model", False)),
        min_fit_rows=int(options.get("min_fit_rows", 10)),
        scores_out=options.get("scores_out"),
        include=list(options.get("include", [])),
        exclude=list(options.get("exclude", [])),
        region=str(options.get("region", "US")),
        sklearn=dict(options.get("sklearn", {})),
        h2o=dict(options.get("h2o", {})),
        monitors=MonitorConfig.from_dict(options.get("monitors")),
        breaker=BreakerConfig.from_dict(options.get("breaker")),
        learn=LearnConfig.from_options(options),
    )


def _hint(schema: dict[str, Any]) -> str:
    return "known: " + ", ".join(sorted(schema.get("properties", {})))


# ---- row scores ------------------------------------------------------------------------------


def fit_model(records: list[dict[str, Any]], cfg: DetectorConfig) -> Model:
    """Fit a model on records with the config's engine and column choices."""
    return Model.fit(
        records,
        engine=cfg.engine,
        engine_options=cfg.engine_options,
        include=cfg.include,
        exclude=cfg.exclude,
        region=cfg.region,
    )


def _why(exc: NoFeatures) -> str:
    return ", ".join(f"{c}: {w}" for c, w in sorted(exc.excluded.items())) or "no columns"


def score_rows(
    records: list[dict[str, Any]],
    cfg: DetectorConfig | None = None,
    model: Model | None = None,
    batch_model: Model | None = None,
) -> dict[str, Any]:
    """Score every row. Without ``model`` the detector fits on the batch itself, or scores
    with ``batch_model``, a model fitted on the batch's first chunk (``fitted_on`` is
    ``batch`` either way: the rows are ranked against the batch, not judged).

    Returns ``status`` (``scored``, ``empty``, ``too_few_rows``, ``no_features``), a
    ``message``, ``scores`` (a numpy array or None), ``flagged`` rows (row, score, columns,
    reason) and what was encoded or left out. With a model: ``absent``, the model's columns
    that no row has (scored as missing; none of them at all is ``no_features``), and
    ``not_numeric``, per numeric column the values that are not numbers (read as missing)."""
    cfg = cfg or DetectorConfig()
    n = len(records)
    out: dict[str, Any] = {
        "status": "scored",
        "message": "",
        "engine": cfg.engine if model is None else model.info.get("engine", cfg.engine),
        "threshold": cfg.threshold,
        "expected_clean_share": round(share_above(cfg.threshold), 6),
        "rows": n,
        "scores": None,
        "flagged": [],
        "features": [],
        "excluded": {},
        "fitted_on": "model" if model is not None else "batch",
        "absent": [],
        "not_numeric": {},
        "unknown": [],
    }
    if n == 0:
        out.update(status="empty", message="the batch has no rows: nothing to score")
        return out
    own = model is None
    fitted = own and batch_model is None  # fitted here, and closed here
    if fitted and n < cfg.min_fit_rows:
        out.update(
            status="too_few_rows",
            message=(
                f"cannot fit on a batch of {n} row(s) (at least {cfg.min_fit_rows} needed); "
                "train a model on history with `pipewarden anomaly train` and pass --model"
            ),
        )
        return out
    try:
        seen: dict[str, Any] = {}
        if fitted:  # encoded and scaled once, the reference's rows scored once
            encoder, X = Model.encode(records, cfg.include, cfg.exclude, cfg.region, seen)
            model, scores, Z = Model.fit_score(
                X, encoder, make_engine(cfg.engine, cfg.engine_options)
            )
        elif own:
            model = batch_model
        assert model is not None
        out["features"] = model.encoder.names
        out["excluded"] = model.encoder.excluded
        if not model.encoder.features:
            raise NoFeatures(model.encoder.excluded)
        columns = list(dict.fromkeys(f.column for f in model.encoder.features))
        if not fitted and not any(c in r for r in records for c in columns):
            out.update(
                status="no_features",
                absent=columns,
                message=(
                    f"no row has any of the model's columns ({', '.join(columns)}): "
                    "is it the model of this dataset, or were the columns renamed?"
                ),
            )
            return out
        if not fitted:
            scores, Z = model.score(records, seen)
        out["absent"], out["not_numeric"] = seen["absent"], seen["not_numeric"]
        if not own:
            from .learn import unknown_columns

            out["unknown"] = unknown_columns(model, records)
    except NoFeatures as exc:
        why = _why(exc)
        out.update(
            status="no_features",
            features=[],
            excluded=exc.excluded,
            message=f"no column can be scored ({why}); name columns to score with --include",
        )
        return out
    finally:
        if fitted and model is not None:
            model.close()
    out["scores"] = scores
    flagged = np.flatnonzero(scores >= cfg.threshold)
    flagged = flagged[np.argsort(-scores[flagged], kind="stable")]
    rows = []
    beyond = model.beyond_range(Z[flagged]) if len(flagged) else []
    for i, far in zip(flagged, beyond, strict=True):
        columns, reason = model.explain(Z[i])
        rows.append(
            {
                "row": int(i),
                "score": round(float(scores[i]), 4),
                "columns": columns,
                "reason": reason,
                "beyond_range": bool(far),
            }
        )
    out["flagged"] = rows
    spread = "constant" if np.ptp(scores) == 0 else "varied"
    notes = []
    if out["absent"]:
        notes.append(f"scored without {', '.join(out['absent'])} (no row has them)")
    for column, count in out["not_numeric"].items():
        notes.append(f"{column}: {count} value(s) not numbers, read as missing")
    if spread == "constant":
        notes.append("every row looks the same to the detector")
    out["message"] = (
        f"{len(rows)} of {n} rows scored >= {cfg.threshold:g} "
        f"(expected for clean data like the reference: {share_above(cfg.threshold):.2%})"
        + "".join("; " + note for note in notes)
    )
    return out


# ---- one batch through breaker, scores and monitors --------------------------------------------


def check(
    records: list[dict[str, Any]],
    *,
    dataset: str,
    store: Any,
    cfg: DetectorConfig | None = None,
    model: Model | None = None,
    batch_id: str = "",
    clock: Callable[[], float] = time.time,
    use_breaker: bool = True,
    first_chunk: bool = True,
    replay: bool = False,
    primary_key: tuple[str, ...] | list[str] = (),
    stream: bool = False,
    model_info: dict[str, Any] | None = None,
    with_rows: bool = False,
    batch_model: Model | None = None,
) -> tuple[Verdict, dict[str, Any]]:
    """One batch: breaker gate, row scores, monitors, breaker outcome. Writes only through the
    store's StateStore methods (breaker state and the batch's statistics).

    Rows are quarantined for their score (at or above ``cfg.row_cut``) only when ``model`` is
    given (trained on history, or a model file): without one the batch is scored against
    itself, which ranks its rows but cannot judge them (unless ``quarantine_before_model``).

    A batch read in several chunks is one call: only its first chunk (``first_chunk``) runs
    the monitors and counts for the breaker; later chunks are scored and follow the breaker's
    state (quarantined whole while it is open). A ``replay`` page (rows of ``quarantine
    replay``) is judged by the model alone: no breaker gate, no monitor, nothing counted.
    ``with_rows`` adds ``_rows`` to the report: every row's score, flag and reason (for
    ``--scores-out``; the caller pops it). ``batch_model``: without ``model``, a model the
    caller fitted on the batch's first chunk, which scores the later chunks instead of a fit
    on each (their rows are ranked, not judged, as by a fit of their own)."""
    cfg = cfg or DetectorConfig()
    use_breaker = use_breaker and cfg.breaker.enabled and not replay
    breaker = Breaker(store, dataset, cfg.breaker, clock, stream=stream)
    report: dict[str, Any] = {"dataset": dataset, "batch_id": batch_id, "rows": len(records)}
    if model_info:
        report["model"] = model_info
    if replay:
        report["replay"] = True
    held: str | None = None
    if use_breaker:
        if first_chunk:
            allowed, state = breaker.allow(batch_id)
        else:
            state = breaker.load()
            allowed = state["state"] != "open"
        if not allowed:
            desc = breaker.describe(state)
            if breaker.unit == "batches":
                wait = desc["batches_to_hold"]
                when = (
                    f"canary batches after {wait} more held batch(es)"
                    if wait
                    else ("the next batch is a canary")
                )
            else:
                when = f"canary batches from {desc['retry_at']}"
            held = f"held by the circuit breaker, open since {desc['opened_at']} ({desc['reason']}); {when}"
            report["breaker"] = desc

    scored = score_rows(records, cfg, model, batch_model)
    scores = scored.pop("scores")
    n_flagged = len(scored["flagged"])
    judged = scored.get("fitted_on") == "model"
    rate = n_flagged / len(records) if records and scores is not None else 0.0

    monitors: list[dict[str, Any]] = []
    epoch = 0
    if use_breaker or cfg.monitors.enabled:
        epoch = int(breaker.load().get("epoch", 0))
    metrics: dict[str, Any] | None = None
    if cfg.monitors.enabled and first_chunk and not replay:
        metrics = batch_metrics(records, clock(), region=cfg.region, primary_key=primary_key)
        metrics["epoch"] = epoch
        metrics["batch_id"] = batch_id
        metrics["anomaly_rate"] = rate
        if judged:
            metrics["flagged_share"] = rate
            metrics["model_version"] = (model_info or {}).get("version")
            metrics["absent_columns"] = len(scored.get("absent") or [])
            metrics["unknown_columns"] = len(scored.get("unknown") or [])
        history = [
            h
            for h in store.metrics_history(dataset, KIND, limit=cfg.monitors.window * 3)
            if not h.get("failed") and h.get("epoch", 0) == epoch
        ][-cfg.monitors.window :]
        monitors = evaluate(metrics, history, cfg.monitors)

    alarms = [m for m in monitors if m["status"] in ("alarm", "severe")]
    causes = [
        f"{m['monitor']}{'(' + m['column'] + ')' if m['column'] else ''}: {m['message']}"
        for m in alarms
    ]
    if judged and scores is not None and rate >= cfg.breaker.anomaly_rate:
        causes.insert(
            0, f"{rate:.1%} of rows flagged (batch threshold {cfg.breaker.anomaly_rate:.1%})"
        )
    failed = bool(causes)
    severe = any(m["status"] == "severe" for m in alarms) or (
        judged and scores is not None and rate >= cfg.breaker.severe_anomaly_rate
    )
    if metrics is not None and held is None:
        # a held batch is not counted: it is neither history nor a call of the breaker
        metrics["failed"] = failed
        store.append_metrics(dataset, batch_id, KIND, metrics)

    decision = "pass"
    reason = None
    if held is not None:
        decision, reason = "quarantine_batch", held
        report["held"] = True
        report["release"] = RELEASE
    elif use_breaker:
        if first_chunk:
            state = breaker.record(failed, severe, "; ".join(causes) if causes else None)
        report["breaker"] = breaker.describe(state)
        if state["state"] == "open":
            decision = "quarantine_batch"
            reason = f"circuit breaker opened: {state['reason']}"
    cut = cfg.row_cut
    issues = []
    if cfg.quarantine_rows and (judged or cfg.quarantine_before_model) and held is None:
        issues = [
            RowIssue(
                f["row"],
                "anomaly",
                f"anomaly score {f['score']:.3f} >= {cut:g}: {f['reason']}",
                column=", ".join(f["columns"]) or None,
                score=f["score"],
            )
            for f in scored["flagged"]
            if f["score"] >= cut
            # by default a trained model quarantines only rows beyond its reference's range
            # (Model.beyond_range): healthy data has extremes of its own
            and (cfg.quarantine_threshold is not None or not judged or f["beyond_range"])
        ]
    if with_rows:
        report["_rows"] = {"scores": scores, "flagged": list(scored["flagged"]), "cut": cut,
                           "quarantined": {i.row for i in issues}}  # fmt: skip
    scored["flagged_rows"] = n_flagged
    scored["quarantined_rows"] = len(issues)
    scored["quarantine_threshold"] = cut
    scored["anomaly_rate"] = round(rate, 6)
    scored["flagged"] = scored["flagged"][:MAX_LISTED]
    if not judged and scored.get("status") == "scored":
        scored["note"] = (
            "scored against the batch itself (no model yet): rows are ranked, not judged, "
            "and none is quarantined for its score"
        )
    report.update(
        decision=decision,
        reason=reason,
        failed=failed,
        severe=severe,
        causes=causes,
        scored=scored,
        monitors=monitors,
    )
    report["summary"] = _summary(report, cfg.threshold)
    return Verdict(STEP, decision, reason, issues=issues, report=report), report


def _summary(report: dict[str, Any], threshold: float) -> str:
    """One line for the run's text report: rows flagged, monitors, breaker state."""
    scored = report.get("scored") or {}
    parts = []
    if report.get("held"):
        parts.append("held whole by the circuit breaker")
    if scored.get("status") == "scored":
        parts.append(f"{scored['flagged_rows']} of {report['rows']} rows scored >= {threshold:g}")
        if scored.get("quarantined_rows"):
            parts.append(
                f"{scored['quarantined_rows']} quarantined (>= {scored['quarantine_threshold']:g})"
            )
        model = report.get("model") or {}
        if model.get("status") == "warm-up":
            parts.append(f"no model yet ({model.get('message')})")
    elif scored.get("message"):
        parts.append(f"not scored: {scored['message']}")
    monitors = report.get("monitors") or []
    if monitors:
        alarms = [m for m in monitors if m["status"] in ("alarm", "severe")]
        parts.append(f"{len(monitors)} monitors, {len(alarms)} alarms")
    if report.get("causes"):
        parts.append("; ".join(report["causes"]))
    if report.get("breaker"):
        parts.append(f"breaker {report['breaker'].get('state')}")
    return ", ".join(parts)


# ---- files in, dicts out: the CLI's functions ----------------------------------------------------


def _read(path: str) -> list[dict[str, Any]]:
    """The records of a batch file; keys that hold PII renamed to keyed-hash names (see
    :mod:`pipewarden.compliance.names`), so a model or a report never carries them."""
    import os

    from .. import batch
    from ..compliance.names import KeyRenamer

    if path != "-" and not Path(path).exists():
        raise InputError("no such file", file=path, hint="pass the batch file with --data")
    records = batch.read_batch(path).records
    key = os.environ.get("PIPEWARDEN_HASH_KEY")
    KeyRenamer(key=key.encode() if key else None).apply(records)
    return records


def load_model(path: str | Path, cfg: DetectorConfig | None = None) -> Model:
    cfg = cfg or DetectorConfig()
    return Model.load(path, cfg.h2o)


def train(
    data: str,
    out: str,
    cfg: DetectorConfig | None = None,
) -> dict[str, Any]:
    """Fit a model on history (a file) and save it as a directory."""
    cfg = cfg or DetectorConfig()
    records = _read(data)
    if len(records) < cfg.min_fit_rows:
        raise InputError(
            f"{len(records)} row(s) are too few to train on (at least {cfg.min_fit_rows})",
            file=data,
            hint="train on more history",
        )
    started = time.perf_counter()
    try:
        model = fit_model(records, cfg)
    except NoFeatures as exc:
        raise InputError(
            f"no column can be scored ({_why(exc)})", file=data, hint="name columns with --include"
        ) from exc
    try:
        path = model.save(out)
    finally:
        model.close()
    return {
        "model": str(path),
        "engine": model.info["engine"],
        "rows": len(records),
        "features": model.encoder.names,
        "excluded": model.encoder.excluded,
        "seconds": round(time.perf_counter() - started, 3),
        "threshold_share": {
            f"{t:.1f}": round(share_above(t), 6) for t in (0.5, 0.6, 0.7, 0.8, 0.9)
        },
    }


def score(
    data: str,
    cfg: DetectorConfig | None = None,
    *,
    circuit_breaker: bool = False,
    store_url: str | None = None,
    dataset: str | None = None,
    namespace: str | None = None,
    clock: Callable[[], float] = time.time,
    scores_out: str | None = None,
) -> dict[str, Any]:
    """Score one batch file; with ``circuit_breaker`` also run the monitors and the breaker
    against the store. Returns the report (``decision`` is ``quarantine_batch`` when the breaker
    is open). ``scores_out``: write every row's score, flag and reason to that file (Parquet,
    CSV or JSONL by extension; see :mod:`.scores_out`)."""
    cfg = cfg or DetectorConfig()
    if scores_out:
        from .scores_out import format_of

        format_of(scores_out)  # a wrong extension is exit 2 before any work
    records = _read(data)
    model = load_model(cfg.model, cfg) if cfg.model else None
    if not dataset:
        from ..compliance.names import mask_name

        dataset = "stdin" if data == "-" else Path(data).stem.split(".")[0].replace("-", "_")
        dataset = mask_name(dataset)
    try:
        if not circuit_breaker:
            from ..store.base import MemoryStateStore

            _, report = check(
                records,
                dataset=dataset,
                store=MemoryStateStore(),
                cfg=cfg,
                model=model,
                clock=clock,
                use_breaker=False,
                with_rows=bool(scores_out),
            )
            report.pop("monitors", None)
            return _write_scores(report, scores_out, cfg)
        store = open_state_store(store_url, namespace)
        try:
            batch_id = _batch_id(records)
            _, report = check(
                records,
                dataset=dataset,
                store=store,
                cfg=cfg,
                model=model,
                batch_id=batch_id,
                clock=clock,
                with_rows=bool(scores_out),
            )
        finally:
            store.close()
        return _write_scores(report, scores_out, cfg)
    finally:
        if model is not None:
            model.close()


def _write_scores(report: dict[str, Any], path: str | None, cfg: DetectorConfig) -> dict:
    rows = report.pop("_rows", None)
    if path and rows is not None:
        from .scores_out import ScoresWriter, table

        writer = ScoresWriter(path)
        try:
            writer.write(table(rows, report["rows"], cfg.threshold, 0, report.get("batch_id", "")))
        finally:
            writer.close()
        report["scores_file"] = str(path)
    return report


def _batch_id(records: list[dict[str, Any]]) -> str:
    import hashlib

    from ..batch import json_bytes

    h = hashlib.sha256()
    for r in records:
        h.update(json_bytes(r, sort_keys=True))
    return h.hexdigest()[:16]


def open_state_store(url: str | None, namespace: str | None = None, create: bool = True) -> Any:
    import os

    from ..store import open_store

    url = url or os.environ.get("PIPEWARDEN_STORE") or DEFAULT_STORE
    return open_store(url, namespace=namespace, create=create)


def breaker_status(
    store_url: str | None,
    dataset: str,
    cfg: DetectorConfig | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    cfg = cfg or DetectorConfig()
    store = open_state_store(store_url, namespace, create=False)
    try:
        doc = Breaker(store, dataset, cfg.breaker).describe()
        known = store.state_datasets(BREAKER_KEY)
        doc["seen"] = dataset in known
        if not doc["seen"]:
            doc["known"] = known  # the datasets this store has a breaker for: a typo shows
        return doc
    finally:
        store.close()


def breaker_reset(
    store_url: str | None,
    dataset: str,
    cfg: DetectorConfig | None = None,
    rebaseline: bool = False,
    namespace: str | None = None,
) -> dict[str, Any]:
    cfg = cfg or DetectorConfig()
    store = open_state_store(store_url, namespace, create=False)
    try:
        known = store.state_datasets(BREAKER_KEY)
        if dataset not in known:
            raise InputError(
                f"dataset {dataset!r} has no circuit breaker in this store: nothing to reset",
                key="--dataset",
                hint=(
                    f"datasets with a breaker here: {', '.join(known)}"
                    if known
                    else "no dataset has a breaker in this store yet; check --store or --config"
                ),
            )
        b = Breaker(store, dataset, cfg.breaker)
        return {**b.describe(b.reset(rebaseline=rebaseline)), "seen": True}
    finally:
        store.close()
