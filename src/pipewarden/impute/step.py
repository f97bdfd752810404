"""The ``impute`` step of ``pipewarden run``: fill missing cells before the load, never silently.

``steps: [{type: impute, columns: [...], mode: accurate, ...}]`` (the ``impute_step`` definition
of the pipeline config schema; docs/impute.md). The step returns *fills*: the run writes them
into the typed table only, so the raw landing keeps the nulls as they arrived, and it records
each filled row's columns in the ``<dataset>__imputed`` table (batch id, offset, columns, model
version) in the batch's transaction.

The model: a saved one (``model: DIR``), or one trained on the dataset's history in the store
and kept there (state ``impute_model``: the model document, its version, the batches it has
filled since it was trained). It is trained again when ``refresh.every_batches`` batches have
passed, when it is older than ``refresh.max_age_hours``, or when the batch no longer has the
columns it was trained on. Until the history holds ``min_rows`` rows the step fills nothing
and says so (warm-up).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..batch import Batch
from ..errors import InputError
from ..steps import StepContext
from ..verdict import Verdict
from .model import MAX_ERROR, MIN_ROWS, ImputerModel, ModelSchemaError, NotEnoughHistory

STATE_KEY = "impute_model"


def _step_schema() -> dict:
    import json
    from importlib import resources

    doc = json.loads(
        resources.files("pipewarden").joinpath("pipeline_config_schema.json").read_text()
    )
    return {**doc["$defs"]["impute_step"], "$defs": doc["$defs"]}


def parse_options(options: dict[str, Any], key: str = "steps[].") -> dict[str, Any]:
    import jsonschema

    opts = dict(options or {})
    opts.setdefault("type", "impute")
    errors = sorted(
        jsonschema.Draft202012Validator(_step_schema()).iter_errors(opts),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        err = errors[0]
        path = ".".join(str(p) for p in err.absolute_path)
        raise InputError(err.message, key=key + path if path else key.rstrip("."))
    return opts


def _typed(value: Any, dtype: Any) -> Any:
    """A fill as the value the column's type holds."""
    from ..schema.types import DataType as T

    if dtype is T.BIGINT and isinstance(value, float):
        return int(round(value))
    if dtype is T.DOUBLE and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if dtype is T.DECIMAL and isinstance(value, float):
        return Decimal(repr(value))
    if dtype is T.TEXT and not isinstance(value, str):
        return str(value)
    return value


