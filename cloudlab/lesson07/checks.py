"""Lesson 07's exercise checks: git history and hooks, the secret store, injection (07.1-07.4).

Rotation (07.5) is in :mod:`.checks_rotation`; least privilege (07.6 IAM, 07.7 Kubernetes RBAC) in
:mod:`.checks_access`.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import uuid
from pathlib import Path

from .. import aws, iam, procs, scanners
from ..checks import check
from . import db as dbm
from . import repo as repos
from . import service as svc
from . import store

IAM_NAME = "l07-iam"


def nonce() -> str:
    return uuid.uuid4().hex[:8]


def _quiet_call(r, fn, *args):
    """Call the learner's function with its printed output captured: (result, what it printed)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        result = r.call(fn, *args)
    return result, buf.getvalue()


def _repo(r, ns) -> Path:
    path = Path(r.need(ns, "REPO", (str, Path), "path to the exercise repository"))
    st = repos.state(path)
    r.require(st["ok"], f"the repository is on branch {st['branch']} with a clean working tree", st["problem"])
    return path


# ------------------------------------------------------------------ 07.1
@check(
    "07.1",
    "The leaked key is rotated, and gone from the history",
    hints=[
        "Two jobs, in this order: first make the leaked key useless (a new key for l07-deploy-bot, then delete "
        "the old one in the enforcing IAM emulator), then rewrite the history so no commit contains it.",
        "Rotate: `iam_admin.create_access_key(UserName=...)`, then `delete_access_key(...)` of the leaked id. "
        "Rewrite: `git filter-repo --replace-text <file> --force` with a file listing the key id and its secret; "
        "a new commit that deletes the file does not change the old commits.",
        "After filter-repo nothing else is needed; after `git filter-branch`, also delete refs/original and expire "
        "the reflog (`git reflog expire --expire=now --all`). Keep the other commits (README.md, app.py, deploy/).",
    ],
)
def check_history(r, ns):
    path = _repo(r, ns)
    leak = repos.load_leak(path)
    r.require(
        leak is not None,
        "the repository is the one the setup cell made",
        f"{path} was not made by `lesson07.setup_exercises()`: run the setup cell at the top again",
    )
    e = iam.running(IAM_NAME)
    r.require(
        e is not None,
        "the enforcing IAM emulator runs",
        "the enforcing IAM emulator (l07-iam) is not running, so nobody can tell whether the key still works. "
        "Run the setup cell again (it starts the emulator and makes a new leaky repository: redo both steps).",
    )
    a = e.client("iam")
    try:
        keys = a.list_access_keys(UserName=leak.user)["AccessKeyMetadata"]
    except a.exceptions.NoSuchEntityException:
        r.fail(f"the user {leak.user} is gone: rotate its key, do not delete the identity the deploy job uses")
    old = [k for k in keys if k["AccessKeyId"] == leak.key_id and k["Status"] == "Active"]
    works = e.key_works(iam.Creds(leak.user, leak.key_id, leak.secret))
    r.expect(
        not old and works.denied,
        f"the leaked key {leak.key_id[:8]}... no longer works (a real call with it: {works})",
        f"the leaked key {leak.key_id[:8]}... still works (a real call with it was {works}): anyone who cloned the "
        "repository can use it. Delete it (or at least make it Inactive) in the emulator.",
    )
    fresh = [k for k in keys if k["AccessKeyId"] != leak.key_id and k["Status"] == "Active"]
    r.expect(
        bool(fresh),
        f"{leak.user} has a new active key, so the deploy job keeps working",
        f"{leak.user} has no new active key: rotating means replacing the key (create the new one first), "
        "not just disabling the deploy",
    )
    hits = repos.history_hits(path, leak.key_id) + (repos.history_hits(path, leak.secret) if leak.secret else [])
    backups = [ref for ref in repos.refs(path) if ref.startswith("refs/original/")]
    r.expect(
        not hits,
        "no commit reachable from any branch, tag, stash, backup ref or the reflog contains the key",
        f"the key is still in the history: {', '.join(sorted(set(hits))[:3])}"
        + (f" (kept alive by {backups[0]}: delete the backup refs)" if backups else "")
        + ". A commit that deletes the file leaves every older commit as it was.",
    )
    try:
        scan = scanners.trufflehog(path, quiet=True, lesson="07")
    except scanners.ScanError as err:
        r.fail(f"trufflehog could not scan the repository: {err}")
    r.expect(
        not scan["findings"],
        f"trufflehog finds nothing in {scan['commits']} commits",
        f"trufflehog still finds {len(scan['findings'])} key(s) in the history: "
        + ", ".join(f"{f['path']} in {f['commit']}" for f in scan["findings"][:3]),
    )
    files = repos.tree_files(path)
    wanted = {"README.md", "app.py", "deploy/settings.py", "deploy/deploy.sh"}
    r.expect(
        wanted <= files and repos.commit_count(path) >= 3,
        "the rest of the history survived (README.md, app.py, deploy/ and at least 3 commits)",
        f"the history was thrown away or files are missing ({', '.join(sorted(wanted - files)) or 'too few commits'}):"
        " rewrite only the secret, keep the project's history",
    )


