#!/usr/bin/env python3
"""The compliance guardian as a script: the same as ``pipewarden guard``.

python scripts/compliance_guardian.py scan --data batch.json --strict
"""

import sys
from pathlib import Path

try:
    from pipewarden.cli import main
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pipewarden.cli import main

if __name__ == "__main__":
    sys.exit(main(["guard", *sys.argv[1:]]))
