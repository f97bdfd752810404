"""Static Airflow validation beyond the one-rule examples of docs/rules.md."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from pipewarden.pipelines.airflow import validate_dags

ROOT = Path(__file__).resolve().parents[2]
HEAD = """\
import pendulum
from airflow.sdk import DAG, Label, TaskGroup, chain, dag, task
from airflow.providers.standard.operators.empty import EmptyOperator
"""


def _dag(tmp_path: Path, body: str, name: str = "d.py") -> Path:
    p = tmp_path / "dags" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(HEAD + textwrap.dedent(body))
    return p


def _rules(doc: dict) -> list[str]:
    return [f["rule"] for f in doc["findings"]]


def test_cycle_through_chain_lists_and_set_upstream_gives_the_full_path(tmp_path):
    _dag(
        tmp_path,
        """
        with DAG("d", schedule=None):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            d = EmptyOperator(task_id="d")
            chain(a, [b, c])
            b >> d
            d.set_downstream(a)
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    cycles = [f for f in doc["findings"] if f["rule"] == "cycle"]
    assert len(cycles) == 1
    path = cycles[0]["extra"]["path"]
    assert path[0] == path[-1] and set(path) == {"a", "b", "d"}
    assert "a -> b -> d -> a" in cycles[0]["message"] or "d -> a -> b -> d" in cycles[0]["message"]
    assert cycles[0]["line"] is not None and not doc["ok"]


