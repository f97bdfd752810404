"""A fitted detector: encoder + robust scaler + engine + calibration, saved as a directory.

A model directory holds ``model.json`` (encoding, robust statistics, calibration, engine
parameters, versions) and the engine's artifact: ``forest.pickle`` for ``sklearn`` (read by an
unpickler that admits only the classes a forest is made of, and every tree checked before use),
the H2O binary model for ``h2o`` (H2O deserialises it in its JVM: load H2O models you trust).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .calibrate import Calibrator
from .encode import Encoder
from .engines import (
    MAX_FIT_ROWS,
    MAX_REF_ROWS,
    RANGE_FACTOR,
    Engine,
    ModelError,
    _sample_rows,
    _subsample,
    load_engine,
    make_engine,
)
from .robust import RobustScaler

FORMAT = 1
EXPLAIN_Z = 3.0


def _z(scaler: RobustScaler, sided: np.ndarray, X: np.ndarray, keep_nan=False) -> np.ndarray:
    Z = scaler.z(X, keep_nan)
    for j in np.flatnonzero(sided):
        col = Z[:, j]
        (np.maximum if sided[j] > 0 else np.minimum)(col, 0, out=col)
    return Z


def _ranges(
    scaler: RobustScaler, sided: np.ndarray, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: the largest |robust z| over all rows of X (how far the reference's own
    extremes go: ``beyond_range``), and the second largest (the bonus's range: a lone broken
    value in the reference does not widen the range it is judged by), from the scaler's
    sample and the largest of all rows (two values of a column outside the sample that lie
    beyond all of it count as the largest: both are then beyond the rest). 0 for a feature
    without values."""
    n, d = X.shape if X.ndim == 2 else (0, 0)
    if n == 0 or d == 0:
        return np.zeros(d), np.zeros(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column without values: NaN
        ends = np.vstack([np.nanmin(X, axis=0), np.nanmax(X, axis=0)])
    full = np.nan_to_num(np.abs(_z(scaler, sided, ends, keep_nan=True)), nan=0.0).max(axis=0)
    if scaler.ends is None:
        return full, full
    top = np.sort(np.abs(_z(scaler, sided, scaler.ends)), axis=0)
    return full, np.where(full > top[-1], top[-1], top[-2])


@dataclass
class Model:
    encoder: Encoder
    scaler: RobustScaler
    engine: Engine
    calibrator: Calibrator
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        records: list[dict[str, Any]],
        engine: str = "sklearn",
        engine_options: dict[str, Any] | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        region: str = "US",
    ) -> Model:
        encoder, X = cls.encode(records, include, exclude, region)
        return cls.fit_matrix(X, encoder, make_engine(engine, engine_options))

    @staticmethod
    def encode(
        records: list[dict[str, Any]],
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        region: str = "US",
        report: dict[str, Any] | None = None,
    ) -> tuple[Encoder, np.ndarray]:
        """The encoder fitted on ``records`` and their feature matrix (``report``: what
        :meth:`Encoder.transform` reports); NoFeatures when no column can be scored."""
        encoder = Encoder.fit(records, include=include, exclude=exclude, region=region)
        if not encoder.features:
            raise NoFeatures(encoder.excluded)
        return encoder, encoder.transform(records, report)

    @classmethod
    def fit_matrix(cls, X: np.ndarray, encoder: Encoder, engine: Engine) -> Model:
        # the scaler, the engine and the calibration all learn from one sample of the
        # reference (quartiles and a forest of 256-row trees need no more; the quantiles of
        # 100,000 rows x 200 columns cost more than the forest)
        sample = _subsample(X, min(MAX_FIT_ROWS, MAX_REF_ROWS), 1)
        scaler = RobustScaler.fit(sample)
        Z = _z(scaler, encoder.sided, sample, keep_nan=True)  # engines see missing values
        zmax, trimmed = _ranges(scaler, encoder.sided, X)
        if hasattr(engine, "use_reference"):
            engine.use_reference(scaler.left, scaler.right, trimmed)
        ref_raw = engine.fit(Z)
        if ref_raw is None:
            ref_raw = engine.raw_scores(_subsample(Z, MAX_REF_ROWS, 2))
        calibrator = Calibrator.fit(ref_raw)
        info = cls._info(engine, X, encoder, zmax)
        return cls(encoder, scaler, engine, calibrator, info)

    @classmethod
    def fit_score(
        cls, X: np.ndarray, encoder: Encoder, engine: Engine
    ) -> tuple[Model, np.ndarray, np.ndarray]:
        """A model fitted on X, and X's scores and z-scores (as :meth:`score_matrix` gives):
        the same model and scores as :meth:`fit_matrix` then :meth:`score_matrix` of X, with
        X scaled once and the reference's rows scored once (a batch ranked against itself)."""
        n = min(MAX_FIT_ROWS, MAX_REF_ROWS)
        rows = _sample_rows(X.shape[0], n, 1) if X.shape[0] > n else None
        scaler = RobustScaler.fit(X if rows is None else X[rows])
        Z = _z(scaler, encoder.sided, X, keep_nan=True)
        zmax, bonus_range = _ranges(scaler, encoder.sided, X)
        if hasattr(engine, "use_reference"):
            engine.use_reference(scaler.left, scaler.right, bonus_range)
        if hasattr(engine, "fit_score"):
            raw, ref_raw = engine.fit_score(Z, rows)
        else:
            sample = Z if rows is None else Z[rows]
            ref_raw = engine.fit(sample)
            if ref_raw is None:
                ref_raw = engine.raw_scores(_subsample(sample, MAX_REF_ROWS, 2))
            raw = engine.raw_scores(Z)
        calibrator = Calibrator.fit(ref_raw)
        model = cls(encoder, scaler, engine, calibrator, cls._info(engine, X, encoder, zmax))
        if X.shape[0] == 0:
            return model, np.zeros(0), np.nan_to_num(Z)
        return model, calibrator.normalise(raw), np.nan_to_num(Z, copy=False)

    @staticmethod
    def _info(engine: Engine, X: np.ndarray, encoder: Encoder, zmax: np.ndarray) -> dict:
        return {
            "engine": engine.name,
            "rows": int(X.shape[0]),
            "features": encoder.names,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            # per feature, the largest |robust z| of every reference row (not only of the
            # sample the scaler and the engine learn from): how far its own extremes go
            # (see beyond_range)
            "zmax": zmax.round(4).tolist() if X.shape[0] else [],
        }

    def z(self, X: np.ndarray, keep_nan: bool = False) -> np.ndarray:
        return _z(self.scaler, self.encoder.sided, X, keep_nan)

    def score_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised scores in [0, 1] and the robust z-scores (for the explanations; a
        missing value has z-score 0 there)."""
        Z = self.z(X, keep_nan=True)
        if X.shape[0] == 0:
            return np.zeros(0), np.nan_to_num(Z)
        scores = self.calibrator.normalise(self.engine.raw_scores(Z))
        return scores, np.nan_to_num(Z, copy=False)

    def score(
        self, records: list[dict[str, Any]], report: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and z-scores of `records`; `report` as in :meth:`Encoder.transform`."""
        return self.score_matrix(self.encoder.transform(records, report))

    def beyond_range(self, Z: np.ndarray) -> np.ndarray:
        """Rows with a value beyond anything the reference had: a feature's |robust z| more
        than RANGE_FACTOR times the reference's own largest, (new category values are the monitors' business). Healthy data has real extremes (a survey's one answer of 57 where most are under
        10); a high score alone quarantines them once a model has not seen them yet, so the
        default quarantine also asks for this. A model without the range (saved before it was
        kept) answers True for every row."""
        zmax = self.info.get("zmax")
        if not zmax or len(zmax) != Z.shape[1]:
            return np.ones(Z.shape[0], dtype=bool)
        limit = RANGE_FACTOR * np.maximum(np.asarray(zmax, dtype=float), 1.0)
        return (np.abs(Z) > limit).any(axis=1)

    def explain(self, z_row: np.ndarray, top: int = 3) -> tuple[list[str], str]:
        """The columns that made one row unusual, and a sentence without any raw value."""
        feats = self.encoder.features
        order = np.argsort(-np.abs(z_row))
        strong = [j for j in order if abs(z_row[j]) >= EXPLAIN_Z]
        columns: list[str] = []
        parts: list[str] = []
        for j in strong:
            f = feats[j]
            if f.column in columns:
                continue
            columns.append(f.column)
            if f.kind == "category":
                parts.append(f"{f.column}: rare value")
            elif f.kind == "null":
                parts.append(f"{f.column}: unexpected null")
            else:
                side = "high" if z_row[j] > 0 else "low"
                parts.append(f"{f.column}: unusually {side} (robust z {z_row[j]:+.1f})")
            if len(columns) >= top:
                break
        if parts:
            return columns, "; ".join(parts)
        for j in order[:2]:
            if feats[j].column not in columns:
                columns.append(feats[j].column)
        return columns, "unusual combination of " + ", ".join(columns)

    # persistence ---------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (a half-written model is never left behind)."""
        from ..files import replacing_dir

        with replacing_dir(path, ".pwmodel-") as tmp:
            params = self.engine.save(tmp)
            doc = {
                "format": FORMAT,
                "info": self.info,
                "encoder": self.encoder.to_dict(),
                "scaler": self.scaler.to_dict(),
                "calibrator": self.calibrator.to_dict(),
                "engine": {"name": self.engine.name, "params": params},
            }
            (tmp / "model.json").write_text(json.dumps(doc))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, engine_options: dict[str, Any] | None = None) -> Model:
        p = Path(path)
        meta = p / "model.json"
        if not meta.is_file():
            raise InputError(
                "not a model directory (no model.json)",
                file=str(p),
                hint="train one with `pipewarden anomaly train --data FILE --out DIR`",
            )
        try:
            doc = json.loads(meta.read_text())
            if doc.get("format") != FORMAT:
                raise ModelError(f"model.json is not of model format {FORMAT}")
            engine = load_engine(
                doc["engine"]["name"], p, doc["engine"]["params"], engine_options or {}
            )
            return cls(
                Encoder.from_dict(doc["encoder"]),
                RobustScaler.from_dict(doc["scaler"]),
                engine,
                Calibrator.from_dict(doc["calibrator"]),
                doc.get("info", {}),
            )
        except InputError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError, OSError, RecursionError) as exc:
            # the file's values are not quoted: a damaged or crafted file may hold anything
            if isinstance(exc, ModelError | OSError):
                why = str(exc)
            elif isinstance(exc, json.JSONDecodeError):
                why = f"model.json is not valid JSON (line {exc.lineno})"
            elif isinstance(exc, KeyError):
                why = f"model.json lacks {exc}"
            elif isinstance(exc, AttributeError):
                why = "model.json is not a model document"
            elif isinstance(exc, RecursionError):
                why = "model.json nests too deeply"
            else:
                why = f"model.json holds a value of the wrong type ({type(exc).__name__})"
            raise InputError(
                f"cannot read the model: {why}", file=str(p), hint="train the model again"
            ) from None

    def to_blob(self) -> str:
        """The saved model directory as one string (a compressed tar, base64): how a model
        trained from history is kept in the store's state."""
        import base64
        import io
        import tarfile
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pw-model-") as tmp:
            path = self.save(Path(tmp) / "model")
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:xz") as tar:
                for f in sorted(path.iterdir()):
                    tar.add(f, arcname=f.name)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    @classmethod
    def from_blob(cls, blob: str, engine_options: dict[str, Any] | None = None) -> Model:
        """A model from :meth:`to_blob`, read back through :meth:`load` (the forest through
        its restricted unpickler). Only regular files with plain names are unpacked."""
        import base64
        import io
        import tarfile
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pw-model-") as tmp:
            target = Path(tmp) / "model"
            target.mkdir()
            try:
                with tarfile.open(fileobj=io.BytesIO(base64.b64decode(blob)), mode="r:xz") as tar:
                    for m in tar.getmembers():
                        if not m.isfile() or "/" in m.name or m.name.startswith("."):
                            raise ModelError("the stored model holds an unexpected entry")
                        f = tar.extractfile(m)
                        assert f is not None
                        (target / m.name).write_bytes(f.read())
            except (ValueError, tarfile.TarError, EOFError, OSError) as exc:
                raise ModelError(f"the stored model cannot be read ({type(exc).__name__})") from exc
            return cls.load(target, engine_options)

    def close(self) -> None:
        self.engine.close()


class NoFeatures(Exception):
    """No column of the batch can be scored."""

    def __init__(self, excluded: dict[str, str]) -> None:
        self.excluded = excluded
        super().__init__("no column can be scored")
