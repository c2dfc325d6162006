"""The course's rules for its Docker path and its CI workflow, checked without Docker or network.

Each rule is a function that takes parsed content (a dict from YAML, the text of a Dockerfile)
and returns a list of problems in plain words; an empty list means the rule holds.  So the same
rules serve the unit tests (``tests/test_static.py``), a learner's own files in lesson 05/08, and
the command line::

    python -m cloudlab.static_checks          # checks this repository, exit 1 on problems

The rules:

* every image is pinned to an exact version tag (``x.y.z``): no ``latest``, no missing tag;
* LocalStack is the last community release (:data:`LOCALSTACK_TAG`), moto the version of
  ``pins/moto-lock.txt``;
* every service has a health check, and ``depends_on`` waits for ``service_healthy``;
* every published port is bound to 127.0.0.1;
* the JupyterLab service routes to moto exactly the services :data:`cloudlab.lab.MOTO_SERVICES`
  names, on hosts the real-AWS guard accepts, with dummy credentials;
* the Dockerfile's ``FROM`` lines are pinned, it runs as a non-root ``USER``, has a
  ``HEALTHCHECK``, and verifies the checksum of everything it downloads;
* the workflow runs ``make test`` with read-only permissions, pinned actions and time limits.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent

LOCALSTACK_TAG = "4.14.0"  # the last community image; later tags need a paid auth token
LOCALSTACK_REPO = "localstack/localstack"
MOTO_REPO = "motoserver/moto"
LOCALSTACK_NETWORK_PORT = 4566
MOTO_NETWORK_PORT = 5000
LOOPBACK = "127.0.0.1"
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
HEALTHY = "service_healthy"


# ------------------------------------------------------------------------------ images
@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None


def parse_image(ref: str) -> ImageRef:
    """Split ``registry:port/repo:tag@sha256:...`` into repository, tag and digest."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a ':' after the last '/' starts the tag (before it: a registry port)
        return ImageRef(name[:colon], name[colon + 1:], digest or None)
    return ImageRef(name, None, digest or None)


def image_problems(ref: str, where: str = "image") -> list[str]:
    """An image must name an exact version (``x.y.z`` in its tag); ``latest`` or no tag is refused."""
    if not isinstance(ref, str) or not ref.strip():
        return [f"{where}: no image reference"]
    img = parse_image(ref.strip())
    if img.tag is None:
        return [f"{where}: {ref!r} has no tag, which means `latest`: pin an exact version"]
    if img.tag == "latest":
        return [f"{where}: {ref!r} uses `latest`, which changes under you: pin an exact version"]
    if "$" in img.tag:
        return [f"{where}: {ref!r} takes its tag from a variable: write the exact version"]
    if not EXACT_VERSION.search(img.tag):
        return [f"{where}: {ref!r} has the floating tag {img.tag!r}: pin an exact x.y.z version"]
    return []


# ----------------------------------------------------------------------------- compose
def services(compose: dict) -> dict[str, dict]:
    svcs = (compose or {}).get("services") or {}
    return {name: (svc or {}) for name, svc in svcs.items()}


def service_with_image(compose: dict, repository: str) -> tuple[str, dict] | tuple[None, None]:
    for name, svc in services(compose).items():
        image = svc.get("image")
        if isinstance(image, str) and parse_image(image).repository == repository:
            return name, svc
    return None, None


def environment(svc: dict) -> dict[str, str | None]:
    """A service's ``environment`` as a dict, whether it was written as a mapping or a list."""
    env = svc.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    out: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def compose_top_level_problems(compose: dict) -> list[str]:
    problems = []
    if "version" in (compose or {}):
        problems.append("top level: `version:` is obsolete in the Compose specification: delete it")
    if not services(compose):
        problems.append("top level: no services")
    return problems


def compose_image_problems(compose: dict) -> list[str]:
    problems = []
    for name, svc in services(compose).items():
        if "image" in svc:
            problems += image_problems(svc["image"], f"service {name}")
        elif "build" not in svc:
            problems.append(f"service {name}: neither `image` nor `build`")
    return problems


