"""Build the release artifact once: the service as a Python zip application, named after the commit.

    python ci/build.py  ->  dist/orders-<short sha>.pyz  (+ .sha256)

The same file is deployed to staging and then to production: never rebuilt in between.
"""

import hashlib
import os
import pathlib
import shutil
import tempfile
import zipapp

sha = os.environ.get("CI_COMMIT_SHORT_SHA", "local")
dist = pathlib.Path("dist")
dist.mkdir(exist_ok=True)
target = dist / f"orders-{sha}.pyz"
with tempfile.TemporaryDirectory() as tmp:
    shutil.copytree("app", pathlib.Path(tmp) / "app", ignore=shutil.ignore_patterns("__pycache__"))
    zipapp.create_archive(tmp, target, interpreter="/usr/bin/env python3", main="app.service:main")
digest = hashlib.sha256(target.read_bytes()).hexdigest()
target.with_suffix(".pyz.sha256").write_text(f"{digest}  {target.name}\n")
print(f"built {target} ({target.stat().st_size} bytes), sha256 {digest[:16]}...")
