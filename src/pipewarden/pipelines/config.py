"""The validators' project config.

Looked up from the first validated path upwards (or given with ``--config``): a
``.pipewarden.yaml`` with a ``validate:`` mapping, or a ``pyproject.toml`` with a
``[tool.pipewarden.validate]`` table; the nearest file that has one wins. Keys:

- ``require_retries`` (bool): every Airflow task must get ``retries`` (from the task or the DAG's
  ``default_args``); ``require_owner`` (bool): the same for ``owner``.
- ``severity`` (mapping rule id -> error | warning | info): change a rule's severity, e.g.
  ``schedule-missing = "error"``.
- ``ignore`` (list of rule ids): drop those findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .findings import RULES, Finding

KEYS = {"require_retries", "require_owner", "severity", "ignore"}


@dataclass
class ValidateConfig:
    require_retries: bool = False
    require_owner: bool = False
    severity: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    source: str | None = None

    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> ValidateConfig:
        if not isinstance(data, dict):
            raise InputError("the validate config must be a mapping", file=source)
        unknown = set(data) - KEYS
        if unknown:
            raise InputError(
                f"unknown validate option(s): {', '.join(sorted(unknown))}",
                file=source,
                hint=f"known: {', '.join(sorted(KEYS))}",
            )
        for key in ("require_retries", "require_owner"):
            if key in data and not isinstance(data[key], bool):
                raise InputError("must be true or false", file=source, key=key)
        severity = data.get("severity") or {}
        ignore = data.get("ignore") or []
        if not isinstance(severity, dict) or not isinstance(ignore, list):
            raise InputError("severity is a mapping and ignore a list", file=source)
        for rule, sev in severity.items():
            if (
                not isinstance(sev, str)
                or rule not in RULES
                or sev not in ("error", "warning", "info")
            ):
                raise InputError(
                    f"bad severity override {rule!r}: {sev!r}",
                    file=source,
                    key="severity",
                    hint="a rule id from docs/rules.md mapped to error, warning or info",
                )
        for rule in ignore:
            if not isinstance(rule, str) or rule not in RULES:
                raise InputError(f"unknown rule id {rule!r}", file=source, key="ignore")
        return cls(
            require_retries=bool(data.get("require_retries", False)),
            require_owner=bool(data.get("require_owner", False)),
            severity=dict(severity),
            ignore=list(ignore),
            source=source,
        )

    def apply_doc(self, doc: dict) -> dict:
        """A validator's result document with the config applied (ignored rules dropped,
        severities changed, counts and ``ok`` recomputed)."""
        from .findings import summarize

        kept = self.apply([Finding(**f) for f in doc["findings"]])
        extra = {
            k: v
            for k, v in doc.items()
            if k not in ("validator", "ok", "errors", "warnings", "findings")
        }
        return summarize(doc["validator"], kept, **extra)

    def apply(self, findings: list[Finding]) -> list[Finding]:
        out = []
        for f in findings:
            if f.rule in self.ignore:
                continue
            if f.rule in self.severity:
                f.severity = self.severity[f.rule]
            out.append(f)
        return out


def _read(path: Path) -> dict | None:
    import tomllib  # here, not at the top: most runs find no config file and need neither parser

    import yaml

    from .. import yamlsafe

    try:
        if path.name == "pyproject.toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return data.get("tool", {}).get("pipewarden", {}).get("validate")
        data = yamlsafe.safe_load(path.read_text(encoding="utf-8")) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"cannot parse: {exc}", file=str(path)) from None
    except RecursionError:
        raise InputError("cannot parse: it nests too deeply", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte offset {exc.start})", file=str(path), hint="save it as UTF-8"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping at the top", file=str(path))
    return data.get("validate")


def load_config(
    start: str | Path | None = None, config: str | Path | None = None
) -> ValidateConfig:
    """The config given explicitly, else the nearest one above ``start``, else the defaults."""
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise InputError("config file not found", file=str(path))
        data = _read(path)
        return ValidateConfig.from_dict(data or {}, str(path))
    if start is None:
        return ValidateConfig()
    here = Path(start).resolve()
    if here.is_file():
        here = here.parent
    for folder in [here, *here.parents]:
        for name in (".pipewarden.yaml", "pyproject.toml"):
            candidate = folder / name
            if candidate.is_file():
                data = _read(candidate)
                if data is not None:
                    return ValidateConfig.from_dict(data, str(candidate))
    return ValidateConfig()
