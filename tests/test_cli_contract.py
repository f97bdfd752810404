from __future__ import annotations

import importlib
import json
import subprocess
import sys

from pipewarden.cli import COMMAND_MODULES, main
from pipewarden.errors import InputError, preview
from pipewarden.verdict import RowIssue, Verdict, merge


def test_unknown_command_is_a_bad_call(capsys):
    assert main(["no-such-command"]) == 2


def test_every_command_is_mapped_to_its_module():
    by_module: dict[str, set] = {}
    for command, module in COMMAND_MODULES.items():
        by_module.setdefault(module, set()).add(command)
    for module, commands in by_module.items():
        assert {c.name for c in importlib.import_module(module).COMMANDS} == commands, module


def test_validate_dag_loads_only_its_own_part(tmp_path):
    """pre-commit runs `validate dag` on every commit: it must not import the other parts."""
    dag = tmp_path / "d.py"
    dag.write_text("from airflow.sdk import DAG\nwith DAG('d', schedule=None):\n    pass\n")
    code = (
        "import sys\n"
        "from pipewarden.cli import main\n"
        f"assert main(['validate', 'dag', {str(dag)!r}, '--no-cache']) == 0\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")[-2]
    loaded = set(out.split())
    assert "pipewarden.pipelines.airflow" in loaded
    for other in ("pipewarden.schema", "pipewarden.run_cli", "pipewarden.compliance", "yaml"):
        assert other not in loaded, other
    assert "pipewarden.anomaly" not in loaded


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMAND_MODULES:
        assert command in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert "pipewarden" in capsys.readouterr().out


def test_input_error_names_file_row_and_hint():
    err = InputError("not valid JSON", file="b.json", row=3, hint="fix the quote")
    assert err.render() == "b.json, row 3: not valid JSON (fix the quote)"
    assert json.loads(json.dumps(err.to_dict()))["row"] == 3


def test_preview_hides_the_value():
    assert preview("john@example.com") == "jo" + "*" * 14
    assert "@" not in preview("a@b.c")


def test_merge_accounts_for_every_row():
    v1 = Verdict("sentinel", issues=[RowIssue(1, "type_mismatch", "x", "a")])
    v2 = Verdict(
        "guardian",
        issues=[RowIssue(1, "pii", "y"), RowIssue(3, "pii", "z")],
        patches={0: {"email": "masked"}, 1: {"email": "m"}},
    )
    out = merge(5, [v1, v2])
    assert out.loaded == [0, 2, 4]
    assert sorted(out.quarantined) == [1, 3]
    assert len(out.quarantined[1]) == 2
    assert out.rows_loaded + out.rows_quarantined == 5
    assert out.patches == {0: {"email": "masked"}}


def test_merge_block_moves_nothing():
    out = merge(3, [Verdict("a"), Verdict("b", decision="block", reason="pii")])
    assert out.decision == "block" and out.loaded == [] and out.quarantined == {}


def test_merge_quarantine_batch_holds_every_row():
    out = merge(3, [Verdict("breaker", decision="quarantine_batch", reason="open")])
    assert out.loaded == [] and sorted(out.quarantined) == [0, 1, 2]


def test_printable_escapes_what_could_drive_a_terminal():
    from pipewarden.output import printable, printable_doc

    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("\u202eevil") == "\\u202eevil"
    assert printable("x\ry\x00\x7f\x9b") == "x\\x0dy\\x00\\x7f\\x9b"
    assert printable("tab\there\nnext, caf\u00e9 \u6f22") == "tab\there\nnext, caf\u00e9 \u6f22"
    doc = {"k\x1b": ["v\u2066", 1, None, {"n": 2.5}]}
    assert printable_doc(doc) == {"k\\x1b": ["v\\u2066", 1, None, {"n": 2.5}]}


def test_hostile_column_names_cannot_drive_the_terminal(tmp_path, capsys):
    name = "a\x1b[31mRED\x1b[0m\u202e"
    rows = [{name: i % 5 if i != 7 else 1000, "x": (i * 7) % 13, "z": i % 3} for i in range(60)]
    path = tmp_path / "esc.json"
    path.write_text(json.dumps(rows))
    assert main(["anomaly", "score", "--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert "row 7" in out and "\\x1b[31mRED" in out and "\\u202e" in out
    assert "\x1b" not in out and "\u202e" not in out
    # JSON keeps the exact name (its own escaping is safe)
    assert main(["anomaly", "score", "--data", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scored"]["flagged"][0]["columns"] == [name]


def test_hostile_file_name_in_an_error_is_escaped(tmp_path, capsys):
    path = tmp_path / "evil\x1b]0;owned\x07.json"
    path.write_text("")
    assert main(["anomaly", "score", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the file is empty" in err and "\\x1b]0;owned\\x07" in err
    assert "\x1b" not in err and "\x07" not in err
