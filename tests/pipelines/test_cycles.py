"""`pipewarden validate cycles` on every input it reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dbt_manifest_child_map_and_depends_on(tmp_path, run_cli):
    manifest = {
        "nodes": {
            "model.p.a": {"depends_on": {"nodes": ["model.p.c"]}},
            "model.p.b": {"depends_on": {"nodes": ["model.p.a"]}},
            "model.p.c": {"depends_on": {"nodes": ["model.p.b"]}},
        },
        "child_map": {
            "model.p.a": ["model.p.b"],
            "model.p.b": ["model.p.c"],
            "model.p.c": ["model.p.a"],
        },
    }
    p = tmp_path / "manifest.json"
    p.write_text(json.dumps(manifest))
    code, doc = run_cli("validate", "cycles", str(p))
    assert code == 1 and doc["kind"] == "dbt-manifest"
    assert (
        doc["findings"][0]["message"] == "cycle: model.p.a -> model.p.b -> model.p.c -> model.p.a"
    )
    del manifest["child_map"]
    p.write_text(json.dumps(manifest))
    code, doc = run_cli("validate", "cycles", str(p))
    assert code == 1 and len(doc["findings"]) == 1


def test_edge_objects_adjacency_and_acyclic(tmp_path, run_cli):
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"edges": [{"from": "x", "to": "y"}, {"source": "y", "target": "x"}]}))
    code, doc = run_cli("validate", "cycles", str(p))
    assert code == 1 and doc["findings"][0]["extra"]["path"] == ["x", "y", "x"]
    p.write_text(json.dumps({"a": ["b", "c"], "b": ["c"], "c": []}))
    code, doc = run_cli("validate", "cycles", str(p))
    assert code == 0 and doc["kind"] == "adjacency" and doc["nodes"] == 3 and doc["edges"] == 3


def test_airflow_file_and_mage_pipeline(tmp_path, run_cli):
    dag = tmp_path / "d.py"
    dag.write_text(
        "from airflow.sdk import DAG, chain\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        'with DAG("d", schedule=None):\n'
        '    a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")\n'
        "    chain(a, b, a)\n"
    )
    code, doc = run_cli("validate", "cycles", str(dag))
    assert code == 1 and doc["kind"] == "airflow" and "a -> b -> a" in doc["findings"][0]["message"]
    assert doc["findings"][0]["line"] == 5
    pipe = tmp_path / "proj" / "pipelines" / "p"
    pipe.mkdir(parents=True)
    (pipe / "metadata.yaml").write_text(
        "blocks:\n- {uuid: a, type: data_loader, downstream_blocks: [b], upstream_blocks: [b]}\n"
        "- {uuid: b, type: transformer, downstream_blocks: [a], upstream_blocks: [a]}\n"
    )
    code, doc = run_cli("validate", "cycles", str(tmp_path / "proj"))
    assert code == 1 and doc["kind"] == "mage"
    assert {f["extra"]["list"] for f in doc["findings"]} == {"downstream_blocks", "upstream_blocks"}


def test_bad_inputs_are_bad_calls_naming_the_place(tmp_path, run_cli):
    p = tmp_path / "g.json"
    p.write_text('[["a", "b"], ["c"]]')
    code, doc = run_cli("validate", "cycles", str(p))
    assert code == 2 and doc["row"] == 2
    p.write_text("{not json")
    assert run_cli("validate", "cycles", str(p))[0] == 2


def test_malformed_manifests_are_bad_calls_and_unlike_values_are_unlike_nodes(tmp_path, run_cli):
    p = tmp_path / "m.json"
    for doc, key in [
        ({"nodes": {"m": {}}, "child_map": {"a": 5}}, "child_map.a"),
        ({"nodes": {"x": 5}}, "nodes.x"),
        ({"nodes": {}, "parent_map": ["a"]}, "parent_map"),
    ]:
        p.write_text(json.dumps(doc))
        code, out = run_cli("validate", "cycles", str(p))
        assert code == 2 and out["key"] == key, out
    # 1, 1.0 and true are equal as Python keys, but three nodes: no false self-cycle
    p.write_text("[[1, true], [2, 2.0]]")
    code, out = run_cli("validate", "cycles", str(p))
    assert code == 0 and out["nodes"] == 4


def test_scripts_behave_like_the_commands(tmp_path):
    p = tmp_path / "g.json"
    p.write_text('[["a", "b"], ["b", "a"]]')
    for script, sub in (
        ("check_cyclic_dependencies.py", "cycles"),
        ("validate_pipeline.py", "pipeline"),
    ):
        target = str(p) if sub == "cycles" else str(tmp_path)
        a = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / script), target, "--format", "json"],
            capture_output=True,
            text=True,
        )
        b = subprocess.run(
            [sys.executable, "-m", "pipewarden", "validate", sub, target, "--format", "json"],
            capture_output=True,
            text=True,
        )
        assert a.returncode == b.returncode and a.returncode in (1, 2)
        assert a.stdout == b.stdout


def test_pre_commit_hooks_call_the_commands():
    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    entries = {h["id"]: h["entry"] for h in hooks}
    assert entries == {
        "pipewarden-validate-dag": "pipewarden validate dag",
        "pipewarden-validate-pipeline": "pipewarden validate pipeline",
        "pipewarden-validate-cycles": "pipewarden validate cycles",
        "pipewarden-docs-check": "pipewarden docs check",
    }
    assert all(h["language"] == "python" and h["require_serial"] for h in hooks)
