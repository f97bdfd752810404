#!/usr/bin/env python3
"""reflect_docs.py: exactly ``pipewarden docs (build|check)`` (same options, output and exit codes).

python scripts/reflect_docs.py build pipeline.yaml
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["docs"])
