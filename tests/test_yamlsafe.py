"""YAML bombs and deep nesting in every file pipewarden reads as YAML: a clear error, fast."""

from __future__ import annotations

import json
import time

import pytest

from pipewarden.cli import main
from pipewarden.pipelines.mage import validate_pipeline
from pipewarden.yamlsafe import MAX_NODES, YAMLTooLarge, safe_load

# nine levels of nine aliases: 387 million strings once expanded, 1 kB on disk
BOMB = "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['x'] * 9)}]\n"
    for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)
DEEP = "x: " + "[" * 20_000 + "]" * 20_000 + "\n"


def test_aliases_are_fine_until_they_expand_past_the_bound():
    assert safe_load("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    started = time.perf_counter()
    with pytest.raises(YAMLTooLarge, match=f"more than {MAX_NODES:,} values") as err:
        safe_load(BOMB)
    assert time.perf_counter() - started < 5 and err.value.problem_mark.line == 0
    with pytest.raises(YAMLTooLarge, match="nests too deeply"):
        safe_load(DEEP)


@pytest.mark.parametrize("doc", [BOMB, DEEP], ids=["bomb", "deep"])
@pytest.mark.parametrize("command", ["policy", "pipeline", "contract"])
def test_every_yaml_input_refuses_them_with_exit_2(tmp_path, capsys, doc, command):
    f = tmp_path / "in.yaml"
    f.write_text(doc + "version: 1\n")
    batch = tmp_path / "b.json"
    batch.write_text(json.dumps([{"a": 1}]))
    args = {
        "policy": ["guard", "policy-check", str(f)],
        "pipeline": ["run", str(f)],
        "contract": [
            "sentinel",
            "--source",
            str(batch),
            "--target",
            str(tmp_path / "t.json"),
            "--contract",
            str(f),
        ],  # fmt: skip
    }[command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "in.yaml" in err and ("more than 1,000,000 values" in err or "nests too deeply" in err)


@pytest.mark.parametrize("doc", [BOMB, DEEP], ids=["bomb", "deep"])
def test_a_mage_metadata_bomb_is_a_finding(tmp_path, doc):
    (tmp_path / "pipelines" / "p").mkdir(parents=True)
    (tmp_path / "pipelines" / "p" / "metadata.yaml").write_text(doc + "blocks: []\n")
    out = validate_pipeline(tmp_path / "pipelines" / "p")
    (f,) = out["findings"]
    assert f["rule"] == "mage-metadata-invalid" and "not valid YAML" in f["message"]
