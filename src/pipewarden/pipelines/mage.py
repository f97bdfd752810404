"""Static validation of Mage pipelines: a project (``pipelines/*/metadata.yaml``) or one pipeline.

It reports what Mage itself refuses when it loads a pipeline (an unknown block type, duplicate
block uuids, a cycle through ``downstream_blocks``, a config that is not a mapping) and what
Mage lets through until run time or for ever: edges to unknown blocks (Mage drops them
silently), ``upstream_blocks`` and ``downstream_blocks`` that disagree (with only upstream lists
``mage run`` runs the first block and exits 0), duplicate entries, missing block files (also
``configuration.file_path``), a Python block without a function decorated for its type, unknown
``type`` / ``language`` / ``executor_type`` values, unknown ``retry_config`` keys, a non-integer
``timeout``, and cycles in either list.

The value lists below mirror Mage's enums (``BlockType``, ``BlockLanguage``, ``ExecutorType``,
``PipelineType``, ``RetryConfig``) as of mage-ai 0.9.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from .. import yamlsafe
from ..errors import InputError
from .findings import TOO_DEEP, Finding, python_text, summarize
from .graph import find_cycles

BLOCK_TYPES = {
    "callback", "conditional", "chart", "custom", "data_exporter", "data_loader", "dbt",
    "dynamic_child", "extension", "global_data_product", "hook", "markdown", "scratchpad",
    "sensor", "transformer", "group", "pipeline",
}  # fmt: skip
LANGUAGES = {"markdown": "md", "python": "py", "r": "r", "sql": "sql", "yaml": "yaml"}
EXECUTOR_TYPES = {
    "azure_container_instance", "ecs", "gcp_cloud_run", "k8s", "local_python",
    "local_python_force", "pyspark",
}  # fmt: skip
PIPELINE_TYPES = {
    "integration",
    "databricks",
    "python",
    "pyspark",
    "streaming",
    "execution_framework",
}
RETRY_KEYS = {"retries": int, "delay": int, "max_delay": int, "exponential_backoff": bool}
# block types whose Python file must hold a function with one of these decorators
DECORATORS = {
    "data_loader": {"data_loader"},
    "transformer": {"transformer"},
    "data_exporter": {"data_exporter"},
    "custom": {"custom"},
    "sensor": {"sensor"},
    "callback": {"callback", "on_success", "on_failure"},
    "conditional": {"condition"},
}
BLOCK_DECORATORS = set().union(*DECORATORS.values())
FILE_BLOCK_TYPES = set(DECORATORS) | {"scratchpad", "markdown", "dbt"}
BLOCK_LISTS = ("blocks", "callbacks", "conditionals", "widgets")


def _lines(text: str) -> dict:
    """Line numbers of the blocks: {(list name, index): line, (list name, index, key): line}."""
    out: dict = {}
    try:
        root = yamlsafe.compose(text)
    except yaml.YAMLError:
        return out
    if not isinstance(root, yaml.MappingNode):
        return out
    for knode, vnode in root.value:
        if knode.value in BLOCK_LISTS and isinstance(vnode, yaml.SequenceNode):
            for i, item in enumerate(vnode.value):
                out[(knode.value, i)] = item.start_mark.line + 1
                if isinstance(item, yaml.MappingNode):
                    for k2, v2 in item.value:
                        out[(knode.value, i, k2.value)] = k2.start_mark.line + 1
                        if isinstance(v2, yaml.SequenceNode):
                            for j, e in enumerate(v2.value):
                                out[(knode.value, i, k2.value, j)] = e.start_mark.line + 1
        else:
            out[(knode.value,)] = knode.start_mark.line + 1
    return out


def _block_file(root: Path, block: dict, btype: str, language: str) -> Path | None:
    conf = block.get("configuration") or {}
    fp = conf.get("file_path") if isinstance(conf, dict) else None
    if not fp and isinstance(conf, dict):
        fs = conf.get("file_source")
        fp = fs.get("path") if isinstance(fs, dict) else None
    if fp:
        return _resolve_file_path(root, str(fp))
    if btype == "dbt":  # dbt blocks point at their model through configuration only
        return None
    ext = LANGUAGES.get(language)
    if ext is None:
        return None
    folder = btype if btype == "custom" else f"{btype}s"
    return root / folder / f"{block['uuid']}.{ext}"


def _resolve_file_path(root: Path, fp: str) -> Path:
    """Where Mage looks for ``configuration.file_path`` (its path fixer, for a project at root):
    absolute as is; a path starting with the project's folder name is relative to the project;
    else under the project when its first folder exists there, else under ``dbt/`` (dbt blocks),
    else any file below the project whose path ends with it."""
    p = Path(fp)
    if p.is_absolute():
        return p
    if p.parts and p.parts[0] == root.name:
        return root.joinpath(*p.parts[1:])
    if p.parts and (root / p.parts[0]).exists():
        return root / p
    if p.parts and (root / "dbt" / p.parts[0]).exists():
        return root / "dbt" / p
    for hit in root.rglob(p.name):
        if str(hit).endswith(fp):
            return hit
    return root / p


def _decorators(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for dec in node.decorator_list:
                d = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(d, ast.Name):
                    names.add(d.id)
                elif isinstance(d, ast.Attribute):
                    names.add(d.attr)
    return names


def _check_retry(cfg, where: str, file: str, line, findings: list[Finding]) -> None:
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        findings.append(
            Finding(
                file, line, "mage-retry-config-invalid", f"{where}retry_config must be a mapping"
            )
        )
        return
    for key, value in cfg.items():
        want = RETRY_KEYS.get(key)
        if want is None:
            findings.append(
                Finding(
                    file,
                    line,
                    "mage-retry-config-invalid",
                    f"{where}retry_config has unknown key {key!r}; known: {', '.join(sorted(RETRY_KEYS))}",
                )
            )
        elif value is not None and (type(value) is not want):
            findings.append(
                Finding(
                    file,
                    line,
                    "mage-retry-config-invalid",
                    f"{where}retry_config.{key} must be {'true/false' if want is bool else 'an integer'}, got {type(value).__name__}",
                )
            )


def validate_pipeline_folder(folder: Path, root: Path | None = None) -> tuple[list[Finding], dict]:
    """Findings of one pipeline folder (holding metadata.yaml) and a summary of it."""
    meta = folder / "metadata.yaml"
    file = str(meta)
    if root is None:
        root = folder.parent.parent if folder.parent.name == "pipelines" else folder.parent
    findings: list[Finding] = []
    info = {"pipeline": folder.name, "file": file, "blocks": 0}
    try:
        text = meta.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Finding(file, None, "mage-metadata-invalid", "metadata.yaml is missing")], info
    except (OSError, UnicodeDecodeError) as exc:
        return [
            Finding(file, None, "mage-metadata-invalid", f"cannot read metadata.yaml: {exc}")
        ], info
    try:
        config = yamlsafe.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return [
            Finding(
                file,
                line,
                "mage-metadata-invalid",
                f"not valid YAML: {getattr(exc, 'problem', exc)}",
            )
        ], info
    if not config or not isinstance(config, dict):
        return [
            Finding(
                file,
                1,
                "mage-metadata-invalid",
                f"Invalid pipeline config: expected a mapping, got {type(config).__name__}",
            )
        ], info
    lines = _lines(text)
    info["name"] = config.get("name")

    def enum(value, allowed, rule: str, what: str, line) -> None:
        if value is not None and not (isinstance(value, str) and value in allowed):
            msg = f"{what} {value!r} is not one of {', '.join(sorted(allowed))}"
            findings.append(Finding(file, line, rule, msg))

    enum(
        config.get("type"),
        PIPELINE_TYPES,
        "mage-block-type-invalid",
        "pipeline type",
        lines.get(("type",)),
    )
    enum(
        config.get("executor_type"),
        EXECUTOR_TYPES,
        "mage-executor-type-invalid",
        "pipeline executor_type",
        lines.get(("executor_type",)),
    )
    _check_retry(
        config.get("retry_config"), "pipeline ", file, lines.get(("retry_config",)), findings
    )

    blocks: dict[str, tuple[str, int, dict]] = {}  # uuid -> (list name, index, config)
    for list_name in BLOCK_LISTS:
        items = config.get(list_name) or []
        if not isinstance(items, list):
            findings.append(
                Finding(
                    file,
                    lines.get((list_name,)),
                    "mage-metadata-invalid",
                    f"{list_name} must be a list",
                )
            )
            continue
        for i, b in enumerate(items):
            line = lines.get((list_name, i))
            if not isinstance(b, dict):
                findings.append(
                    Finding(
                        file, line, "mage-metadata-invalid", f"{list_name}[{i}] must be a mapping"
                    )
                )
                continue
            uuid = b.get("uuid")
            if not uuid or not isinstance(uuid, str):
                findings.append(
                    Finding(file, line, "mage-block-uuid-missing", f"{list_name}[{i}] has no uuid")
                )
                continue
            if uuid in blocks:
                findings.append(
                    Finding(
                        file,
                        line,
                        "mage-block-duplicate",
                        f"Pipeline is invalid: duplicate blocks with uuid {uuid}",
                    )
                )
                continue
            blocks[uuid] = (list_name, i, b)
    info["blocks"] = sum(1 for v in blocks.values() if v[0] == "blocks")

    down_edges: list[tuple[str, str]] = []
    up_edges: list[tuple[str, str]] = []
    for uuid, (list_name, i, b) in blocks.items():
        line = lines.get((list_name, i))
        btype = b.get("type")
        if not isinstance(btype, str):
            btype = repr(btype)  # a list or a mapping: reported below as an invalid type
        if btype not in BLOCK_TYPES:
            findings.append(
                Finding(
                    file,
                    lines.get((list_name, i, "type"), line),
                    "mage-block-type-invalid",
                    f"Error loading pipeline ({folder.name}): Invalid block type ({btype}) in block {uuid}",
                )
            )
        language = b.get("language") or "python"
        language = language if isinstance(language, str) else repr(language)
        enum(
            language,
            LANGUAGES,
            "mage-language-invalid",
            f"block {uuid}: language",
            lines.get((list_name, i, "language"), line),
        )
        enum(
            b.get("executor_type"),
            EXECUTOR_TYPES,
            "mage-executor-type-invalid",
            f"block {uuid}: executor_type",
            lines.get((list_name, i, "executor_type"), line),
        )
        _check_retry(
            b.get("retry_config"),
            f"block {uuid}: ",
            file,
            lines.get((list_name, i, "retry_config"), line),
            findings,
        )
        timeout = b.get("timeout")
        if timeout is not None and (type(timeout) is not int or timeout < 0):
            findings.append(
                Finding(
                    file,
                    lines.get((list_name, i, "timeout"), line),
                    "mage-timeout-invalid",
                    f"block {uuid}: timeout must be a whole number of seconds, got {timeout!r}",
                )
            )
        for key in ("upstream_blocks", "downstream_blocks"):
            refs = b.get(key) or []
            kline = lines.get((list_name, i, key), line)
            if not isinstance(refs, list):
                findings.append(
                    Finding(
                        file, kline, "mage-metadata-invalid", f"block {uuid}: {key} must be a list"
                    )
                )
                continue
            seen = set()
            for j, ref in enumerate(refs):
                rline = lines.get((list_name, i, key, j), kline)
                if not isinstance(ref, str):
                    findings.append(
                        Finding(
                            file,
                            rline,
                            "mage-metadata-invalid",
                            f"block {uuid}: {key}[{j}] must be a block uuid (a string)",
                        )
                    )
                    continue
                if ref in seen:
                    findings.append(
                        Finding(
                            file,
                            rline,
                            "mage-edge-duplicate",
                            f"block {uuid}: {ref!r} is listed twice in {key}",
                        )
                    )
                    continue
                seen.add(ref)
                if ref not in blocks:
                    rule = (
                        "mage-upstream-unknown"
                        if key == "upstream_blocks"
                        else "mage-downstream-unknown"
                    )
                    findings.append(
                        Finding(
                            file,
                            rline,
                            rule,
                            f"block {uuid}: {key} names {ref!r}, which is not a block of this pipeline (Mage drops the edge silently)",
                        )
                    )
                    continue
                if key == "downstream_blocks":
                    down_edges.append((uuid, ref))
                else:
                    up_edges.append((ref, uuid))
                other_list, oi, other = blocks[ref]
                if list_name == "blocks" and other_list == "blocks":
                    back = "downstream_blocks" if key == "upstream_blocks" else "upstream_blocks"
                    theirs = other.get(back) or []
                    if isinstance(theirs, list) and uuid not in theirs:
                        findings.append(
                            Finding(
                                file,
                                rline,
                                "mage-edge-mismatch",
                                f"block {uuid} lists {ref!r} in {key} but {ref} does not list {uuid!r} in {back}: Mage runs the pipeline by the downstream lists, add the missing entry",
                            )
                        )
        # the block's code file
        if (
            btype in FILE_BLOCK_TYPES
            and not b.get("replicated_block")
            and not b.get("extension_uuid")
            and not b.get("content")
        ):
            path = _block_file(root, b, btype, language)
            if path is not None:
                if not path.is_file():
                    findings.append(
                        Finding(
                            file,
                            line,
                            "mage-block-file-missing",
                            f"block {uuid}: file {path} does not exist",
                        )
                    )
                elif language == "python" and btype in DECORATORS:
                    try:
                        tree = ast.parse(python_text(path.read_bytes()))
                    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                        # UnicodeDecodeError is a ValueError; the last two: nesting too deep
                        why = (
                            f"invalid Python: {getattr(exc, 'msg', exc)}"
                            if isinstance(exc, SyntaxError | ValueError)
                            else TOO_DEEP
                        )
                        findings.append(
                            Finding(
                                str(path),
                                getattr(exc, "lineno", None),
                                "syntax-error",
                                f"block {uuid}: {why}",
                            )
                        )
                    else:
                        found = _decorators(tree)
                        want = DECORATORS[btype]
                        if not found & want:
                            other = sorted(found & BLOCK_DECORATORS)
                            extra = f"; it has @{', @'.join(other)}" if other else ""
                            findings.append(
                                Finding(
                                    str(path),
                                    1,
                                    "mage-decorator-mismatch",
                                    f"Block {uuid} does not have any decorated functions for its type: decorate a function with @{sorted(want)[0]}{extra}",
                                )
                            )
    for name, edges in (("downstream_blocks", down_edges), ("upstream_blocks", up_edges)):
        for cyc in find_cycles(edges):
            lst, i, _ = blocks[cyc.path[0]]
            findings.append(
                Finding(
                    file,
                    lines.get((lst, i)),
                    "cycle",
                    f"A cycle was detected in {name} of pipeline {folder.name}: {cyc.render(' --> ')}",
                    extra={"path": cyc.path, "list": name},
                )
            )
    info["edges"] = len(set(down_edges) | set(up_edges))
    info["graph"] = {"downstream": down_edges, "upstream": up_edges}
    return findings, info


def pipeline_folders(path: str | Path) -> tuple[Path, list[Path]]:
    """(project root, pipeline folders) for a project folder, a pipeline folder or its metadata.yaml."""
    p = Path(path)
    if p.is_file() and p.name == "metadata.yaml":
        p = p.parent
    if p.exists() and not p.is_dir():
        raise InputError(
            "not a Mage pipeline's metadata.yaml, nor a folder",
            file=str(p),
            hint="give a Mage project, one pipeline folder or its metadata.yaml",
        )
    if not p.is_dir():
        raise InputError(
            "no such folder", file=str(p), hint="give a Mage project or one pipeline folder"
        )
    if (p / "pipelines").is_dir() and not _is_pipeline(p):
        folders = sorted(
            d for d in (p / "pipelines").iterdir() if d.is_dir() and (d / "metadata.yaml").exists()
        )
        return p, folders
    if (p / "metadata.yaml").is_file():
        root = p.parent.parent if p.parent.name == "pipelines" else p.parent
        return root, [p]
    raise InputError(
        "not a Mage project or pipeline folder",
        file=str(p),
        hint="a project has pipelines/<name>/metadata.yaml; a pipeline folder has metadata.yaml",
    )


def _is_pipeline(p: Path) -> bool:
    meta = p / "metadata.yaml"
    if not meta.is_file():
        return False
    try:
        data = yamlsafe.safe_load(meta.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "blocks" in data


def validate_pipeline(path: str | Path | list) -> dict:
    """Validate Mage projects or pipeline folders (one path or a list); returns the result document."""
    paths = [path] if isinstance(path, str | Path) else list(path)
    if not paths:
        raise InputError("no path given", hint="give a Mage project or pipeline folder")
    findings: list[Finding] = []
    pipelines = []
    projects = []
    done: set[Path] = set()
    for p in paths:
        root, folders = pipeline_folders(p)
        projects.append(str(root))
        for folder in folders:
            if folder.resolve() in done:
                continue
            done.add(folder.resolve())
            f, info = validate_pipeline_folder(folder, root)
            info.pop("graph", None)
            findings.extend(f)
            pipelines.append(info)
    return summarize("pipeline", findings, projects=sorted(set(projects)), pipelines=pipelines)
