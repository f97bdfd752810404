#!/usr/bin/env python3
"""adaptive_protocol.py: exactly ``pipewarden ingest`` (same subcommands, options, output and
exit codes): what the adaptive controller learned about each source's host.

python scripts/adaptive_protocol.py status orders_api --config pipeline.yaml
python scripts/adaptive_protocol.py reset orders_api --store duckdb:///warehouse.duckdb
"""

from _pipewarden import run  # beside this script: finds pipewarden or says why not

if __name__ == "__main__":
    run(["ingest"])
