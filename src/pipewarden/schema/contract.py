"""Contracts: what the sentinel does when a batch does not fit the table.

Three entities, as in dlt: ``tables`` (the table does not exist yet), ``columns`` (a key the
table lacks) and ``data_type`` (a value whose type the column cannot hold, or a null in a NOT
NULL column). Each takes one mode:

=============== =====================================================================
evolve          change the table where the dialect can do it in place; the rows that
                would need any other change are quarantined
freeze          refuse the whole batch (exit 1); nothing is written
discard_row     keep the row out of the table (it is kept in the quarantine table,
                marked discarded, so no row is ever lost)
discard_value   load the row without the offending value (NULL in its place)
quarantine      keep the row aside in quarantine with the reason, load the rest
=============== =====================================================================

``overrides`` sets ``columns`` and ``data_type`` per column name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

MODES = ("evolve", "freeze", "discard_row", "discard_value", "quarantine")
ENTITIES = ("tables", "columns", "data_type")


def _mode(value: Any, key: str) -> str:
    if value not in MODES:
        raise InputError(
            f"unknown contract mode {value!r}", key=key, hint=f"use one of {', '.join(MODES)}"
        )
    return value


@dataclass
class Contract:
    tables: str = "evolve"
    columns: str = "evolve"
    data_type: str = "evolve"
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict | str | None, key: str = "contract") -> Contract:
        """From the ``contract`` object of a pipeline config (or one mode for all three
        entities, like ``"freeze"``); ``None`` evolves everything."""
        if config is None:
            return cls()
        if isinstance(config, str):
            mode = _mode(config, key)
            return cls(mode, mode, mode)
        if not isinstance(config, dict):
            raise InputError("the contract must be an object or a mode", key=key)
        unknown = set(config) - {*ENTITIES, "overrides"}
        if unknown:
            raise InputError(
                f"unknown contract key(s): {', '.join(sorted(unknown))}",
                key=key,
                hint=f"use {', '.join(ENTITIES)} or overrides",
            )
        out = cls(**{e: _mode(config[e], f"{key}.{e}") for e in ENTITIES if e in config})
        overrides = config.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise InputError("overrides must map column names to modes", key=f"{key}.overrides")
        for col, modes in overrides.items():
            if isinstance(modes, str):
                modes = {"columns": modes, "data_type": modes}
            if not isinstance(modes, dict) or set(modes) - {"columns", "data_type"}:
                raise InputError(
                    "an override holds columns and/or data_type",
                    key=f"{key}.overrides.{col}",
                )
            out.overrides[str(col)] = {
                e: _mode(m, f"{key}.overrides.{col}.{e}") for e, m in modes.items()
            }
        return out

    @classmethod
    def parse(cls, spec: str | None) -> Contract:
        """From the command line: a YAML/JSON file, one mode (``freeze``), or inline
        ``columns=freeze,data_type=quarantine,overrides.id.data_type=freeze``."""
        if not spec:
            return cls()
        if spec in MODES:
            return cls.from_config(spec)
        path = Path(spec)
        if "=" not in spec or path.exists():
            if not path.exists():
                raise InputError(
                    "no such contract file", file=spec, hint="give a file, a mode or key=mode,..."
                )
            import yaml

            from .. import yamlsafe

            try:
                doc = yamlsafe.safe_load(path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise InputError(f"not valid YAML ({exc})", file=spec) from None
            if isinstance(doc, dict) and "contract" in doc and set(doc) <= {"contract"}:
                doc = doc["contract"]
            return cls.from_config(doc)
        config: dict[str, Any] = {}
        for part in spec.split(","):
            k, _, v = part.partition("=")
            k, v = k.strip(), v.strip()
            if k.startswith("overrides."):
                col, _, entity = k[len("overrides.") :].rpartition(".")
                if not col or not entity:
                    raise InputError(
                        f"bad inline contract {part!r}",
                        key="contract",
                        hint="overrides.COLUMN.columns=MODE",
                    )
                config.setdefault("overrides", {}).setdefault(col, {})[entity] = v
            else:
                config[k] = v
        return cls.from_config(config)

    def mode(self, entity: str, column: str | None = None) -> str:
        if column is not None:
            override = self.overrides.get(column, {}).get(entity)
            if override:
                return override
        return getattr(self, entity)

    def closed(self) -> Contract:
        """This contract under a target that allows no other columns (a JSON Schema with
        ``additionalProperties: false``): a new column cannot be evolved, so ``evolve`` becomes
        ``freeze`` for columns (overrides included); the other modes keep new columns out of the
        table already and stay as they are."""
        swap = {"evolve": "freeze"}
        overrides = {
            col: {e: swap.get(m, m) if e == "columns" else m for e, m in modes.items()}
            for col, modes in self.overrides.items()
        }
        columns = swap.get(self.columns, self.columns)
        return Contract(self.tables, columns, self.data_type, overrides)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "tables": self.tables,
            "columns": self.columns,
            "data_type": self.data_type,
        }
        if self.overrides:
            d["overrides"] = self.overrides
        return d
