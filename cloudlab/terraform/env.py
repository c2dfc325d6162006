"""Terraform's environment: the lab's variables behind the guard, the provider mirror, the S3 backend."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

MIRROR_ENV = "CLOUDLAB_TF_MIRROR"
# Where machine images usually put a provider mirror; searched before walking the disk.
MIRROR_GUESSES = (
    "/opt/tf-plugins",
    "/usr/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/opt/terraform/plugins",
    "/var/lib/terraform/plugins",
)
_WALK_SKIP = {
    ".terraform",
    "plugin-cache",
    ".git",
    "node_modules",
    ".venv",
    "venvs",
    ".lab",
    "__pycache__",
    "site-packages",
}
_WALK_SKIP_ROOTS = {"/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/snap", "/boot"}
LAB_DOWN_HINT = (
    "Run `make lab` in a terminal (or `docker compose up`), then re-run this notebook from its setup cell: your code "
    "and Terraform files are kept, but a restarted emulator has none of the resources Terraform created."
)


class TerraformError(RuntimeError):
    """Terraform failed; the message says where and what to do. ``.result`` holds the full run."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mTerraformError\x1b[0m: {self}"]


class LabDown(TerraformError):
    """The emulator does not answer, so Terraform would only retry for minutes."""

    def _render_traceback_(self):
        return [f"\x1b[31mLabDown\x1b[0m: {self}"]


# ------------------------------------------------------------------ environment
def _lab():
    from ..lab import Lab

    return Lab.from_env()


def tf_root() -> Path:
    """Where the course's Terraform working directories, CLI config and plugin cache live."""
    return _lab().state / "terraform"


def _is_mirror(path: Path) -> bool:
    """A filesystem mirror holds <host>/<namespace>/<type>/<version>/<os_arch>/ (or zip files)."""
    reg = path / "registry.terraform.io"
    return reg.is_dir() and any(reg.glob("hashicorp/*/*"))


def _walk_for_mirror(root: str = "/", max_depth: int = 5, budget: float = 5.0) -> Path | None:
    t0 = time.monotonic()
    root_dev = os.stat(root).st_dev
    stack = [(root, 0)]
    while stack and time.monotonic() - t0 < budget:
        path, depth = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for e in entries:
            try:
                if not e.is_dir(follow_symlinks=False) or e.name in _WALK_SKIP or e.path in _WALK_SKIP_ROOTS:
                    continue
                if e.stat(follow_symlinks=False).st_dev != root_dev:  # like find -xdev
                    continue
            except OSError:
                continue
            if e.name == "registry.terraform.io":
                if _is_mirror(Path(path)):
                    return Path(path)
                continue
            if depth + 1 < max_depth:
                stack.append((e.path, depth + 1))
    return None


@functools.cache
def find_mirror(environ_value: str | None = None, cache_file: str | None = None) -> Path | None:
    """The provider mirror directory, or None (then Terraform downloads providers normally).

    ``CLOUDLAB_TF_MIRROR`` wins (set it to an empty string to force downloads). Otherwise a few usual
    places, then a bounded walk of the root file system; the answer is cached in ``cache_file``.
    """
    if environ_value is not None:
        return Path(environ_value) if environ_value and _is_mirror(Path(environ_value)) else None
    cache = Path(cache_file) if cache_file else None
    if cache and cache.exists():
        text = cache.read_text().strip()
        if text == "" or _is_mirror(Path(text)):
            return Path(text) if text else None
    found = next((Path(g) for g in MIRROR_GUESSES if _is_mirror(Path(g))), None) or _walk_for_mirror()
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(f"{found or ''}\n")
    return found


def mirror() -> Path | None:
    return find_mirror(os.environ.get(MIRROR_ENV), str(tf_root() / "mirror-path.txt"))


def cli_config_text(mirror_dir: Path, cache_dir: Path) -> str:
    return (
        "# Written by cloudlab.terraform: install providers from this machine's mirror (offline).\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror_dir))}\n"
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
        f"plugin_cache_dir = {json.dumps(str(cache_dir))}\n"
    )


def terraform_env(extra: dict | None = None, environ: dict | None = None) -> dict[str, str]:
    """The environment of every Terraform subprocess (see the module docstring)."""
    from .. import aws

    env = dict(os.environ if environ is None else environ)
    if env.get(aws.OPT_IN) != aws.OPT_IN_VALUE:
        for k, v in _lab().aws_env().items():
            env.setdefault(k, v)
    env.update(extra or {})
    aws.guard("s3", env)  # refuse to point Terraform at a real account by accident
    root = tf_root()
    cache = root / "plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "TF_PLUGIN_CACHE_DIR": str(cache)})
    # Terraform and the AWS provider are Go programs; every run builds the provider's whole schema (about
    # 1,500 resource types). Collecting garbage less often (GOGC=400, default 100) saves about a fifth of
    # that CPU for some 20 MB more memory per process, and changes nothing else. Yours wins if you set it.
    env.setdefault("GOGC", "400")
    env.pop("TF_LOG", None)
    m = mirror()
    if m is not None:
        cfg = root / "cli.tfrc"
        text = cli_config_text(m, cache)
        if not cfg.exists() or cfg.read_text() != text:
            cfg.write_text(text)
        env["TF_CLI_CONFIG_FILE"] = str(cfg)
    elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).exists():
        env.pop("TF_CLI_CONFIG_FILE")  # a missing file only adds a warning to every command
    return env


def backend_config(key: str, bucket: str, endpoint: str | None = None, region: str | None = None) -> dict[str, str]:
    """``-backend-config`` settings of the S3 backend on the lab: the bucket, the key, locking, the endpoint."""
    from .. import aws

    endpoint = endpoint or aws.endpoint_for("s3") or ""
    region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return {
        "bucket": bucket,
        "key": key,
        "region": region,
        "use_lockfile": "true",  # Terraform's own lock: a <key>.tflock object next to the state
        "endpoints": f'{{s3="{endpoint}"}}',
        "use_path_style": "true",
        "skip_credentials_validation": "true",
        "skip_requesting_account_id": "true",
        "skip_metadata_api_check": "true",
        "skip_region_validation": "true",
    }
