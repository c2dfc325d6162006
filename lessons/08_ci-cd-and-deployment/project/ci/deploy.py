"""Deploy the release the pipeline built and scanned to one environment: python ci/deploy.py staging|production

The release is the image the scan job scanned, by its digest (dist/scanned.id: the scan job writes it only
when it passed), or, where the pipeline built no image, the zip application dist/orders-<sha>.pyz.
Needs DEPLOY_TOKEN (a masked CI/CD variable: the platform's credential) and RELEASES_DIR (where the
platform keeps what runs where). Writes RELEASES_DIR/<environment>.json; never prints the token.
"""

import hashlib
import json
import os
import pathlib
import re
import sys
import time

env = sys.argv[1] if len(sys.argv) > 1 else ""
if env not in ("staging", "production"):
    sys.exit("usage: python ci/deploy.py staging|production")
if not os.environ.get("DEPLOY_TOKEN"):
    sys.exit("DEPLOY_TOKEN is not set: the platform refuses the deploy (add it as a masked CI/CD variable)")
releases = pathlib.Path(os.environ.get("RELEASES_DIR", "releases"))
record = {"environment": env}
scanned = pathlib.Path("dist/scanned.id")
if scanned.exists():  # the image, exactly as scanned: its digest, never a tag someone could move
    digest = scanned.read_text().strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        sys.exit(f"dist/scanned.id holds {digest[:80]!r}, not an image digest")
    record.update(kind="image", image=os.environ.get("IMAGE", "?"), digest=digest)
    what = f"image {digest[:19]}..."
else:
    artifacts = sorted(pathlib.Path("dist").glob("orders-*.pyz"))
    if not artifacts:
        sys.exit("nothing to deploy: no scanned image (dist/scanned.id) and no dist/orders-*.pyz from the build job")
    artifact = artifacts[-1]
    record.update(kind="zipapp", artifact=artifact.name, sha256=hashlib.sha256(artifact.read_bytes()).hexdigest())
    what = f"{artifact.name} (sha256 {record['sha256'][:16]}...)"
record.update(
    commit=os.environ.get("CI_COMMIT_SHA", "?"),
    job=os.environ.get("CI_JOB_NAME", "?"),
    token_sha256=hashlib.sha256(os.environ["DEPLOY_TOKEN"].encode()).hexdigest(),
    at=time.time(),
)
releases.mkdir(parents=True, exist_ok=True)
(releases / f"{env}.json").write_text(json.dumps(record, indent=1))
print(f"deployed {what} to {env}")