def _healthcheck_is_real(hc) -> bool:
    if not isinstance(hc, dict) or hc.get("disable"):
        return False
    test = hc.get("test")
    if isinstance(test, list):
        return bool(test) and test[0] != "NONE"
    return bool(test)


def _build_dockerfile(svc: dict, root: Path) -> Path | None:
    build = svc.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return root / build / "Dockerfile"
    context = root / (build.get("context") or ".")
    return context / (build.get("dockerfile") or "Dockerfile")


def compose_healthcheck_problems(compose: dict, root: Path | None = None) -> list[str]:
    """Every service needs a health check: its own, or the HEALTHCHECK of the Dockerfile it is built from."""
    root = ROOT if root is None else root
    problems = []
    for name, svc in services(compose).items():
        if "healthcheck" in svc:
            if not _healthcheck_is_real(svc["healthcheck"]):
                problems.append(f"service {name}: its healthcheck is disabled or has no test")
            continue
        dockerfile = _build_dockerfile(svc, root)
        if dockerfile is not None and dockerfile.is_file():
            if not dockerfile_healthcheck_problems(parse_dockerfile(dockerfile.read_text())):
                continue
        problems.append(f"service {name}: no healthcheck, so nothing can wait until it is ready")
    return problems


def port_problems(port, where: str = "port") -> list[str]:
    """One entry of a service's ``ports``: it must be published on 127.0.0.1 only."""
    if isinstance(port, dict):  # long syntax
        host_ip = port.get("host_ip")
        if host_ip != LOOPBACK:
            return [f"{where}: {port!r} is published on {host_ip or 'every interface'}: set host_ip: {LOOPBACK}"]
        return []
    if isinstance(port, int):
        return [f"{where}: {port} is published on every interface: write \"{LOOPBACK}:{port}:{port}\""]
    spec = str(port).split("/", 1)[0]
    if spec.startswith("["):  # IPv6 literal
        host_ip, _, rest = spec[1:].partition("]")
        parts = [host_ip] + rest.lstrip(":").split(":")
    else:
        parts = spec.split(":")
    if len(parts) < 3:
        return [f"{where}: {port!r} is published on every interface: write \"{LOOPBACK}:HOST:CONTAINER\""]
    if parts[0] != LOOPBACK:
        return [f"{where}: {port!r} is published on {parts[0] or 'every interface'}, not {LOOPBACK}"]
    return []


def compose_port_problems(compose: dict) -> list[str]:
    problems = []
    for name, svc in services(compose).items():
        if svc.get("network_mode") == "host":
            problems.append(f"service {name}: network_mode: host exposes every port on every interface")
        for port in svc.get("ports") or []:
            problems += port_problems(port, f"service {name}")
    return problems


def compose_depends_on_problems(compose: dict) -> list[str]:
    """``depends_on`` must wait for health (``condition: service_healthy``), not just for a start."""
    problems = []
    known = set(services(compose))
    for name, svc in services(compose).items():
        deps = svc.get("depends_on")
        if not deps:
            continue
        if isinstance(deps, list):
            problems.append(f"service {name}: depends_on {deps} only waits for a start: use the long form "
                            f"with condition: {HEALTHY}")
            continue
        for dep, spec in deps.items():
            if dep not in known:
                problems.append(f"service {name}: depends on {dep!r}, which is not a service")
            condition = (spec or {}).get("condition")
            if condition != HEALTHY:
                problems.append(f"service {name}: depends on {dep} with condition {condition!r}, "
                                f"not {HEALTHY}")
    return problems


def compose_localstack_problems(compose: dict, expected: str = LOCALSTACK_TAG) -> list[str]:
    name, svc = service_with_image(compose, LOCALSTACK_REPO)
    if svc is None:
        return [f"no service runs {LOCALSTACK_REPO}"]
    tag = parse_image(svc["image"]).tag
    if tag != expected:
        return [f"service {name}: {LOCALSTACK_REPO}:{tag} is not {expected}, the last community image "
                "(later tags need a paid auth token)"]
    return []