# ------------------------------------------------------------------ 07.2
@check(
    "07.2",
    "A pre-commit hook blocks a commit that adds a secret",
    hints=[
        "Three pieces, all in the repository: a `.pre-commit-config.yaml` with a `repo: local` hook that runs "
        "`detect-secrets-hook --baseline .secrets.baseline`, a baseline file, and the hook installed in .git/hooks.",
        "The hook entry: `id: detect-secrets`, `name: detect-secrets`, `entry: detect-secrets-hook`, "
        "`args: ['--baseline', '.secrets.baseline']`, `language: system`. Make the baseline with "
        "`detect-secrets scan > .secrets.baseline`, install with `pre-commit install`.",
        "Commit the config and the baseline (the check needs a clean tree). The check tries commits in a copy: "
        "a key in a .env file must be refused too, so no `files:` filter, no `|| true`, no `verbose`-only hook.",
    ],
)
def check_hook(r, ns):
    path = _repo(r, ns)
    tracked = repos.tree_files(path)
    r.expect(
        ".pre-commit-config.yaml" in tracked,
        ".pre-commit-config.yaml is committed (everyone who clones gets it)",
        ".pre-commit-config.yaml is not committed: write it in the repository and commit it",
    )
    r.expect(
        ".secrets.baseline" in tracked,
        ".secrets.baseline is committed",
        ".secrets.baseline is not committed: `detect-secrets scan > .secrets.baseline`, then commit it",
    )
    hook = path / ".git" / "hooks" / "pre-commit"
    r.require(
        hook.exists() and "pre-commit" in hook.read_text(errors="replace"),
        "the hook is installed in .git/hooks/pre-commit",
        "no pre-commit hook is installed in this clone: run `pre-commit install` in the repository",
    )
    kid, secret = repos.fake_aws_key()
    # detect-secrets skips a quoted value that starts with "-" (1 token_urlsafe in 64 does): start with letters
    pw = "Pw" + secrets.token_urlsafe(16).replace("-", "x")
    tries = repos.try_commits(
        path,
        {
            "deploy/prod.env": f"AWS_ACCESS_KEY_ID={kid}\nAWS_SECRET_ACCESS_KEY={secret}\n",
            "deploy/db_settings.py": f'DB_PASSWORD = "{pw}"\n',
            "docs/notes.md": "Nothing secret here: the password comes from Secrets Manager.\n",
        },
    )
    env_try, py_try, ok_try = tries
    r.expect(
        not env_try.landed,
        "a commit adding an AWS key in deploy/prod.env is refused",
        "a commit adding an AWS key in deploy/prod.env went through: the hook does not look at it, or only warns. "
        f"Hook output: {env_try.output.strip()[-300:] or '(none: the hook did not run)'}",
    )
    r.expect(
        not py_try.landed,
        "a commit adding a password in a .py file is refused",
        f'a commit adding DB_PASSWORD = "..." in a .py file went through. Hook output: {py_try.output.strip()[-300:]}',
    )
    r.expect(
        ok_try.landed,
        "a harmless commit still goes through (the hook does not block everything)",
        f"a harmless commit (docs/notes.md) was refused too: the hook fails on everything. Its output: "
        f"{ok_try.output.strip()[-400:]}",
    )


