"""The ``anomaly`` step of ``pipewarden run``: row scores, batch monitors, circuit breaker.

``steps: [{type: anomaly, threshold: 0.7, breaker: {...}, monitors: {...}}]``; see
``docs/anomaly.md`` and the ``anomaly_step`` definition of the pipeline config schema.

Without a ``model:`` the step learns the dataset's model from its healthy history
(:mod:`.learn`) and keeps it in the store; a replay page (``ctx.replay``) is judged against
that model and counted nowhere.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ..batch import Batch
from ..steps import StepContext
from ..verdict import RowIssue, Verdict
from . import learn
from .breaker import Breaker
from .calibrate import share_above
from .detector import (
    KIND,
    STEP,
    DetectorConfig,
    check,
    fit_model,
    load_model,
    parse_config,
    score_rows,
)
from .encode import Columns
from .model import Model, NoFeatures
from .scores_out import ScoresWriter, format_of, table

log = logging.getLogger(__name__)


class AnomalyStep:
    name = "anomaly"

    def __init__(self, cfg: DetectorConfig, base_dir: Path) -> None:
        self.cfg = cfg
        self.base_dir = Path(base_dir)
        self._model: Model | None = None
        self._learned = learn.ModelCache()
        self._batch: tuple[str, Any] | None = None  # (batch id, (model, info)) of the batch
        # (batch id, model fitted on its first chunk): scores its later chunks in warm-up
        self._fit: tuple[str, Model | None] | None = None
        self._writer: ScoresWriter | None = None
        if cfg.model:
            path = Path(cfg.model)
            self.model_path = path if path.is_absolute() else self.base_dir / path
        else:
            self.model_path = None
        if cfg.scores_out:
            format_of(cfg.scores_out, key="steps[].scores_out")

    def model(self) -> Model | None:
        if self.model_path is not None and self._model is None:
            self._model = load_model(self.model_path, self.cfg)
        return self._model

    # the dataset's model -------------------------------------------------------------------

    def _dataset_model(
        self, records: list[dict[str, Any]], ctx: StepContext, first: bool, replay: bool
    ) -> tuple[Model | None, dict[str, Any]]:
        if self.model_path is not None:
            return self.model(), {"source": "file", "path": str(self.model_path)}
        store, dataset, cfg = ctx.store, ctx.dataset, self.cfg
        epoch = int(Breaker(store, dataset, cfg.breaker).load().get("epoch", 0))
        meta = store.load_state(dataset, learn.KEY)
        info: dict[str, Any] = {"source": "history"}
        if first and not replay:
            span = max(
                cfg.monitors.window * 3,
                cfg.learn.refresh_every_batches
                + cfg.learn.train_batches
                + cfg.learn.warmup_batches,
            )
            history = store.metrics_history(dataset, KIND, limit=span)
            why = learn.why_train(meta, history, epoch, cfg.learn, share_above(cfg.threshold))
            if why is not None:
                batches = learn.healthy_batches(history, epoch)[-cfg.learn.train_batches :]
                try:
                    model, new = learn.train(
                        store,
                        dataset,
                        batches,
                        lambda rows: fit_model(rows, cfg),
                        epoch=epoch,
                        reason=why,
                        previous=meta,
                        schema_version=getattr(ctx.schema, "version", None),
                        max_rows=cfg.learn.max_train_rows,
                    )
                except Exception as exc:  # training must never fail the batch
                    log.warning("anomaly: training the model of %s failed: %s", dataset, exc)
                    model, new = None, {"error": f"training failed ({type(exc).__name__})"}
                if model is not None:
                    self._learned.put(model, new["version"])
                    meta = new
                    info["trained_now"] = why
                else:
                    info["error"] = new.get("error")
        if meta and meta.get("epoch", 0) == epoch and not meta.get("error"):
            try:
                model = self._learned.get(store, dataset, meta, cfg.h2o)
            except Exception as exc:  # a damaged stored model: learn again
                log.warning("anomaly: the stored model of %s is unusable: %s", dataset, exc)
                model = None
            if model is not None:
                info.update(
                    status="trained",
                    version=meta["version"],
                    trained_at=meta.get("trained_at"),
                    rows=meta.get("rows"),
                    batches=len(meta.get("batches", [])),
                    reason=meta.get("reason"),
                )
                return model, info
        if replay:
            info.update(status="none", message="no model of this dataset yet")
            return None, info
        history = store.metrics_history(dataset, KIND, limit=cfg.monitors.window * 3)
        healthy = len(learn.healthy_batches(history, epoch))
        info.update(
            status="warm-up",
            message=f"{healthy} of {cfg.learn.warmup_batches} healthy batches seen",
        )
        return None, info

    # the step ------------------------------------------------------------------------------

    def check(self, batch: Batch, ctx: StepContext) -> Verdict:
        batch_id = batch.batch_id or ctx.batch_id
        first = batch.offset == 0
        replay = getattr(ctx, "mode", "run") == "replay"
        if self._batch is None or self._batch[0] != batch_id or first:
            self._batch = (batch_id, self._dataset_model(batch.records, ctx, first, replay))
        model, info = self._batch[1]
        if replay:
            return judge_replay(batch, self.cfg, model, info)
        batch_model = self._batch_fit(batch, batch_id, first) if model is None else None
        want_rows = self.cfg.scores_out is not None
        verdict, report = check(
            Columns(batch),  # the chunk's columns, made once
            dataset=ctx.dataset,
            store=ctx.store,
            cfg=self.cfg,
            model=model,
            batch_id=batch_id,
            first_chunk=first,
            primary_key=tuple(getattr(ctx, "primary_key", ()) or ()),
            model_info=info,
            with_rows=want_rows,
            batch_model=batch_model,
        )
        rows = report.pop("_rows", None)
        if rows is not None:
            self._write_scores(batch, batch_id, rows, report)
        # the run report numbers rows as every report does: their row in the source file
        for f in (verdict.report.get("scored") or {}).get("flagged") or []:
            f["row"] = batch.row_number(f["row"])
        return verdict

    def _batch_fit(self, batch: Batch, batch_id: str, first: bool) -> Model | None:
        """Without the dataset's model (warm-up), a batch's rows are ranked against the
        batch: the model fitted on its first chunk scores every chunk of it (one fit per
        batch, not one per chunk). None where the first chunk has too few rows or no column
        to score: the detector then fits on each chunk and says why it cannot."""
        if first:
            self._close_fit()
            fitted = None
            if len(batch) >= self.cfg.min_fit_rows:
                try:
                    fitted = fit_model(Columns(batch), self.cfg)
                except NoFeatures:
                    fitted = None
            self._fit = (batch_id, fitted)
        if self._fit is None or self._fit[0] != batch_id:
            return None
        return self._fit[1]

    def _close_fit(self) -> None:
        if self._fit is not None and self._fit[1] is not None:
            self._fit[1].close()
        self._fit = None

    def _write_scores(self, batch: Batch, batch_id: str, rows: dict, report: dict) -> None:
        if batch.offset == 0 or self._writer is None:
            self._close_writer()
            self._writer = ScoresWriter(self._scores_path(batch, batch_id), "steps[].scores_out")
        self._writer.write(table(rows, len(batch), self.cfg.threshold, batch.offset, batch_id))
        report["scores_file"] = str(self._writer.path)
        report["summary"] += f", scores in {self._writer.path}"

    def _scores_path(self, batch: Batch, batch_id: str) -> Path:
        template = str(self.cfg.scores_out)
        source = re.sub(r"[^\w.-]+", "_", Path(batch.source or "batch").name.split(".")[0])
        if "{" not in template:
            p = Path(template)
            template = str(p.with_name(f"{p.stem}-{{source}}-{{batch_id}}{p.suffix}"))
        path = Path(template.format(batch_id=batch_id[:16], source=source or "batch"))
        return path if path.is_absolute() else self.base_dir / path

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        self._close_writer()
        self._close_fit()
        self._learned.close()
        if self._model is not None:
            self._model.close()
            self._model = None


def _held_by_detector(issues: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The detector's own reason among a quarantined row's issues (a row score, or the whole
    batch held while the breaker was open), or None."""
    for it in issues:
        if it.get("reason") == "anomaly":
            return it
        if it.get("reason") == "batch_quarantined" and str(it.get("message", "")).startswith(
            f"{STEP}:"
        ):
            return it
    return None


