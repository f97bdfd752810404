#!/usr/bin/env python3
"""Validate Airflow DAG files statically (same as `pipewarden validate dag`).

Usage: python scripts/validate_dag.py [OPTIONS] PATH... ; options, output and exit codes are exactly
those of `pipewarden validate dag` (docs/cli.md).
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["validate", "dag"])
