"""Rules for docker-compose.yml: pinned images, health checks, loopback ports, routing to the emulators."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from .common import (
    HEALTHY,
    LOCALSTACK_NETWORK_PORT,
    LOCALSTACK_REPO,
    LOCALSTACK_TAG,
    LOOPBACK,
    MOTO_NETWORK_PORT,
    MOTO_REPO,
    ROOT,
    image_problems,
    parse_image,
)
from .dockerfile import dockerfile_healthcheck_problems, parse_dockerfile


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


def healthcheck_is_real(hc) -> bool:
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
            if not healthcheck_is_real(svc["healthcheck"]):
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
        return [f'{where}: {port} is published on every interface: write "{LOOPBACK}:{port}:{port}"']
    spec = str(port).split("/", 1)[0]
    if spec.startswith("["):  # IPv6 literal
        host_ip, _, rest = spec[1:].partition("]")
        parts = [host_ip] + rest.lstrip(":").split(":")
    else:
        parts = spec.split(":")
    if len(parts) < 3:
        return [f'{where}: {port!r} is published on every interface: write "{LOOPBACK}:HOST:CONTAINER"']
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
            problems.append(
                f"service {name}: depends_on {deps} only waits for a start: use the long form with condition: {HEALTHY}"
            )
            continue
        for dep, spec in deps.items():
            if dep not in known:
                problems.append(f"service {name}: depends on {dep!r}, which is not a service")
            condition = (spec or {}).get("condition")
            if condition != HEALTHY:
                problems.append(f"service {name}: depends on {dep} with condition {condition!r}, not {HEALTHY}")
    return problems


def compose_localstack_problems(compose: dict, expected: str = LOCALSTACK_TAG) -> list[str]:
    name, svc = service_with_image(compose, LOCALSTACK_REPO)
    if svc is None:
        return [f"no service runs {LOCALSTACK_REPO}"]
    tag = parse_image(svc["image"]).tag
    if tag != expected:
        return [
            f"service {name}: {LOCALSTACK_REPO}:{tag} is not {expected}, the last community image "
            "(later tags need a paid auth token)"
        ]
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


def compose_routing_problems(compose: dict, moto_services, service: str = "jupyter", emulator_hosts=None) -> list[str]:
    """The kernel's endpoints: LocalStack by default, moto for exactly ``moto_services``."""
    if emulator_hosts is None:
        from ...aws import EMULATOR_HOSTS as emulator_hosts
    svcs = services(compose)
    if service not in svcs:
        return [f"no service {service!r}"]
    env = environment(svcs[service])
    ls_name, _ = service_with_image(compose, LOCALSTACK_REPO)
    moto_name, _ = service_with_image(compose, MOTO_REPO)
    problems = []

    default = env.get("AWS_ENDPOINT_URL") or ""
    if _host_port(default) != (ls_name, LOCALSTACK_NETWORK_PORT):
        problems.append(
            f"service {service}: AWS_ENDPOINT_URL={default!r} should be http://{ls_name}:{LOCALSTACK_NETWORK_PORT}"
        )
    routed = set()
    for key, value in env.items():
        if not key.startswith("AWS_ENDPOINT_URL"):
            continue
        host, port = _host_port(value or "")
        if host not in emulator_hosts:
            problems.append(f"service {service}: {key}={value!r} is on a host the real-AWS guard refuses")
        if key.startswith("AWS_ENDPOINT_URL_") and host == moto_name:
            routed.add(key[len("AWS_ENDPOINT_URL_") :])
            if port != MOTO_NETWORK_PORT:
                problems.append(
                    f"service {service}: {key}={value!r}: moto listens on {MOTO_NETWORK_PORT} inside the network"
                )
    wanted = set(moto_services)
    if wanted - routed:
        problems.append(
            f"service {service}: not routed to moto: {', '.join(sorted(wanted - routed))} "
            "(cloudlab.lab.MOTO_SERVICES routes them there)"
        )
    if routed - wanted:
        problems.append(
            f"service {service}: routed to moto but not in cloudlab.lab.MOTO_SERVICES: "
            f"{', '.join(sorted(routed - wanted))}"
        )
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
