"""`features discover --engine h2o` against a real local H2O (the session's one cluster): H2O
AutoML (5 s budget) runs on the raw columns and again with the chosen features, and H2O's own
Friedman's H finds the planted interaction. About 20 s on a quiet machine (two AutoML runs at
the smallest budget the CLI allows, plus the embedded discovery they extend); the cluster is
the session's shared one."""

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
                 "--max-runtime", "5", "--h2o-url", h2o_cluster, "--max-features", "3",
                 "--out", str(tmp_path / "spec.json"), "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["features"][0]["name"] in ("a_x_b", "b_x_a")
    h2o = doc["h2o"]
    raw, with_f = h2o["automl_raw"], h2o["automl_with_features"]
    assert h2o["max_runtime"] == 5 and raw["models"] >= 1 and with_f["models"] >= 1
    assert 0.5 < raw["test"]["r2"] <= 1 and 0.5 < with_f["test"]["r2"] <= 1
    # a product of a and b as a column makes the target nearly linear: AutoML does no worse
    assert with_f["test"]["rmse"] <= raw["test"]["rmse"] * 1.1, h2o
    hs = {tuple(sorted(h["pair"])): h["h2o_friedman_h"] for h in h2o["h2o_interactions"]}
    assert hs, h2o
    top = max(hs, key=hs.get)
    assert top == ("a", "b"), hs  # H2O's H agrees with ours on the planted pair
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec["h2o"]["automl_with_features"]["leader"] == with_f["leader"]