class ImputeStep:
    name = "impute"

    def __init__(self, options: dict[str, Any], base_dir: Path) -> None:
        self.options = options
        self.base_dir = Path(base_dir)
        self.columns = options.get("columns")
        self.mode = options.get("mode", "accurate")
        self.engine = options.get("engine", "embedded")
        self.engine_options = dict(options.get("h2o") or {})
        self.min_rows = int(options.get("min_rows", MIN_ROWS * 10))
        self.history_rows = int(options.get("history_rows", 50_000))
        refresh = options.get("refresh") or {}
        self.every = int(refresh.get("every_batches", 0))
        self.max_age_h = float(refresh.get("max_age_hours", 0))
        self.seed = int(options.get("seed", 0))
        model = options.get("model")
        self.model_path = None if not model else (
            Path(model) if Path(model).is_absolute() else self.base_dir / model
        )  # fmt: skip
        self._model: ImputerModel | None = None
        self._version = 0
        self._note: str | None = None  # why the model of the current batch is what it is

    # -------------------------------------------------------------- the model
    def _fit(self, records: list[dict], why: str, derived=()) -> ImputerModel | None:
        try:
            model = ImputerModel.fit(
                records,
                engine=self.engine,
                engine_options=self.engine_options,
                exclude=[*self.options.get("exclude", ()), *derived],
                region=self.options.get("region", "US"),
                max_error=float(self.options.get("max_error", MAX_ERROR)),
                seed=self.seed,
                min_rows=self.min_rows,
            )
        except NotEnoughHistory as exc:
            self._note = f"warming up: {exc.message}"
            return None
        self._note = why
        return model

    def _model_for(self, batch: Batch, ctx: StepContext) -> ImputerModel | None:
        if self.model_path is not None:
            if self._model is None:
                self._model = ImputerModel.load(self.model_path, self.engine_options)
                self._version = int(self._model.info.get("version") or 1)
                self._note = f"model {self.model_path.name}"
            return self._model
        first = batch.offset == 0
        if not first:
            return self._model
        state = ctx.store.load_state(ctx.dataset, STATE_KEY) or {}
        stale = None
        if self._model is None and state.get("model"):
            try:
                self._model = ImputerModel.from_doc(state["model"], "store state impute_model",
                                                    self.engine_options)  # fmt: skip
                self._version = int(state.get("version", 1))
                self._note = f"stored model v{self._version}"
            except InputError:
                stale = "the stored model could not be read"
        if self._model is not None and stale is None:
            since = int(state.get("batches_since", 0))
            age_h = _age_hours(state.get("trained_at"))
            if self.every and since >= self.every:
                stale = f"refresh after {since} batches"
            elif self.max_age_h and age_h is not None and age_h >= self.max_age_h:
                stale = f"refresh after {age_h:.0f} hours"
            else:
                try:
                    self._model.check_schema(batch.records)
                except ModelSchemaError as exc:
                    stale = f"retrained: {exc.message}"
        if self._model is None or stale:
            from .api import history_records

            history, _ = history_records(ctx.store, ctx.dataset, self.history_rows) if (
                ctx.store.has_table(ctx.dataset) or ctx.store.has_table(ctx.dataset + "__raw")
            ) else ([], "")  # fmt: skip
            if len(history) < self.min_rows:  # warm-up: the batch itself joins the history
                history = history + batch.records
            model = self._fit(history, stale or "trained on the history", _derived(batch))
            if model is None:
                return self._model if stale and "refresh" in stale else None
            if self._model is not None:
                self._model.close()
            self._model = model
            self._version = int(state.get("version", 0)) + 1
            model.info["version"] = self._version
            state = {
                "version": self._version,
                "trained_at": model.info["trained_at"],
                "rows": model.info["rows"],
                "schema": model.info["schema"],
                "batches_since": 0,
                "model": model.to_doc(),
            }
            ctx.store.append_metrics(
                ctx.dataset, ctx.batch_id, "impute_model",
                {k: state[k] for k in ("version", "trained_at", "rows", "schema")},
            )  # fmt: skip
        state["batches_since"] = int(state.get("batches_since", 0)) + 1
        ctx.store.save_state(ctx.dataset, STATE_KEY, state)
        return self._model

    # -------------------------------------------------------------- check
    def check(self, batch: Batch, ctx: StepContext) -> Verdict:
        t0 = time.perf_counter()
        self._note = None if batch.offset == 0 else self._note
        model = self._model_for(batch, ctx)
        verdict = Verdict(self.name)
        if model is None:
            verdict.report = {"status": "no model", "summary": self._note or "no model yet"}
            return verdict
        derived = _derived(batch)  # computed from other columns (features): never filled
        columns = self.columns
        if derived:
            names = columns if columns is not None else [s.name for s in model.specs]
            columns = [c for c in names if c not in derived]
        try:
            result = model.impute(
                batch.records,
                columns=columns,
                mode=self.mode,
                seed=self.seed,
                key=f"{batch.batch_id or ctx.batch_id}:{batch.offset}",
                skip_rows=ctx.quarantined,
            )
        except ModelSchemaError as exc:  # a saved model (refresh cannot help): fill nothing
            verdict.report = {
                "status": "model does not match",
                "summary": f"nothing filled: {exc.message}; {exc.hint}",
            }
            return verdict
        types = {c.name: c.type for c in ctx.schema.columns.values()} if ctx.schema else {}
        verdict.fills = {
            i: {k: _typed(v, types.get(k)) for k, v in f.items()} for i, f in result.fills.items()
        }
        rep = result.report
        filled = {k: c["filled"] for k, c in rep["columns"].items() if c["filled"]}
        verdict.report = {
            **rep,
            "model": {**rep["model"], "version": self._version, "note": self._note},
            "seconds": round(time.perf_counter() - t0, 3),
            "summary": (
                f"filled {rep['cells_filled']} of {rep['cells_missing']} missing cells in "
                f"{rep['rows_with_fills']} rows"
                + (f" ({', '.join(f'{k} {v}' for k, v in filled.items())})" if filled else "")
                + f"; model v{self._version}"
                + (f", {self._note}" if self._note else "")
            ),
        }
        return verdict

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None


def _derived(batch: Batch) -> list[str]:
    """The keys another step computed from the others (the features step)."""
    return list(batch.meta.get("derived") or ())


def _age_hours(stamp: Any) -> float | None:
    try:
        then = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return (datetime.now(UTC) - then).total_seconds() / 3600.0


def build_step(options: dict[str, Any], base_dir: Path) -> ImputeStep:
    return ImputeStep(parse_options(options), base_dir)
