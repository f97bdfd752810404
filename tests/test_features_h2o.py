"""`features discover --engine h2o` against a real local H2O (the session's one cluster): H2O
AutoML runs on the raw columns and again with the chosen features, and H2O's own Friedman's H
finds the planted interaction. AutoML is bounded by a model count (``--max-models 2``), with
the clock only as a far ceiling: the models trained, and so the scores, are the same on a quiet
machine and on a busy one (a 5 s clock budget alone trained too little under load)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipewarden.cli import main

pytestmark = pytest.mark.h2o


def _rows(n: int = 400, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a, b, c = (round(float(x), 4) for x in rng.uniform(0.5, 3, 3))
        out.append(
            {"a": a, "b": b, "c": c, "y": round(a * b * 4 + c + float(rng.normal(0, 0.3)), 4)}
        )
    return out


def test_discover_with_h2o_automl_and_h2o_interactions(h2o_cluster, tmp_path, capsys):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    capsys.readouterr()
    code = main(["features", "discover", "--data", str(data), "--target", "y", "--engine", "h2o",
                 "--max-models", "2", "--max-runtime", "600", "--h2o-url", h2o_cluster, "--max-features", "3",
                 "--out", str(tmp_path / "spec.json"), "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["features"][0]["name"] in ("a_x_b", "b_x_a")
    h2o = doc["h2o"]
    raw, with_f = h2o["automl_raw"], h2o["automl_with_features"]
    assert h2o["max_runtime"] == 600 and h2o["max_models"] == 2
    assert raw["models"] == 2 and with_f["models"] == 2  # the count, not the clock, stopped it
    assert 0.5 < raw["test"]["r2"] <= 1 and 0.5 < with_f["test"]["r2"] <= 1
    # a product of a and b as a column makes the target nearly linear: AutoML does no worse
    assert with_f["test"]["rmse"] <= raw["test"]["rmse"] * 1.1, h2o
    hs = {tuple(sorted(h["pair"])): h["h2o_friedman_h"] for h in h2o["h2o_interactions"]}
    assert hs, h2o
    top = max(hs, key=hs.get)
    assert top == ("a", "b"), hs  # H2O's H agrees with ours on the planted pair
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec["h2o"]["automl_with_features"]["leader"] == with_f["leader"]
