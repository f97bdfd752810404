"""A fitted imputer: the columns it knows, an engine, and the rules that decide what is filled.

A cell is filled only when all of these hold (otherwise it stays null, and the report says why):

- the column is allowed (``columns``; by default every column the model can fill);
- the column has signal: its expected error, measured on cells hidden from the training data,
  is at most ``max_error`` (0.95 by default) times the error of filling those same cells with
  the column's mean (NRMSE about 1.0), or for a category with its mode;
- the row has at least one known value in another column of the model (a row of nulls has
  nothing to predict from; a fill there would be a guess).

Saved as one JSON document (``model.json`` in a directory, or the ``impute_model`` state of a
dataset in the store), versioned, with the columns and their kinds: loading checks the format,
and imputing checks that the batch still has those kinds of values
(:class:`ModelSchemaError` otherwise).
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .table import ColumnSpec, analyse, encode

FORMAT = "pipewarden.imputer"
FORMAT_VERSION = 1
MIN_ROWS = 20  # rows of history below which no model is trained
MAX_FIT_ROWS = 50_000  # history rows a model is fitted on (a seeded sample beyond)
MODES = ("accurate", "preserve_variance")
ENGINES = ("embedded", "h2o")
MAX_ERROR = 0.95


class ModelSchemaError(InputError):
    """The batch's columns no longer match the ones the model was trained on."""


class NotEnoughHistory(InputError):
    """Too few rows (or no usable column) to train an imputer."""


def schema_hash(specs: list[ColumnSpec]) -> str:
    body = json.dumps([[s.name, s.kind, s.categories if not s.numeric else None] for s in specs],
                      default=str)  # fmt: skip
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def make_engine(name: str, options: dict[str, Any] | None = None):
    options = dict(options or {})
    if name == "embedded":
        from .embedded import EmbeddedEngine

        known = {"max_iter", "tol", "knn_k", "knn_rows", "seed"}
        return EmbeddedEngine(**{k: v for k, v in options.items() if k in known})
    if name == "h2o":
        from .h2o import H2OImputeEngine

        return H2OImputeEngine.from_options(options)
    raise InputError(f"unknown imputation engine {name!r}", key="engine", hint="embedded or h2o")


@dataclass
class ImputeResult:
    fills: dict[int, dict[str, Any]]  # row -> {column: value}
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def cells(self) -> int:
        return sum(len(f) for f in self.fills.values())


