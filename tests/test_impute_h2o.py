"""The h2o imputation engine against a real local H2O (the session's one cluster): GLRM and a
GBM per column fill better than the mean, say their expected error, keep the spread in
preserve_variance, and a saved model fills the same cells after a reload."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from pipewarden.cli import main
from pipewarden.impute.model import ImputerModel

pytestmark = pytest.mark.h2o


def _case(seed: int = 3):
    X = load_diabetes().data
    M = np.random.default_rng(seed).random(X.shape) < 0.2
    M[M.all(axis=1), 0] = False
    recs = [{f"c{j}": (None if M[i, j] else float(X[i, j])) for j in range(X.shape[1])}
            for i in range(X.shape[0])]  # fmt: skip
    return X, M, recs


def _apply(X, M, res):
    out = np.where(M, np.nan, X)
    for i, f in res.fills.items():
        for k, v in f.items():
            out[i, int(k[1:])] = v
    return out


def _nrmse(X, Xi, M):
    return float(np.mean([np.sqrt(np.mean((X[M[:, j], j] - Xi[M[:, j], j]) ** 2)) / X[:, j].std()
                          for j in range(X.shape[1])]))  # fmt: skip


@pytest.mark.parametrize("algorithm", ["glrm", "gbm"])
def test_h2o_engines_fill_better_than_the_mean(h2o_cluster, algorithm, tmp_path):
    X, M, recs = _case()
    model = ImputerModel.fit(recs, engine="h2o", engine_options={"algorithm": algorithm},
                             max_error=10)  # fmt: skip
    try:
        res = model.impute(recs)
        Xi = _apply(X, M, res)
        assert not np.isnan(Xi[M]).any()
        assert _nrmse(X, Xi, M) < 0.9  # the mean gives about 1.0
        col = res.report["columns"]["c2"]
        assert col["model"].startswith(f"h2o_{algorithm}") and 0 < col["expected_nrmse"] < 1.2
        pv = model.impute(recs, mode="preserve_variance")
        Xp = _apply(X, M, pv)
        assert np.mean(Xp.var(axis=0) / X.var(axis=0)) > np.mean(Xi.var(axis=0) / X.var(axis=0))
        model.save(tmp_path / "m")
    finally:
        model.close()
    again = ImputerModel.load(tmp_path / "m")
    try:
        assert again.impute(recs).fills.keys() == res.fills.keys()
        got = again.impute(recs).fills
        for i in list(res.fills)[:20]:
            for k, v in res.fills[i].items():
                assert got[i][k] == pytest.approx(v, rel=1e-6, abs=1e-9)
    finally:
        again.close()


def test_h2o_gbm_fills_categories_and_the_cli_reports_it(h2o_cluster, tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = []
    for _i in range(300):
        x = float(rng.normal())
        rows.append({"x": x, "y": 2 * x + float(rng.normal(0, 0.2)),
                     "seg": "a" if x > 0 else "b"})  # fmt: skip
    for r in rows[::6]:
        r["seg"] = None
        r["y"] = None
    data = tmp_path / "b.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    code = main(["impute", "--data", str(data), "--engine", "h2o", "--h2o-algorithm", "gbm",
                 "--h2o-url", h2o_cluster, "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["columns"]["seg"]["filled"] == 50 and doc["columns"]["y"]["filled"] == 50
    assert doc["columns"]["seg"]["expected_error_rate"] < 0.2
    assert doc["engine"] == "h2o"


def test_an_unreachable_h2o_url_is_exit_2(tmp_path, capsys):
    data = tmp_path / "b.jsonl"
    data.write_text(
        "".join(json.dumps({"x": i, "y": None if i % 3 else i}) + "\n" for i in range(30))
    )
    capsys.readouterr()
    code = main(["impute", "--data", str(data), "--engine", "h2o", "--h2o-url",
                 "http://127.0.0.1:9", "--format", "json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and "unreachable" in doc["error"]
