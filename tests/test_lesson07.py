"""Lesson 07: the toolkits it adds, and every check against its solution and the wrong answers learners write.

Fake keys are made at run time (repo.fake_aws_key), so this file holds nothing a secret scanner would flag.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from checktest import rejected

from cloudlab import iam, k8s, lesson07, scanners
from cloudlab.lesson07 import repo as repos

K8S = lesson07.k8s.K8S
POLICY_OK = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/orders/*"}],
}


# ------------------------------------------------------------------ unit: policies
@pytest.mark.parametrize(
    "doc,words",
    [
        ("{not json", "not valid JSON"),
        ({"Version": "2024-01-01", "Statement": []}, "2012-10-17"),
        ({"Version": "2012-10-17"}, "Statement"),
        ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action"),
        (
            {"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "s3:GetObject", "Resource": "*"}]},
            "Effect",
        ),
        (
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]},
            "service:Action",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "bucket/*"}],
            },
            "ARN",
        ),
        (
            {"Version": "2012-10-17", "Statement": [{**POLICY_OK["Statement"][0], "Principal": "*"}]},
            "identity policy has no Principal",
        ),
        (["a list"], "JSON object"),
    ],
)
def test_parse_says_what_is_wrong(doc, words):
    with pytest.raises(iam.PolicyError, match=words):
        iam.parse(doc)


def test_broad_statements():
    assert iam.broad_statements(POLICY_OK) == []
    star = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    assert len(iam.broad_statements(star)) == 2
    s3all = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}}
    assert "s3:*" in iam.broad_statements(s3all)[0]
    notaction = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    assert any("NotAction" in x for x in iam.broad_statements(notaction))
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert iam.broad_statements(deny) == []


# ------------------------------------------------------------------ unit: the payments service
def test_payments_config_and_redaction(tmp_path):
    from app.payments import DbConfig, RedactingLog
    from app.service import ConfigError

    base = {"DB_HOST": "h", "DB_PORT": "5432", "DB_NAME": "d", "DB_USER": "u"}
    with pytest.raises(ConfigError, match="DB_PASSWORD_FILE"):
        DbConfig.from_env(base)
    f = tmp_path / "pw"
    f.write_text("s3cr3t-value\n")
    cfg = DbConfig.from_env({**base, "DB_PASSWORD_FILE": str(f)})
    assert cfg.source == "file" and cfg.read_password() == "s3cr3t-value"
    assert "s3cr3t" not in repr(DbConfig.from_env({**base, "DB_PASSWORD": "s3cr3t-value"}))
    import io

    buf = io.StringIO()
    log = RedactingLog("INFO", stream=buf)
    log.secrets.add("s3cr3t-value")
    log("db_error", dsn="postgresql://u:s3cr3t-value@h/d", n=1)
    assert "s3cr3t" not in buf.getvalue() and "u:***@h" in buf.getvalue()


# ------------------------------------------------------------------ unit: the lesson's Kubernetes files
# (the toolkit's kustomize, validate, can, secret_use, encryption_problems: tests/test_k8s.py)
def test_base_manifests_render_validate_and_give_each_identity_what_it_uses():
    objs = k8s.kustomize(K8S / "base", quiet=True)
    assert k8s.validate(objs) == []
    assert lesson07.k8s.allowed(objs, "payments") == []  # the service reads a file: no API access at all
    assert not lesson07.k8s.token_mounted(objs, objs.get("Deployment"))
    assert lesson07.k8s.allowed(objs, "payments-db-sync") == [
        "get the Secret payments-db",
        "patch the Secret payments-db",
    ]
    assert lesson07.k8s.token_mounted(objs, objs.get("CronJob"))  # the sync job calls the API
    use = k8s.secret_use(objs.get("Deployment"))
    assert use["env"] == [] and use["mounts"][0][3]
    access = lesson07.k8s.secret_file_access(objs.get("Deployment"), "db-secret")
    assert access == {"mode": 0o440, "uid": 10001, "fs_group": 10001, "readable": True, "others": False}
    skips = lesson07.k8s.checkov_skips(objs)
    assert [(o, cid) for o, cid, _ in skips] == [("CronJob/payments-db-sync", "CKV_K8S_38")] and skips[0][2]
    assert lesson07.k8s.foreign_subjects(objs, "payments") == [] and lesson07.k8s.cluster_wide(objs, "payments") == []


def test_base_networkpolicy_allows_dns_over_udp_and_tcp():
    objs = k8s.kustomize(K8S / "base", quiet=True)
    svc = k8s.Endpoint("payments", {"app": "payments"})
    dns = k8s.Endpoint("kube-system", {"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"})
    policies = objs.all("NetworkPolicy")
    assert k8s.allowed(policies, svc, dns, 53, "UDP") and k8s.allowed(policies, svc, dns, 53, "TCP")


def test_overbroad_manifests_grant_too_much():
    objs = k8s.kustomize(K8S / "overbroad", quiet=True)
    assert k8s.validate(objs) == []
    assert k8s.can(objs, "payments", "payments", "list", "secrets")
    assert k8s.can(objs, "payments", "payments", "get", "secrets", "anything")
    assert not k8s.can(objs, "payments", "other-namespace", "list", "secrets")
    assert k8s.secret_use(objs.get("Deployment"))["env"]
    assert lesson07.k8s.token_mounted(objs, objs.get("Deployment"))


def test_encryption_config():
    good = (K8S / "encryption" / "encryption-config.yaml").read_text()
    assert k8s.encryption_problems(good) == []
    first_identity = good.replace("      - identity: {}\n", "").replace(
        "    providers:\n", "    providers:\n      - identity: {}\n"
    )
    assert "plain text" in k8s.encryption_problems(first_identity)[0]
    assert "v2" in " ".join(k8s.encryption_problems(good.replace("apiVersion: v2", "apiVersion: v1")))
    assert "plain text" in k8s.encryption_problems(good.replace("- secrets", "- configmaps"))[0]
    assert k8s.encryption_problems("a: [") and k8s.encryption_problems("just text")


def test_encryption_schema_rejects_identity_first_and_typos():
    """The registry's schema for the encryption config (lessons/artifacts.toml; check-jsonschema runs it there)
    flags what the lesson teaches. Here in-process, with the library check-jsonschema is built on."""
    import jsonschema
    import yaml

    good = (K8S / "encryption" / "encryption-config.yaml").read_text()
    schema = json.loads((K8S / "encryption" / "encryption-configuration.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    cases = {
        "good": (good, True),
        "identity-first": (
            good.replace("      - identity: {}\n", "").replace(
                "    providers:\n", "    providers:\n      - identity: {}\n"
            ),
            False,
        ),
        "typo": (good.replace("endpoint:", "endpiont:"), False),
        "tcp-endpoint": (good.replace("unix:///var/run/kmsplugin/socket.sock", "tcp://10.0.0.1:9999"), False),
        "v2-cachesize": (good.replace("timeout: 3s", "timeout: 3s\n          cachesize: 100"), False),
    }
    for name, (text, ok) in cases.items():
        assert validator.is_valid(yaml.safe_load(text)) == ok, name


def test_secret_file_access_follows_the_kubelet():
    def dep(mode=None, fs_group=None, uid=10001, item_mode=None, container_uid=None):
        src = {"secretName": "payments-db"}  # pragma: allowlist secret
        if mode is not None:
            src["defaultMode"] = mode
        if item_mode is not None:
            src["items"] = [{"key": "password", "path": "password", "mode": item_mode}]
        sc = {k: v for k, v in (("runAsUser", uid), ("fsGroup", fs_group)) if v is not None}
        c = {"name": "c", **({"securityContext": {"runAsUser": container_uid}} if container_uid is not None else {})}
        return {"kind": "Deployment", "spec": {"template": {"spec": {
            "securityContext": sc, "containers": [c], "volumes": [{"name": "v", "secret": src}]}}}}  # fmt: skip

    access = lesson07.k8s.secret_file_access
    assert access(dep(0o400), "v")["readable"] is False  # root-owned 0400: UID 10001 cannot read it
    assert access(dep(0o400, fs_group=10001), "v")["mode"] == 0o440  # fsGroup adds group read
    assert access(dep(0o440, fs_group=10001), "v")["readable"] and not access(dep(0o440, 10001), "v")["others"]
    assert access(dep(), "v")["others"] and access(dep(), "v")["mode"] == 0o644  # the default mode
    assert access(dep(0o440, fs_group=10001, item_mode=0o444), "v")["others"]  # an item's mode wins
    assert not access(dep(0o440, fs_group=10001, uid=None), "v")["readable"]  # unknown user: cannot tell
    assert access(dep(0o400, uid=0), "v")["readable"]  # root reads a root-owned 0400 file
    on_top = access(dep(0o400, fs_group=10001, uid=0, container_uid=10002), "v")  # the container's user wins
    assert on_top["uid"] == 10002 and on_top["readable"]


def test_rbac_helpers_see_cluster_wide_and_foreign_grants():
    objs = [
        {"kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
         "subjects": [{"kind": "ServiceAccount", "name": "payments-db-sync", "namespace": "payments"}]},
        {"kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "payments-staging"},
         "subjects": [{"kind": "ServiceAccount", "name": "payments-db-sync", "namespace": "payments"}]},
        "not an object",
    ]  # fmt: skip
    assert lesson07.k8s.cluster_wide(objs, "payments-db-sync") == ["crb"]
    assert lesson07.k8s.foreign_subjects(objs, "payments-staging") == ["rb -> payments/payments-db-sync"]
    assert lesson07.k8s.foreign_subjects(objs, "payments") == []


# ------------------------------------------------------------------ 07.7 (offline: kubectl only)
RBAC_OK = (
    (K8S / "base" / "serviceaccount.yaml").read_text() + "---\n" + (K8S / "base" / "secret-sync-rbac.yaml").read_text()
)
DEPLOYMENT_OK = (K8S / "base" / "deployment.yaml").read_text()
SYNC_BINDING_SUBJECT = "  - kind: ServiceAccount\n    name: payments-db-sync\n"
# the old reference answer: the service's own Role on its Secret, and its token mounted
RBAC_OLD = (
    (K8S / "overbroad" / "rbac.yaml")
    .read_text()
    .replace(
        '    resources: ["secrets", "configmaps"]\n    verbs: ["get", "list", "watch"]',
        '    resources: ["secrets"]\n    resourceNames: ["payments-db"]\n    verbs: ["get"]',
    )
)


def _rbac(*pairs):
    text = RBAC_OK
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


def _dep(*pairs):
    text = DEPLOYMENT_OK
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_render_pair_errors_are_plain():
    """Which text is not YAML; what kustomize said, without the throw-away folder's path."""
    with pytest.raises(k8s.RenderError, match="^RBAC_YAML: not valid YAML"):
        lesson07.k8s.render_pair("kind: [", DEPLOYMENT_OK)
    with pytest.raises(k8s.RenderError, match="^DEPLOYMENT_YAML: every document needs a kind"):
        lesson07.k8s.render_pair(RBAC_OK, "just: a mapping\n")
    with pytest.raises(k8s.RenderError, match="kustomize could not render the manifests") as e:
        lesson07.k8s.render_pair(RBAC_OK + "---\n" + RBAC_OK, DEPLOYMENT_OK)  # every object twice
    assert "already registered" in str(e.value) and "l07-k8s-" not in str(e.value), e.value
    objs = lesson07.k8s.render_pair(RBAC_OK, DEPLOYMENT_OK)
    assert {k8s.meta(o).get("namespace") for o in objs} == {"payments"}
    assert objs.get("Deployment", "payments") is not None
    staging = lesson07.k8s.render_pair(RBAC_OK, DEPLOYMENT_OK, "payments-staging")
    assert {k8s.meta(o).get("namespace") for o in staging} == {"payments-staging"}