def compose_moto_pin_problems(compose: dict, moto_version: str | None) -> list[str]:
    name, svc = service_with_image(compose, MOTO_REPO)
    if svc is None:
        return [f"no service runs {MOTO_REPO}"]
    tag = parse_image(svc["image"]).tag
    if moto_version is None:
        return ["pins/moto-lock.txt pins no moto version to compare with"]
    if tag != moto_version:
        return [f"service {name}: {MOTO_REPO}:{tag} differs from moto=={moto_version} of the non-Docker lab"]
    return []


def _host_port(url: str) -> tuple[str, int | None]:
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    return parsed.hostname or "", port


def compose_routing_problems(compose: dict, moto_services, service: str = "jupyter",
                             emulator_hosts=None) -> list[str]:
    """The kernel's endpoints: LocalStack by default, moto for exactly ``moto_services``."""
    if emulator_hosts is None:
        from .aws import EMULATOR_HOSTS as emulator_hosts
    svcs = services(compose)
    if service not in svcs:
        return [f"no service {service!r}"]
    env = environment(svcs[service])
    ls_name, _ = service_with_image(compose, LOCALSTACK_REPO)
    moto_name, _ = service_with_image(compose, MOTO_REPO)
    problems = []

    default = env.get("AWS_ENDPOINT_URL") or ""
    if _host_port(default) != (ls_name, LOCALSTACK_NETWORK_PORT):
        problems.append(f"service {service}: AWS_ENDPOINT_URL={default!r} should be "
                        f"http://{ls_name}:{LOCALSTACK_NETWORK_PORT}")
    routed = set()
    for key, value in env.items():
        if not key.startswith("AWS_ENDPOINT_URL"):
            continue
        host, port = _host_port(value or "")
        if host not in emulator_hosts:
            problems.append(f"service {service}: {key}={value!r} is on a host the real-AWS guard refuses")
        if key.startswith("AWS_ENDPOINT_URL_") and host == moto_name:
            routed.add(key[len("AWS_ENDPOINT_URL_"):])
            if port != MOTO_NETWORK_PORT:
                problems.append(f"service {service}: {key}={value!r}: moto listens on {MOTO_NETWORK_PORT} "
                                "inside the network")
    wanted = set(moto_services)
    if wanted - routed:
        problems.append(f"service {service}: not routed to moto: {', '.join(sorted(wanted - routed))} "
                        "(cloudlab.lab.MOTO_SERVICES routes them there)")
    if routed - wanted:
        problems.append(f"service {service}: routed to moto but not in cloudlab.lab.MOTO_SERVICES: "
                        f"{', '.join(sorted(routed - wanted))}")
    return problems


def compose_credentials_problems(compose: dict, service: str = "jupyter", region: str = "us-east-1") -> list[str]:
    env = environment(services(compose).get(service) or {})
    problems = []
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if env.get(key) != "test":
            problems.append(f"service {service}: {key} must be the dummy value 'test'")
    if env.get("AWS_DEFAULT_REGION") != region:
        problems.append(f"service {service}: AWS_DEFAULT_REGION must be {region}")
    if str(env.get("AWS_EC2_METADATA_DISABLED")).lower() != "true":
        problems.append(f"service {service}: AWS_EC2_METADATA_DISABLED must be true (never ask EC2 metadata)")
    return problems


# --------------------------------------------------------------------------- Dockerfile
@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped (heredocs are not supported)."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        joined = " ".join(part for part in buf if part)
        buf = []
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    if buf:
        joined = " ".join(part for part in buf if part)
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    return out


def _final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max((i for i, ins in enumerate(instructions) if ins.keyword == "FROM"), default=0)
    return instructions[last_from:]


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def dockerfile_from_problems(instructions: list[Instruction]) -> list[str]:
    """Every FROM is an earlier stage or an image pinned to an exact version."""
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    seen_from = False
    problems = []
    for ins in instructions:
        if ins.keyword == "ARG" and not seen_from:
            name, _, default = ins.args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        if ins.keyword != "FROM":
            continue
        seen_from = True
        tokens = [t for t in ins.args.split() if not t.startswith("--")]
        if not tokens:
            problems.append(f"line {ins.line}: FROM without an image")
            continue
        image = _substitute(tokens[0], global_args)
        if len(tokens) >= 3 and tokens[1].lower() == "as":
            stages.add(tokens[2].lower())
        if image.lower() in stages or image == "scratch":
            continue
        problems += image_problems(image, f"line {ins.line}: FROM")
    if not seen_from:
        problems.append("no FROM instruction")
    return problems


