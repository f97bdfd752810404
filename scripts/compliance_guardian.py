#!/usr/bin/env python3
"""The compliance guardian as a script: the same as ``pipewarden guard``.

python scripts/compliance_guardian.py scan --data batch.json --strict
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["guard"])