def test_lshift_and_set_upstream_are_reversed_edges(tmp_path):
    _dag(
        tmp_path,
        """
        with DAG("d", schedule=None):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a << b
            b.set_upstream(a)
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    assert _rules(doc) == ["cycle"]


def test_no_false_cycle_for_a_diamond_labels_and_taskflow(tmp_path):
    _dag(
        tmp_path,
        """
        @dag(schedule=None)
        def flow():
            @task
            def extract():
                return 1

            @task
            def load(x):
                return x

            start = EmptyOperator(task_id="start")
            end = EmptyOperator(task_id="end")
            x = extract()
            start >> Label("go") >> x
            start >> [load(x), load(x)] >> end

        flow()
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    assert doc["findings"] == [] and doc["ok"]
    assert doc["dags"][0]["dag_id"] == "flow"


def test_edges_against_the_task_order_are_searched_for_cycles(tmp_path):
    """Edges that follow the order tasks are written in cannot close a cycle and skip the
    search; edges against that order are searched, with or without a cycle."""
    _dag(
        tmp_path,
        """
        with DAG("fine", schedule=None):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            c >> b >> a

        with DAG("loop", schedule=None):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a >> b
            b >> a

        with DAG("self", schedule=None):
            a = EmptyOperator(task_id="a")
            a >> a
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    cycles = [f["message"] for f in doc["findings"] if f["rule"] == "cycle"]
    assert cycles == ["DAG loop has a cycle: a -> b -> a", "DAG self has a cycle: a -> a"]


def test_task_groups_prefix_ids_so_equal_ids_do_not_clash(tmp_path):
    _dag(
        tmp_path,
        """
        with DAG("d", schedule=None):
            with TaskGroup("one"):
                EmptyOperator(task_id="load")
            with TaskGroup("two"):
                EmptyOperator(task_id="load")
        """,
    )
    assert validate_dags([tmp_path / "dags"])["findings"] == []


def test_dynamic_ids_and_loops_are_skipped_not_guessed(tmp_path):
    _dag(
        tmp_path,
        """
        for name in ["a", "b"]:
            with DAG(f"dag_{name}", schedule=None):
                EmptyOperator(task_id="same")
        """,
    )
    assert validate_dags([tmp_path / "dags"])["findings"] == []


def test_legacy_style_dag_argument_and_removed_args(tmp_path):
    p = tmp_path / "dags" / "legacy.py"
    p.parent.mkdir()
    p.write_text(
        textwrap.dedent(
            """
            from airflow import DAG
            from airflow.operators.subdag import SubDagOperator
            from airflow.providers.standard.operators.empty import EmptyOperator

            dag = DAG("legacy", schedule_interval="@daily", concurrency=3, default_args={"sla": 5})
            t1 = EmptyOperator(task_id="t1", dag=dag, task_concurrency=2)
            t2 = EmptyOperator(task_id="t1", dag=dag)
            """
        )
    )
    doc = validate_dags([p])
    msgs = " | ".join(f["message"] for f in doc["findings"])
    rules = _rules(doc)
    assert rules.count("airflow3-removed-arg") == 4, (
        msgs
    )  # schedule_interval, concurrency, sla, task_concurrency
    assert "airflow3-removed-import" in rules
    assert "task-id-duplicate" in rules
    assert "schedule-missing" not in rules  # schedule_interval is reported instead
    lines = {f["rule"]: f["line"] for f in doc["findings"]}
    assert lines["task-id-duplicate"] == 8 and lines["airflow3-removed-import"] == 3


def test_files_without_airflow_in_a_folder_are_skipped_but_named_files_are_checked(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "helper.py").write_text("def broken(:\n")
    assert validate_dags([tmp_path / "dags"])["files"] == 0
    doc = validate_dags([tmp_path / "dags" / "helper.py"])
    assert _rules(doc) == ["syntax-error"] and doc["findings"][0]["line"] == 1


def test_files_are_decoded_as_python_does(tmp_path):
    """A byte-order mark or a PEP 263 coding line is valid Python: the file is analysed, not
    reported as a syntax error; bytes that are not text in their encoding, or an unknown
    encoding, are."""
    body = 'with DAG("d_{n}", schedule=None) as d:\n    EmptyOperator(task_id="caf\u00e9 x")\n'
    files = {
        "bom.py": b"\xef\xbb\xbf" + (HEAD + body.format(n=1)).encode(),
        "latin.py": ("# -*- coding: latin-1 -*-\n" + HEAD + body.format(n=2)).encode("latin-1"),
        "binary.py": b"from airflow import DAG\n\xff\xfe\x00",
        "unknown.py": b"# coding: no-such-codec\nfrom airflow import DAG\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    doc = validate_dags([tmp_path / n for n in files])
    assert sorted(d["dag_id"] for d in doc["dags"]) == ["d_1", "d_2"]
    # the task id is read in the file's own encoding (the space makes it invalid; the message
    # shows it decoded)
    invalid = {
        f["file"].rsplit("/", 1)[-1]: f["message"]
        for f in doc["findings"]
        if f["rule"] == "task-id-invalid"
    }
    assert set(invalid) == {"bom.py", "latin.py"}
    assert all("'caf\u00e9 x'" in m for m in invalid.values())
    errors = {
        f["file"].rsplit("/", 1)[-1]: f["message"]
        for f in doc["findings"]
        if f["rule"] == "syntax-error"
    }
    assert set(errors) == {"binary.py", "unknown.py"}
    assert errors["binary.py"].startswith("not UTF-8 text (byte 24)")
    assert "unknown encoding" in errors["unknown.py"]


def test_config_in_pipewarden_yaml_escalates_and_ignores(tmp_path):
    (tmp_path / ".pipewarden.yaml").write_text(
        "validate:\n  severity:\n    schedule-missing: error\n  ignore: [airflow3-deprecated-import]\n"
    )
    p = tmp_path / "dags" / "d.py"
    p.parent.mkdir()
    p.write_text(
        "from airflow.operators.bash import BashOperator\nfrom airflow.sdk import DAG\n"
        'with DAG("d"):\n    BashOperator(task_id="t", bash_command="true")\n'
    )
    doc = validate_dags([tmp_path / "dags"])
    assert _rules(doc) == ["schedule-missing"]
    assert doc["findings"][0]["severity"] == "error" and not doc["ok"]
    assert doc["config"].endswith(".pipewarden.yaml")


def test_bad_config_and_missing_path_are_bad_calls(tmp_path, run_cli):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pipewarden.validate]\nrequire_retries = 'yes'\n"
    )
    (tmp_path / "d.py").write_text("import airflow\n")
    code, doc = run_cli("validate", "dag", str(tmp_path / "d.py"))
    assert code == 2 and "require_retries" in json.dumps(doc)
    code, doc = run_cli("validate", "dag", str(tmp_path / "nope"))
    assert code == 2 and doc["file"].endswith("nope")
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "pyproject.toml").write_text(f"[tool.pipewarden.validate]\nx = {deep}\n")
    code, doc = run_cli("validate", "dag", str(tmp_path / "d.py"))
    assert code == 2 and "nests too deeply" in doc["error"]
    (tmp_path / "pyproject.toml").unlink()
    for text in (b"validate:\n  ignore: [[cycle]]\n", b"validate:\n  ignore: [caf\xe9]\n"):
        (tmp_path / ".pipewarden.yaml").write_bytes(text)
        code, doc = run_cli("validate", "dag", str(tmp_path / "d.py"))
        assert code == 2 and doc["file"].endswith(".pipewarden.yaml"), doc


def test_script_behaves_exactly_like_the_command(tmp_path):
    p = _dag(tmp_path, 'with DAG("bad id!", schedule=None):\n    EmptyOperator(task_id="a")\n')
    script = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "validate_dag.py"), str(p), "--format", "json"],
        capture_output=True,
        text=True,
    )
    cli = subprocess.run(
        [sys.executable, "-m", "pipewarden", "validate", "dag", str(p), "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert script.returncode == cli.returncode == 1
    assert json.loads(script.stdout) == json.loads(cli.stdout)


def test_airflow_example_dags_validate_without_errors(airflow_python):
    folder = (
        subprocess.run(
            [
                airflow_python,
                "-c",
                "import airflow.example_dags as m, os; print(os.path.dirname(m.__file__))",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={"AIRFLOW_HOME": "/tmp/pw-airflow-home-examples", "PATH": "/usr/bin:/bin"},
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    doc = validate_dags([folder])
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert errors == []
    assert doc["files"] > 30 and len(doc["dags"]) > 50
    # what is reported is true: the two example DAGs that really have no schedule
    assert {f["rule"] for f in doc["findings"]} <= {
        "schedule-missing",
        "airflow3-deprecated-import",
    }


def test_import_mode_loads_with_the_real_airflow(tmp_path, airflow_python, run_cli):
    _dag(tmp_path, 'with DAG("ok", schedule=None):\n    EmptyOperator(task_id="a")\n', "ok.py")
    _dag(tmp_path, 'raise RuntimeError("boom at import")\n', "boom.py")
    code, doc = run_cli(
        "validate",
        "dag",
        str(tmp_path / "dags"),
        "--mode",
        "import",
        "--airflow-python",
        airflow_python,
    )
    errs = [f for f in doc["findings"] if f["rule"] == "import-error"]
    assert code == 1 and len(errs) == 1
    assert errs[0]["file"].endswith("boom.py") and "boom at import" in errs[0]["message"]
    assert errs[0]["line"] == 4  # HEAD has three lines


def test_import_mode_without_airflow_is_a_bad_call(tmp_path, run_cli):
    _dag(tmp_path, 'with DAG("ok", schedule=None):\n    EmptyOperator(task_id="a")\n')
    code, doc = run_cli(
        "validate",
        "dag",
        str(tmp_path / "dags"),
        "--mode",
        "import",
        "--airflow-python",
        sys.executable,
    )
    assert code == 2 and "Airflow is not importable" in doc["error"]


def test_cache_reuses_unchanged_files_and_notices_changes(tmp_path):
    p = _dag(tmp_path, 'with DAG("d", schedule=None):\n    EmptyOperator(task_id="a")\n')
    cache = tmp_path / "cache"
    first = validate_dags([p], cache=cache)
    (pickle_file,) = cache.glob("validate-dag-*.pickle")
    stamp = pickle_file.stat().st_mtime_ns
    again = validate_dags([p], cache=cache)
    assert again == first and pickle_file.stat().st_mtime_ns == stamp  # all hits: not rewritten
    p.write_text(p.read_text().replace('"d"', '"bad id"'))
    changed = validate_dags([p], cache=cache)
    assert _rules(changed) == ["dag-id-invalid"]
    # a config applied to cached findings does not leak into the cache
    esc = validate_dags([p], cache=cache, config=_cfg(tmp_path, "dag-id-invalid", "warning"))
    assert esc["ok"] and validate_dags([p], cache=cache)["ok"] is False


def test_a_poisoned_cache_file_runs_no_code_and_is_rebuilt(tmp_path):
    """The cache may live where others write (a CI cache): a pickle that calls a function is
    refused, the files are analysed afresh, and the cache is rewritten."""
    import os
    import pickle

    p = _dag(tmp_path, 'with DAG("d", schedule=None):\n    EmptyOperator(task_id="a")\n')
    cache = tmp_path / "cache"
    first = validate_dags([p], cache=cache)
    (pickle_file,) = cache.glob("validate-dag-*.pickle")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    pickle_file.write_bytes(pickle.dumps({"x": Evil()}))
    assert validate_dags([p], cache=cache) == first
    assert not marker.exists()
    assert b"posix" not in pickle_file.read_bytes()


def _cfg(tmp_path, rule, severity):
    f = tmp_path / "cfg.yaml"
    f.write_text(f"validate:\n  severity:\n    {rule}: {severity}\n")
    return f


def test_parallel_analysis_gives_the_same_document(tmp_path):
    for i in range(12):
        _dag(
            tmp_path,
            f'with DAG("d{i % 10}", schedule=None):\n    EmptyOperator(task_id="a")\n',
            f"f{i}.py",
        )
    serial = validate_dags([tmp_path / "dags"], jobs=1)
    parallel = validate_dags([tmp_path / "dags"], jobs=2)
    assert serial == parallel and _rules(serial).count("dag-id-duplicate") == 2


def test_with_an_existing_dag_object_attaches_its_tasks(tmp_path):
    _dag(
        tmp_path,
        """
        dag = DAG("d", schedule=None)
        with dag:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="a")
            a >> b >> a
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    assert sorted(_rules(doc)) == ["cycle", "task-id-duplicate"]
    assert doc["dags"][0]["tasks"] == 2


def test_text_output_names_place_rule_and_dags(tmp_path, capsys):
    from pipewarden.cli import main

    p = _dag(tmp_path, 'with DAG("bad id", schedule=None):\n    EmptyOperator(task_id="a")\n')
    assert main(["validate", "dag", str(p), "--no-cache"]) == 1
    out = capsys.readouterr().out
    assert f"{p}:4: error dag-id-invalid" in out
    assert "DAGs found: bad id (1 tasks)" in out and "failed: 1 error(s)" in out


def _long_chain(tmp_path: Path, n: int, name: str, back_to_start: bool = False) -> Path:
    tasks = "".join(f'    t{i} = EmptyOperator(task_id="t{i}")\n' for i in range(n))
    chain_line = (
        "    " + " >> ".join(f"t{i}" for i in range(n)) + (" >> t0" if back_to_start else "")
    )
    return _dag(tmp_path, f'with DAG("{name[:-3]}", schedule=None):\n{tasks}{chain_line}\n', name)


def test_a_chain_of_thousands_of_tasks_in_one_statement(tmp_path):
    """`t0 >> t1 >> ... >> t1999` is a left-deep tree 2,000 levels deep: it is walked without
    recursion, so the cycle closing it is found with its full path."""
    _long_chain(tmp_path, 2000, "long.py", back_to_start=True)
    doc = validate_dags([tmp_path / "dags"])
    (cycle,) = [f for f in doc["findings"] if f["rule"] == "cycle"]
    assert len(cycle["extra"]["path"]) == 2001 and cycle["extra"]["path"][0] == "t0"
    assert [d["tasks"] for d in doc["dags"]] == [2000]


def test_a_chain_too_deep_for_python_is_an_error_not_a_crash(tmp_path, airflow_python, run_cli):
    """Beyond a few thousand operators CPython's compiler gives up (RecursionError): the real
    Airflow cannot import such a file either, and the static check says why instead of a
    traceback."""
    _long_chain(tmp_path, 6000, "deep.py")
    doc = validate_dags([tmp_path / "dags"])
    (err,) = doc["findings"]
    assert err["rule"] == "syntax-error" and "nests too deeply" in err["message"]
    code, doc = run_cli(
        "validate", "dag", str(tmp_path / "dags"), "--mode", "import", "--airflow-python",
        airflow_python,
    )  # fmt: skip
    assert code == 1 and sorted(f["rule"] for f in doc["findings"]) == [
        "import-error",
        "syntax-error",
    ]
    assert (
        "RecursionError"
        in next(f for f in doc["findings"] if f["rule"] == "import-error")["message"]
    )


def test_a_long_method_chain_is_analysed_and_a_wrongly_shaped_cache_is_rebuilt(tmp_path):
    import pickle

    chain = "a" + ".set_downstream(b)" * 600
    p = _dag(
        tmp_path,
        'with DAG("d", schedule=None):\n'
        '    a = EmptyOperator(task_id="a")\n'
        '    b = EmptyOperator(task_id="b")\n'
        f"    {chain}\n",
    )
    cache = tmp_path / "cache"
    first = validate_dags([p], cache=cache)
    assert first["ok"] and [d["tasks"] for d in first["dags"]] == [2]
    (pickle_file,) = cache.glob("validate-dag-*.pickle")
    for junk in ([1, 2], {"x": (1, 2)}):
        pickle_file.write_bytes(pickle.dumps(junk))
        assert validate_dags([p], cache=cache) == first


def test_edges_in_the_two_arms_of_an_if_are_no_cycle_but_one_arm_can_hold_one(tmp_path):
    """Airflow loads the file with one arm or the other: b >> a in one and a >> b in the other
    never meet (it used to be reported as a cycle); a cycle inside one arm still is."""
    _dag(
        tmp_path,
        """
        import os
        with DAG("d", schedule=None):
            a = EmptyOperator(task_id="a"); b = EmptyOperator(task_id="b")
            c = EmptyOperator(task_id="c")
            if os.environ.get("R"):
                b >> a
            else:
                a >> b
        """,
    )
    assert validate_dags([tmp_path / "dags"])["ok"]
    p = tmp_path / "dags" / "d.py"
    p.write_text(p.read_text() + "    if os.environ.get('S'):\n        b >> c\n        c >> b\n")
    doc = validate_dags([tmp_path / "dags"])
    (cycle,) = [f for f in doc["findings"] if f["rule"] == "cycle"]
    assert set(cycle["extra"]["path"]) == {"b", "c"}


def test_each_file_once_linked_folders_followed_and_fifos_skipped(tmp_path):
    import os

    p = _dag(tmp_path, 'with DAG("d", schedule=None):\n    EmptyOperator(task_id="a")\n')
    # the same file twice, and inside a folder also given: one file, no duplicate dag_id
    doc = validate_dags([p, p, tmp_path / "dags"])
    assert doc["ok"] and doc["files"] == 1
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "cyc.py").write_text(
        HEAD + 'with DAG("c", schedule=None):\n    a = EmptyOperator(task_id="a")\n'
        '    b = EmptyOperator(task_id="b")\n    a >> b >> a\n'
    )
    (tmp_path / "dags" / "linked").symlink_to(other)
    (tmp_path / "dags" / "up").symlink_to(tmp_path)  # a loop back up the tree
    os.mkfifo(tmp_path / "dags" / "pipe.py")
    doc = validate_dags([tmp_path / "dags"])
    assert [f["rule"] for f in doc["findings"]] == ["cycle"] and doc["files"] == 2