def dockerfile_user_problems(instructions: list[Instruction]) -> list[str]:
    users = [ins for ins in _final_stage(instructions) if ins.keyword == "USER"]
    if not users:
        return ["the final stage sets no USER, so the container runs as root"]
    user = users[-1].args.split(":", 1)[0].strip()
    if user in ("root", "0", ""):
        return [f"line {users[-1].line}: USER {users[-1].args} is root: run as an unprivileged user"]
    return []


def dockerfile_healthcheck_problems(instructions: list[Instruction]) -> list[str]:
    checks = [ins for ins in _final_stage(instructions) if ins.keyword == "HEALTHCHECK"]
    if not checks:
        return ["the final stage has no HEALTHCHECK"]
    if checks[-1].args.split()[:1] == ["NONE"]:
        return [f"line {checks[-1].line}: HEALTHCHECK NONE switches health checks off"]
    return []


DOWNLOAD = re.compile(r"\b(curl|wget)\b[^&;|]*https?://")
VERIFY = re.compile(r"\bsha(256|512)sum\b[^&;|]*(-c\b|--check\b)")


def dockerfile_download_problems(instructions: list[Instruction]) -> list[str]:
    """A RUN that downloads something must also check its checksum (``sha256sum --check``)."""
    return [f"line {ins.line}: RUN downloads with {DOWNLOAD.search(ins.args).group(1)} but checks no checksum"
            for ins in instructions
            if ins.keyword == "RUN" and DOWNLOAD.search(ins.args) and not VERIFY.search(ins.args)]


def dockerfile_problems(text: str) -> list[str]:
    instructions = parse_dockerfile(text)
    return (dockerfile_from_problems(instructions) + dockerfile_user_problems(instructions)
            + dockerfile_healthcheck_problems(instructions) + dockerfile_download_problems(instructions))


REQUIRED_IGNORES = (".lab", ".venv", ".git", ".terraform", "*.tfstate", "__pycache__")


def dockerignore_problems(text: str, required=REQUIRED_IGNORES) -> list[str]:
    """The build context leaves out lab state, environments, history, caches and Terraform state."""
    patterns = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            patterns.add(line.removeprefix("/").removeprefix("**/").rstrip("/"))
    return [f".dockerignore: {want} is not excluded" for want in required if want not in patterns]


