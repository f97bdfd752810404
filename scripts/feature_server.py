#!/usr/bin/env python3
"""feature_server.py: exactly ``pipewarden serve`` (same options, output and exit codes).

python scripts/feature_server.py pipeline.yaml
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["serve"])
