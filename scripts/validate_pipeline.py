#!/usr/bin/env python3
"""Validate a Mage project or pipeline folder (same as `pipewarden validate pipeline`).

Usage: python scripts/validate_pipeline.py [OPTIONS] PATH... ; options, output and exit codes are exactly
those of `pipewarden validate pipeline` (docs/cli.md).
"""

import sys
from pathlib import Path

try:
    from pipewarden.cli import main
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pipewarden.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", "pipeline", *sys.argv[1:]]))
