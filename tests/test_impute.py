"""The imputer (embedded engine): accuracy and variance on bundled data, kinds of columns, the
rules that leave a cell null, persistence, and the edge cases that must answer clearly."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_wine
from threadpoolctl import threadpool_limits

from pipewarden.cli import main
from pipewarden.errors import InputError
from pipewarden.impute.model import ImputerModel, ModelSchemaError, NotEnoughHistory


def _masked(X: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    M = np.random.default_rng(seed).random(X.shape) < frac
    M[M.all(axis=1), 0] = False
    return np.where(M, np.nan, X), M


def _records(X: np.ndarray) -> list[dict]:
    return [{f"c{j}": (None if np.isnan(v) else float(v)) for j, v in enumerate(r)} for r in X]


def _fill(X: np.ndarray, mode: str, **kw) -> np.ndarray:
    recs = _records(X)
    model = ImputerModel.fit(recs, max_error=10, **kw)
    res = model.impute(recs, mode=mode)
    out = X.copy()
    for i, f in res.fills.items():
        for k, v in f.items():
            out[i, int(k[1:])] = v
    return out


def _nrmse(X, Xi, M) -> float:
    return float(np.mean([np.sqrt(np.mean((X[M[:, j], j] - Xi[M[:, j], j]) ** 2)) / X[:, j].std()
                          for j in range(X.shape[1]) if M[:, j].any()]))  # fmt: skip


def _var_ratio(X, Xi) -> float:
    return float(np.mean(Xi.var(axis=0) / X.var(axis=0)))


def _iterative(Xm, **kw):
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    from sklearn.linear_model import BayesianRidge

    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore")
        return IterativeImputer(BayesianRidge(), max_iter=10, random_state=0, **kw).fit_transform(
            Xm
        )


@pytest.mark.parametrize("loader", [load_diabetes, load_wine])
def test_accurate_mode_is_as_accurate_as_iterative_imputer(loader):
    """accurate: the conditional mean. Measured (bench/impute): at or below IterativeImputer's
    NRMSE, and like every conditional mean it shrinks the column's variance."""
    X = loader().data
    Xm, M = _masked(X, 0.2, seed=7)
    ours = _fill(Xm, "accurate")
    assert not np.isnan(ours[M]).any()
    peer = _iterative(Xm)
    assert _nrmse(X, ours, M) <= 1.03 * _nrmse(X, peer, M)
    assert _nrmse(X, ours, M) < 0.8  # far better than the mean (1.0)
    assert _var_ratio(X, ours) < 0.97


@pytest.mark.parametrize("frac", [0.2, 0.4])
@pytest.mark.parametrize("loader", [load_diabetes, load_wine])
def test_preserve_variance_mode_keeps_the_spread_at_less_error_than_posterior_draws(loader, frac):
    """preserve_variance: the filled columns keep their variance (>= 0.97 of the true one, at
    40% missing too), at less error than IterativeImputer's posterior draws."""
    X = loader().data
    Xm, M = _masked(X, frac, seed=7)
    ours = _fill(Xm, "preserve_variance")
    accurate = _fill(Xm, "accurate")
    draws = _iterative(Xm, sample_posterior=True)
    assert 0.97 <= _var_ratio(X, ours) <= 1.05
    assert _var_ratio(X, ours) > _var_ratio(X, accurate) + 0.05
    assert _nrmse(X, ours, M) <= _nrmse(X, draws, M)