def test_check_rbac_accepts_the_base():
    lesson07.check_rbac({"RBAC_YAML": RBAC_OK, "DEPLOYMENT_YAML": DEPLOYMENT_OK})


def test_check_rbac_accepts_the_token_turned_off_on_the_pod_and_a_clusterrole_bound_in_the_namespace():
    """Equivalent answers: automount false on the pod instead of the ServiceAccount; a ClusterRole bound by a
    RoleBinding (it grants in the binding's namespace only)."""
    rbac = _rbac(("automountServiceAccountToken: false\n", "")).replace("kind: Role\n", "kind: ClusterRole\n")
    dep = _dep(("      automountServiceAccountToken: false\n", "      automountServiceAccountToken: false\n"))
    lesson07.check_rbac({"RBAC_YAML": rbac, "DEPLOYMENT_YAML": dep})


@pytest.mark.parametrize(
    "rbac,deployment,words",
    [
        # --- kept from the first version of this check (adapted: the sync job holds the Role now)
        (
            _rbac(
                ('verbs: ["get", "patch"]', 'verbs: ["get", "patch", "list", "watch"]'),
                ('    resourceNames: ["payments-db"]\n', ""),
            ),
            DEPLOYMENT_OK,
            "list Secrets",
        ),  # fmt: skip
        (_rbac(('    resourceNames: ["payments-db"]\n', "")), DEPLOYMENT_OK, "get another Secret"),
        (
            _rbac(
                ("kind: Role\n", "kind: ClusterRole\n"),
                ("kind: RoleBinding", "kind: ClusterRoleBinding"),
                ('resourceNames: ["payments-db"]', 'resourceNames: ["payments-db", "other-secret"]'),
                (SYNC_BINDING_SUBJECT, SYNC_BINDING_SUBJECT + "    namespace: payments\n"),
            ),
            DEPLOYMENT_OK,
            "get another Secret",
        ),  # fmt: skip
        (
            RBAC_OK,
            _dep(
                (
                    "            - name: DB_PASSWORD_FILE\n"
                    "              value: /var/run/secrets/payments-db/password\n",
                    "            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n"
                    "                  name: payments-db\n                  key: password\n",
                )
            ),
            "environment variables",
        ),  # fmt: skip
        (RBAC_OK, _dep(("      serviceAccountName: payments\n", "")), "`default` ServiceAccount"),
        (RBAC_OK, _dep(("defaultMode: 0440", "defaultMode: 0644")), "every user in the container can read it"),
        (RBAC_OK, _dep(("              readOnly: true\n", "")), "readOnly"),
        (_rbac(('verbs: ["get", "patch"]', 'verbs: ["*"]')), DEPLOYMENT_OK, "update payments-db"),
        ("kind: [", DEPLOYMENT_OK, "not valid YAML"),
        (RBAC_OK, "- name: payments\n  image: payments:1.4.2\n", "DEPLOYMENT_YAML: every document needs a kind"),
        (
            _rbac(("rbac.authorization.k8s.io/v1\n", "rbac.authorization.k8s.io/v1beta1\n")),
            DEPLOYMENT_OK,
            "removed in Kubernetes 1.22",
        ),
        # --- issue 20 item 3: the old reference (a Role for the service, its token mounted)
        (
            RBAC_OLD + "---\n" + (K8S / "base" / "secret-sync-rbac.yaml").read_text(),
            _dep(("      automountServiceAccountToken: false\n", "      automountServiceAccountToken: true\n")),
            "it never calls the API",
        ),
        (
            _rbac(("automountServiceAccountToken: false\n", "")),
            _dep(("      automountServiceAccountToken: false\n", "")),
            "automountServiceAccountToken: false",
        ),
        # --- issue 20 item 12: a root-owned 0400 file and no fsGroup: UID 10001 cannot read it
        (RBAC_OK, _dep(("        fsGroup: 10001\n", ""), ("defaultMode: 0440", "defaultMode: 0400")), "cannot read it"),
        (RBAC_OK, _dep(("        runAsUser: 10001\n", "")), "numeric runAsUser"),
        # --- issue 21, pattern 2 (wider than asked): cluster-wide, create, update, the service also granted
        (
            _rbac(
                ("kind: Role\n", "kind: ClusterRole\n"),
                ("kind: RoleBinding", "kind: ClusterRoleBinding"),
                (SYNC_BINDING_SUBJECT, SYNC_BINDING_SUBJECT + "    namespace: payments\n"),
            ),
            DEPLOYMENT_OK,
            "grants in EVERY namespace",
        ),  # fmt: skip
        (
            _rbac(
                (
                    'verbs: ["get", "patch"]\n',
                    'verbs: ["get", "patch"]\n  - apiGroups: [""]\n    resources: ["secrets"]\n    verbs: ["create"]\n',
                )
            ),
            DEPLOYMENT_OK,
            "create Secrets",
        ),  # fmt: skip
        (_rbac(('verbs: ["get", "patch"]', 'verbs: ["get", "update", "patch"]')), DEPLOYMENT_OK, "update payments-db"),
        (_rbac(('verbs: ["get", "patch"]', 'verbs: ["get", "update"]')), DEPLOYMENT_OK, "may not patch"),
        (
            _rbac((SYNC_BINDING_SUBJECT, SYNC_BINDING_SUBJECT + "  - kind: ServiceAccount\n    name: payments\n")),
            DEPLOYMENT_OK,
            "payments (the service) may get the Secret payments-db",
        ),
        (
            _rbac(("  name: payments-db-sync\n  annotations", "  name: db-sync\n  annotations")),
            DEPLOYMENT_OK,
            "no ServiceAccount payments-db-sync",
        ),  # fmt: skip
        # --- issue 21, pattern 1 (today's value hard-coded): the subject's namespace, seen in a second namespace
        (
            _rbac((SYNC_BINDING_SUBJECT, SYNC_BINDING_SUBJECT + "    namespace: payments\n")),
            DEPLOYMENT_OK,
            "payments/payments-db-sync",
        ),
        # --- issue 21, pattern 3 (silencing instead of fixing): a skip where the fix is one line
        (
            _rbac(("automountServiceAccountToken: false\n", "")),
            _dep(
                (
                    "metadata:\n  name: payments\n",
                    "metadata:\n  name: payments\n  annotations:\n"
                    "    checkov.io/skip1: CKV_K8S_38=the service re-reads its Secret through the API\n",
                ),
                ("      automountServiceAccountToken: false\n", ""),
            ),
            "skipped instead of fixed: CKV_K8S_38",
        ),  # fmt: skip
        # --- issue 21, pattern 5 (lifecycle): a subPath mount never sees the next rotation
        (
            RBAC_OK,
            _dep(
                (
                    "              mountPath: /var/run/secrets/payments-db\n",
                    "              mountPath: /var/run/secrets/payments-db/password\n              subPath: password\n",
                ),
                ("value: /var/run/secrets/payments-db/password", "value: /var/run/secrets/payments-db/password/x"),
            ),
            "subPath",
        ),  # fmt: skip
    ],
    ids=[
        "list",
        "no-resourceNames",
        "clusterrole",
        "env",
        "default-sa",
        "mode-0644",
        "not-readonly",
        "all-verbs",
        "yaml",
        "no-kind",
        "removed-api",
        "service-role-and-token",
        "token-mounted",
        "0400-without-fsgroup",
        "no-run-as-user",
        "clusterrole-get-patch",
        "create",
        "update-too",
        "update-not-patch",
        "service-bound-too",
        "sync-sa-renamed",
        "subject-namespace",
        "skip-instead-of-fix",
        "subpath",
    ],
)
def test_check_rbac_rejects(rbac, deployment, words):
    rejected(lesson07.check_rbac, {"RBAC_YAML": rbac, "DEPLOYMENT_YAML": deployment}, words)


