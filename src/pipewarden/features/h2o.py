"""Feature discovery on H2O: AutoML on the raw columns and again with the chosen features, and H2O's own interaction statistics (a GBM's Friedman's H through
``model.h`` and its ``feature_interaction`` table). Frames go to H2O as CSV, no pandas."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import tempfile
from typing import Any

from ..h2o_cluster import _quiet, ensure_cluster, h2o_module
from ..impute.table import ColumnSpec, encode
from .spec import Feature, compute


def _h2o():
    return h2o_module("pip install 'pipewarden[h2o]' (and Java 11+), or use --engine embedded")


def _frame(rows, specs: list[ColumnSpec], tspec: ColumnSpec, extra: list[Feature] = ()):
    """An H2OFrame of the predictors (numbers; categories as labels), the target and a split
    column (0 train, 1 valid, 2 test is added by the caller)."""
    X, _ = encode(rows, [*specs, tspec])
    F = compute(list(extra), rows) if extra else []
    names = [f"x{j}" for j in range(len(specs))] + [f.name for f in extra] + ["target"]
    types = ["numeric" if s.numeric else "enum" for s in specs] + ["numeric"] * len(extra)
    types.append("numeric" if tspec.numeric else "enum")
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="pw-features-")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(names)
            for i in range(len(rows)):
                cells = []
                for v, s in zip(X[i], [*specs, tspec], strict=True):
                    cells.append(
                        "" if math.isnan(v) else (repr(float(v)) if s.numeric else f"c{int(v)}")
                    )
                feats = ["" if F[i][x.name] is None else repr(float(F[i][x.name])) for x in extra]
                w.writerow(cells[:-1] + feats + cells[-1:])
        with _quiet():
            return _h2o().upload_file(path, header=1, col_types=types, col_names=names,
                                      na_strings=[""] * len(names)), names  # fmt: skip
    finally:
        os.unlink(path)


def _split(frame, tr, va, te):
    """Train, valid and test frames of the given row indexes."""
    return (frame[sorted(map(int, tr)), :], frame[sorted(map(int, va)), :],
            frame[sorted(map(int, te)), :])  # fmt: skip


def _metric(model, test, classify: bool) -> dict[str, float]:
    perf = model.model_performance(test)
    if classify:
        return {"logloss": round(float(perf.logloss()), 5)}
    return {"r2": round(float(perf.r2()), 5), "rmse": round(float(perf.rmse()), 5)}


def _automl(train, valid, test, names, limits: dict, seed: int, classify: bool) -> dict:
    from h2o.automl import H2OAutoML

    aml = H2OAutoML(max_runtime_secs=limits["max_runtime"], max_models=limits.get("max_models"),
                    seed=seed, nfolds=0, exclude_algos=["DeepLearning"], verbosity=None)  # fmt: skip
    with _quiet():
        aml.train(x=names[:-1], y="target", training_frame=train, leaderboard_frame=valid)
    leader = aml.leader
    out = {"leader": leader.model_id.split("_AutoML")[0], "test": _metric(leader, test, classify)}
    out["models"] = int(aml.leaderboard.nrows)
    return out


def automl_interactions(rows, specs, tspec, tr, va, te, limits, seed, options, pairs):
    """AutoML on the raw columns, and H2O's interaction statistics of the pairs. ``limits``:
    ``max_runtime`` (seconds) and ``max_models`` (None: the clock alone)."""
    ensure_cluster(options.get("url"), options.get("max_mem", "1g"), options.get("nthreads", -1))
    h2o = _h2o()
    classify = not tspec.numeric
    frame, names = _frame(rows, specs, tspec)
    train, valid, test = _split(frame, tr, va, te)
    report: dict[str, Any] = {"max_runtime": limits["max_runtime"],
                              "max_models": limits.get("max_models")}  # fmt: skip
    try:
        report["automl_raw"] = _automl(train, valid, test, names, limits, seed, classify)
        from h2o.estimators import H2OGradientBoostingEstimator

        gbm = H2OGradientBoostingEstimator(ntrees=50, max_depth=5, seed=seed)
        with _quiet():
            gbm.train(x=names[:-1], y="target", training_frame=train)
        col = {s.name: f"x{j}" for j, s in enumerate(specs)}
        hs = []
        for a, b, _ in pairs:
            with contextlib.suppress(Exception), _quiet():
                hs.append({"pair": [a, b], "h2o_friedman_h":
                           round(float(gbm.h(train, [col[a], col[b]])), 4)})  # fmt: skip
        report["h2o_interactions"] = hs
        try:
            with _quiet():
                tables = gbm.feature_interaction(max_interaction_depth=2, max_tree_depth=5)
            first = tables[1] if isinstance(tables, list) and len(tables) > 1 else None
            if first is not None:
                back = {f"x{j}": s.name for j, s in enumerate(specs)}
                rows_ = first.cell_values[:10]
                report["h2o_feature_interaction"] = [
                    {"pair": [back.get(p, p) for p in str(r[0]).split("|")],
                     "gain": round(float(r[2]), 4)} for r in rows_
                ]  # fmt: skip
        except Exception as exc:  # reported: H2O's table is informative, not needed
            report["h2o_feature_interaction"] = f"not available: {type(exc).__name__}"
        with contextlib.suppress(Exception):
            h2o.remove(gbm)
    finally:
        for f in (train, valid, test, frame):
            with contextlib.suppress(Exception):
                h2o.remove(f)
    return {"report": report}


def automl_with_features(rows, specs, tspec, features, tr, va, te, limits, seed, prev):
    """AutoML again, with the chosen features as extra columns."""
    h2o = _h2o()
    frame, names = _frame(rows, specs, tspec, features)
    train, valid, test = _split(frame, tr, va, te)
    try:
        return _automl(train, valid, test, names, limits, seed, not tspec.numeric)
    finally:
        for f in (train, valid, test, frame):
            with contextlib.suppress(Exception):
                h2o.remove(f)
