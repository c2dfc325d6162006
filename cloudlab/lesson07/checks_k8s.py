"""Lesson 07's Kubernetes least-privilege check (07.7): RBAC of two ServiceAccounts and the Secret's mount, read
from the learner's manifests rendered by kustomize, in the task's namespace and in a second one."""

from __future__ import annotations

from .. import k8s
from ..checks import check
from ..lab.tools import ToolMissing
from . import k8s as l07k8s
from .k8s import OTHER_NAMESPACE, SECRET, SYNC_SA

ONE_LINE_FIXES = {  # checkov findings this task fixes in one line each: a skip of them is silencing, not fixing
    "CKV_K8S_38": "automountServiceAccountToken: false (the service never calls the API)",
    "CKV_K8S_35": "mount the Secret as a file instead of an environment variable",
    "CKV2_K8S_5": "a Role without list/watch/get on every Secret",
}


@check(
    "07.7",
    "The service gets its Secret as a file and no API access; the sync job may get and patch that one Secret",
    hints=[
        "Two identities. `payments` (the service): a ServiceAccount with `automountServiceAccountToken: false` and "
        "NO Role (it reads a file, it never calls the API). `payments-db-sync` (the job that copies the rotated "
        "password into the Secret): a Role with ONE rule (apiGroups [''], resources ['secrets'], resourceNames "
        "['payments-db'], verbs ['get', 'patch']) and a RoleBinding to it.",
        "DEPLOYMENT_YAML: serviceAccountName: payments; securityContext runAsUser: 10001, fsGroup: 10001; a volume "
        "`secret: {secretName: payments-db, defaultMode: 0440}` mounted readOnly (no subPath: it would never see a "
        "rotation), DB_PASSWORD_FILE pointing at the file in it; no secretKeyRef/envFrom.",
        "Leave the namespace out of the RoleBinding's subject (kustomize sets it): the check also renders your files "
        "in payments-staging. No ClusterRole/ClusterRoleBinding, no list/watch/create, and no checkov skip of what "
        "one line fixes. Start from the lesson's k8s/base files.",
    ],
)
def check_rbac(r, ns):
    rbac_yaml = r.need(ns, "RBAC_YAML", str)
    deployment_yaml = r.need(ns, "DEPLOYMENT_YAML", str)
    try:
        objs = l07k8s.render_pair(rbac_yaml, deployment_yaml)
        staging = l07k8s.render_pair(rbac_yaml, deployment_yaml, OTHER_NAMESPACE)
    except (k8s.RenderError, ToolMissing) as err:
        r.fail(str(err))
    problems = k8s.validate(objs)
    r.require(
        not problems,
        "the manifests pass strict schema validation",
        "invalid: " + "; ".join(f"{where}: {what}" for where, what in problems[:3]),
    )
    deps = objs.all("Deployment")
    r.require(len(deps) == 1, "one Deployment", f"DEPLOYMENT_YAML should hold one Deployment, found {len(deps)}")
    dep = deps[0]
    spec = k8s.pod_spec(dep)
    sa = spec.get("serviceAccountName") or "default"
    r.expect(
        sa != "default",
        f"the pods run as their own ServiceAccount ({sa})",
        "the pods run as the namespace's `default` ServiceAccount: give them their own (serviceAccountName)",
    )
    r.expect(
        objs.get("ServiceAccount", sa) is not None, f"the ServiceAccount {sa} is defined", f"no ServiceAccount {sa}"
    )
    # --- the service: it reads a file, so it needs nothing from the API
    granted = l07k8s.allowed(objs, sa)
    r.expect(
        not granted,
        f"{sa} may do nothing in the API (the kubelet fetches the Secret for the volume, not the pod)",
        f"{sa} (the service) may {', '.join(granted)}: it never calls the API, so it needs no Role at all",
    )
    r.expect(
        not l07k8s.token_mounted(objs, dep),
        "no API token is mounted into its pods",
        "its pods still get an API token: `automountServiceAccountToken: false` (on the ServiceAccount or the pod)",
    )
    # --- the sync job: get and patch on one Secret, in its own namespace only
    r.require(
        objs.get("ServiceAccount", SYNC_SA) is not None,
        f"the ServiceAccount {SYNC_SA} is defined",
        f"no ServiceAccount {SYNC_SA} in RBAC_YAML: the job that copies the rotated password runs as it",
    )
    sync = l07k8s.allowed(objs, SYNC_SA)
    needed = ["get the Secret payments-db", "patch the Secret payments-db"]
    r.expect(
        all(x in sync for x in needed),
        f"{SYNC_SA} may get and patch the Secret {SECRET} (what `kubectl apply` does)",
        f"{SYNC_SA} may not {' and '.join(x.split(' the ')[0] for x in needed if x not in sync)} the Secret {SECRET}",
    )
    extra = [x for x in sync if x not in needed]
    r.expect(
        not extra,
        "and nothing else (no other Secret, no list/watch/create/update/delete, no ConfigMaps, no Pods)",
        f"{SYNC_SA} may also {', '.join(extra)}",
    )
    wide = l07k8s.cluster_wide(objs, SYNC_SA) + l07k8s.cluster_wide(objs, sa)
    r.expect(
        not wide,
        "no ClusterRoleBinding: every grant holds in namespace payments only",
        f"ClusterRoleBinding {', '.join(wide)} grants in EVERY namespace (any namespace's payments-db, and more): "
        "use a Role and a RoleBinding",
    )
    foreign = l07k8s.foreign_subjects(staging, OTHER_NAMESPACE)
    works = k8s.can(staging, SYNC_SA, OTHER_NAMESPACE, "patch", "secrets", SECRET)
    r.expect(
        works and not foreign,
        f"rendered in {OTHER_NAMESPACE} too, the binding names that namespace's own {SYNC_SA}",
        f"rendered in {OTHER_NAMESPACE} (the same files, another namespace), "
        + (
            f"the RoleBinding names {', '.join(foreign)}: another namespace's identity gets this namespace's Secret "
            "(and the job here gets nothing). Leave the subject's namespace out: kustomize sets it"
            if foreign
            else f"{SYNC_SA} cannot patch its Secret there"
        ),
    )
    # --- the Secret as a file
    use = k8s.secret_use(dep)
    r.expect(
        not use["env"],
        "no Secret goes into an environment variable",
        "Secrets in environment variables: " + ", ".join(f"{c}:{v}" for c, v, _ in use["env"]),
    )
    vols = [v for v, s in use["volumes"].items() if s == SECRET]
    mounts = [m for m in use["mounts"] if m[1] in vols]
    r.require(
        bool(mounts),
        f"the Secret {SECRET} is mounted as a volume",
        f"the Secret {SECRET} is not mounted as a volume in the container",
    )
    r.expect(all(m[3] for m in mounts), "the mount is readOnly", "the Secret's volumeMount should be readOnly: true")
    sub = [
        m.get("subPath")
        for c in spec.get("containers") or []
        for m in (c.get("volumeMounts") or [])
        if isinstance(m, dict) and m.get("name") in vols and m.get("subPath")
    ]
    r.expect(
        not sub,
        "mounted as a folder (the kubelet can swap in a rotated password)",
        f"mounted with subPath ({', '.join(sub)}): a subPath mount never receives a Secret's updates, so the "
        "service keeps the old password after every rotation. Mount the folder",
    )
    access = l07k8s.secret_file_access(dep, mounts[0][1])
    mode = oct(access["mode"])
    r.expect(
        access["readable"] and not access["others"],
        f"the file ({mode}, owner root, group {access['fs_group']}) is readable by the service's user "
        f"{access['uid']} and by no other user",
        (
            f"the file ends up {mode} with no user to read it from: set the container's numeric runAsUser (10001)"
            if access["uid"] is None
            else f"the file ends up {mode}, owned by root: UID {access['uid']} cannot read it. Give the pod "
            "`fsGroup: 10001` (the file's group becomes 10001, with group read) and defaultMode 0440"
            if not access["readable"]
            else f"the file ends up {mode}: every user in the container can read it (use 0440 with fsGroup)"
        ),
    )
    envs = {e["name"]: e.get("value") for c in spec.get("containers") or [] for e in c.get("env") or []}
    pf = envs.get("DB_PASSWORD_FILE") or ""
    r.expect(
        any(pf.startswith(m[2].rstrip("/") + "/") for m in mounts),
        f"DB_PASSWORD_FILE points into the mount ({pf})",
        f"DB_PASSWORD_FILE ({pf or 'not set'}) should name the password file inside the mounted volume",
    )
    silenced = [(o, cid, why) for o, cid, why in l07k8s.checkov_skips(objs) if cid in ONE_LINE_FIXES]
    r.expect(
        not silenced,
        "no checkov finding of this task is skipped",
        "skipped instead of fixed: "
        + "; ".join(f"{cid} on {o} (the fix is one line: {ONE_LINE_FIXES[cid]})" for o, cid, _ in silenced),
    )