def test_check_rbac_blank():
    rejected(lesson07.check_rbac, {}, "RBAC_YAML")


# ------------------------------------------------------------------ scanners (real tools, no lab)
def test_detect_secrets_finds_a_planted_key_and_respects_a_baseline(tmp_path):
    kid, secret = repos.fake_aws_key()
    (tmp_path / "settings.py").write_text(f'AWS_ACCESS_KEY_ID = "{kid}"\nAWS_SECRET_ACCESS_KEY = "{secret}"\n')
    (tmp_path / "ok.py").write_text("x = 1\n")
    out = scanners.detect_secrets(["settings.py", "ok.py"], cwd=tmp_path, quiet=True)
    assert any(f["type"] == "AWS Access Key" for f in out["findings"])
    (tmp_path / ".secrets.baseline").write_text(
        json.dumps({"results": {"settings.py": [{"hashed_secret": f["hashed_secret"]} for f in out["findings"]]}})
    )
    again = scanners.detect_secrets(["settings.py"], cwd=tmp_path, baseline=tmp_path / ".secrets.baseline", quiet=True)
    assert again["findings"] and again["new"] == []


def test_parliament_lints():
    assert scanners.parliament(POLICY_OK, quiet=True)["findings"] == []
    typo = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "*"}]}
    assert "UNKNOWN_ACTION" in {f[0] for f in scanners.parliament(typo, quiet=True)["findings"]}
    assert scanners.parliament("{oops", quiet=True)["findings"][0][0] == "MALFORMED_JSON"


