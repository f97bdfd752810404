"""The misbehaving API of tests/apiserver.py in a subprocess: start it, tell it how to
misbehave, read what it saw, stop it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVER = Path(__file__).with_name("apiserver.py")


class ApiServer:
    def __init__(self, max_seconds: float = 900) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--max-seconds", str(max_seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"the test API did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.base, timeout=30)
        deadline = time.monotonic() + 60  # a loaded machine starts uvicorn slowly
        while True:
            try:
                self.http.get("/admin/log").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise
                time.sleep(0.1)

    def configure(self, **settings) -> dict:
        self.http.post("/admin/reset").raise_for_status()
        return self.http.post("/admin/config", json=settings).json()

    def add(self, n: int) -> None:
        self.http.post("/admin/add", json={"n": n}).raise_for_status()

    def log(self) -> list[dict]:
        return self.http.get("/admin/log").json()

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
