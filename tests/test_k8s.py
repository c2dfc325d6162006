"""The Kubernetes toolkit's parts that lesson 07 brought: strict loading of typed YAML, validation that never
crashes, kustomize errors, the checkov scan of rendered objects, RBAC's ``can``, ``secret_use`` and
``encryption_problems``. (Rendering, objects, NetworkPolicy and the live side: tests/test_lesson06.py; the
lesson 07 files through these functions: tests/test_lesson07.py.)
"""

from __future__ import annotations

import copy

import pytest

from cloudlab import k8s


# ------------------------------------------------------------------ render: load, validate, kustomize, scan
def test_load_strict_rejects_what_is_not_an_object():
    assert len(k8s.load("---\nkind: A\n---\n\n---\n- a list\n")) == 1  # default: skips what is not an object
    text = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n---\n"
    assert k8s.load(text, strict=True).kinds() == ["ServiceAccount/x"]
    for bad, words in (("kind: [", "not valid YAML"), ("name: x\n", "needs a kind"), ("- a list\n", "needs a kind")):
        with pytest.raises(k8s.RenderError, match=words):
            k8s.load(text + bad, strict=True)


def test_validate_unknown_fields_and_strange_values_are_problems_not_crashes():
    bad = k8s.load("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nautomount: true\n")
    assert "automount" in k8s.validate(bad)[0][1]
    for obj in (
        {"apiVersion": "v1", "kind": ["ServiceAccount"], "metadata": {"name": "x"}},
        {"apiVersion": 1, "kind": "ServiceAccount"},
        {"kind": "ServiceAccount"},
    ):
        (problem,) = k8s.validate([obj])
        assert "apiVersion and kind are required" in problem[1], problem
    assert "has no Nope" in k8s.validate([{"apiVersion": "v1", "kind": "Nope"}])[0][1]


def test_kustomize_error_is_a_render_error(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(k8s.RenderError, match="kubectl kustomize .* failed") as e:
        k8s.kustomize(tmp_path, quiet=True)
    assert "missing.yaml" in str(e.value)


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:latest"}]},
        },
    },
}


def test_scan_writes_exactly_the_named_files_and_sees_them_under_a_hidden_folder(tmp_path):
    """checkov's kubernetes runner skips a hidden folder (the lab's .lab/): scan goes through scanners.checkov."""
    folder = tmp_path / ".lab" / "work" / "scan"
    (folder / "web.yaml").parent.mkdir(parents=True)
    (folder / "web.yaml").write_text("an older render, rewritten")
    rep = k8s.scan({"web": [DEPLOYMENT], "again": k8s.Manifest([DEPLOYMENT])}, folder, quiet=True)
    assert sorted(p.name for p in folder.glob("*.yaml")) == ["again.yaml", "web.yaml"]
    assert rep["resources"] >= 2 and rep["command"].startswith("cd "), rep
    failed = {f[0] for f in rep["failed"]}
    assert {"CKV_K8S_14", "CKV_K8S_8"} <= failed, failed  # the :latest image; no liveness probe


def test_scan_refuses_a_folder_with_other_manifests(tmp_path):
    """checkov scans the whole folder: another file would change the report, and scan deletes nothing."""
    for other in ("stale.yaml", "sub/deep.yml", "list.json"):
        folder = tmp_path / other.replace("/", "-")
        (folder / other).parent.mkdir(parents=True)
        (folder / other).write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: stale}\n")
        with pytest.raises(k8s.K8sError, match="folder of its own"):
            k8s.scan({"web": [DEPLOYMENT]}, folder, quiet=True)
        assert (folder / other).exists() and not (folder / "web.yaml").exists()


# ------------------------------------------------------------------ rbac.can
SA = {"kind": "ServiceAccount", "metadata": {"name": "app", "namespace": "shop"}}


def role(kind="Role", namespace="shop", name="r", **rule):
    rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], **rule}
    m = {"name": name} | ({"namespace": namespace} if kind == "Role" else {})
    return {"kind": kind, "metadata": m, "rules": [rule]}


def binding(kind="RoleBinding", namespace="shop", ref_kind="Role", ref="r", sa_ns="shop"):
    m = {"name": "b"} | ({"namespace": namespace} if kind == "RoleBinding" else {})
    return {
        "kind": kind,
        "metadata": m,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
        "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": sa_ns}],
    }


def test_can_role_and_binding():
    objs = [SA, role(resourceNames=["db"]), binding()]
    assert k8s.can(objs, "app", "shop", "get", "secrets", "db")
    assert not k8s.can(objs, "app", "shop", "get", "secrets", "other")  # resourceNames
    assert not k8s.can(objs, "app", "shop", "list", "secrets")  # no verb, and no name to match
    assert not k8s.can(objs, "app", "shop", "get", "secrets")  # a get without a name: resourceNames never match
    assert not k8s.can(objs, "app", "other", "get", "secrets", "db")  # a RoleBinding grants in its namespace
    assert not k8s.can(objs, "other-sa", "shop", "get", "secrets", "db")
    assert not k8s.can(objs, "app", "shop", "get", "secrets", "db", group="apps")
    assert not k8s.can([SA, role(resourceNames=["db"])], "app", "shop", "get", "secrets", "db")  # no binding
    assert not k8s.can([SA, binding()], "app", "shop", "get", "secrets", "db")  # a binding to no role


