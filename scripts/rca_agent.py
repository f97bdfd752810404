#!/usr/bin/env python3
"""rca_agent.py: exactly ``pipewarden rca`` (same options, output and exit codes).

python scripts/rca_agent.py task.log
python scripts/rca_agent.py --config pipeline.yaml -- python etl.py
"""

import sys
from pathlib import Path

try:
    from pipewarden.cli import main
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pipewarden.cli import main

if __name__ == "__main__":
    sys.exit(main(["rca", *sys.argv[1:]]))
