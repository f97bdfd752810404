"""The ``anomaly`` step of ``pipewarden run``: row scores, batch monitors, circuit breaker.

``steps: [{type: anomaly, threshold: 0.7, breaker: {...}, monitors: {...}}]``; see
``docs/anomaly.md`` and the ``anomaly_step`` definition of the pipeline config schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..batch import Batch
from ..steps import StepContext
from ..verdict import RowIssue, Verdict
from .detector import STEP, DetectorConfig, check, load_model, parse_config, score_rows
from .model import Model


class AnomalyStep:
    name = "anomaly"

    def __init__(self, cfg: DetectorConfig, base_dir: Path) -> None:
        self.cfg = cfg
        self.base_dir = Path(base_dir)
        self._model: Model | None = None
        if cfg.model:
            path = Path(cfg.model)
            self.model_path = path if path.is_absolute() else self.base_dir / path
        else:
            self.model_path = None

    def model(self) -> Model | None:
        if self.model_path is not None and self._model is None:
            self._model = load_model(self.model_path, self.cfg)
        return self._model

    def check(self, batch: Batch, ctx: StepContext) -> Verdict:
        if ctx.mode == "replay":
            return judge_replay(batch, self.cfg, self.model())
        verdict, _ = check(
            batch.records,
            dataset=ctx.dataset,
            store=ctx.store,
            cfg=self.cfg,
            model=self.model(),
            batch_id=batch.batch_id or ctx.batch_id,
            first_chunk=batch.offset == 0,
        )
        # the run report numbers rows as every report does: their row in the source file
        for f in (verdict.report.get("scored") or {}).get("flagged") or []:
            f["row"] = batch.row_number(f["row"])
        return verdict

    def close(self) -> None:
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


def judge_replay(batch: Batch, cfg: DetectorConfig, model: Model | None) -> Verdict:
    """Replayed rows (a page of the quarantine, ``StepContext.mode == "replay"``) judged
    against what the detector learned, never against the page itself: with a trained model,
    each row is scored by it and held when it scores at or above the threshold; without one,
    a row the detector held when it was loaded (``batch.meta["previous_issues"]``) stays held,
    since nothing can judge it again. A replay page is not a batch: no monitor, metric or
    breaker window sees it, and the breaker's state does not hold it."""
    verdict = Verdict(STEP)
    n = len(batch.records)
    if model is not None:
        scored = score_rows(batch.records, cfg, model)
        scored.pop("scores", None)
        flagged = scored["flagged"]
        if cfg.quarantine_rows:
            verdict.issues = [
                RowIssue(
                    f["row"],
                    "anomaly",
                    f"anomaly score {f['score']:.3f} >= {cfg.threshold:g} against the trained "
                    f"model: {f['reason']}",
                    column=", ".join(f["columns"]) or None,
                    score=f["score"],
                )
                for f in flagged
            ]
        verdict.report = {
            "replay": True,
            "scored": {k: scored[k] for k in ("status", "message", "fitted_on")},
            "summary": f"replay: {len(flagged)} of {n} rows scored >= {cfg.threshold:g} "
            "against the trained model",
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
                    f"held by the anomaly step when loaded{was}; there is no trained model to "
                    "judge it again: train one (pipewarden anomaly train) and set the step's "
                    "model, or remove the anomaly step to release it",
                    column=it.get("column"),
                    score=score if isinstance(score, int | float) else None,
                )
            )
    verdict.report = {
        "replay": True,
        "summary": f"replay: no trained model; {len(verdict.issues)} of {n} rows the detector "
        "held stay held",
    }
    return verdict


def build_step(options: dict[str, Any], base_dir: Path) -> AnomalyStep:
    return AnomalyStep(parse_config(options), base_dir)
