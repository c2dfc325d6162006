"""Every rule on this repository's files, and the command line."""

from __future__ import annotations

from pathlib import Path

from .common import LOCALSTACK_TAG, ROOT
from .compose import (
    compose_credentials_problems,
    compose_depends_on_problems,
    compose_healthcheck_problems,
    compose_image_problems,
    compose_localstack_problems,
    compose_moto_pin_problems,
    compose_port_problems,
    compose_routing_problems,
    compose_top_level_problems,
)
from .dockerfile import dockerfile_problems, dockerignore_problems
from .workflow import (
    kind_job_problems,
    pinned_version,
    schema_problems,
    workflow_problems,
    workflow_python_problems,
)


# -------------------------------------------------------------------------- everything
def load_yaml(path: Path):
    import yaml

    return yaml.safe_load(Path(path).read_text())


def compose_problems(
    compose: dict,
    *,
    root: Path | None = None,
    moto_services=None,
    moto_version: str | None = None,
    localstack_version: str | None = None,
) -> list[str]:
    root = ROOT if root is None else root
    if moto_services is None:
        from ...lab import MOTO_SERVICES as moto_services
    problems = (
        compose_top_level_problems(compose)
        + compose_image_problems(compose)
        + compose_healthcheck_problems(compose, root)
        + compose_port_problems(compose)
        + compose_depends_on_problems(compose)
        + compose_localstack_problems(compose)
        + compose_routing_problems(compose, moto_services)
        + compose_credentials_problems(compose)
    )
    if localstack_version is not None and localstack_version != LOCALSTACK_TAG:
        problems.append(
            f"the non-Docker lab pins localstack-core=={localstack_version}, the image is "
            f"{LOCALSTACK_TAG}: keep them equal"
        )
    problems += compose_moto_pin_problems(compose, moto_version)
    return problems


def check_repository(root: Path | None = None, schemas: bool = True) -> dict[str, list[str]]:
    """Every rule on this repository's files: ``{file: [problems]}``."""
    from ...lab import MOTO_SERVICES
    from ...lab.venvs import VENVS

    root = ROOT if root is None else root
    compose_file = root / "docker-compose.yml"
    workflow_file = root / ".github" / "workflows" / "test.yml"
    results: dict[str, list[str]] = {}
    moto_version = pinned_version((root / "pins" / "moto-lock.txt").read_text(), "moto")
    ls_version = pinned_version((root / "pins" / "localstack-constraints.txt").read_text(), "localstack-core")
    results["docker-compose.yml"] = compose_problems(
        load_yaml(compose_file),
        root=root,
        moto_services=MOTO_SERVICES,
        moto_version=moto_version,
        localstack_version=ls_version,
    )
    results["Dockerfile"] = dockerfile_problems((root / "Dockerfile").read_text())
    results[".dockerignore"] = dockerignore_problems((root / ".dockerignore").read_text())
    workflow = load_yaml(workflow_file)
    kind_config = (root / "lessons" / "06_kubernetes" / "kind" / "cluster.yaml").read_text()
    results[".github/workflows/test.yml"] = (
        workflow_problems(workflow)
        + workflow_python_problems(workflow, VENVS)
        + kind_job_problems(workflow, kind_config)
    )
    if schemas:
        results["docker-compose.yml"] += schema_problems(compose_file, "vendor.compose-spec")
        results[".github/workflows/test.yml"] += schema_problems(workflow_file, "vendor.github-workflows")
    return results


def main(argv: list[str] | None = None) -> int:
    results = check_repository()
    bad = 0
    for name, problems in results.items():
        print(f"[{'OK' if not problems else 'FAIL'}] {name}")
        for p in problems:
            print(f"       - {p}")
        bad += len(problems)
    return 1 if bad else 0
