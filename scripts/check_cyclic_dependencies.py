#!/usr/bin/env python3
"""Find dependency cycles with their full path (same as `pipewarden validate cycles`).

Usage: python scripts/check_cyclic_dependencies.py [OPTIONS] PATH... ; options, output and exit codes are exactly
those of `pipewarden validate cycles` (docs/cli.md).
"""

import sys
from pathlib import Path

try:
    from pipewarden.cli import main
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pipewarden.cli import main

if __name__ == "__main__":
    sys.exit(main(["validate", "cycles", *sys.argv[1:]]))
