#!/usr/bin/env python3
"""Find dependency cycles with their full path (same as `pipewarden validate cycles`).

Usage: python scripts/check_cyclic_dependencies.py [OPTIONS] PATH... ; options, output and exit codes are exactly
those of `pipewarden validate cycles` (docs/cli.md).
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["validate", "cycles"])
