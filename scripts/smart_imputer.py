#!/usr/bin/env python3
"""The imputer as a script: exactly ``pipewarden impute ...``.

python scripts/smart_imputer.py --data batch.jsonl --history history.jsonl --out filled.jsonl
python scripts/smart_imputer.py --data batch.jsonl --model imputer/ --mode preserve_variance
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["impute"])