@dataclass
class ImputerModel:
    specs: list[ColumnSpec]
    excluded: dict[str, str]
    engine: Any
    info: dict[str, Any] = field(default_factory=dict)
    max_error: float = MAX_ERROR

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls,
        records: list[dict[str, Any]],
        *,
        engine: str = "embedded",
        engine_options: dict[str, Any] | None = None,
        exclude: list[str] | tuple[str, ...] = (),
        region: str = "US",
        max_error: float = MAX_ERROR,
        max_rows: int = MAX_FIT_ROWS,
        seed: int = 0,
        min_rows: int = MIN_ROWS,
    ) -> ImputerModel:
        """Train on ``records`` (the history: a table, a file, or the batch itself)."""
        if len(records) < min_rows:
            raise NotEnoughHistory(
                f"the history has {len(records)} row(s); an imputer needs at least {min_rows}",
                hint="train on more history (a file or the store's table), or lower min_rows",
            )
        if len(records) > max_rows:
            keep = np.sort(np.random.default_rng(seed).choice(len(records), max_rows, False))
            records = [records[i] for i in keep]
        analysis = analyse(records, exclude=exclude, region=region)
        if not analysis.specs:
            why = ", ".join(f"{k}: {v}" for k, v in analysis.excluded.items()) or "no columns"
            raise NotEnoughHistory(
                f"no column can be used to impute ({why})",
                hint="columns that are PII, ids, free text or constant are never used",
            )
        X, _ = encode(records, analysis.specs)
        eng = make_engine(engine, {"seed": seed, **(engine_options or {})})
        with _one_thread():
            eng.fit(X, analysis.specs)
        info = {
            "engine": eng.name,
            "rows": len(records),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "schema": schema_hash(analysis.specs),
        }
        return cls(analysis.specs, analysis.excluded, eng, info, max_error)

    # ------------------------------------------------------------------ rules
    def column_status(self, j: int) -> tuple[bool, str]:
        """(may be filled, why not / 'ok')."""
        error, baseline = self.engine.expected_error(j)
        if error is None:
            return False, "too few known values in the history"
        ok = baseline > 0 and error <= self.max_error * baseline
        return ok, "ok" if ok else "too little signal"

    def columns_report(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for j, s in enumerate(self.specs):
            ok, why = self.column_status(j)
            error, baseline = self.engine.expected_error(j)
            d: dict[str, Any] = {"kind": s.kind, "fillable": ok, **self.engine.column_info(j)}
            if error is not None:
                if s.numeric:
                    d["expected_nrmse"] = round(error, 4)
                    d["mean_nrmse"] = round(baseline, 4)
                    d["expected_rmse"] = _sig(
                        error * s.std * (86400 if s.kind == "timestamp" else 1)
                    )
                else:
                    d["expected_error_rate"] = round(error, 4)
                    d["mode_error_rate"] = round(baseline, 4)
            if not ok:
                d["reason"] = why
            out[s.name] = d
        return out

    def check_schema(self, records: list[dict[str, Any]]) -> list[str]:
        """Raise :class:`ModelSchemaError` when a column of the model now holds values of
        another kind; returns the model's columns the batch does not have at all."""
        absent = []
        for s in self.specs:
            values = [r[s.name] for r in records[:2000] if r.get(s.name) is not None]
            if not any(s.name in r for r in records[:2000]) and records:
                absent.append(s.name)
                continue
            if not values:
                continue
            X, _ = encode([{s.name: v} for v in values], [s])
            unreadable = float(np.isnan(X[:, 0]).mean())
            limit = 0.5 if s.kind in ("category", "boolean") else 0.1
            if unreadable > limit:
                raise ModelSchemaError(
                    f"column {s.name!r} was {s.kind} when the imputer was trained; "
                    f"{unreadable:.0%} of its values in this batch are not",
                    key=s.name,
                    hint="train the imputer again on the current history "
                    "(pipewarden impute --history ... --save-model DIR)",
                )
        return absent

    # ------------------------------------------------------------------ impute
    def impute(
        self,
        records: list[dict[str, Any]],
        *,
        columns: list[str] | None = None,
        mode: str = "accurate",
        seed: int = 0,
        key: str = "",
        skip_rows: set[int] | frozenset[int] = frozenset(),
    ) -> ImputeResult:
        """Fill the missing cells of ``records`` that the rules allow. ``key`` (e.g. the batch
        id) and ``seed`` make ``preserve_variance`` draws repeatable; ``skip_rows`` are left
        alone (rows another step already holds back)."""
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}", key="mode", hint=" or ".join(MODES))
        absent = self.check_schema(records)
        names = [s.name for s in self.specs]
        allowed = set(names) if columns is None else set(columns)
        report_cols: dict[str, dict[str, Any]] = {}
        X, missing = encode(records, self.specs)
        if skip_rows:
            missing[sorted(r for r in skip_rows if r < len(records))] = False
        known = ~np.isnan(X)
        others_known = known.sum(axis=1, keepdims=True) - known > 0
        fill = np.zeros_like(missing)
        for j, s in enumerate(self.specs):
            ok, why = self.column_status(j)
            col = {"missing": int(missing[:, j].sum()), "filled": 0}
            if s.name not in allowed:
                col["status"] = "not allowed by the policy"
            elif not ok:
                col["status"] = f"left null: {why}"
            else:
                fill[:, j] = missing[:, j] & others_known[:, j]
                lonely = int((missing[:, j] & ~others_known[:, j]).sum())
                col["status"] = "filled"
                if lonely:
                    col["left_null_no_known_value_in_row"] = lonely
            report_cols[s.name] = col
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        with _one_thread():
            values = self.engine.transform(X, fill, mode, rng) if fill.any() else None
        fills: dict[int, dict[str, Any]] = {}
        if values is not None:
            from .table import decode

            for j, s in enumerate(self.specs):
                rows = np.flatnonzero(fill[:, j] & ~np.isnan(values[:, j]))
                for i in rows:
                    fills.setdefault(int(i), {})[s.name] = decode(s, float(values[i, j]))
                report_cols[s.name]["filled"] = int(rows.size)
        for name in columns or []:
            if name not in report_cols:
                why = self.excluded.get(name)
                report_cols[name] = {
                    "missing": sum(1 for r in records if r.get(name) is None),
                    "filled": 0,
                    "status": f"left null: {why}" if why else "left null: not in the model",
                }
        model_cols = self.columns_report()
        for name, col in report_cols.items():
            col.update({k: v for k, v in model_cols.get(name, {}).items() if k != "fillable"})
        report = {
            "mode": mode,
            "engine": self.engine.name,
            "model": {k: self.info.get(k) for k in ("version", "trained_at", "rows", "schema")},
            "rows": len(records),
            "rows_with_fills": len(fills),
            "cells_filled": sum(len(f) for f in fills.values()),
            "cells_missing": int(missing.sum()),
            "columns": report_cols,
            "excluded": dict(self.excluded),
        }
        if absent:
            report["absent_columns"] = absent
        return ImputeResult(fills, report)

    # ------------------------------------------------------------------ persistence
    def to_doc(self, artifacts: Path | None = None) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "info": self.info,
            "max_error": self.max_error,
            "columns": [s.to_dict() for s in self.specs],
            "excluded": self.excluded,
            "engine": {"name": self.engine.name, **self.engine.to_dict()},
        }

    @classmethod
    def from_doc(cls, doc: Any, where: str = "<model>", engine_options: dict | None = None):
        try:
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("not an imputer model")
            if doc.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"model format {doc.get('format_version')!r} is not {FORMAT_VERSION}"
                )
            specs = [ColumnSpec.from_dict(c) for c in doc["columns"]]
            info = dict(doc.get("info") or {})
            if info.get("schema") != schema_hash(specs):
                raise ValueError("its columns do not match its schema hash")
            name = doc["engine"]["name"]
            if name == "embedded":
                from .embedded import EmbeddedEngine

                engine = EmbeddedEngine.from_dict(doc["engine"], specs)
            elif name == "h2o":
                from .h2o import H2OImputeEngine

                engine = H2OImputeEngine.from_dict(doc["engine"], specs, engine_options or {})
            else:
                raise ValueError(f"unknown engine {name!r}")
            return cls(specs, dict(doc.get("excluded") or {}), engine, info,
                       float(doc.get("max_error", MAX_ERROR)))  # fmt: skip
        except InputError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
            why = f"lacks {exc}" if isinstance(exc, KeyError) else (
                str(exc) if isinstance(exc, ValueError) else f"a value of the wrong type ({type(exc).__name__})"
            )  # fmt: skip
            raise InputError(
                f"cannot read the imputer model: {why}",
                file=where,
                hint="train it again (pipewarden impute --history FILE --save-model DIR)",
            ) from None

    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (``model.json``)."""
        from ..files import replacing_dir

        with replacing_dir(path, ".pwimputer-") as tmp:
            artifacts = (
                self.engine.save_artifacts(tmp) if hasattr(self.engine, "save_artifacts") else None
            )
            (tmp / "model.json").write_text(json.dumps(self.to_doc(artifacts)))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, engine_options: dict | None = None) -> ImputerModel:
        p = Path(path)
        meta = p / "model.json" if p.is_dir() else p
        if not meta.is_file():
            raise InputError(
                "not an imputer model (no model.json)",
                file=str(p),
                hint="train one with `pipewarden impute --history FILE --save-model DIR`",
            )
        try:
            doc = json.loads(meta.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise InputError(
                f"cannot read the imputer model: not valid JSON ({type(exc).__name__})",
                file=str(meta),
                hint="train it again",
            ) from None
        return cls.from_doc(doc, str(meta), engine_options)

    def close(self) -> None:
        close = getattr(self.engine, "close", None)
        if close:
            close()


def _one_thread():
    """BLAS on one thread: the models are small (a column against the others), and threads
    only add their start-up and contention (measured 10-100x slower on a busy machine)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _sig(x: float) -> float:
    return float(f"{x:.4g}") if math.isfinite(x) else x
