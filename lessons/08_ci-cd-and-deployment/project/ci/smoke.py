"""Smoke-test the release deployed to one environment: python ci/smoke.py staging

Starts its own copy of exactly what RELEASES_DIR/<env>.json says was deployed (the image by its digest,
hardened as lesson 05 runs it, or the zip application) on a free port on 127.0.0.1, asks /health, and
stops it. Exit 1 if it does not answer 200 with the commit's version within 20 s. It tests the artifact,
not a running environment: there is no staging server here (a real pipeline would ask staging's URL).
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
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
settings = {"PORT": str(port), "ORDERS_BUCKET": "smoke", "ORDERS_QUEUE_URL": "smoke", "APP_VERSION": record["commit"]}
settings["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")  # the service builds its clients
docker = os.environ.get("DOCKER", "docker")
if record["kind"] == "image":
    name = f"l08-smoke-{port}"
    cmd = [docker, "run", "--detach", "--rm", "--name", name, "--label", "cloudlab.lesson=08", "--network", "host"]
    cmd += ["--read-only", "--tmpfs", "/tmp", "--user", "10001:10001", "--cap-drop", "ALL"]
    cmd += ["--security-opt", "no-new-privileges", "--memory", "128m", "--pids-limit", "64"]
    cmd += [f"--env={k}={v}" for k, v in settings.items()] + [record["digest"]]
    print("$", " ".join(cmd))
    started = subprocess.run(cmd, capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"{env}: the image {record['digest'][:19]}... did not start: {started.stderr.strip()[-300:]}")

    def stop():
        subprocess.run([docker, "rm", "--force", name], capture_output=True)

    what = record["digest"][:19] + "..."
else:
    artifact = pathlib.Path("dist") / record["artifact"]
    proc = subprocess.Popen([sys.executable, str(artifact)], env={**os.environ, **settings}, stdout=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        proc.wait(5)

    what = record["artifact"]
try:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                body = json.loads(r.read())
            print(f"{env}: a copy of {what} answered /health {r.status} {body}")
            sys.exit(0 if body.get("version") == record["commit"] else 1)
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{env}: a copy of {what} did not answer /health within 20 s")
finally:
    stop()
