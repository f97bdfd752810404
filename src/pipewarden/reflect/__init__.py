"""The reflection loop: docs that follow the schema (pages, index, Mermaid diagram,
changelog with OpenMetadata-style versions, migrations), written when a schema change is
applied and committed with it. See docs/reflect.md."""

from .docs import (
    DocsSettings,
    after_apply,
    after_batch,
    build_docs,
    check_docs,
    docs_build,
    docs_check,
    docs_hook,
    settings_from_config,
)

__all__ = ["DocsSettings", "after_apply", "after_batch", "build_docs", "check_docs", "docs_build", "docs_check", "docs_hook",
           "settings_from_config"]  # fmt: skip
