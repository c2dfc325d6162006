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
def test_base_manifests_render_validate_and_grant_one_secret():
    objs = k8s.kustomize(K8S / "base", quiet=True)
    assert k8s.validate(objs) == []
    assert k8s.can(objs, "payments", "payments", "get", "secrets", "payments-db")
    for verb, name in (("list", None), ("watch", None), ("get", "other"), ("update", "payments-db")):
        assert not k8s.can(objs, "payments", "payments", verb, "secrets", name)
    use = k8s.secret_use(objs.get("Deployment"))
    assert use["env"] == [] and use["modes"]["db-secret"] == 0o400 and use["mounts"][0][3]


def test_overbroad_manifests_grant_too_much():
    objs = k8s.kustomize(K8S / "overbroad", quiet=True)
    assert k8s.validate(objs) == []
    assert k8s.can(objs, "payments", "payments", "list", "secrets")
    assert k8s.can(objs, "payments", "payments", "get", "secrets", "anything")
    assert not k8s.can(objs, "payments", "other-namespace", "list", "secrets")
    assert k8s.secret_use(objs.get("Deployment"))["env"]


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


# ------------------------------------------------------------------ 07.7 (offline: kubectl only)
RBAC_OK = (K8S / "base" / "serviceaccount.yaml").read_text() + "---\n" + (K8S / "base" / "role.yaml").read_text()
DEPLOYMENT_OK = (K8S / "base" / "deployment.yaml").read_text()


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


def test_check_rbac_accepts_the_base():
    lesson07.check_rbac({"RBAC_YAML": RBAC_OK, "DEPLOYMENT_YAML": DEPLOYMENT_OK})


@pytest.mark.parametrize(
    "rbac,deployment,words",
    [
        (
            RBAC_OK.replace('verbs: ["get"]', 'verbs: ["get", "list", "watch"]').replace(
                '    resourceNames: ["payments-db"]\n', ""
            ),
            DEPLOYMENT_OK,
            "list Secrets",
        ),
        (RBAC_OK.replace('    resourceNames: ["payments-db"]\n', ""), DEPLOYMENT_OK, "get another Secret"),
        (
            RBAC_OK.replace("kind: Role\n", "kind: ClusterRole\n")
            .replace("kind: RoleBinding", "kind: ClusterRoleBinding")
            .replace('resourceNames: ["payments-db"]', 'resourceNames: ["payments-db", "other-secret"]'),
            DEPLOYMENT_OK,
            "get another Secret",
        ),
        (
            RBAC_OK,
            DEPLOYMENT_OK.replace(
                "            - name: DB_PASSWORD_FILE\n              value: /var/run/secrets/payments-db/password\n",
                "            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n"
                "                  name: payments-db\n                  key: password\n",
            ),
            "environment variables",
        ),
        (RBAC_OK, DEPLOYMENT_OK.replace("      serviceAccountName: payments\n", ""), "`default` ServiceAccount"),
        (RBAC_OK, DEPLOYMENT_OK.replace("defaultMode: 0400", "defaultMode: 0644"), "others can read"),
        (RBAC_OK, DEPLOYMENT_OK.replace("              readOnly: true\n", ""), "readOnly"),
        (RBAC_OK.replace('verbs: ["get"]', 'verbs: ["*"]'), DEPLOYMENT_OK, "update payments-db"),
        ("kind: [", DEPLOYMENT_OK, "not valid YAML"),
        (RBAC_OK, "- name: payments\n  image: payments:1.4.2\n", "DEPLOYMENT_YAML: every document needs a kind"),
        (
            RBAC_OK.replace("rbac.authorization.k8s.io/v1\n", "rbac.authorization.k8s.io/v1beta1\n"),
            DEPLOYMENT_OK,
            "removed in Kubernetes 1.22",
        ),
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
HOOK_CONFIG = """repos:
  - repo: local
    hooks:
      - id: detect-secrets
        name: detect-secrets
        entry: detect-secrets-hook
        args: ["--baseline", ".secrets.baseline"]
        language: system
"""


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
def test_check_history_rejects_filter_branch_backup_refs(leaky):
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
        (
            HOOK_CONFIG.replace("entry: detect-secrets-hook", "entry: detect-secrets-hook-missing"),
            True,
            "harmless commit",
        ),
    ],
    ids=["warn-only", "py-only", "not-installed", "manual-stage", "blocks-everything"],
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


def create_key(alias, rotation=True):
    k = _kms()
    kid = k.create_key(Description="test")["KeyMetadata"]["KeyId"]
    if rotation:
        k.enable_key_rotation(KeyId=kid)
    k.create_alias(AliasName=alias, TargetKeyId=kid)
    return kid


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
    ],
)
def test_check_store_rejects(change, words):
    rejected(lesson07.check_store, {**STORE_OK, **change}, words)


# ------------------------------------------------------------------ 07.4
def launch(secret_id, name, how="file", mode=0o600, literal=None, echo=False):
    import cloudlab

    s = json.loads(cloudlab.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    pw = literal or s["password"]
    env = {"DB_HOST": s["host"], "DB_PORT": str(s["port"]), "DB_NAME": s["dbname"], "DB_USER": s["username"]}
    if how == "file":
        path = lesson07.write_secret_file(lesson07.secrets_dir() / f"{name}-password", pw)
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
def test_check_launch_rejects_a_wrong_name_and_a_crash():
    from cloudlab import procs

    rejected(lesson07.check_launch, {"launch": lambda sid, name: launch(sid, "l07-elsewhere")}, "no service named")
    procs.stop("l07-elsewhere")
    rejected(lesson07.check_launch, {"launch": lambda sid, name: lesson07.fetch("l07/nope")}, "SecretStoreError")


# ------------------------------------------------------------------ 07.5
def make_handler(early_current=False, idempotent=True, set_db=True, test_db=True, finish=True):
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
    ],
    ids=["current-too-early", "not-idempotent", "no-alter-role", "no-test", "no-finish"],
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
    ],
    ids=["star-star", "resource-star", "s3-star", "bucket-arn-only", "no-sqs", "bad-json", "notaction", "typo"],
)
def test_check_policy_rejects(policy, words):
    lesson07.enforcing()
    rejected(lesson07.check_policy, {"service_policy": policy}, words)


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
