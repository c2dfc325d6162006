"""Lesson 07: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # The history is rewritten, but the leaked key was never rotated: it still works for whoever cloned it.
    "07.1": """
rules = REPO.parent / "replacements.txt"
key_rule = "regex:AKIA[0-9A-Z]{16}==>REMOVED"
secret_rule = 'regex:AWS_SECRET_ACCESS_KEY = ".*"==>AWS_SECRET_ACCESS_KEY = "REMOVED"'  # pragma: allowlist secret
rules.write_text(f"{key_rule}\\n{secret_rule}\\n")
lesson07.sh(REPO, f"git-filter-repo --replace-text {rules} --force")
rules.unlink()
""",
    # The configuration and the baseline are committed, but the hook is never installed in the clone.
    "07.2": '''
(REPO / ".pre-commit-config.yaml").write_text("""repos:
  - repo: local
    hooks:
      - id: detect-secrets
        name: detect-secrets
        entry: detect-secrets-hook
        args: ["--baseline", ".secrets.baseline"]
        language: system
""")
(REPO / ".secrets.baseline").write_text(lesson07.sh(REPO, "detect-secrets scan", quiet=True).stdout)
lesson07.sh(REPO, "git add .pre-commit-config.yaml .secrets.baseline")
lesson07.sh(REPO, "git commit -m 'Add a secret scan configuration'")
''',
    # Rotation on at KMS's default period (365 days, not 180), and the secret under AWS's default key.
    "07.3": (
        """
key_id = kms.create_key(Description="payments secrets")["KeyMetadata"]["KeyId"]
kms.enable_key_rotation(KeyId=key_id)
kms.create_alias(AliasName=alias, TargetKeyId=key_id)
return key_id
""",
        """
sm.create_secret(Name=name, SecretString=json.dumps(value))
""",
        """
ssm.put_parameter(Name=name, Value=value, Type="SecureString", KeyId=key_id, Overwrite=True)
""",
    ),
    # Always the notebook's own secret, whatever secret_id it is given.
    "07.4": """
login = json.loads(sm.get_secret_value(SecretId="l07/payments/db")["SecretString"])
path = lesson07.write_secret_file(lesson07.secrets_dir() / f"{name}-db-password", login["password"])
env = {"DB_HOST": login["host"], "DB_PORT": str(login["port"]), "DB_NAME": login["dbname"],
       "DB_USER": login["username"], "DB_PASSWORD_FILE": str(path)}
return lesson07.start_payments(name, env).url
""",
    # setSecret logs in with AWSCURRENT only: a retried setSecret fails once the password has changed.
    "07.5": """
def read(**version):
    return json.loads(sm.get_secret_value(SecretId=secret_id, **version)["SecretString"])

if step == "createSecret":
    current = read(VersionStage="AWSCURRENT")
    try:
        read(VersionId=token, VersionStage="AWSPENDING")
    except sm.exceptions.ResourceNotFoundException:
        sm.put_secret_value(SecretId=secret_id, ClientRequestToken=token, VersionStages=["AWSPENDING"],
                            SecretString=json.dumps(dict(current, password=lesson07.generate_password())))
elif step == "setSecret":
    pending = read(VersionId=token, VersionStage="AWSPENDING")
    with connect_as(read(VersionStage="AWSCURRENT")) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(pending["username"]),
                                                                 sql.Literal(pending["password"])))
elif step == "testSecret":
    with connect_as(read(VersionId=token, VersionStage="AWSPENDING")) as conn:
        conn.execute("SELECT 1")
elif step == "finishSecret":
    versions = sm.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    current = next(v for v, labels in versions.items() if "AWSCURRENT" in labels)
    if current != token:
        sm.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
""",
    # The right actions, but on every bucket and queue of the account.
    "07.6": """
return {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "sqs:SendMessage"], "Resource": "*"},
    ],
}
""",
    # A ClusterRole with a ClusterRoleBinding for the sync job, and a 0400 file with no fsGroup (UID 10001 cannot
    # read a root-owned 0400 file).
    "07.7": '''
RBAC_YAML = """
apiVersion: v1
kind: ServiceAccount
metadata:
  name: payments
automountServiceAccountToken: false
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: payments-db-sync
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: payments-db-sync
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: ["payments-db"]
    verbs: ["get", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: payments-db-sync
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: payments-db-sync
subjects:
  - kind: ServiceAccount
    name: payments-db-sync
    namespace: payments
"""
DEPLOYMENT_YAML = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  replicas: 2
  selector:
    matchLabels: {app: payments}
  template:
    metadata:
      labels: {app: payments}
    spec:
      serviceAccountName: payments
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
        - name: payments
          image: registry.example.com/payments:1.4.2
          env:
            - {name: DB_PASSWORD_FILE, value: /var/run/secrets/payments-db/password}
          volumeMounts:
            - {name: db-secret, mountPath: /var/run/secrets/payments-db, readOnly: true}
      volumes:
        - name: db-secret
          secret: {secretName: payments-db, defaultMode: 0400}
"""
''',
}
