#!/usr/bin/env python3
"""schema_sentinel.py: exactly ``pipewarden sentinel`` (same options, output and exit codes).

python scripts/schema_sentinel.py --source batch.json --target schema.json --ddl
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["sentinel"])
