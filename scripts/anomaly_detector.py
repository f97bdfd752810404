#!/usr/bin/env python3
"""The anomaly detector as a script: exactly ``pipewarden anomaly ...``.

python scripts/anomaly_detector.py score --data batch.json --threshold 0.7 --circuit-breaker
python scripts/anomaly_detector.py train --data history.jsonl --out model/
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["anomaly"])
