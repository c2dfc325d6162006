"""Lesson 07's checks of the secret store (07.3: KMS key, Secrets Manager, Parameter Store) and of injection at
launch (07.4: the payments service started with its password as a file)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from .. import aws, procs
from ..checks import check
from . import db as dbm
from . import service as svc
from . import store
from .checks import _quiet_call, nonce

ROTATION_DAYS = 180  # exercise 3: the key material rotates every 180 days (KMS: 90 to 2,560, default 365)


def open_to_everyone(policy_text: str) -> list[str]:
    """The Sids (or numbers) of key policy statements that allow ANY principal (``"*"`` or ``{"AWS": "*"}``)
    without a condition: anyone, in any account, who can reach KMS may use the key."""
    try:
        doc = json.loads(policy_text or "{}")
    except ValueError:
        return []
    stmts = doc.get("Statement", []) if isinstance(doc, dict) else []
    stmts = [stmts] if isinstance(stmts, dict) else stmts
    found = []
    for i, s in enumerate(stmts if isinstance(stmts, list) else []):
        if not isinstance(s, dict) or s.get("Effect") != "Allow" or s.get("Condition"):
            continue
        p = s.get("Principal")
        aws_p = p.get("AWS") if isinstance(p, dict) else None
        if p == "*" or aws_p == "*" or (isinstance(aws_p, list) and "*" in aws_p):
            found.append(str(s.get("Sid") or f"statement {i + 1}"))
    return found


# ------------------------------------------------------------------ 07.3
@check(
    "07.3",
    "The password is in Secrets Manager and Parameter Store, under your own KMS key",
    hints=[
        "create_key: `kms.create_key(...)`, then `enable_key_rotation` (with the period the task names), then "
        "`create_alias(AliasName=alias, TargetKeyId=...)`; return the KeyId. Both stores must then name THAT key "
        "(the key_id argument), and the key keeps its default key policy (no Principal '*').",
        "store_secret: `create_secret(Name=name, SecretString=json.dumps(value), KmsKeyId=key_id)`. "
        "store_parameter: `put_parameter(Name=name, Value=value, Type='SecureString', KeyId=key_id, Overwrite=True)`.",
        f"`enable_key_rotation(KeyId=key_id, RotationPeriodInDays={ROTATION_DAYS})`. Print nothing of the value "
        "(not even to check it): the check watches what your functions print.",
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
    rot = k.get_key_rotation_status(KeyId=meta["KeyId"])
    on, days = rot.get("KeyRotationEnabled"), rot.get("RotationPeriodInDays")
    r.expect(
        meta["KeyManager"] == "CUSTOMER" and meta["KeyState"] == "Enabled" and on,
        "a customer-managed, enabled key with automatic rotation",
        f"the key should be customer-managed, enabled, with rotation on; it is {meta['KeyManager']}, "
        f"{meta['KeyState']}, rotation {'on' if on else 'off'} (enable_key_rotation)",
    )
    r.expect(
        not on or days == ROTATION_DAYS,
        f"its key material rotates every {ROTATION_DAYS} days",
        f"its key material rotates every {days} days, the task asks for {ROTATION_DAYS} "
        "(enable_key_rotation's RotationPeriodInDays; without it KMS uses 365)",
    )
    open_ = open_to_everyone(k.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    r.expect(
        not open_,
        "its key policy names no wildcard principal",
        f"its key policy lets ANY principal use the key ({', '.join(open_)}: Principal '*' with no condition): "
        "keep KMS's default key policy (the account decides through IAM)",
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
    second = store.generate_password()
    _, printed4 = _quiet_call(r, store_parameter, pname, second, meta["KeyId"])
    again = ssm.get_parameter(Name=pname, WithDecryption=True)["Parameter"]["Value"]
    r.expect(
        again == second,
        "storing a parameter again overwrites it (a rotated password replaces the old one)",
        "a second store_parameter with a new value left the old one: overwrite it if it exists (Overwrite=True)",
    )
    said = printed + printed2 + printed3 + printed4
    r.expect(
        value["password"] not in said and second not in said,
        "your functions printed nothing of the password",
        "your functions printed the password: never echo a secret (logs and notebook outputs are kept)",
    )


# ------------------------------------------------------------------ 07.4
def _login_for(database, n: str, tag: str) -> tuple[str, dict]:
    """A fresh database user and a secret holding its login: (secret id, the login)."""
    role, pw = f"{dbm.CHECK_ROLE_PREFIX}{n}{tag}", store.generate_password()
    database.set_password(role, pw, create=True)
    sid = f"l07/chk-{n}{tag}/payments-db"
    login = {"username": role, "password": pw, "host": database.host, "port": database.port, "dbname": database.dbname}
    store.put_secret(sid, login, store.ensure_key())
    return sid, login


def _launched(r, launch, sid: str, login: dict, name: str, tag: str) -> str | None:
    """Launch one service with the learner's function and check it the way its platform would be inspected;
    returns the path of its password file."""
    url, printed = _quiet_call(r, launch, sid, name)
    proc = procs.running(name)
    r.require(
        proc is not None,
        f"{tag}: a service named {name} runs",
        f"no service named {name!r} runs: start it with lesson07.start_payments(name, env), name as given",
    )
    r.require(isinstance(url, str), f"{tag}: launch returns the service's url", f"launch returned {url!r}, not its url")
    pw = login["password"]
    env = svc.environment_of(proc.pid)
    user = env.get("DB_USER")
    r.expect(
        user == login["username"],
        f"{tag}: it logs in as the user of the secret it was given ({sid})",
        f"{tag}: the service was started as DB_USER={user!r}, but the secret it was given ({sid}) holds the login "
        f"of {login['username']}: read the secret_id argument, not the notebook's own secret",
    )
    h = svc.health(url)
    r.expect(
        h.get("db") == "ok",
        f"{tag}: the service logged in to PostgreSQL with the password from the secret",
        f"{tag}: the service cannot log in to the database ({h}): did it get THIS secret's username and password?",
    )
    r.expect(
        h.get("password_source") == "file",
        f"{tag}: the password reached it as a file (DB_PASSWORD_FILE)",
        "the service read its password from the environment: mount it as a file (DB_PASSWORD_FILE) instead",
    )
    exposed = svc.process_exposure(proc.pid, pw)
    r.expect(
        not exposed,
        f"{tag}: the password is in neither its command line nor its environment",
        f"the password is visible in {' and '.join(exposed)}",
    )
    pfile = env.get("DB_PASSWORD_FILE")
    mode = svc.file_mode(pfile) if pfile else None
    r.expect(
        mode is not None and mode & 0o077 == 0,
        f"{tag}: the password file is readable by its owner only ({oct(mode or 0)})",
        f"the password file {pfile} has mode {oct(mode) if mode is not None else '?'}: others can read it "
        "(write it with lesson07.write_secret_file, mode 0600)",
    )
    where = svc.secrets_dir().resolve()
    r.expect(
        not pfile or where in Path(pfile).resolve().parents,
        f"{tag}: the file is in lesson07.secrets_dir() (a folder only you can open)",
        f"the password file {pfile} is outside lesson07.secrets_dir(): a folder others can list (or a copy left "
        "elsewhere) is one more place the password lives",
    )
    log = procs.log_path(name).read_text(errors="replace") if procs.log_path(name).exists() else ""
    r.expect(pw not in log, f"{tag}: its logs do not contain the password", "the service's log contains the password")
    r.expect(pw not in printed, f"{tag}: launch printed nothing of the password", "launch printed the password")
    return pfile


def _file_holds(path: str | None, password: str) -> bool:
    try:
        return path is not None and Path(path).read_text().strip() == password
    except OSError:
        return False


@check(
    "07.4",
    "The service gets its password at launch, from the secret manager, as a file",
    hints=[
        "launch(secret_id, name): read the secret (get_secret_value + json.loads), write the password to a file "
        "in `lesson07.secrets_dir()` with `lesson07.write_secret_file(path, password)` (mode 0600), and call "
        "`lesson07.start_payments(name, env)`; return the service's url.",
        "env holds DB_HOST, DB_PORT, DB_NAME (the secret's dbname), DB_USER (its username) and DB_PASSWORD_FILE "
        "(the file's path). No DB_PASSWORD: an environment is readable in /proc, `docker inspect` and crash dumps.",
        "Use the secret_id and the name you are given: the check launches two services from two secrets of its "
        "own (two database users), one file each (name the file after `name`), and reads what each one got.",
    ],
)
def check_launch(r, ns):
    launch = r.need(ns, "launch", callable)
    database = dbm.start(quiet=True)
    n = nonce()
    made, files = [], []
    try:
        for tag in ("a", "b"):
            sid, login = _login_for(database, n, tag)
            name = f"l07-chk-{n}{tag}"
            made.append((sid, name))
            files.append((_launched(r, launch, sid, login, name, f"service {tag.upper()}"), login["password"]))
        r.expect(
            all(_file_holds(path, pw) for path, pw in files),
            "after both launches, each service's file still holds its own password (one file per service)",
            "launching service B overwrote service A's password file: after a restart A would log in with B's "
            "password. Give each service its own file (name it after `name`)",
        )
    finally:
        for sid, name in made:
            proc = procs.running(name)
            pfile = svc.environment_of(proc.pid).get("DB_PASSWORD_FILE") if proc else None
            procs.stop(name)
            if pfile and svc.secrets_dir().resolve() in Path(pfile).resolve().parents:
                Path(pfile).unlink(missing_ok=True)  # the check's password files go with its services
            with contextlib.suppress(Exception):
                aws.client("secretsmanager").delete_secret(SecretId=sid, ForceDeleteWithoutRecovery=True)