def test_trufflehog_and_pickaxe_find_a_deleted_key(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    kid, secret = repos.fake_aws_key()
    repos.git(repo, "init", "-q", "-b", "main")
    (repo / "a.py").write_text(f'KEY = "{kid}"\n')
    repos.git(repo, "add", ".")
    repos.git(repo, "commit", "-qm", "add")
    repos.git(repo, "rm", "-q", "a.py")
    repos.git(repo, "commit", "-qm", "remove")
    found = scanners.trufflehog(repo, quiet=True)
    assert found["commits"] == 2 and any(kid in s for f in found["findings"] for s in f["strings"])
    assert len(repos.history_hits(repo, kid)) == 2
    assert scanners.detect_secrets(repo, cwd=repo, quiet=True)["findings"] == []  # the tree alone looks clean


# ------------------------------------------------------------------ lab: the reference answers
HOOK_CONFIG = lesson07.HOOK_CONFIG_FILE.read_text()  # the file the lesson ships and installs


def rotate_and_rewrite(repo, e, rotate=True, rewrite=True, new_key=True):
    leak = repos.load_leak(repo)
    a = e.client("iam")
    if rotate:
        if new_key:
            a.create_access_key(UserName=leak.user)
        a.delete_access_key(UserName=leak.user, AccessKeyId=leak.key_id)
    if rewrite:
        rules = Path(repo).parent / "replacements.txt"
        rules.write_text(f"{leak.key_id}==>REMOVED\n{leak.secret}==>REMOVED\n")
        out = repos.run(repo, "git-filter-repo", "--replace-text", str(rules), "--force")
        assert out.returncode == 0, out.stderr
        rules.unlink()


def install_hook(repo, config=HOOK_CONFIG, install=True):
    (Path(repo) / ".pre-commit-config.yaml").write_text(config)
    (Path(repo) / ".secrets.baseline").write_text(repos.run(repo, "detect-secrets", "scan").stdout)
    if install:
        assert repos.run(repo, "pre-commit", "install").returncode == 0
    repos.git(repo, "add", ".pre-commit-config.yaml", ".secrets.baseline")
    repos.run(repo, "git", "commit", "-q", "--no-verify", "-m", "Block secrets before they are committed")


@pytest.fixture
def leaky(tmp_path):
    e = lesson07.enforcing()
    leak = repos.make_leaky_repo(f"t-{lesson07.nonce()}", e)
    yield leak, e
    shutil.rmtree(leak.repo, ignore_errors=True)


@pytest.mark.lab
def test_check_history_accepts_rotation_then_rewrite(leaky):
    leak, e = leaky
    rejected(lesson07.check_history, {"REPO": leak.repo}, "still works", "still in the history")
    rotate_and_rewrite(leak.repo, e)
    lesson07.check_history({"REPO": leak.repo})


@pytest.mark.lab
def test_check_history_rejects_a_delete_commit(leaky):
    leak, e = leaky
    rotate_and_rewrite(leak.repo, e, rewrite=False)
    repos.git(leak.repo, "rm", "-q", "deploy/settings.py")
    repos.git(leak.repo, "commit", "-qm", "delete the file with the key")
    rejected(lesson07.check_history, {"REPO": leak.repo}, "still in the history", "trufflehog still finds")


@pytest.mark.lab
def test_check_history_rejects_rewrite_without_rotation(leaky):
    leak, e = leaky
    rotate_and_rewrite(leak.repo, e, rotate=False)
    rejected(lesson07.check_history, {"REPO": leak.repo}, "still works", "no new active key")


@pytest.mark.lab
def test_check_history_rejects_disable_without_replacement(leaky):
    leak, e = leaky
    rotate_and_rewrite(leak.repo, e, new_key=False)
    rejected(lesson07.check_history, {"REPO": leak.repo}, "no new active key")


@pytest.mark.lab
def test_check_history_rejects_filter_branch_backup_refs(leaky, monkeypatch):
    monkeypatch.setenv("FILTER_BRANCH_SQUELCH_WARNING", "1")  # git waits 10 s after its warning otherwise
    leak, e = leaky
    rotate_and_rewrite(leak.repo, e, rewrite=False)
    out = repos.run(
        leak.repo,
        "git",
        "filter-branch",
        "-f",
        "--tree-filter",
        f"sed -i 's/{leak.key_id}/REMOVED/; s#{leak.secret}#REMOVED#' deploy/settings.py 2>/dev/null || true",
        "HEAD",
    )
    assert out.returncode == 0, out.stderr
    rejected(lesson07.check_history, {"REPO": leak.repo}, "refs/original")


@pytest.mark.lab
def test_check_history_rejects_a_backup_branch_that_keeps_the_key(leaky, monkeypatch):
    """A backup branch made before rewriting only the current branch (filter-branch on HEAD) keeps the key."""
    monkeypatch.setenv("FILTER_BRANCH_SQUELCH_WARNING", "1")
    leak, e = leaky
    rotate_and_rewrite(leak.repo, e, rewrite=False)
    repos.git(leak.repo, "branch", "backup-before-cleanup")
    out = repos.run(
        leak.repo,
        "git",
        "filter-branch",
        "-f",
        "--tree-filter",
        f"sed -i 's/{leak.key_id}/REMOVED/; s#{leak.secret}#REMOVED#' deploy/settings.py 2>/dev/null || true",
        "HEAD",
    )
    assert out.returncode == 0, out.stderr
    repos.git(leak.repo, "update-ref", "-d", "refs/original/refs/heads/main")
    rejected(lesson07.check_history, {"REPO": leak.repo}, "still in the history", "refs/heads/backup-before-cleanup")


@pytest.mark.lab
def test_check_history_rejects_a_rebuilt_identity(leaky):
    """Deleting the user and making it again (a new key comes with it) loses what trusted the identity."""
    leak, e = leaky
    a = e.client("iam")
    for k in a.list_access_keys(UserName=leak.user)["AccessKeyMetadata"]:
        a.delete_access_key(UserName=leak.user, AccessKeyId=k["AccessKeyId"])
    for name in a.list_user_policies(UserName=leak.user)["PolicyNames"]:
        a.delete_user_policy(UserName=leak.user, PolicyName=name)
    a.delete_user(UserName=leak.user)
    a.create_user(UserName=leak.user)
    a.create_access_key(UserName=leak.user)
    rotate_and_rewrite(leak.repo, e, rotate=False)
    rejected(lesson07.check_history, {"REPO": leak.repo}, "has no policy any more")


@pytest.mark.lab
def test_check_history_rejects_a_thrown_away_history(leaky):
    leak, e = leaky
    rotate_and_rewrite(leak.repo, e, rewrite=False)
    shutil.rmtree(leak.repo / ".git")
    repos.git(leak.repo, "init", "-q", "-b", "main")
    repos.git(leak.repo, "add", ".")
    repos.git(leak.repo, "commit", "-qm", "fresh start")
    rejected(lesson07.check_history, {"REPO": leak.repo}, "history was thrown away")


@pytest.mark.lab
def test_check_history_bad_repository_states(leaky, tmp_path):
    leak, e = leaky
    (leak.repo / "scratch.txt").write_text("wip\n")
    rejected(lesson07.check_history, {"REPO": leak.repo}, "uncommitted changes")
    (leak.repo / "scratch.txt").unlink()
    repos.git(leak.repo, "checkout", "-q", "--detach", "HEAD~1")
    rejected(lesson07.check_history, {"REPO": leak.repo}, "detached")
    rejected(lesson07.check_history, {"REPO": tmp_path}, "not a git repository")
    rejected(lesson07.check_history, {}, "`REPO` is not defined")


@pytest.mark.lab
def test_check_hook_accepts_a_blocking_hook(leaky):
    leak, _ = leaky
    install_hook(leak.repo)
    lesson07.check_hook({"REPO": leak.repo})


@pytest.mark.lab
@pytest.mark.parametrize(
    "config,install,words",
    [
        (
            HOOK_CONFIG.replace(
                "entry: detect-secrets-hook", "entry: bash -c 'detect-secrets-hook \"$@\" || true' --"
            ).replace('args: ["--baseline", ".secrets.baseline"]', "args: []"),
            True,
            "went through",
        ),
        (HOOK_CONFIG + "        files: \\.py$\n", True, "deploy/prod.env went through"),
        (HOOK_CONFIG, False, "pre-commit install"),
        (HOOK_CONFIG + "        stages: [manual]\n", True, "went through"),
        (HOOK_CONFIG + "        exclude: ^deploy/\n", True, "deploy/prod.env went through"),
        (
            HOOK_CONFIG.replace("entry: detect-secrets-hook", "entry: detect-secrets-hook-missing"),
            True,
            "harmless commit",
        ),
    ],
    ids=["warn-only", "py-only", "not-installed", "manual-stage", "excludes-deploy", "blocks-everything"],
)
def test_check_hook_rejects(leaky, config, install, words):
    leak, _ = leaky
    install_hook(leak.repo, config, install)
    rejected(lesson07.check_hook, {"REPO": leak.repo}, words)


@pytest.mark.lab
def test_check_hook_rejects_an_uncommitted_config(leaky):
    leak, _ = leaky
    (leak.repo / ".pre-commit-config.yaml").write_text(HOOK_CONFIG)
    rejected(lesson07.check_hook, {"REPO": leak.repo}, "uncommitted changes")


# ------------------------------------------------------------------ 07.3
def _sm():
    import cloudlab

    return cloudlab.client("secretsmanager")


def _kms():
    import cloudlab

    return cloudlab.client("kms")


def create_key(alias, rotation=True, days=180, policy=None):
    k = _kms()
    kid = k.create_key(Description="test", **({"Policy": json.dumps(policy)} if policy else {}))["KeyMetadata"]["KeyId"]
    if rotation:
        k.enable_key_rotation(KeyId=kid, **({"RotationPeriodInDays": days} if days else {}))
    k.create_alias(AliasName=alias, TargetKeyId=kid)
    return kid


OPEN_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}
    ],
}