def test_can_wildcards_and_cluster_roles():
    star = [role(verbs=["*"], resources=["*"], apiGroups=["*"]), binding()]
    assert k8s.can(star, "app", "shop", "delete", "deployments", "x", group="apps")
    cr = role("ClusterRole", verbs=["list"])
    assert k8s.can([cr, binding(ref_kind="ClusterRole")], "app", "shop", "list", "secrets")
    assert not k8s.can([cr, binding(ref_kind="ClusterRole")], "app", "kube-system", "list", "secrets")
    # the namespace is the ServiceAccount's and the request's: a ClusterRoleBinding reaches it anywhere
    crb = binding("ClusterRoleBinding", ref_kind="ClusterRole", sa_ns="kube-system")
    assert k8s.can([cr, crb], "app", "kube-system", "list", "secrets")
    rb = binding(ref_kind="ClusterRole", sa_ns="kube-system")  # a RoleBinding in shop for kube-system/app
    assert not k8s.can([cr, rb], "app", "kube-system", "list", "secrets")
    assert not k8s.can([cr, crb], "app", "shop", "list", "secrets")  # another ServiceAccount
    other_ns_role = role(namespace="elsewhere")
    assert not k8s.can([other_ns_role, binding()], "app", "shop", "get", "secrets")  # a Role of another namespace


def test_can_never_raises_on_strange_values():
    weird = [
        "text",
        None,
        {"kind": "Role", "metadata": "x", "rules": "all"},
        {"kind": "RoleBinding", "metadata": {"namespace": "shop"}, "subjects": [None, "app"], "roleRef": "r"},
        {"kind": "RoleBinding", "metadata": {"namespace": "shop"}, "subjects": {"kind": "ServiceAccount"}},
        role(verbs="get*", resources="secrets"),  # strings, not lists: match nothing
        binding(),
    ]
    assert not k8s.can(weird, "app", "shop", "get", "secrets")


# ------------------------------------------------------------------ secrets.secret_use
def with_pod(pod_spec: dict, kind="Deployment") -> dict:
    d = copy.deepcopy(DEPLOYMENT)
    d["kind"] = kind
    d["spec"]["template"]["spec"] = pod_spec
    return d


def test_secret_use_env_envfrom_volumes_and_modes():
    spec = {
        "containers": [
            {
                "name": "web",
                "env": [
                    {"name": "PLAIN", "value": "x"},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "CONF", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                ],
                "volumeMounts": [
                    {"name": "creds", "mountPath": "/run/creds", "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "initContainers": [
            {"name": "init", "envFrom": [{"secretRef": {"name": "all"}}, {"configMapRef": {"name": "c"}}]}
        ],
        "volumes": [
            {"name": "creds", "secret": {"secretName": "db", "defaultMode": 0o400}},  # pragma: allowlist secret
            {"name": "other", "secret": {"secretName": "tls"}},  # pragma: allowlist secret
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    use = k8s.secret_use(with_pod(spec))
    assert use["env"] == [("web", "DB_PASSWORD", "db"), ("init", "(envFrom)", "all")]
    assert use["volumes"] == {"creds": "db", "other": "tls"}
    assert use["modes"] == {"creds": 0o400, "other": 0o644}  # the default mode: readable by everyone
    assert use["mounts"] == [("web", "creds", "/run/creds", True)]
    assert k8s.secret_use(with_pod(spec, "StatefulSet")) == use
    assert k8s.secret_use({"kind": "Pod", "spec": spec}) == use


def test_secret_use_never_raises_on_strange_values():
    empty = {"env": [], "volumes": {}, "modes": {}, "mounts": []}
    assert k8s.secret_use(None) == empty and k8s.secret_use({"kind": "Deployment", "spec": "x"}) == empty
    odd = {
        "containers": ["web", {"env": "x", "envFrom": [None]}],
        "volumes": [{"secret": "db"}, None],  # pragma: allowlist secret
    }
    assert k8s.secret_use(with_pod(odd)) == empty


# ------------------------------------------------------------------ secrets.encryption_problems
GOOD_ENCRYPTION = """
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {apiVersion: v2, name: kms, endpoint: "unix:///var/run/kms.sock"}
      - identity: {}
"""


@pytest.mark.parametrize(
    "change,words",
    [
        (("kind: EncryptionConfiguration", "kind: Encryption"), "apiVersion/kind"),
        (("[secrets]", "[configmaps]"), "no entry covers `secrets`"),
        (("apiVersion: v2", "apiVersion: v1"), "KMS v2"),
        (('"unix:///var/run/kms.sock"', '"localhost:8080"'), "Unix socket"),
        (("      - kms:", "      - rot13:"), "unknown provider 'rot13'"),
        (("    providers:\n", "    providers:\n      - identity: {}\n"), "plain text"),
        (("    providers:\n      - kms", "    providers: []\n    old:\n      - kms"), "no providers"),
    ],
)
def test_encryption_problems(change, words):
    assert k8s.encryption_problems(GOOD_ENCRYPTION) == []
    assert words in " ".join(k8s.encryption_problems(GOOD_ENCRYPTION.replace(*change)))


def test_encryption_problems_never_raise():
    for doc in (
        "a: [",
        "just text",
        None,
        [],
        {"resources": "secrets"},
        {"resources": [{"resources": ["secrets"], "providers": ["identity"]}]},
    ):
        assert k8s.encryption_problems(doc), doc
    assert k8s.encryption_problems({"resources": [{"resources": ["secrets"], "providers": [{"kms": None}]}]})
