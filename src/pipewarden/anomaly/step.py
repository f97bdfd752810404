"""The ``anomaly`` step of ``pipewarden run``: row scores, batch monitors, circuit breaker.

``steps: [{type: anomaly, threshold: 0.7, breaker: {...}, monitors: {...}}]``; see
``docs/anomaly.md`` and the ``anomaly_step`` definition of the pipeline config schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..batch import Batch
from ..steps import StepContext
from ..verdict import Verdict
from .detector import DetectorConfig, check, load_model, parse_config
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
        verdict, _ = check(
            batch.records,
            dataset=ctx.dataset,
            store=ctx.store,
            cfg=self.cfg,
            model=self.model(),
            batch_id=batch.batch_id or ctx.batch_id,
            first_chunk=batch.offset == 0,
        )
        return verdict

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None


def build_step(options: dict[str, Any], base_dir: Path) -> AnomalyStep:
    return AnomalyStep(parse_config(options), base_dir)