def store_secret(name, value, key_id):
    import cloudlab

    cloudlab.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value), KmsKeyId=key_id)


def store_parameter(name, value, key_id):
    import cloudlab

    cloudlab.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", KeyId=key_id, Overwrite=True)


STORE_OK = {"create_key": create_key, "store_secret": store_secret, "store_parameter": store_parameter}


@pytest.mark.lab
def test_check_store_accepts_the_answer():
    lesson07.check_store(dict(STORE_OK))


@pytest.mark.lab
@pytest.mark.parametrize(
    "change,words",
    [
        (
            {
                "store_secret": lambda n, v, k: (
                    store_secret.__wrapped__(n, v)
                    if False
                    else __import__("cloudlab")
                    .client("secretsmanager")
                    .create_secret(Name=n, SecretString=json.dumps(v))
                )
            },
            "aws/secretsmanager",
        ),
        (
            {
                "store_parameter": lambda n, v, k: (
                    __import__("cloudlab").client("ssm").put_parameter(Name=n, Value=v, Type="String", Overwrite=True)
                )
            },
            "SecureString",
        ),
        ({"create_key": lambda a: create_key(a, rotation=False)}, "rotation off"),
        ({"store_secret": lambda n, v, k: store_secret(n, v, lesson07.ensure_key())}, "not yours"),
        (
            {
                "store_secret": lambda n, v, k: (
                    __import__("cloudlab")
                    .client("secretsmanager")
                    .create_secret(Name=n, SecretString=str(v), KmsKeyId=k)
                )
            },
            "json.dumps",
        ),
        ({"store_parameter": lambda n, v, k: (print("stored", v), store_parameter(n, v, k))}, "printed the password"),
        ({"create_key": lambda a: lesson07.ensure_key()}, "does not point at the key"),
        ({"create_key": lambda a: "no-such-key-id"}, "KMS knows no key"),
        ({"create_key": lambda a: create_key(a, days=None)}, "rotates every 365 days"),
        ({"create_key": lambda a: create_key(a, days=90)}, "the task asks for 180"),
        ({"create_key": lambda a: create_key(a, policy=OPEN_KEY_POLICY)}, "lets ANY principal use the key"),
        (
            {
                "store_parameter": lambda n, v, k: (
                    __import__("cloudlab").client("ssm").put_parameter(Name=n, Value=v, Type="SecureString", KeyId=k)
                )
            },
            "ParameterAlreadyExists",
        ),
    ],
    ids=[
        "default-key",
        "plain-string",
        "no-rotation",
        "ignores-key-id",
        "not-json",
        "prints",
        "existing-key",
        "no-key",
        "default-period",
        "wrong-period",
        "open-key-policy",
        "no-overwrite",
    ],
)
def test_check_store_rejects(change, words):
    rejected(lesson07.check_store, {**STORE_OK, **change}, words)