def _mixed(n: int = 400, seed: int = 3) -> list[dict]:
    """A table with a category, a boolean, an integer and a date that depend on a number."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = float(rng.normal())
        out.append(
            {
                "id": i,
                "x": round(x, 4),
                "y": round(2 * x + float(rng.normal(0, 0.3)), 4),
                "segment": "high" if x > 0.3 else ("low" if x < -0.3 else "mid"),
                "flag": bool(x > 0),
                "qty": int(round(10 + 5 * x)),
                "day": f"2024-{1 + int(np.clip(6 + 3 * x, 0, 11)):02d}-15",
                "email": f"person{i}@example.org",
            }
        )
    return out


def test_each_kind_of_column_is_filled_with_its_own_kind_of_value():
    recs = _mixed()
    model = ImputerModel.fit(recs)
    batch = [dict(r) for r in _mixed(60, seed=9)]
    truth = [dict(r) for r in batch]
    for r in batch:
        for k in ("y", "segment", "flag", "qty", "day"):
            r[k] = None
    res = model.impute(batch)
    assert res.report["cells_filled"] == 60 * 5
    seg_ok = sum(res.fills[i]["segment"] == truth[i]["segment"] for i in range(60))
    assert seg_ok >= 45
    assert sum(res.fills[i]["flag"] == truth[i]["flag"] for i in range(60)) >= 50
    for i in range(60):
        f = res.fills[i]
        assert isinstance(f["qty"], int) and isinstance(f["flag"], bool)
        assert f["segment"] in ("high", "mid", "low")
        assert isinstance(f["day"], str) and len(f["day"]) == 10 and f["day"].startswith("2024-")
        assert abs(f["y"] - truth[i]["y"]) < 1.5
    cols = res.report["columns"]
    assert cols["y"]["expected_nrmse"] < 0.4
    assert cols["segment"]["expected_error_rate"] < cols["segment"]["mode_error_rate"]
    assert res.report["excluded"] == {"id": "id", "email": "pii"}


def test_pii_columns_are_never_predictors_nor_filled_nor_stored(tmp_path):
    recs = _mixed()
    for r in recs[::5]:
        r["email"] = None
    model = ImputerModel.fit(recs)
    res = model.impute(recs)
    assert all("email" not in f for f in res.fills.values())
    assert res.report["excluded"]["email"] == "pii"
    model.save(tmp_path / "m")
    text = (tmp_path / "m" / "model.json").read_text()
    assert "example.org" not in text and "person1" not in text


def test_a_column_with_no_signal_is_left_null_and_said_so():
    rng = np.random.default_rng(0)
    recs = [{"a": float(v), "b": 2 * float(v) + float(rng.normal(0, 0.1)),
             "noise": float(rng.normal())} for v in rng.normal(size=300)]  # fmt: skip
    for r in recs[::4]:
        r["noise"] = None
        r["b"] = None
    res = ImputerModel.fit(recs).impute(recs)
    cols = res.report["columns"]
    assert cols["noise"]["filled"] == 0
    assert cols["noise"]["status"] == "left null: too little signal"
    assert cols["noise"]["expected_nrmse"] > 0.95 * cols["noise"]["mean_nrmse"]
    assert cols["b"]["filled"] == 75 and cols["b"]["status"] == "filled"


def test_policy_columns_decide_what_is_filled():
    recs = _mixed()
    for r in recs[::3]:
        r["y"] = None
        r["qty"] = None
    res = ImputerModel.fit(recs).impute(recs, columns=["qty"])
    assert {k for f in res.fills.values() for k in f} == {"qty"}
    assert res.report["columns"]["y"]["status"] == "not allowed by the policy"


def test_a_batch_whose_cells_are_all_missing_gets_no_guess():
    model = ImputerModel.fit(_mixed())
    batch = [{k: None for k in _mixed(1)[0]} for _ in range(5)]
    res = model.impute(batch)
    assert res.fills == {}
    assert res.report["columns"]["y"]["left_null_no_known_value_in_row"] == 5
    assert res.report["cells_missing"] > 0


def test_a_single_row_history_is_a_clear_error_and_a_single_row_batch_is_filled():
    with pytest.raises(NotEnoughHistory, match="1 row"):
        ImputerModel.fit(_mixed(1))
    model = ImputerModel.fit(_mixed())
    row = dict(_mixed(1, seed=5)[0], y=None)
    res = model.impute([row])
    assert set(res.fills[0]) == {"y"}


def test_a_constant_column_and_a_pii_only_batch_are_answered():
    recs = [dict(r, const=7) for r in _mixed()]
    model = ImputerModel.fit(recs)
    assert model.excluded["const"] == "constant"
    only_pii = [{"email": f"someone{i}@example.com"} for i in range(50)]
    with pytest.raises(NotEnoughHistory, match="email: pii"):
        ImputerModel.fit(only_pii)


def test_a_model_whose_schema_no_longer_matches_says_so(tmp_path):
    model = ImputerModel.fit(_mixed())
    batch = [dict(r, x=f"text {i}", y=None) for i, r in enumerate(_mixed(30))]
    with pytest.raises(ModelSchemaError, match="'x' was numeric") as err:
        model.impute(batch)
    assert "train the imputer again" in err.value.hint
    # a column the batch lacks altogether is reported, not an error
    res = model.impute([{k: v for k, v in r.items() if k != "qty"} for r in _mixed(30)])
    assert res.report["absent_columns"] == ["qty"]


def test_saved_model_gives_the_same_fills_and_a_damaged_one_is_refused(tmp_path):
    recs = _mixed()
    for r in recs[::3]:
        r["y"] = r["segment"] = None
    model = ImputerModel.fit(recs)
    model.save(tmp_path / "m")
    again = ImputerModel.load(tmp_path / "m")
    for mode in ("accurate", "preserve_variance"):
        assert (
            model.impute(recs, mode=mode, key="b").fills
            == again.impute(recs, mode=mode, key="b").fills
        )
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    doc["engine"]["rounds"][0][0]["coef"]["shape"] = [3]
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="cannot read the imputer model"):
        ImputerModel.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        ImputerModel.load(tmp_path / "m")
    doc = json.loads(json.dumps(model.to_doc()))
    doc["columns"][0]["kind"] = "category"
    with pytest.raises(InputError, match="schema hash"):
        ImputerModel.from_doc(doc)


def test_preserve_variance_draws_are_seeded():
    recs = _mixed()
    for r in recs[::3]:
        r["segment"] = None
    model = ImputerModel.fit(recs)
    a = model.impute(recs, mode="preserve_variance", key="batch-1")
    b = model.impute(recs, mode="preserve_variance", key="batch-1")
    c = model.impute(recs, mode="preserve_variance", key="batch-2", seed=5)
    assert a.fills == b.fills and a.fills != c.fills


def _cli(capsys, *args):
    capsys.readouterr()
    code = main([*args, "--format", "json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else None)


def test_cli_writes_the_filled_rows_with_the_companion_flag_column(tmp_path, capsys):
    recs = _mixed()
    for r in recs[::4]:
        r["y"] = None
    data = tmp_path / "batch.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "filled.jsonl"
    code, doc = _cli(capsys, "impute", "--data", str(data), "--out", str(out),
                     "--save-model", str(tmp_path / "m"))  # fmt: skip
    assert code == 0, doc
    assert doc["columns"]["y"]["filled"] == 100 and doc["cells_filled"] == 100
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(recs)
    assert rows[0]["_pw_imputed"] == ["y"] and rows[0]["y"] is not None
    assert rows[1]["_pw_imputed"] is None and rows[1]["y"] == recs[1]["y"]
    code, doc = _cli(capsys, "impute", "--data", str(data), "--model", str(tmp_path / "m"))
    assert code == 0 and doc["trained_from"] == {"model": str(tmp_path / "m")}
    # bad calls: exit 2 with the file named, nothing written
    (tmp_path / "one.jsonl").write_text(json.dumps(recs[0]) + "\n")
    code, doc = _cli(capsys, "impute", "--data", str(tmp_path / "one.jsonl"))
    assert code == 2 and "at least 20" in doc["error"]
    code, doc = _cli(capsys, "impute", "--data", str(data), "--model", str(tmp_path / "nope"))
    assert code == 2 and "no model.json" in doc["error"]
