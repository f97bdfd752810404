#!/usr/bin/env python3
"""schema_sentinel.py: exactly ``pipewarden sentinel`` (same options, output and exit codes).

python scripts/schema_sentinel.py --source batch.json --target schema.json --ddl
"""

import sys
from pathlib import Path

try:
    from pipewarden.cli import main
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pipewarden.cli import main

if __name__ == "__main__":
    sys.exit(main(["sentinel", *sys.argv[1:]]))