# ------------------------------------------------------------------ 07.4
def launch(secret_id, name, how="file", mode=0o600, literal=None, echo=False, folder=None, file_name=None):
    import cloudlab

    s = json.loads(cloudlab.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    pw = literal or s["password"]
    env = {"DB_HOST": s["host"], "DB_PORT": str(s["port"]), "DB_NAME": s["dbname"], "DB_USER": s["username"]}
    if how == "file":
        where = folder or lesson07.secrets_dir()
        path = lesson07.write_secret_file(where / (file_name or f"{name}-password"), pw)
        os.chmod(path, mode)
        env["DB_PASSWORD_FILE"] = str(path)
    else:
        env["DB_PASSWORD"] = pw
    if echo:
        print("launching with", pw)
    return lesson07.start_payments(name, env).url


@pytest.mark.lab
def test_check_launch_accepts_a_mounted_file():
    lesson07.check_launch({"launch": launch})


@pytest.mark.lab
@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"how": "env"}, "its environment"),
        ({"literal": "the-password-from-the-wiki"}, "cannot log in"),
        ({"mode": 0o644}, "others can read it"),
        ({"echo": True}, "launch printed the password"),
    ],
    ids=["env-var", "literal", "world-readable", "echo"],
)
def test_check_launch_rejects(kwargs, words):
    rejected(lesson07.check_launch, {"launch": lambda sid, name: launch(sid, name, **kwargs)}, words)


@pytest.mark.lab
def test_check_launch_rejects_a_launcher_that_reads_the_notebooks_own_secret(check_role):
    """Issue 21, pattern 1: whatever secret_id it is given, it launches with one fixed secret (a valid login)."""
    pg, n, login, made = check_role
    own = f"l07/test-{n}/notebook-db"
    made.append(own)
    lesson07.put_secret(own, login, lesson07.ensure_key())
    rejected(
        lesson07.check_launch,
        {"launch": lambda sid, name: launch(own, name)},
        "read the secret_id argument",
        "service B",
    )


@pytest.mark.lab
def test_check_launch_rejects_a_file_outside_the_secrets_folder_and_a_shared_file(tmp_path):
    rejected(
        lesson07.check_launch, {"launch": lambda sid, name: launch(sid, name, folder=tmp_path)}, "outside lesson07"
    )
    rejected(
        lesson07.check_launch,
        {"launch": lambda sid, name: launch(sid, name, file_name="db-password")},
        "overwrote service A's password file",
    )


@pytest.mark.lab
def test_check_launch_rejects_a_wrong_name_and_a_crash():
    from cloudlab import procs

    rejected(lesson07.check_launch, {"launch": lambda sid, name: launch(sid, "l07-elsewhere")}, "no service named")
    procs.stop("l07-elsewhere")
    rejected(lesson07.check_launch, {"launch": lambda sid, name: lesson07.fetch("l07/nope")}, "SecretStoreError")


# ------------------------------------------------------------------ 07.5
def make_handler(early_current=False, idempotent=True, set_db=True, test_db=True, finish=True, retry_safe=True,
                 echo=False):  # fmt: skip
    import psycopg
    from psycopg import sql

    import cloudlab

    def conn(s):
        return psycopg.connect(
            user=s["username"],
            password=s["password"],
            host=s["host"],
            port=int(s["port"]),
            dbname=s["dbname"],
            connect_timeout=5,
            autocommit=True,
        )

    def handler(event, context):
        sm = cloudlab.client("secretsmanager")
        sid, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]

        def get(**kw):
            return json.loads(sm.get_secret_value(SecretId=sid, **kw)["SecretString"])

        if step == "createSecret":
            current = get(VersionStage="AWSCURRENT")
            try:
                get(VersionId=token, VersionStage="AWSPENDING")
                exists = True
            except sm.exceptions.ResourceNotFoundException:
                exists = False
            if not exists or not idempotent:
                stages = ["AWSPENDING", "AWSCURRENT"] if early_current else ["AWSPENDING"]
                new = dict(current, password=lesson07.generate_password())
                if exists:
                    sm.update_secret_version_stage(SecretId=sid, VersionStage="AWSPENDING", RemoveFromVersionId=token)
                    token2 = token
                    sm.put_secret_value(
                        SecretId=sid, ClientRequestToken=token2, SecretString=json.dumps(new), VersionStages=stages
                    )
                else:
                    sm.put_secret_value(
                        SecretId=sid, ClientRequestToken=token, SecretString=json.dumps(new), VersionStages=stages
                    )
        elif step == "setSecret" and set_db:
            pending, current = get(VersionId=token, VersionStage="AWSPENDING"), get(VersionStage="AWSCURRENT")
            if echo:
                print("setting", pending["username"], "to", pending["password"])
            if retry_safe:  # AWS's rotation functions: if the pending password already works, nothing to do
                try:
                    conn(pending).close()
                    return
                except psycopg.OperationalError:
                    pass
            with conn(current) as c:
                c.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(current["username"]), sql.Literal(pending["password"])
                    )
                )
        elif step == "testSecret" and test_db:
            with conn(get(VersionId=token, VersionStage="AWSPENDING")) as c:
                c.execute("SELECT 1")
        elif step == "finishSecret" and finish:
            versions = sm.describe_secret(SecretId=sid)["VersionIdsToStages"]
            current = next(v for v, st in versions.items() if "AWSCURRENT" in st)
            if current != token:
                sm.update_secret_version_stage(
                    SecretId=sid, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
                )

    return handler


@pytest.mark.lab
def test_check_rotation_accepts_the_four_steps():
    lesson07.check_rotation({"lambda_handler": make_handler()})