def judge_replay(
    batch: Batch, cfg: DetectorConfig, model: Model | None, info: dict[str, Any] | None = None
) -> Verdict:
    """Replayed rows (a page of the quarantine, ``StepContext.mode == "replay"``) judged
    against what the detector learned, never against the page itself: with a model (the
    dataset's, learned from its history, or the step's ``model:``), each row is scored by it
    and held as a batch's row would be (at or above the quarantine threshold and, by default,
    beyond the model's reference range); without one, a row the detector held when it was
    loaded (``batch.meta["previous_issues"]``) stays held, since nothing can judge it again.
    A replay page is not a batch: no monitor, metric, breaker window or model training sees
    it, and the breaker's state does not hold it."""
    verdict = Verdict(STEP)
    n = len(batch.records)
    base = {"replay": True, "model": info or {}}
    if model is not None:
        scored = score_rows(batch.records, cfg, model)
        scored.pop("scores", None)
        cut = cfg.row_cut
        held = [
            f
            for f in scored["flagged"]
            if f["score"] >= cut and (cfg.quarantine_threshold is not None or f["beyond_range"])
        ]
        if cfg.quarantine_rows:
            verdict.issues = [
                RowIssue(
                    f["row"],
                    "anomaly",
                    f"anomaly score {f['score']:.3f} >= {cut:g} against the dataset's model: "
                    f"{f['reason']}",
                    column=", ".join(f["columns"]) or None,
                    score=f["score"],
                )
                for f in held
            ]
        verdict.report = {
            **base,
            "scored": {k: scored[k] for k in ("status", "message", "fitted_on")},
            "summary": f"replay: {len(verdict.issues)} of {n} rows held against the dataset's "
            f"model ({len(scored['flagged'])} scored >= {cfg.threshold:g})",
        }
        return verdict
    previous = batch.meta.get("previous_issues") or {}
    for i in range(n):
        it = _held_by_detector(previous.get(i) or [])
        if it is not None:
            score = it.get("score")
            was = f" (score {score:.3f})" if isinstance(score, int | float) else ""
            verdict.issues.append(
                RowIssue(
                    i,
                    "anomaly",
                    f"held by the anomaly step when loaded{was}; there is no model to judge it "
                    "again yet: it is judged once the dataset's model is trained (after "
                    "warm-up), or set the step's model, or remove the anomaly step",
                    column=it.get("column"),
                    score=score if isinstance(score, int | float) else None,
                )
            )
    verdict.report = {
        **base,
        "summary": f"replay: no model yet; {len(verdict.issues)} of {n} rows the detector "
        "held stay held",
    }
    return verdict


def build_step(options: dict[str, Any], base_dir: Path) -> AnomalyStep:
    return AnomalyStep(parse_config(options), base_dir)