# ---------------------------------------------------------------------------- workflow
PINNED_REF = re.compile(r"^(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
MAKE_TEST = re.compile(r"(^|[;&|(]\s*|\s)make\s+test(\s|$)", re.M)


def _triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {t: None for t in on}
    return on or {}


def _steps(workflow: dict):
    for job_name, job in (workflow.get("jobs") or {}).items():
        for step in (job or {}).get("steps") or []:
            yield job_name, step


def workflow_problems(workflow: dict) -> list[str]:
    problems = []
    triggers = _triggers(workflow)
    for event in ("push", "pull_request"):
        if event not in triggers:
            problems.append(f"workflow: does not run on {event}")
    perms = workflow.get("permissions")
    if not isinstance(perms, dict) or perms.get("contents") != "read":
        problems.append("workflow: top-level permissions must be `contents: read`")
    elif any(v == "write" for v in perms.values()):
        problems.append("workflow: top-level permissions grant write access")
    conc = workflow.get("concurrency")
    if not isinstance(conc, dict) or conc.get("cancel-in-progress") is not True:
        problems.append("workflow: no concurrency group with cancel-in-progress: true")
    jobs = workflow.get("jobs") or {}
    if not jobs:
        problems.append("workflow: no jobs")
    for name, job in jobs.items():
        if "timeout-minutes" not in (job or {}):
            problems.append(f"job {name}: no timeout-minutes (a hung run would burn 6 hours)")
    runs_make_test = False
    for job_name, step in _steps(workflow):
        uses = step.get("uses")
        if uses and not uses.startswith(("./", "docker://")):
            action, _, ref = uses.partition("@")
            if not PINNED_REF.match(ref):
                problems.append(f"job {job_name}: {uses!r} is not pinned to a version (vN or a commit)")
        if MAKE_TEST.search(str(step.get("run") or "")):
            runs_make_test = True
    if not runs_make_test:
        problems.append("workflow: no step runs `make test`, the course's test command")
    return problems


def workflow_python_versions(workflow: dict) -> set[str]:
    versions: set[str] = set()
    for _, step in _steps(workflow):
        if str(step.get("uses", "")).startswith("actions/setup-python@"):
            raw = (step.get("with") or {}).get("python-version", "")
            versions |= {v.strip() for v in str(raw).split() if v.strip()}
    return versions


def workflow_python_problems(workflow: dict, venv_specs) -> list[str]:
    """Each of the lab's environments finds one of the Python versions it accepts."""
    have = workflow_python_versions(workflow)
    return [f"workflow: the {name} environment needs Python {' or '.join(versions)}; setup-python installs "
            f"{', '.join(sorted(have)) or 'none'}"
            for name, (versions, _reqs, _cons) in venv_specs.items() if not have & set(versions)]


# ------------------------------------------------------------------------- pins, schema
def pinned_version(lock_text: str, package: str) -> str | None:
    """``package==X`` in a requirements/lock file (names compared as pip does)."""
    norm = re.sub(r"[-_.]+", "-", package).lower()
    for line in lock_text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if m and re.sub(r"[-_.]+", "-", m.group(1)).lower() == norm:
            return m.group(3)
    return None


def schema_problems(path: Path, builtin_schema: str) -> list[str]:
    """Validate a file against one of check-jsonschema's vendored schemas (offline)."""
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", builtin_schema,
                           str(path)], capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return []
    text = (proc.stdout + proc.stderr).strip()
    return [f"{Path(path).name} does not match {builtin_schema}:\n{text}"]


# -------------------------------------------------------------------------- everything
def load_yaml(path: Path):
    import yaml
    return yaml.safe_load(Path(path).read_text())


def compose_problems(compose: dict, *, root: Path | None = None, moto_services=None,
                     moto_version: str | None = None, localstack_version: str | None = None) -> list[str]:
    root = ROOT if root is None else root
    if moto_services is None:
        from .lab import MOTO_SERVICES as moto_services
    problems = (compose_top_level_problems(compose) + compose_image_problems(compose)
                + compose_healthcheck_problems(compose, root) + compose_port_problems(compose)
                + compose_depends_on_problems(compose) + compose_localstack_problems(compose)
                + compose_routing_problems(compose, moto_services) + compose_credentials_problems(compose))
    if localstack_version is not None and localstack_version != LOCALSTACK_TAG:
        problems.append(f"the non-Docker lab pins localstack-core=={localstack_version}, the image is "
                        f"{LOCALSTACK_TAG}: keep them equal")
    problems += compose_moto_pin_problems(compose, moto_version)
    return problems


def check_repository(root: Path | None = None, schemas: bool = True) -> dict[str, list[str]]:
    """Every rule on this repository's files: ``{file: [problems]}``."""
    from .lab import MOTO_SERVICES, VENV_SPECS
    root = ROOT if root is None else root
    compose_file = root / "docker-compose.yml"
    workflow_file = root / ".github" / "workflows" / "test.yml"
    results: dict[str, list[str]] = {}
    moto_version = pinned_version((root / "pins" / "moto-lock.txt").read_text(), "moto")
    ls_version = pinned_version((root / "pins" / "localstack-constraints.txt").read_text(), "localstack-core")
    results["docker-compose.yml"] = compose_problems(load_yaml(compose_file), root=root,
                                                     moto_services=MOTO_SERVICES, moto_version=moto_version,
                                                     localstack_version=ls_version)
    results["Dockerfile"] = dockerfile_problems((root / "Dockerfile").read_text())
    results[".dockerignore"] = dockerignore_problems((root / ".dockerignore").read_text())
    workflow = load_yaml(workflow_file)
    results[".github/workflows/test.yml"] = workflow_problems(workflow) + workflow_python_problems(workflow, VENV_SPECS)
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


if __name__ == "__main__":
    sys.exit(main())