@pytest.mark.lab
@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"early_current": True}, "moved AWSCURRENT before"),
        ({"idempotent": False}, "changed the pending password"),
        ({"set_db": False}, "still refuses the pending password"),
        ({"test_db": False}, "testSecret did not fail"),
        ({"finish": False}, "move AWSCURRENT to the token"),
        ({"retry_safe": False}, "setSecret called a second time (a retry) failed"),
        ({"echo": True}, "printed a password"),
    ],
    ids=["current-too-early", "not-idempotent", "no-alter-role", "no-test", "no-finish", "set-not-retryable", "echo"],
)
def test_check_rotation_rejects(kwargs, words):
    rejected(lesson07.check_rotation, {"lambda_handler": make_handler(**kwargs)}, words)


# ------------------------------------------------------------------ the lesson's database (server: test_database.py)
@pytest.fixture
def check_role():
    """A fresh login role (named like the checks' ones) in the lesson's database; its secrets removed after."""
    import cloudlab

    pg = lesson07.db.start(quiet=True)
    n = lesson07.nonce()
    role, pw = f"{lesson07.db.CHECK_ROLE_PREFIX}{n}", lesson07.generate_password()
    pg.set_password(role, pw, create=True)
    login = {"username": role, "password": pw, "host": pg.host, "port": pg.port, "dbname": pg.dbname}
    made = []
    yield pg, n, login, made
    for sid in made:
        cloudlab.client("secretsmanager").delete_secret(SecretId=sid, ForceDeleteWithoutRecovery=True)


@pytest.mark.lab
def test_a_fresh_start_forgets_the_roles_checks_made(check_role):
    from cloudlab import procs

    pg, _, login, _ = check_role
    assert pg.dbname == "orders" and lesson07.db.start(quiet=True).can_login(login["username"], login["password"])
    procs.stop(lesson07.db.PROC)
    assert not lesson07.db.start(quiet=True).can_login(login["username"], login["password"])


@pytest.mark.lab
def test_reset_keeps_the_checked_cluster_and_removes_the_one_the_lesson_made_before():
    import hashlib
    import tempfile

    from cloudlab.lab import Lab

    lab = Lab.from_env()
    legacy = Path(tempfile.gettempdir()) / f"cloudlab-{hashlib.sha256(str(lab.state).encode()).hexdigest()[:10]}-l07-pg"
    (legacy / "data").mkdir(parents=True, exist_ok=True)
    (lesson07.workdir() / "pg" / "data").mkdir(parents=True, exist_ok=True)  # the same, not as root
    pg = lesson07.db.start(quiet=True)
    removed = lesson07._reset_extra()["work files"]
    assert not legacy.exists() and not (lesson07.workdir() / "pg").exists() and "pg" in removed
    assert (lab.work / "postgres" / f"{lesson07.db.PROC}.json").exists() and (pg.datadir / "PG_VERSION").exists()


@pytest.mark.lab
def test_the_secret_backed_client_refetches_once_after_a_rotation(check_role):
    from cloudlab import database

    pg, n, login, made = check_role
    sid = f"l07/test-{n}/client"
    made.append(sid)
    key = lesson07.ensure_key()
    lesson07.put_secret(sid, login, key)
    client = lesson07.SecretBackedClient(sid)
    assert client.query("SELECT current_user") == [(login["username"],)] and client.fetches == 1
    new = lesson07.generate_password()
    pg.set_password(login["username"], new)  # setSecret, then finishSecret moves AWSCURRENT
    lesson07.put_secret(sid, dict(login, password=new), key)
    assert client.query("SELECT 1") == [(1,)] and client.fetches == 2
    assert client.query("SELECT 1") == [(1,)] and client.fetches == 2  # cached again
    pg.set_password(login["username"], "nobody-has-this-" + n)
    with pytest.raises(database.LoginRefused):
        client.query("SELECT 1")
    assert client.fetches == 3  # one refetch, then it gives up


@pytest.mark.lab
def test_the_payments_service_rereads_its_file_when_the_password_changed(check_role):
    from cloudlab import procs

    pg, n, login, _ = check_role
    path = lesson07.write_secret_file(lesson07.secrets_dir() / f"test-{n}", login["password"])
    env = {"DB_HOST": pg.host, "DB_PORT": str(pg.port), "DB_NAME": pg.dbname, "DB_USER": login["username"]}
    name = f"l07-test-{n}"
    try:
        svc = lesson07.start_payments(name, dict(env, DB_PASSWORD_FILE=str(path)))
        assert lesson07.health(svc.url)["db"] == "ok"
        new = lesson07.generate_password()
        pg.set_password(login["username"], new)
        assert lesson07.health(svc.url)["http"] == 503  # its file still holds the old password
        lesson07.write_secret_file(path, new)  # the kubelet refreshes the mounted Secret
        assert lesson07.health(svc.url)["db"] == "ok"  # no restart
        assert "db_password_reloaded" in svc.log and new not in svc.log and login["password"] not in svc.log
    finally:
        procs.stop(name)


