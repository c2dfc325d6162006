"""The live side: the course's kind cluster, when one answers. Only ever its own context.

``mode()`` says once per kernel whether the lesson runs live or offline. ``live()`` returns a
:class:`Cluster` or None; a live-only cell calls ``skip_unless_live("what it would do", "the command")``
and prints one line when there is no cluster. Every kubectl/helm call is printed.
"""

from __future__ import annotations

import json
import os
import time

from ..lab import cluster as kind
from ..lab import tools
from .render import K8sError, Manifest, helm_exe, run, shown

_ANNOUNCED: dict[str, str] = {}
REQUIRE_ENV = "CLOUDLAB_REQUIRE_CLUSTER"  # "1": offline mode is an error (the live CI job sets it)


class NoCluster(K8sError):
    """The course's cluster does not answer, and this run requires one."""


class Cluster:
    """The course's kind cluster, through kubectl and helm on its own context."""

    def __init__(self, context: str = kind.CONTEXT):
        self.context = context

    def kubectl(self, *args, quiet: bool = False, timeout: float = 60.0, stdin: str | None = None):
        return run([tools.require("kubectl", "06"), "--context", self.context, *args], quiet, timeout, stdin)

    def get(self, kind_: str, name: str | None = None, namespace: str | None = None, quiet: bool = True):
        """The live object (or a list's items when no name), as dicts; None/[] when absent."""
        args = ["get", kind_] + ([name] if name else []) + (["-n", namespace] if namespace else []) + ["-o", "json"]
        out = self.kubectl(*args, quiet=quiet)
        if out.returncode != 0:
            return None if name else []
        data = json.loads(out.stdout or "{}")
        return data if name else data.get("items", [])

    def apply(self, manifest: Manifest | str, quiet: bool = False):
        text = manifest.text if isinstance(manifest, Manifest) else str(manifest)
        out = self.kubectl("apply", "-f", "-", quiet=quiet, stdin=text)
        if out.returncode != 0:
            raise K8sError(f"kubectl apply failed:\n{out.stderr[-1200:]}")
        return out.stdout

    def helm_upgrade(self, release: str, chart, namespace: str, values=(), set_values=None, wait="120s", quiet=False):
        """``helm upgrade --install --wait``: install or update a release; (ok, output)."""
        cmd = [helm_exe(), "upgrade", "--install", release, str(chart), "--namespace", namespace, "--create-namespace"]
        cmd += ["--kube-context", self.context, "--wait", "--timeout", wait]
        for f in values:
            cmd += ["-f", str(f)]
        for k, v in (set_values or {}).items():
            cmd += ["--set", f"{k}={v}"]
        out = run(cmd, quiet=quiet, timeout=600)
        return out.returncode == 0, (out.stdout + out.stderr).strip()

    def rollout_status(self, name: str, namespace: str, timeout: str = "90s", quiet: bool = False):
        out = self.kubectl(
            "rollout", "status", f"deployment/{name}", "-n", namespace, f"--timeout={timeout}", quiet=quiet
        )
        return out.returncode == 0, (out.stdout + out.stderr).strip()

    def ready_endpoints(self, service: str, namespace: str) -> list[str]:
        """The addresses of ready pods behind a Service (EndpointSlices)."""
        slices = self.get("endpointslices", namespace=namespace)
        addrs = []
        for s in slices:
            if (s.get("metadata", {}).get("labels") or {}).get("kubernetes.io/service-name") != service:
                continue
            for e in s.get("endpoints") or []:
                if (e.get("conditions") or {}).get("ready"):
                    addrs += e.get("addresses") or []
        return addrs

    def can_connect(self, namespace: str, url: str, labels: dict | None = None, timeout: int = 5) -> bool:
        """Start a throw-away pod (the order service's image: it has Python) and try ``url`` from it."""
        name = f"l06-probe-{int(time.time() * 1000) % 100000}"
        code = f"import urllib.request as u; u.urlopen({url!r}, timeout={timeout})"
        args = ["run", name, "-n", namespace, "--rm", "-i", "--restart=Never", f"--image={kind.image()}"]
        if labels:
            args.append("--labels=" + ",".join(f"{k}={v}" for k, v in labels.items()))
        out = self.kubectl(*args, "--command", "--", "python", "-c", code, timeout=timeout + 90)
        return out.returncode == 0

    def delete_namespaces(self, prefix: str) -> list[str]:
        gone = []
        for ns in self.get("namespaces"):
            name = ns.get("metadata", {}).get("name", "")
            if name.startswith(prefix):
                self.kubectl("delete", "namespace", name, "--wait=false", quiet=True)
                gone.append(name)
        return gone


def live(timeout: int = 3) -> Cluster | None:
    """The course's cluster if it answers now, else None (or :class:`NoCluster` when one is required)."""
    ok, detail = kind.cluster_status(timeout)
    if ok:
        return Cluster()
    if os.environ.get(REQUIRE_ENV) == "1":
        raise NoCluster(f"{REQUIRE_ENV}=1 but {detail}: run `make cluster` first")
    return None


def mode(quiet: bool = False) -> str:
    """'live' or 'offline'; said once per kernel, with what it means and how to change it."""
    m = "live" if live() else "offline"
    if not quiet and _ANNOUNCED.get("mode") != m:
        _ANNOUNCED["mode"] = m
        if m == "live":
            print(f"LIVE mode: the course's kind cluster answers (kubectl --context {kind.CONTEXT}).")
            print("Every manifest is still validated offline first; cells marked [live] also run it on the cluster.")
            skew = kind.version_skew()
            if skew:
                print(skew)
        else:
            ok_kind, _ = kind.kind_status()
            ok_docker, docker_detail = kind.docker_status()
            why = "kind is not installed" if not ok_kind else ("" if ok_docker else docker_detail)
            print("OFFLINE mode: no course cluster answers" + (f" ({why})" if why else "") + ".")
            print("Everything is rendered and validated with the real tools (helm, kubectl kustomize,")
            print(
                "kubernetes-validate, checkov); cells marked [live] skip with one line. For a cluster: `make cluster`."
            )
    return m


def skip_unless_live(what: str, command: str = "") -> Cluster | None:
    """In a [live] cell: the cluster, or one line saying what was skipped and why (returns None)."""
    c = live()
    if c is None:
        extra = f"  (would run: {command})" if command else ""
        print(f"[live] skipped, offline: {what}{extra}")
    return c


__all__ = ["Cluster", "NoCluster", "live", "mode", "skip_unless_live", "shown"]
