"""Rules for the course's Dockerfile and .dockerignore: pinned bases, non-root, health check, verified downloads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .common import image_problems


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


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
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
    users = [ins for ins in final_stage(instructions) if ins.keyword == "USER"]
    if not users:
        return ["the final stage sets no USER, so the container runs as root"]
    user = users[-1].args.split(":", 1)[0].strip()
    if user in ("root", "0", ""):
        return [f"line {users[-1].line}: USER {users[-1].args} is root: run as an unprivileged user"]
    return []


def dockerfile_healthcheck_problems(instructions: list[Instruction]) -> list[str]:
    checks = [ins for ins in final_stage(instructions) if ins.keyword == "HEALTHCHECK"]
    if not checks:
        return ["the final stage has no HEALTHCHECK"]
    if checks[-1].args.split()[:1] == ["NONE"]:
        return [f"line {checks[-1].line}: HEALTHCHECK NONE switches health checks off"]
    return []


DOWNLOAD = re.compile(r"\b(curl|wget)\b[^&;|]*https?://")
VERIFY = re.compile(r"\bsha(256|512)sum\b[^&;|]*(-c\b|--check\b)")


def dockerfile_download_problems(instructions: list[Instruction]) -> list[str]:
    """A RUN that downloads something must also check its checksum (``sha256sum --check``)."""
    return [
        f"line {ins.line}: RUN downloads with {DOWNLOAD.search(ins.args).group(1)} but checks no checksum"
        for ins in instructions
        if ins.keyword == "RUN" and DOWNLOAD.search(ins.args) and not VERIFY.search(ins.args)
    ]


def dockerfile_installer_problems(instructions: list[Instruction], uv_version: str | None = None) -> list[str]:
    """Python packages go in with the lab's installer: uv at the course's version, constrained by the locks."""
    if uv_version is None:
        from ...lab.venvs import UV_VERSION as uv_version
    args = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            k, _, v = ins.args.partition("=")
            args[k.strip()] = v.strip().strip('"')
    problems = []
    runs = [(ins.line, _substitute(ins.args, args)) for ins in instructions if ins.keyword == "RUN"]
    installs = any(re.search(r"\bpip install\b", r) for _, r in runs)
    if installs and not any(f"uv=={uv_version}" in r for _, r in runs):
        problems.append(f"install uv=={uv_version} (cloudlab/lab/venvs.py UV_VERSION): the installer `make lab` uses")
    for line, run in runs:
        for cmd in re.split(r"&&|;|\|\|", run):
            if re.search(r"\bpip install\b", cmd) and not re.search(r"\buv pip install\b|[\"']?uv==", cmd):
                problems.append(
                    f"line {line}: plain `pip install`: use `uv pip install` with the pins, as the lab does"
                )
            if re.search(r"\buv pip install\b.*-r \S*requirements\.txt", cmd) and "kernel-lock.txt" not in cmd:
                problems.append(
                    f"line {line}: requirements.txt without `-c pins/kernel-lock.txt`: versions would float"
                )
    return problems


def dockerfile_problems(text: str) -> list[str]:
    instructions = parse_dockerfile(text)
    return (
        dockerfile_from_problems(instructions)
        + dockerfile_user_problems(instructions)
        + dockerfile_healthcheck_problems(instructions)
        + dockerfile_download_problems(instructions)
        + dockerfile_installer_problems(instructions)
    )


REQUIRED_IGNORES = (".lab", ".venv", ".git", ".terraform", "*.tfstate", "__pycache__")


def dockerignore_problems(text: str, required=REQUIRED_IGNORES) -> list[str]:
    """The build context leaves out lab state, environments, history, caches and Terraform state."""
    patterns = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            patterns.add(line.removeprefix("/").removeprefix("**/").rstrip("/"))
    return [f".dockerignore: {want} is not excluded" for want in required if want not in patterns]