# ------------------------------------------------------------------ 07.6
def service_policy(bucket, queue_arn):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OrderObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{bucket}/orders/*",
            },
            {"Sid": "OrderEvents", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
        ],
    }


def _with(statements):
    return lambda b, q: {"Version": "2012-10-17", "Statement": statements(b, q)}


@pytest.mark.lab
def test_check_policy_accepts_least_privilege():
    lesson07.enforcing()
    lesson07.check_policy({"service_policy": service_policy})


@pytest.mark.lab
@pytest.mark.parametrize(
    "policy,words",
    [
        (_with(lambda b, q: [{"Effect": "Allow", "Action": "*", "Resource": "*"}]), "allowed although"),
        (
            _with(
                lambda b, q: [
                    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "sqs:SendMessage"], "Resource": "*"}
                ]
            ),
            "s3:PutObject in another bucket",
        ),
        (
            _with(
                lambda b, q: [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]},
                    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": q},
                ]
            ),
            "s3:DeleteObject",
        ),
        (
            _with(
                lambda b, q: [
                    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{b}"},
                    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": q},
                ]
            ),
            "s3:PutObject orders/",
        ),
        (_with(lambda b, q: [service_policy(b, q)["Statement"][0]]), "sqs:SendMessage to its queue was denied"),
        (lambda b, q: '{"Version": "2012-10-17", "Statement": [', "not valid JSON"),
        (_with(lambda b, q: [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]), "NotAction"),
        (
            _with(
                lambda b, q: [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObjects", "s3:PutObject"],
                        "Resource": f"arn:aws:s3:::{b}/orders/*",
                    },
                    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": q},
                ]
            ),
            "UNKNOWN_ACTION",
        ),
        (
            _with(
                lambda b, q: [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:PutObject"],
                        "Resource": f"arn:aws:s3:::{b}/orders*",
                    },
                    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": q},
                ]
            ),
            "s3:GetObject in orders-archive/",
        ),
        (
            _with(
                lambda b, q: [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:PutObject"],
                        "Resource": f"arn:aws:s3:::{b}*/orders/*",
                    },
                    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": q.rsplit(":", 1)[0] + ":l07-chk-*"},
                ]
            ),
            "s3:PutObject in another bucket",
        ),
        (lambda b, q: service_policy("l07-shop", q), "s3:PutObject orders/... was denied"),
    ],
    ids=[
        "star-star",
        "resource-star",
        "s3-star",
        "bucket-arn-only",
        "no-sqs",
        "bad-json",
        "notaction",
        "typo",
        "prefix-without-slash",
        "bucket-wildcard",
        "hard-coded-bucket",
    ],
)
def test_check_policy_rejects(policy, words):
    lesson07.enforcing()
    rejected(lesson07.check_policy, {"service_policy": policy}, words)


@pytest.mark.lab
def test_check_policy_says_a_condition_was_not_tested(capsys):
    """Issue 21: what the lab cannot tell apart (moto treats conditions as met), the check says in its output."""
    lesson07.enforcing()

    def with_condition(b, q):
        doc = service_policy(b, q)
        doc["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
        return doc

    lesson07.check_policy({"service_policy": with_condition})
    assert "moto treats every condition as met" in capsys.readouterr().out


def test_try_call_tells_denied_from_allowed_errors():
    from botocore.exceptions import ClientError

    def raises(code, status):
        def fn():
            raise ClientError(
                {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
            )

        return fn

    assert iam.try_call(lambda: None).allowed
    assert iam.try_call(raises("AccessDenied", 403)).denied
    assert iam.try_call(raises("403", 403)).code == "AccessDenied"
    assert iam.try_call(raises("InvalidClientTokenId", 403)).denied
    assert iam.try_call(raises("NoSuchKey", 404)).allowed  # authorization passed; the object just is not there
    assert str(iam.try_call(raises("AccessDenied", 403))) == "denied (AccessDenied)"


@pytest.mark.lab
def test_checks_say_so_when_the_enforcing_emulator_is_down():
    from cloudlab import procs

    lesson07.enforcing()
    procs.stop(lesson07.IAM_NAME)
    rejected(lesson07.check_policy, {"service_policy": service_policy}, "is not running")
    lesson07.enforcing()


# ------------------------------------------------------------------ after a wrong answer: one line, and a retry
def test_after_answer_says_one_line_and_lets_a_blank_through():
    with pytest.raises(NotImplementedError), lesson07.after_answer("storing the login", "07.3"):
        raise NotImplementedError()
    with pytest.raises(lesson07.AnswerError) as e, lesson07.after_answer("storing the login", "07.3"):
        raise KeyError("password")
    said = str(e.value)
    assert "storing the login failed with your answer: KeyError: 'password'" in said and "check 07.3" in said
    assert len(e.value._render_traceback_()) == 1
    with pytest.raises(k8s.RenderError), lesson07.after_answer("rendering", "07.7"):  # already one line
        raise k8s.RenderError("RBAC_YAML: not valid YAML")


def test_open_to_everyone():
    from cloudlab.lesson07.checks_store import open_to_everyone

    assert open_to_everyone(json.dumps(OPEN_KEY_POLICY)) == ["Everyone"]
    star = {"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}}
    assert open_to_everyone(json.dumps(star)) == ["statement 1"]
    guarded = {"Statement": [{**star["Statement"], "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}]}
    account = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*"}]}
    assert open_to_everyone(json.dumps(guarded)) == [] and open_to_everyone(json.dumps(account)) == []
    assert open_to_everyone("not json") == []


@pytest.mark.lab
def test_rotate_now_reattempts_an_unfinished_rotation_and_says_a_failure_in_one_line(check_role):
    pg, n, login, made = check_role
    sid = f"l07/test-{n}/rotation"
    made.append(sid)
    lesson07.put_secret(sid, login, lesson07.ensure_key())
    good, steps = make_handler(), []

    def flaky(event, context):  # testSecret times out once, as a Lambda can
        steps.append(event["Step"])
        if event["Step"] == "testSecret" and steps.count("testSecret") == 1:
            raise RuntimeError("database timeout")
        return good(event, context)

    with pytest.raises(lesson07.RotationFailed, match="testSecret raised RuntimeError: database timeout") as e:
        lesson07.rotate_now(sid, flaky)
    assert len(e.value._render_traceback_()) == 1
    pending = [v for v, labels in lesson07.stages(sid).items() if "AWSPENDING" in labels]
    assert len(pending) == 1 and lesson07.fetch(sid)["password"] == login["password"]  # AWSCURRENT did not move
    assert lesson07.rotate_now(sid, flaky) == pending[0]  # reattempted with the same token
    assert pg.can_login(login["username"], lesson07.fetch(sid)["password"])
    sm = _sm()  # an unusable AWSPENDING version left by a wrong answer is unlabelled, and a new rotation starts
    sm.put_secret_value(SecretId=sid, SecretString="not json", VersionStages=["AWSPENDING"])  # pragma: allowlist secret
    fresh = lesson07.rotate_now(sid, good)
    assert fresh != pending[0] and pg.can_login(login["username"], lesson07.fetch(sid)["password"])

    def blank(event, context):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        lesson07.rotate_now(sid, blank)


@pytest.mark.lab
def test_forget_store_attempt_removes_only_what_the_task_made():
    n = lesson07.nonce()
    alias, sid, param = f"alias/l07-test-{n}", f"l07/test-{n}/db", f"/l07/test-{n}/db-password"
    assert lesson07.forget_store_attempt(alias, sid, param) == []
    kid = create_key(alias)
    store_secret(sid, {"password": "x"}, kid)
    store_parameter(param, "x", kid)
    assert lesson07.forget_store_attempt(alias, sid, param) == [alias, sid, param]
    assert _kms().describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert lesson07.forget_store_attempt(alias, sid, param) == []


@pytest.mark.lab
def test_a_build_argument_stays_readable_in_the_image_on_the_lessons_engine():
    """Issue 19 item 10: the image cell uses the engine lessons 05 and 08 use (the lab's own dockerd where it can
    start one), not a bare `docker info` that misses it."""
    from cloudlab import containers

    if containers.connect(quiet=True) is None:
        pytest.skip("no Docker engine here, and the lab cannot start its own (it needs root and dockerd)")
    decoy = "made-up-" + lesson07.generate_password(12)
    seen = lesson07.image_with_build_arg(decoy, tag="l07-test-leaky:build-arg")
    try:
        assert any(w.startswith("docker history: ENV DB_PASSWORD=") for w in seen), seen
        assert any(w.startswith("docker image inspect (Config.Env)") for w in seen), seen
    finally:
        containers.docker("rmi", "-f", "l07-test-leaky:build-arg")
