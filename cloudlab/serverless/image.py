"""The same function as a container image: built from the lab's base (or the pinned python:3.11-slim digest where
a registry answers), with awslambdaric and the Runtime Interface Emulator inside, run on the lesson's Docker
engine with ``--network host`` and the emulator told to listen on 127.0.0.1 only.

The build context is assembled in the lab's work folder: the Dockerfile and requirements of
``lessons/12_serverless/image/``, the function's file, the emulator binary, and a wheelhouse made on the host
(:func:`cloudlab.containers.wheelhouse`: the build needs no network). The image is tagged by the digest of that
context, so an unchanged context is never built twice (the engine keeps it between runs, like lesson 05's base).
Serves lesson 12.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .. import containers, net, procs
from ..lab import ROOT, Lab
from .runtime import Environment, FunctionSpec, rie

IMAGE_DIR = ROOT / "lessons" / "12_serverless" / "image"
REPOSITORY = "l12-hello"


def context(function_file: Path, show: bool = True) -> Path:
    """The build context (refreshed in place): Dockerfile, requirements, wheels, the emulator, the function."""
    ctx = Lab.from_env().work_dir("12") / "image"
    ctx.mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile", "requirements.txt"):
        shutil.copy2(IMAGE_DIR / name, ctx / name)
    shutil.copy2(function_file, ctx / "hello.py")
    binary = ctx / "aws-lambda-rie"
    src = Path(rie())
    if not binary.exists() or binary.stat().st_size != src.stat().st_size:
        shutil.copy2(src, binary)
    containers.wheelhouse(ctx / "requirements.txt", ctx / "wheels", show=show)
    return ctx


def build(function_file: Path, show: bool = True) -> tuple[str, object]:
    """Build (or find) the image; returns (tag, the Build, or None when the image already existed)."""
    ctx = context(function_file, show=show)
    tag = containers.content_tag(REPOSITORY, ctx)
    if containers.inspect(tag):
        if show:
            print(f"{tag} is already in the engine (same context digest): not built again")
        return tag, None
    return tag, containers.build(ctx, tag, lesson="12", show=show)


class ContainerEnvironment(Environment):
    """One execution environment as a container: the emulator is the container's entrypoint.

    ``docker run`` runs in the foreground as a lesson process, so the container's output (the emulator's and the
    function's lines, in order) lands in the process log, read exactly as for a process environment."""

    def __init__(self, spec: FunctionSpec, image: str, index: int = 1):
        super().__init__(spec, index)
        self.image = image

    def command(self) -> list[str]:
        return [
            "--runtime-interface-emulator-address",
            f"{net.LOOPBACK}:{self.port}",
            "--runtime-api-address",
            f"{net.LOOPBACK}:{self.api_port}",
            "/opt/runtime/bin/python",
            "-m",
            "awslambdaric",
            self.spec.handler,
        ]

    def docker_args(self) -> list[str]:
        flags = [  # least privilege (lesson 05), the function's memory setting as the container's limit
            "--user", "10001:10001", "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--memory", f"{self.spec.memory_mb}m", "--pids-limit", "64",
        ]  # fmt: skip
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": f"{self.spec.timeout:g}",
        }
        args = ["run", "--rm", "--name", self.name, "--network", "host", "--label", f"{containers.LABEL}=12", *flags]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        return args + [self.image, *self.command()]

    def shown_command(self) -> str:
        return containers.shown(self.docker_args())

    def start(self, timeout: float = 20.0) -> ContainerEnvironment:
        if self.alive():
            return self
        eng = containers.current()
        containers.docker("rm", "-f", self.name)
        self.port, self.api_port = net.free_port(), net.free_port()
        while self.api_port == self.port:
            self.api_port = net.free_port()
        self.proc = procs.start(self.name, [eng.client, *self.docker_args()], env=eng.environ(), python=False)
        deadline = time.monotonic() + timeout
        while not net.port_in_use(self.port):
            if time.monotonic() > deadline or not self.proc.alive():
                out = self.proc.output()[-800:]
                self.stop()
                raise RuntimeError(f"the function's container did not listen on {self.port}:\n{out}")
            time.sleep(0.05)
        self.started_at = time.monotonic()
        return self

    def runtime_pid(self):
        return None  # the runtime lives in the container's own PID namespace

    def listening(self) -> list[tuple[str, int, int]]:
        """The container's sockets (it shares the host's network): read from /proc for the emulator's ports."""
        from ..lab import process

        found = process.listening({int(p.name) for p in Path("/proc").glob("[0-9]*")})
        return [s for s in found if s[1] in (self.port, self.api_port)]

    def stop(self) -> None:
        procs.stop(self.name, grace=3.0)
        if containers.answers():
            containers.docker("rm", "-f", self.name)
        self.proc = None


def function(spec: FunctionSpec, image: str, **kw):
    """A :class:`~.pool.Function` whose environments are containers of ``image``."""
    from .pool import Function

    return Function(spec, make_environment=lambda s, i: ContainerEnvironment(s, image, i), **kw)