def test_a_removed_context_key_in_another_dict_is_data_not_a_finding(tmp_path):
    _dag(
        tmp_path,
        """
        @task
        def t(row=None, **context):
            row["execution_date"] = row.get("execution_date")
            return context["prev_ds"]

        with DAG("d", schedule=None):
            t()
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    found = [f for f in doc["findings"] if f["rule"] == "airflow3-removed-context"]
    assert len(found) == 1 and "prev_ds" in found[0]["message"]


def test_task_id_inside_a_dict_argument_is_data_not_a_task(tmp_path):
    _dag(
        tmp_path,
        """
        from airflow.providers.standard.operators.python import PythonOperator

        def f(**kw):
            return kw

        with DAG("d", schedule=None):
            PythonOperator(task_id="report", python_callable=f, op_kwargs=dict(task_id="report"))
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    assert doc["ok"] and not doc["findings"] and [d["tasks"] for d in doc["dags"]] == [1]


def test_a_taskflow_call_whose_name_an_operator_took_gets_the_next_suffix(tmp_path):
    """Airflow names the TaskFlow task start__1 when an operator holds task_id 'start': the
    edge s >> start() is no self-cycle."""
    _dag(
        tmp_path,
        """
        @task
        def start():
            return 1

        with DAG("d", schedule=None):
            s = EmptyOperator(task_id="start")
            s >> start()
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    assert doc["ok"] and not [f for f in doc["findings"] if f["rule"] == "cycle"]


def test_a_positional_dag_id_on_the_decorator_is_the_dag_id(tmp_path):
    for name, dag_id in (("a.py", "pipe_a"), ("b.py", "pipe_b")):
        _dag(
            tmp_path,
            f'@dag("{dag_id}", schedule=None)\ndef pipeline():\n    pass\n\npipeline()\n',
            name,
        )
    doc = validate_dags([tmp_path / "dags"])
    assert doc["ok"] and sorted(d["dag_id"] for d in doc["dags"]) == ["pipe_a", "pipe_b"]
    _dag(tmp_path, '@dag("custom id", schedule=None)\ndef p():\n    pass\n\np()\n', "c.py")
    assert "dag-id-invalid" in _rules(validate_dags([tmp_path / "dags" / "c.py"]))


def test_airflowignore_patterns_leave_files_and_folders_out(tmp_path):
    body = 'with DAG("same", schedule=None):\n    EmptyOperator(task_id="a")\n'
    _dag(tmp_path, body, "v2.py")
    _dag(tmp_path, body, "old/v1.py")
    _dag(tmp_path, body, "scratch_test.py")
    _dag(tmp_path, body, "team/deep/copy.py")
    assert _rules(validate_dags([tmp_path / "dags"])).count("dag-id-duplicate") == 3
    (tmp_path / "dags" / ".airflowignore").write_text("# old copies\nold/\n*_test.py\n")
    (tmp_path / "dags" / "team" / ".airflowignore").write_text("deep/copy.py\n")
    doc = validate_dags([tmp_path / "dags"])
    assert doc["ok"] and doc["files"] == 1


def test_retries_given_through_partial_or_override_count(tmp_path):
    _dag(
        tmp_path,
        """
        from airflow.providers.standard.operators.bash import BashOperator

        @task
        def hello():
            return 1

        with DAG("d", schedule=None, default_args={"owner": "x"}):
            BashOperator.partial(task_id="b", retries=3).expand(bash_command=["echo 1"])
            hello.override(retries=3)()
            hello.override(task_id="h2", retries=3)()
        """,
    )
    cfg = _cfg(tmp_path, "schedule-missing", "info")
    cfg.write_text(cfg.read_text() + "  require_retries: true\n")
    doc = validate_dags([tmp_path / "dags"], config=cfg)
    assert "retries-missing" not in _rules(doc), doc["findings"]


def test_import_mode_keeps_lines_reads_sibling_modules_and_times_out_per_file(
    tmp_path, airflow_python, run_cli
):
    _dag(tmp_path, "def make(dag_id):\n    return DAG(dag_id, schedule=None)\n", "factory.py")
    _dag(
        tmp_path,
        "from factory import make\n\nwith make('ok'):\n    EmptyOperator(task_id='a')\n",
        "use.py",
    )
    _dag(
        tmp_path,
        'with DAG("b", schedule=None):\n    EmptyOperator(task_id="x", not_an_arg=1)\n',
        "bad.py",
    )
    _dag(tmp_path, "import time\ntime.sleep(30)\n", "slow.py")
    code, doc = run_cli(
        "validate", "dag", str(tmp_path / "dags"), "--mode", "import",
        "--airflow-python", airflow_python, "--timeout", "8",
    )  # fmt: skip
    errs = {Path(f["file"]).name: f for f in doc["findings"] if f["rule"] == "import-error"}
    assert "use.py" not in errs and "factory.py" not in errs
    assert errs["bad.py"]["line"] == 5  # HEAD has three lines
    assert set(errs) == {"bad.py", "slow.py"}


def test_a_dag_function_called_from_another_file_is_not_reported_as_never_called(tmp_path):
    _dag(
        tmp_path,
        "@dag(schedule=None)\ndef shared():\n    EmptyOperator(task_id='a')\n",
        "factory.py",
    )
    _dag(tmp_path, "from factory import shared\n\nshared()\n", "use.py")
    assert "dag-not-called" not in _rules(validate_dags([tmp_path / "dags"]))
    assert "dag-not-called" in _rules(validate_dags([tmp_path / "dags" / "factory.py"]))


def test_unicode_ids_are_valid_and_a_group_prefix_counts_towards_the_length(tmp_path):
    long = "t" * 249
    _dag(
        tmp_path,
        f"""
        with DAG("café_daily", schedule=None):
            EmptyOperator(task_id="crème")
            with TaskGroup("grp"):
                EmptyOperator(task_id="{long}")
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    (bad,) = [f for f in doc["findings"] if f["rule"].endswith("-invalid")]
    assert bad["rule"] == "task-id-invalid" and "'grp.ttt" in bad["message"]


def test_an_unreadable_subfolder_is_a_bad_call_not_skipped(tmp_path, monkeypatch, run_cli):
    """Its DAGs would go unchecked (the tests run as root, so the refusal is simulated)."""
    import os

    _dag(tmp_path, 'with DAG("d", schedule=None):\n    EmptyOperator(task_id="a")\n')
    locked = tmp_path / "dags" / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, doc = run_cli("validate", "dag", str(tmp_path / "dags"))
    assert code == 2 and doc["file"].endswith("locked") and "Permission denied" in doc["error"]


def test_a_removed_dag_argument_and_a_nul_byte_are_reported_on_their_own_line(tmp_path):
    _dag(
        tmp_path,
        """
        @dag(
            "d",
            schedule_interval=None,
        )
        def d():
            EmptyOperator(task_id="a")

        d()
        """,
    )
    doc = validate_dags([tmp_path / "dags"])
    (f,) = [f for f in doc["findings"] if f["rule"] == "airflow3-removed-arg"]
    assert f["line"] == 7  # HEAD has three lines, then the blank line and "@dag(" and '"d",'
    nul = tmp_path / "dags" / "nul.py"
    nul.write_bytes(b"from airflow import DAG\nx = 1\ny = '\x00'\n")
    (err,) = [f for f in validate_dags([nul])["findings"] if f["rule"] == "syntax-error"]
    assert err["line"] == 3
