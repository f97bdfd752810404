"""Mage validation beyond the one-rule examples of docs/rules.md."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pipewarden.pipelines.mage import validate_pipeline

LOADER = "@data_loader\ndef load(*a, **k):\n    return 1\n"
TRANSFORMER = "@transformer\ndef t(x, *a, **k):\n    return x\n"


def _project(root: Path, meta: str, files: dict[str, str]) -> Path:
    (root / "pipelines" / "p").mkdir(parents=True)
    (root / "pipelines" / "p" / "metadata.yaml").write_text(textwrap.dedent(meta))
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body)
    return root


def test_a_cycle_in_upstream_lists_alone_is_found_with_its_path(tmp_path):
    # Mage follows downstream_blocks only: this pipeline loads and has a cycle
    _project(
        tmp_path,
        """
        blocks:
        - {uuid: a, type: data_loader, upstream_blocks: [c], downstream_blocks: []}
        - {uuid: b, type: transformer, upstream_blocks: [a], downstream_blocks: []}
        - {uuid: c, type: transformer, upstream_blocks: [b], downstream_blocks: []}
        """,
        {
            "data_loaders/a.py": LOADER,
            "transformers/b.py": TRANSFORMER,
            "transformers/c.py": TRANSFORMER,
        },
    )
    doc = validate_pipeline(tmp_path)
    cycles = [f for f in doc["findings"] if f["rule"] == "cycle"]
    assert len(cycles) == 1 and cycles[0]["extra"]["list"] == "upstream_blocks"
    assert "c --> a --> b --> c" in cycles[0]["message"] and cycles[0]["line"] == 5  # block c


def test_findings_point_at_the_line_of_the_bad_entry(tmp_path):
    _project(
        tmp_path,
        """
        name: p
        blocks:
        - uuid: a
          type: data_loader
          upstream_blocks: []
          downstream_blocks:
          - b
          - ghost
        - uuid: b
          type: transformer
          upstream_blocks: [a]
          downstream_blocks: []
        """,
        {"data_loaders/a.py": LOADER, "transformers/b.py": TRANSFORMER},
    )
    doc = validate_pipeline(tmp_path)
    (f,) = doc["findings"]
    assert f["rule"] == "mage-downstream-unknown" and f["line"] == 9
    assert f["file"].endswith("pipelines/p/metadata.yaml")


def test_a_pipeline_folder_or_its_metadata_yaml_can_be_given(tmp_path):
    _project(
        tmp_path,
        "blocks:\n- {uuid: a, type: data_loader}\n",
        {"data_loaders/a.py": LOADER},
    )
    for p in (tmp_path / "pipelines" / "p", tmp_path / "pipelines" / "p" / "metadata.yaml"):
        doc = validate_pipeline(p)
        assert doc["ok"] and doc["pipelines"][0]["blocks"] == 1


def test_not_a_mage_folder_is_a_bad_call(tmp_path, run_cli):
    code, doc = run_cli("validate", "pipeline", str(tmp_path))
    assert code == 2 and "not a Mage project" in doc["error"]
    (tmp_path / "other.yaml").write_text("blocks: []\n")
    code, doc = run_cli("validate", "pipeline", str(tmp_path / "other.yaml"))
    assert code == 2 and "not a Mage pipeline's metadata.yaml" in doc["error"]


def test_custom_blocks_sql_blocks_and_file_path_with_project_prefix(tmp_path):
    _project(
        tmp_path,
        """
        blocks:
        - {uuid: a, type: custom, downstream_blocks: [q]}
        - {uuid: q, type: transformer, language: sql, upstream_blocks: [a]}
        - uuid: x
          type: data_loader
          configuration: {file_path: PROJ/data_loaders/deep/x.py}
        """.replace("PROJ", tmp_path.name),
        {
            "custom/a.py": "@custom\ndef c(*a, **k):\n    return 1\n",
            "transformers/q.sql": "select 1\n",
            "data_loaders/deep/x.py": LOADER,
        },
    )
    doc = validate_pipeline(tmp_path)
    assert doc["findings"] == []


def test_dbt_file_paths_resolve_like_mage(tmp_path):
    _project(
        tmp_path,
        """
        blocks:
        - uuid: m1
          type: dbt
          language: sql
          configuration: {file_path: demo/models/m1.sql}
        - uuid: m2
          type: dbt
          language: sql
          configuration: {file_path: models/m2.sql}
        - uuid: m3
          type: dbt
          language: sql
          configuration: {file_path: demo/models/missing.sql}
        """,
        {"dbt/demo/models/m1.sql": "select 1\n", "dbt/other/models/m2.sql": "select 2\n"},
    )
    doc = validate_pipeline(tmp_path)
    assert [(f["rule"], "missing.sql" in f["message"]) for f in doc["findings"]] == [
        ("mage-block-file-missing", True)
    ]


def test_a_block_python_cannot_compile_is_a_finding_not_a_crash(tmp_path):
    _project(
        tmp_path,
        """
        blocks:
        - {uuid: a, type: data_loader, upstream_blocks: [], downstream_blocks: []}
        """,
        {"data_loaders/a.py": LOADER + "x = 1" + " + 1" * 100_000 + "\n"},
    )
    doc = validate_pipeline(tmp_path)
    (f,) = doc["findings"]
    assert f["rule"] == "syntax-error" and f["file"].endswith("data_loaders/a.py")
    assert f["message"].startswith("block a: Python cannot compile this file")


def test_wrongly_typed_metadata_values_are_findings_not_crashes(tmp_path):
    _project(
        tmp_path,
        """
        type: [python]
        blocks:
        - {uuid: a, type: [data_loader], language: {python: 1}, upstream_blocks: [[x]],
           downstream_blocks: 5}
        - {uuid: b, type: transformer, upstream_blocks: [a], downstream_blocks: []}
        """,
        {"data_loaders/a.py": LOADER, "transformers/b.py": TRANSFORMER},
    )
    doc = validate_pipeline(tmp_path)
    rules = sorted(f["rule"] for f in doc["findings"])
    assert rules.count("mage-metadata-invalid") == 2  # upstream_blocks[0], downstream_blocks
    assert "mage-block-type-invalid" in rules and "mage-language-invalid" in rules


def test_the_project_config_applies_to_validate_pipeline_and_cycles(tmp_path, run_cli):
    _project(
        tmp_path,
        """
        blocks:
        - {uuid: a, type: data_loader, upstream_blocks: [], downstream_blocks: [b, b]}
        - {uuid: b, type: transformer, upstream_blocks: [a], downstream_blocks: []}
        """,
        {"data_loaders/a.py": LOADER, "transformers/b.py": TRANSFORMER},
    )
    code, doc = run_cli("validate", "pipeline", str(tmp_path))
    assert "mage-edge-duplicate" in [f["rule"] for f in doc["findings"]]
    (tmp_path / ".pipewarden.yaml").write_text("validate:\n  ignore: [mage-edge-duplicate]\n")
    code, doc = run_cli("validate", "pipeline", str(tmp_path))
    assert "mage-edge-duplicate" not in [f["rule"] for f in doc["findings"]]
    (tmp_path / ".pipewarden.yaml").write_text(
        "validate:\n  severity: {mage-edge-duplicate: error}\n"
    )
    code, doc = run_cli("validate", "pipeline", str(tmp_path))
    assert code == 1 and not doc["ok"]
    g = tmp_path / "g.json"
    g.write_text('[["x", "y"], ["y", "x"]]')
    (tmp_path / ".pipewarden.yaml").write_text("validate:\n  ignore: [cycle]\n")
    code, doc = run_cli("validate", "cycles", str(g))
    assert code == 0 and doc["ok"]
