#!/usr/bin/env python3
"""rca_agent.py: exactly ``pipewarden rca`` (same options, output and exit codes).

python scripts/rca_agent.py task.log
python scripts/rca_agent.py --config pipeline.yaml -- python etl.py
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["rca"])
