#!/usr/bin/env python3
"""Validate a Mage project or pipeline folder (same as `pipewarden validate pipeline`).

Usage: python scripts/validate_pipeline.py [OPTIONS] PATH... ; options, output and exit codes are exactly
those of `pipewarden validate pipeline` (docs/cli.md).
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["validate", "pipeline"])
