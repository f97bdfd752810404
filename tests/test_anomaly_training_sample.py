"""The dataset's anomaly model is trained on a sample that spans each healthy batch, not on
its first rows: files sorted by a column (or by time) are common, and a model that saw only
the head of each batch flags every later row of the next batch as "unusually high"."""

from __future__ import annotations

import json
import random

import numpy as np

from pipewarden.run import run_pipeline
from pipewarden.store import open_store

ROWS = 2_000


def _batch(k: int, rng: np.random.Generator) -> list[dict]:
    amounts = np.sort(rng.uniform(10, 1000, ROWS))  # the file is sorted by amount
    return [
        {"id": k * ROWS + i, "amount": round(float(a), 2), "qty": int(rng.integers(1, 20)),
         "status": str(rng.choice(["new", "paid", "shipped"]))}
        for i, a in enumerate(amounts)
    ]  # fmt: skip


def test_a_model_trained_on_sorted_batches_passes_the_next_clean_one(project):
    rng = np.random.default_rng(3)
    for k in range(4):
        rows = _batch(k, rng)
        (project.root / "in" / f"b{k}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
    cfg = project.config(
        chunk_rows=10_000,
        extra="steps:\n  - type: anomaly\n    max_train_rows: 600\n",
    )
    rep = run_pipeline(cfg, fmt="json")
    batches = rep["batches"]
    assert [b["status"] for b in batches] == ["loaded"] * 4
    for b in batches:
        assert b["rows_loaded"] + b["rows_quarantined"] == b["rows_read"] == ROWS
    model = batches[3]["steps"]["anomaly"]["model"]
    assert model["status"] == "trained" and model["batches"] == 3
    # the sample spans every batch: amounts from the bottom to the top of the range
    store = open_store(project.url, namespace=project.ns)
    try:
        ids = [b["batch_id"] for b in batches[:3]]
        sample = store.landed_rows("orders", ids, 600)
    finally:
        store.close()
    amounts = [r["amount"] for r in sample]
    assert len(sample) == 600 and min(amounts) < 50 and max(amounts) > 950
    # a fourth clean batch like the first three: no more than the documented ~1% flagged
    assert batches[3]["rows_quarantined"] <= 0.02 * ROWS, batches[3]["steps"]["anomaly"]


def test_a_key_repeated_across_training_batches_is_still_an_identifier():
    """Keys recur in the rows a model is trained on (rows sent again, upserts on a key): an
    integer `order_id` seen three times each is still an identifier, not a number whose later
    values all lie beyond the model's range. A named id with few values stays a feature."""
    from pipewarden.anomaly.model import Model

    rng = random.Random(3)

    def rows(ids):
        return [{"order_id": i, "store_id": i % 7, "amount": round(rng.gauss(50, 10), 2),
                 "qty": rng.randint(1, 9)} for i in ids]  # fmt: skip

    history = rows(range(2000)) * 3
    model = Model.fit(history)
    assert model.encoder.excluded.get("order_id") == "id"
    assert "store_id" in model.encoder.names  # 7 values: a feature, not an identifier
    later = rows(range(50_000, 54_000))
    _, Z = model.score(later)
    assert not model.beyond_range(Z).any()
