"""The h2o engine against a real local H2O: one JVM for the whole session, shut down at the end."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipewarden.anomaly.detector import DetectorConfig, score_rows
from pipewarden.anomaly.model import Model
from pipewarden.anomaly.synth import records
from pipewarden.errors import InputError

pytestmark = pytest.mark.h2o

# measured on this data (1500 rows, 3% anomalies, seed 4, 50 trees): IF 0.846, EIF 0.863
AUC_FLOOR = {"isolation_forest": 0.80, "extended_isolation_forest": 0.82}


def _java_children() -> set[int]:
    """Java processes whose parent is this test process."""
    me = str(os.getpid())
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if fields[1] == me and comm == "java":
            found.add(int(pid))
    return found


@pytest.fixture(scope="module")
def data():
    return records(1500, anomaly_share=0.03, seed=4)


@pytest.mark.parametrize("algorithm", ["isolation_forest", "extended_isolation_forest"])
def test_h2o_scores_rank_injected_anomalies(h2o_cluster, data, algorithm):
    recs, labels = data
    cfg = DetectorConfig(engine="h2o", h2o={"algorithm": algorithm, "ntrees": 50})
    out = score_rows(recs, cfg)
    assert out["status"] == "scored" and out["engine"] == "h2o"
    scores = out["scores"]
    assert scores.min() >= 0 and scores.max() <= 1
    assert roc_auc_score(labels, scores) >= AUC_FLOOR[algorithm]
    # same calibration as every engine: about 1% of the reference at 0.7 or more
    assert 0.005 <= float((scores >= 0.7).mean()) <= 0.06


def test_h2o_model_is_saved_and_scored_later(h2o_cluster, data, tmp_path):
    recs, _ = data
    model = Model.fit(recs[:1000], engine="h2o", engine_options={"ntrees": 30})
    before, _ = model.score(recs[1000:1100])
    model.save(tmp_path / "m")
    model.close()
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["engine"]["params"]["h2o_version"] and doc["engine"]["name"] == "h2o"
    again = Model.load(tmp_path / "m")
    after, _ = again.score(recs[1000:1100])
    again.close()
    assert np.allclose(before, after)


def test_binary_model_from_another_h2o_version_is_a_clear_error(tmp_path, data):
    model = Model.fit(data[0][:200])  # any model directory: only model.json is read
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    doc["engine"] = {"name": "h2o", "params": {"h2o_version": "3.0.0.1", "file": "x"}}
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="same version"):
        Model.load(tmp_path / "m")


def test_unreachable_cluster_url_fails_fast_without_starting_a_jvm():
    before = _java_children()
    started = time.time()
    cfg = DetectorConfig(engine="h2o", h2o={"url": "http://127.0.0.1:9", "connect_timeout": 2})
    recs, _ = records(50, seed=1)
    with pytest.raises(InputError) as err:
        score_rows(recs, cfg)
    assert time.time() - started < 5
    assert err.value.key == "h2o.url" and "unreachable" in err.value.message
    assert _java_children() <= before