# ------------------------------------------------------------------ 07.3
@check(
    "07.3",
    "The password is in Secrets Manager and Parameter Store, under your own KMS key",
    hints=[
        "create_key: `kms.create_key(...)`, then `enable_key_rotation`, then `create_alias(AliasName=alias, "
        "TargetKeyId=...)`; return the KeyId. Both stores must then name THAT key (the key_id argument).",
        "store_secret: `create_secret(Name=name, SecretString=json.dumps(value), KmsKeyId=key_id)`. "
        "store_parameter: `put_parameter(Name=name, Value=value, Type='SecureString', KeyId=key_id, Overwrite=True)`.",
        "Print nothing of the value (not even to check it): the check watches what your functions print.",
    ],
)
def check_store(r, ns):
    create_key = r.need(ns, "create_key", callable)
    store_secret = r.need(ns, "store_secret", callable)
    store_parameter = r.need(ns, "store_parameter", callable)
    n = nonce()
    alias = f"alias/l07-chk-{n}"
    key_id, printed = _quiet_call(r, create_key, alias)
    r.require(isinstance(key_id, str) and key_id, "create_key returns a key id", f"create_key returned {key_id!r}")
    k = store.kms()
    try:
        meta = k.describe_key(KeyId=key_id)["KeyMetadata"]
    except k.exceptions.NotFoundException:
        r.fail(f"KMS knows no key {key_id!r}: return the KeyId of the key you created")
    r.expect(
        store.key_for_alias(alias) == meta["KeyId"],
        f"{alias} points at the new key",
        f"the alias {alias} does not point at the key create_key returned (create_alias with the alias given)",
    )
    rot = k.get_key_rotation_status(KeyId=meta["KeyId"]).get("KeyRotationEnabled")
    r.expect(
        meta["KeyManager"] == "CUSTOMER" and meta["KeyState"] == "Enabled" and rot,
        "a customer-managed, enabled key with automatic rotation",
        f"the key should be customer-managed, enabled, with rotation on; it is {meta['KeyManager']}, "
        f"{meta['KeyState']}, rotation {'on' if rot else 'off'} (enable_key_rotation)",
    )
    value = {"username": f"l07chk_{n}", "password": store.generate_password(), "host": "127.0.0.1", "port": 5432}
    name = f"l07/chk-{n}/db"
    _, printed2 = _quiet_call(r, store_secret, name, dict(value), meta["KeyId"])
    sm = aws.client("secretsmanager")
    try:
        desc = sm.describe_secret(SecretId=name)
    except sm.exceptions.ResourceNotFoundException:
        r.fail(f"store_secret({name!r}, ...) created no secret of that name")
    r.expect(
        desc.get("KmsKeyId") in (meta["KeyId"], meta["Arn"], alias),
        "the secret is encrypted with your key",
        f"the secret names KMS key {desc.get('KmsKeyId')!r}, not yours "
        "(None means AWS's default key aws/secretsmanager: pass KmsKeyId=key_id)",
    )
    raw = sm.get_secret_value(SecretId=name)["SecretString"]
    try:
        got = json.loads(raw)
    except ValueError:
        got = None
    r.expect(
        got == value,
        "its value is the JSON of the dict (username, password, host, port)",
        "the secret's value should be json.dumps(value), the whole dict; it is something else",
    )
    pname = f"/l07/chk-{n}/db-password"
    _, printed3 = _quiet_call(r, store_parameter, pname, value["password"], meta["KeyId"])
    ssm = aws.client("ssm")
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [pname]}])["Parameters"]
    if not found:
        r.fail(f"store_parameter({pname!r}, ...) created no parameter of that name")
    p = found[0]
    r.expect(
        p["Type"] == "SecureString" and p.get("KeyId") in (meta["KeyId"], meta["Arn"], alias),
        "the parameter is a SecureString under your key",
        f"the parameter is a {p['Type']} with key {p.get('KeyId')!r}: use Type='SecureString' and KeyId=key_id",
    )
    dec = ssm.get_parameter(Name=pname, WithDecryption=True)["Parameter"]["Value"]
    r.expect(dec == value["password"], "it decrypts to the password", "the parameter's value is not the password")
    said = printed + printed2 + printed3
    r.expect(
        value["password"] not in said,
        "your functions printed nothing of the password",
        "your functions printed the password: never echo a secret (logs and notebook outputs are kept)",
    )


