"""The course's kind cluster: ``make cluster`` / ``make cluster-down`` (lesson 06, and 07's RBAC part).

Standard library only, like the rest of ``cloudlab.lab``. The cluster is named ``cloudlab``; the course only
ever talks to its kubectl context ``kind-cloudlab`` (never to whatever context your kubectl points at:
that could be a real cluster). ``make cluster``:

1. checks kind and a running Docker engine, and says how to get them if not;
2. ``kind create cluster --config lessons/06_kubernetes/kind/cluster.yaml`` (node image pinned by digest);
3. builds the order service's ONE image the lesson 05 way (``cloudlab.lesson05.build_orders``, in the course's
   Python: lesson 05's Dockerfile, wheelhouse, ``--network none``; cached when lesson 05 built it), gives that
   digest the name ``cloudlab/orders:sha-<hash of its source files>`` (a source-hash tag lesson 06 can compute
   without building), and ``kind load docker-image``s it into the node (no registry needed);
4. starts cloud-provider-kind (LoadBalancer Services and Ingress for kind) as a container on the kind
   network, so the lesson's Ingress gets an address;
5. installs metrics-server (pinned release), so an HorizontalPodAutoscaler reads real CPU figures, and says
   when kubectl is outside the version skew kubectl supports (one minor version from the cluster's).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess

from . import ROOT, LabError, say

NAME = "cloudlab"
CONTEXT = f"kind-{NAME}"
LESSON_DIR = ROOT / "lessons" / "06_kubernetes"
KIND_CONFIG = LESSON_DIR / "kind" / "cluster.yaml"
IMAGE_REPO = "cloudlab/orders"
# The image's sources: lesson 05's build context as the repository holds it (its wheelhouse is made from the
# pinned requirements.txt). The hash names them, not the image: the digest is what identifies the image.
IMAGE_SOURCES = (
    "lessons/05_containers/orders/Dockerfile",
    "lessons/05_containers/orders/.dockerignore",
    "lessons/05_containers/orders/requirements.txt",
    "lessons/05_containers/orders/healthcheck.py",
    "app/__init__.py",
    "app/service.py",
)
CLOUD_PROVIDER = "l06-cloud-provider-kind"
CLOUD_PROVIDER_IMAGE = "registry.k8s.io/cloud-provider-kind/cloud-controller-manager:v0.10.0"
KIND_VERSION = "v0.33.0"  # the release whose notes list the node image of kind/cluster.yaml
KIND_FIX = "install kind 0.33 (macOS: `brew install kind`; Linux: https://kind.sigs.k8s.io/docs/user/quick-start/)"
# metrics-server: the HPA's CPU figures (without it an HPA shows <unknown> and never scales). kind's kubelets serve
# self-signed certificates, hence --kubelet-insecure-tls (a lab-only setting: never on a real cluster).
METRICS_SERVER = "https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.8.1/components.yaml"
METRICS_PATCH = '[{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--kubelet-insecure-tls"}]'
DOCKER_FIX = "start Docker (Docker Desktop, or `sudo systemctl start docker`), then run `make cluster` again"


def image_tag() -> str:
    """``sha-`` + 12 hex digits of a hash of the image's source files (``IMAGE_SOURCES``): a source-hash tag. The
    same sources always get the same tag; it names the sources, not the bytes of an image (another base, or a
    build without cache, gives another digest under it), so deployments pin the digest."""
    h = hashlib.sha256()
    for rel in IMAGE_SOURCES:
        p = ROOT / rel
        h.update(rel.encode() + b"\0" + (p.read_bytes() if p.exists() else b""))
    return f"sha-{h.hexdigest()[:12]}"


def image() -> str:
    return f"{IMAGE_REPO}:{image_tag()}"


# Run in the course's Python (make cluster itself runs on the standard library): lesson 05's build, and the
# cluster's name for the same digest. Prints one JSON line.
_BUILD = """
import json, sys
from cloudlab import containers
from cloudlab.lesson05 import build_orders
b = build_orders(show=False)
containers.docker("tag", b.image_id, sys.argv[1], check=True)
print(json.dumps({"lesson05": b.tag, "image": sys.argv[1], "id": b.image_id}))
"""


def build_image(timeout: float = 900.0) -> dict:
    """Lesson 05's image, built by ``build_orders`` on the engine lesson 05 uses, also named :func:`image`:
    {"lesson05": its lesson 05 tag, "image": the cluster's name, "id": the digest both names point at}."""
    import json

    from . import Lab, venvs

    py = venvs.venv_python(Lab.from_env(), "kernel")
    if not py.exists():
        raise LabError(f"the course's Python environment ({py}) is missing: run `make setup` first")
    out = _run([str(py), "-c", _BUILD, image()], timeout=timeout)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise LabError(f"lesson 05's build of the order service's image failed:\n{(out.stderr or out.stdout)[-1500:]}")
    return json.loads(lines[-1])


def node_image() -> str:
    for line in KIND_CONFIG.read_text().splitlines():
        if line.strip().startswith("image:"):
            return line.split("image:", 1)[1].strip()
    return ""


def _run(cmd: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(cmd, 127, "", str(e))


def docker_status() -> tuple[bool, str]:
    """(engine answers, detail)."""
    if shutil.which("docker") is None:
        return False, "docker is not installed"
    out = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=10)
    if out.returncode != 0:
        return False, "the docker command is here but no engine answers (Docker stopped?)"
    return True, f"engine {out.stdout.strip()}"


def kind_status() -> tuple[bool, str]:
    if shutil.which("kind") is None:
        return False, "kind is not installed"
    out = _run(["kind", "version"])
    return out.returncode == 0, (out.stdout or out.stderr).strip()[:60]


def cluster_status(timeout: int = 3) -> tuple[bool, str]:
    """Does the course's cluster answer on its own context? (ok, detail) -- never the current context."""
    if shutil.which("kubectl") is None:
        return False, "kubectl not found"
    out = _run(["kubectl", "--context", CONTEXT, "get", "--raw", "/readyz", f"--request-timeout={timeout}s"], 10)
    if out.returncode == 0:
        return True, f"context {CONTEXT} answers (readyz {out.stdout.strip() or 'ok'})"
    return False, f"no cluster on context {CONTEXT}"


def version_skew(timeout: int = 5) -> str:
    """'' when kubectl and the course's cluster are within kubectl's supported skew (one minor version either
    way), else one line saying what to install. Never raises; '' also when there is no cluster to compare with."""
    out = _run(["kubectl", "--context", CONTEXT, "version", "-o", "json", f"--request-timeout={timeout}s"], 15)
    try:
        v = json.loads(out.stdout or "{}")
        minor = {k: int(re.match(r"\d+", v[k]["minor"]).group()) for k in ("clientVersion", "serverVersion")}
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    client, server = minor["clientVersion"], minor["serverVersion"]
    if abs(client - server) <= 1:
        return ""
    return (
        f"kubectl is 1.{client}, the cluster 1.{server}: kubectl supports one minor version either way. Install "
        f"kubectl 1.{server} (https://kubernetes.io/docs/tasks/tools/); the offline parts only use it client-side."
    )


def _metrics_server() -> None:
    """Install metrics-server (pinned) with --kubelet-insecure-tls; say so, never fail `make cluster` for it."""
    ctx = ["kubectl", "--context", CONTEXT]
    if _run([*ctx, "-n", "kube-system", "get", "deployment", "metrics-server"]).returncode == 0:
        return
    say("installing metrics-server v0.8.1 (CPU figures for the HorizontalPodAutoscaler) ...")
    out = _run([*ctx, "apply", "-f", METRICS_SERVER], timeout=120)
    if out.returncode == 0:
        out = _run([*ctx, "-n", "kube-system", "patch", "deployment", "metrics-server", "--type=json", "-p",
                    METRICS_PATCH])  # fmt: skip
    if out.returncode != 0:
        say(f"metrics-server did not install (an HPA will show <unknown> CPU; the rest works): {out.stderr[-300:]}")


def _exists() -> bool:
    out = _run(["kind", "get", "clusters"])
    return out.returncode == 0 and NAME in out.stdout.split()


def up() -> None:
    ok, detail = kind_status()
    if not ok:
        raise LabError(f"{detail}: {KIND_FIX}. Without a cluster, lesson 06 still validates everything offline.")
    ok, detail = docker_status()
    if not ok:
        raise LabError(f"kind runs Kubernetes in Docker, and {detail}: {DOCKER_FIX}.")
    if _exists():
        say(f"cluster {NAME} exists (context {CONTEXT})")
    else:
        say(f"creating the kind cluster {NAME} ({node_image().split('@')[0]}), about a minute ...")
        out = _run(["kind", "create", "cluster", "--config", str(KIND_CONFIG), "--wait", "120s"], timeout=600)
        if out.returncode != 0:
            raise LabError(f"`kind create cluster` failed:\n{out.stderr[-1500:]}")
    say("building the order service's image the lesson 05 way (cached if lesson 05 built it) ...")
    built = build_image()
    img = built["image"]
    say(f"{built['lesson05']} = {img} = {built['id'][:19]}... (one image, two names)")
    say(f"loading {img} into the cluster (kind load docker-image) ...")
    out = _run(["kind", "load", "docker-image", img, "--name", NAME], timeout=300)
    if out.returncode != 0:
        raise LabError(f"`kind load docker-image {img}` failed:\n{out.stderr[-1500:]}")
    if _run(["docker", "inspect", CLOUD_PROVIDER]).returncode != 0:
        say("starting cloud-provider-kind (LoadBalancer and Ingress for kind) ...")
        out = _run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                CLOUD_PROVIDER,
                "--network",
                "kind",
                "-v",
                "/var/run/docker.sock:/var/run/docker.sock",
                CLOUD_PROVIDER_IMAGE,
            ],
            timeout=300,
        )
        if out.returncode != 0:
            say(f"cloud-provider-kind did not start (Ingress gets no address; the rest works): {out.stderr[-300:]}")
    _metrics_server()
    skew = version_skew()
    if skew:
        say(skew)
    say(f"cluster ready: kubectl --context {CONTEXT} get nodes")


def down() -> None:
    if shutil.which("docker"):
        _run(["docker", "rm", "-f", CLOUD_PROVIDER])
    if shutil.which("kind") is None:
        say("kind is not installed: there is no course cluster to delete")
        return
    out = _run(["kind", "delete", "cluster", "--name", NAME], timeout=300)
    say(f"cluster {NAME} deleted" if out.returncode == 0 else f"kind delete cluster: {out.stderr.strip()[-300:]}")
