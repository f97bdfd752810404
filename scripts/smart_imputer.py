#!/usr/bin/env python3
"""The imputer as a script: exactly ``pipewarden impute ...``.

python scripts/smart_imputer.py --data batch.jsonl --history history.jsonl --out filled.jsonl
python scripts/smart_imputer.py --data batch.jsonl --model imputer/ --mode preserve_variance
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from pipewarden.cli import main
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from pipewarden.cli import main

if __name__ == "__main__":
    sys.exit(main(["impute", *sys.argv[1:]]))