# ------------------------------------------------------------------ 07.4
@check(
    "07.4",
    "The service gets its password at launch, from the secret manager, as a file",
    hints=[
        "launch(secret_id, name): read the secret (get_secret_value + json.loads), write the password to a file "
        "in `lesson07.secrets_dir()` with `lesson07.write_secret_file(path, password)` (mode 0600), and call "
        "`lesson07.start_payments(name, env)`; return the service's url.",
        "env holds DB_HOST, DB_PORT, DB_NAME (the secret's dbname), DB_USER (its username) and DB_PASSWORD_FILE "
        "(the file's path). No DB_PASSWORD: an environment is readable in /proc, `docker inspect` and crash dumps.",
        "Use the secret_id you are given (the check makes a fresh database user and secret), and do not print "
        "the password.",
    ],
)
def check_launch(r, ns):
    launch = r.need(ns, "launch", callable)
    database = dbm.start(quiet=True)
    n = nonce()
    role, pw = f"{dbm.CHECK_ROLE_PREFIX}{n}", store.generate_password()
    database.set_password(role, pw, create=True)
    key = store.ensure_key()
    sid = f"l07/chk-{n}/payments-db"
    value = {
        "username": role,
        "password": pw,
        "host": database.host,
        "port": database.port,
        "dbname": database.dbname,
    }
    store.put_secret(sid, value, key)
    name = f"l07-chk-{n}"
    try:
        url, printed = _quiet_call(r, launch, sid, name)
        proc = procs.running(name)
        r.require(
            proc is not None,
            f"a service named {name} runs",
            f"no service named {name!r} runs: start it with lesson07.start_payments(name, env), name as given",
        )
        r.require(isinstance(url, str), "launch returns the service's url", f"launch returned {url!r}, not its url")
        h = svc.health(url)
        r.expect(
            h.get("db") == "ok",
            "the service logged in to PostgreSQL with the password from the secret",
            f"the service cannot log in to the database ({h}): did it get THIS secret's username and password?",
        )
        r.expect(
            h.get("password_source") == "file",
            "the password reached it as a file (DB_PASSWORD_FILE)",
            "the service read its password from the environment: mount it as a file (DB_PASSWORD_FILE) instead",
        )
        exposed = svc.process_exposure(proc.pid, pw)
        r.expect(
            not exposed,
            "the password is in neither its command line nor its environment",
            f"the password is visible in {' and '.join(exposed)}",
        )
        pfile = svc.password_file_of(proc.pid)
        mode = svc.file_mode(pfile) if pfile else None
        r.expect(
            mode is not None and mode & 0o077 == 0,
            f"the password file is readable by its owner only ({oct(mode or 0)})",
            f"the password file {pfile} has mode {oct(mode) if mode is not None else '?'}: others can read it "
            "(write it with lesson07.write_secret_file, mode 0600)",
        )
        log = procs.log_path(name).read_text(errors="replace") if procs.log_path(name).exists() else ""
        r.expect(pw not in log, "its logs do not contain the password", "the service's log contains the password")
        r.expect(pw not in printed, "launch printed nothing of the password", "launch printed the password")
    finally:
        procs.stop(name)
        with contextlib.suppress(Exception):
            aws.client("secretsmanager").delete_secret(SecretId=sid, ForceDeleteWithoutRecovery=True)
