"""Deploy the artifact that the build job made to one environment: python ci/deploy.py staging|production

Needs DEPLOY_TOKEN (a masked CI/CD variable: the platform's credential) and RELEASES_DIR (where the
platform keeps what runs where). Writes RELEASES_DIR/<environment>.json; never prints the token.
"""

import hashlib
import json
import os
import pathlib
import sys
import time

env = sys.argv[1] if len(sys.argv) > 1 else ""
if env not in ("staging", "production"):
    sys.exit("usage: python ci/deploy.py staging|production")
if not os.environ.get("DEPLOY_TOKEN"):
    sys.exit("DEPLOY_TOKEN is not set: the platform refuses the deploy (add it as a masked CI/CD variable)")
releases = pathlib.Path(os.environ.get("RELEASES_DIR", "releases"))
artifacts = sorted(pathlib.Path("dist").glob("orders-*.pyz"))
if not artifacts:
    sys.exit("no dist/orders-*.pyz here: the build job must pass dist/ on as an artifact")
artifact = artifacts[-1]
record = {
    "environment": env,
    "artifact": artifact.name,
    "sha256": hashlib.sha256(artifact.read_bytes()).hexdigest(),
    "commit": os.environ.get("CI_COMMIT_SHA", "?"),
    "job": os.environ.get("CI_JOB_NAME", "?"),
    "token_sha256": hashlib.sha256(os.environ["DEPLOY_TOKEN"].encode()).hexdigest(),
    "at": time.time(),
}
releases.mkdir(parents=True, exist_ok=True)
(releases / f"{env}.json").write_text(json.dumps(record, indent=1))
print(f"deployed {artifact.name} to {env} (sha256 {record['sha256'][:16]}...)")
