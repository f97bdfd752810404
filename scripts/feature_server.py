#!/usr/bin/env python3
"""feature_server.py: exactly ``pipewarden serve`` (same options, output and exit codes).

python scripts/feature_server.py pipeline.yaml
"""

import sys
from pathlib import Path

try:
    from pipewarden.cli import main
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pipewarden.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
