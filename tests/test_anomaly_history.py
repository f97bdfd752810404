"""The anomaly step a user can leave on, through `pipewarden run`, on a real survey data set
(statsmodels' `fair`: 6,366 answers of the 1974 Redbook survey) cut into daily batches:

30 clean days, then 10 days each with one injected defect, then a backfill of 10 clean days.
No row of a clean day is quarantined once the model is trained, each defect is caught, and the
backfill after the defects is not held whole: the breaker counts its cool-down in batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipewarden.run import replay_quarantine, run_pipeline
from pipewarden.store import open_store

pytestmark = pytest.mark.slow

# statsmodels' documentation of the column
OCCUPATION = {1: "student", 2: "farming, semi-skilled, unskilled", 3: "white collar",
              4: "teacher, nurse, writer, technician, skilled", 5: "managerial, business",
              6: "professional with advanced degree"}  # fmt: skip
ROWS = 150


def _fair() -> list[dict]:
    try:
        import statsmodels.api as sm
    except ImportError as exc:  # pragma: no cover - installed by the test extra
        from conftest import missing

        missing("statsmodels", str(exc))
    d = sm.datasets.fair.load_pandas().data
    out = []
    for i, r in enumerate(d.to_dict("records")):
        r = {k: (int(v) if float(v).is_integer() and k != "affairs" else round(v, 6))
             for k, v in r.items()}  # fmt: skip
        r["occupation"] = OCCUPATION[r["occupation"]]
        out.append({"id": i, **r})
    return out


def _day(rows: list[dict], rng: np.random.Generator, n: int = ROWS) -> list[dict]:
    return [dict(rows[i]) for i in rng.choice(len(rows), n, replace=False)]


def _defects(rows: list[dict], rng: np.random.Generator) -> list[tuple[str, list[dict], str]]:
    """(name, batch, what must catch it)."""
    out = []
    b = _day(rows, rng, int(ROWS * 0.3))
    out.append(("row count down to 30%", b, "row_count"))
    b = _day(rows, rng)
    for r in b[: int(0.4 * ROWS)]:
        r["educ"] = None
    out.append(("40% nulls", b, "null_rate"))
    b = _day(rows, rng)
    for r in b:
        r["age"] = r["age"] * 1000
    out.append(("x1000 unit change", b, "numeric_shift"))
    b = _day(rows, rng)
    for r in b[:15]:
        r["occupation"] = "astronaut"
    out.append(("a new category value", b, "category_values"))
    half = _day(rows, rng, ROWS // 2)
    out.append(("every row duplicated", half + [dict(r) for r in half], "duplicate_rows"))
    b = _day(rows, rng)
    for r in b:
        r["age"], r["yrs_married"] = r["yrs_married"], r["age"]
    out.append(("two columns swapped", b, "numeric_shift"))
    b = _day(rows, rng)
    students = [r for r in rows if r["occupation"] == "student"]
    b[:2] = [dict(students[0]), dict(students[1])]  # the rare value is there, under a new name
    for r in b:
        if r["occupation"] == "student":
            r["occupation"] = "pupil"
    out.append(("a rare category (0.6%) renamed", b, "category_values"))
    b = _day(rows, rng)
    for r in b:
        r.pop("religious")
    out.append(("a column dropped", b, "null_rate"))
    b = _day(rows, rng)
    for r in b:
        r["rate_marriage"] = max(1, r["rate_marriage"] - 2)
    out.append(("marriage ratings shifted down 2 points", b, "numeric_shift"))
    b = _day(rows, rng)
    for r in b[:4]:
        r["children"] = 40 + r["children"]
    out.append(("4 corrupted rows", b, "rows"))
    return out


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_thirty_clean_days_then_ten_defects_then_a_backfill(tmp_path):
    rows = _fair()
    rng = np.random.default_rng(7)
    src = tmp_path / "in"
    src.mkdir()
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(
        "version: 1\ndataset: fair\n"
        'source:\n  path: "in/*.jsonl"\n'
        "store:\n  kind: duckdb\n  path: wh.duckdb\n"
        "steps:\n  - type: anomaly\n    scores_out: scores/{source}.parquet\n"
    )
    for day in range(1, 31):
        _write(src / f"day{day:02d}.jsonl", _day(rows, rng))
    defects = _defects(rows, rng)
    for k, (_, batch, _) in enumerate(defects):
        _write(src / f"day{31 + k:02d}.jsonl", batch)
    for day in range(41, 51):
        _write(src / f"day{day:02d}.jsonl", _day(rows, rng))

    rep = run_pipeline(cfg, fmt="json")
    batches = rep["batches"]
    assert [b["status"] for b in batches] == ["loaded"] * 50
    for b in batches:  # every row accounted for
        assert b["rows_loaded"] + b["rows_quarantined"] == b["rows_read"]
    reports = [b["steps"]["anomaly"] for b in batches]

    # warm-up: three healthy days, then the model trained from what they loaded
    assert [r["model"]["status"] for r in reports[:3]] == ["warm-up"] * 3
    assert reports[3]["model"]["status"] == "trained" and reports[3]["model"]["version"] == 1
    assert reports[3]["model"]["batches"] == 3 and reports[3]["model"]["trained_now"]
    # clean days after warm-up: nothing quarantined, no failed batch, the breaker closed
    for day, (b, r) in enumerate(zip(batches[3:30], reports[3:30], strict=True), start=4):
        assert b["rows_quarantined"] == 0, (day, r["summary"])
        assert not r["failed"], (day, r["causes"])
        assert r["breaker"]["state"] == "closed"
    assert len({r["model"]["version"] for r in reports[3:30]}) == 1  # scored, not refitted

    # each defect is caught by what should catch it, even on a day the breaker holds
    for (name, _, by), b, r in zip(defects, batches[30:40], reports[30:40], strict=True):
        if by == "rows":
            assert r["scored"]["flagged_rows"] >= 4, (name, r["summary"])
            # rows numbered as in the source file (1-based)
            assert {f["row"] for f in r["scored"]["flagged"]} >= {1, 2, 3, 4}, name
            assert b["rows_quarantined"] >= 4, name
        else:
            hits = [m for m in r["monitors"] if m["monitor"] == by]
            assert any(m["status"] in ("alarm", "severe") for m in hits), (name, r["monitors"])
    first = reports[30]
    assert first["breaker"]["state"] == "open" and batches[30]["decision"] == "quarantine_batch"

    # the backfill: at most cool_down_batches held, then canaries close the breaker
    back, back_reports = batches[40:], reports[40:]
    held = [b for b in back if b["decision"] == "quarantine_batch"]
    assert len(held) <= 2, [r["summary"] for r in back_reports]
    assert all(b["rows_quarantined"] == 0 for b in back[len(held) + 2 :])
    assert back_reports[-1]["breaker"]["state"] == "closed"
    if held:
        assert "quarantine replay" in held[0]["steps"]["anomaly"]["release"]

    # every row's score, per batch, in the file the report names
    import pyarrow.parquet as pq

    scores = pq.read_table(reports[33]["scores_file"]).to_pylist()
    assert len(scores) == batches[33]["rows_read"]
    assert all(0.0 <= s["score"] <= 1.0 for s in scores)

    # replay of the held rows: judged against the dataset's model, counted nowhere
    store = open_store(f"duckdb:///{tmp_path}/wh.duckdb")
    try:
        before = store.metrics_history("fair", "anomaly.batch", limit=1000)
        state = store.load_state("fair", "anomaly.breaker")
    finally:
        store.close()
    out = replay_quarantine(cfg, reason="batch_quarantined")
    assert out["rows_replayed"] > 0
    assert out["steps"]["anomaly"]["model"]["status"] == "trained"
    assert out["steps"]["anomaly"]["replay"] is True
    store = open_store(f"duckdb:///{tmp_path}/wh.duckdb")
    try:
        assert store.metrics_history("fair", "anomaly.batch", limit=1000) == before
        assert store.load_state("fair", "anomaly.breaker")["batches"] == state["batches"]
    finally:
        store.close()

    # rows held for their own score (the 4 corrupted ones) are scored by the dataset's model
    # again on replay, and stay held: it does not refit on the replayed page
    scored = replay_quarantine(cfg, reason="anomaly")
    assert scored["steps"]["anomaly"]["model"]["status"] == "trained"
    assert scored["rows_still_quarantined"] >= 4, scored
    assert scored["reasons"].get("anomaly", 0) >= 4, scored["reasons"]
