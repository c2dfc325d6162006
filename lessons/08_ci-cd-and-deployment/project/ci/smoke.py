"""Smoke-test what runs in one environment: python ci/smoke.py staging

Starts the deployed artifact (RELEASES_DIR/<env>.json says which) on a free port on 127.0.0.1,
asks /health, and stops it. Exit 1 if it does not answer 200 within 10 s.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

env = sys.argv[1] if len(sys.argv) > 1 else "staging"
record = json.loads((pathlib.Path(os.environ.get("RELEASES_DIR", "releases")) / f"{env}.json").read_text())
artifact = pathlib.Path("dist") / record["artifact"]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
settings = {"PORT": str(port), "ORDERS_BUCKET": "smoke", "ORDERS_QUEUE_URL": "smoke", "APP_VERSION": record["commit"]}
settings["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")  # the service builds its clients
proc = subprocess.Popen([sys.executable, str(artifact)], env={**os.environ, **settings}, stdout=subprocess.DEVNULL)
try:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                body = json.loads(r.read())
            print(f"{env}: /health answered {r.status} {body}")
            sys.exit(0 if body.get("version") == record["commit"] else 1)
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{env}: {record['artifact']} did not answer /health within 10 s")
finally:
    proc.terminate()
    proc.wait(5)
