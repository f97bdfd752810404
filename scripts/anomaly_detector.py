#!/usr/bin/env python3
"""The anomaly detector as a script: exactly ``pipewarden anomaly ...``.

python scripts/anomaly_detector.py score --data batch.json --threshold 0.7 --circuit-breaker
python scripts/anomaly_detector.py train --data history.jsonl --out model/
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
    sys.exit(main(["anomaly", *sys.argv[1:]]))
