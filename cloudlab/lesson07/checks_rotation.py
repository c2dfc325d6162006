"""Lesson 07's rotation check (07.5): the learner's rotation function driven step by step, the way Secrets Manager
calls a rotation Lambda, against a fresh database user and secret."""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import uuid

from .. import aws
from ..checks import check
from . import db as dbm
from . import store
from .checks import nonce


# ------------------------------------------------------------------ 07.5
def _stage_of(sid: str, vid: str) -> list[str]:
    return store.stages(sid).get(vid, [])


def _value(sid: str, **version) -> dict:
    """A version's JSON value, or {} when it is missing or not a JSON object (the check then says so)."""
    sm = aws.client("secretsmanager")
    try:
        v = json.loads(sm.get_secret_value(SecretId=sid, **version)["SecretString"])
    except (sm.exceptions.ResourceNotFoundException, ValueError, KeyError):
        return {}
    return v if isinstance(v, dict) else {}


def _rotation(r, handler, sid: str, database, role: str, token: str, label: str) -> str:
    """Drive one rotation step by step, retrying steps as Secrets Manager may; returns the new password."""
    old = next(v for v, s in store.stages(sid).items() if "AWSCURRENT" in s)
    before = _value(sid).get("password")

    def step(name):
        return r.call(handler, {"SecretId": sid, "ClientRequestToken": token, "Step": name}, None)

    step("createSecret")
    r.require(
        "AWSPENDING" in _stage_of(sid, token),
        f"{label}, createSecret: the new version (the token's id) is labelled AWSPENDING",
        f"{label}: after createSecret there is no version with the token's id labelled AWSPENDING "
        "(put_secret_value(ClientRequestToken=token, VersionStages=['AWSPENDING']))",
    )
    r.require(
        "AWSCURRENT" in _stage_of(sid, old),
        f"{label}, createSecret leaves AWSCURRENT where it was",
        f"{label}: createSecret moved AWSCURRENT before the new password was set and tested: every client now "
        "reads a password the database does not accept yet",
    )
    pending = _value(sid, VersionId=token)
    r.require(bool(pending), "the pending value is JSON", "the pending value is not a JSON object (json.dumps a dict)")
    r.expect(
        pending.get("password") not in (None, before) and pending.get("username") == role,
        f"{label}: the pending version has a new password and the same username, host and port",
        f"{label}: the pending version should copy the CURRENT one (this secret's, read with the SecretId given) "
        "with a NEW password",
    )
    step("createSecret")  # Secrets Manager retries steps: the second call must not make another password
    again = _value(sid, VersionId=token)
    r.expect(
        again.get("password") == pending.get("password"),
        f"{label}: createSecret is idempotent (a retry keeps the pending password)",
        "calling createSecret again changed the pending password: check whether the version exists first",
    )
    new_pw = str(again.get("password"))
    step("setSecret")
    r.expect(
        database.can_login(role, new_pw),
        f"{label}, setSecret: PostgreSQL now accepts the new password",
        f"{label}: after setSecret the database still refuses the pending password: run ALTER ROLE ... PASSWORD",
    )
    r.expect(
        "AWSCURRENT" in _stage_of(sid, old), f"{label}: setSecret leaves AWSCURRENT alone", "setSecret moved AWSCURRENT"
    )
    # A retried setSecret (Lambda retries a step that timed out): the database already has the pending password,
    # so a function that logs in with AWSCURRENT only is refused now.
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            handler({"SecretId": sid, "ClientRequestToken": token, "Step": "setSecret"}, None)
        retried = ""
    except Exception as err:  # noqa: BLE001  (the learner's function: said in the check's words)
        retried = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:160] if str(err).strip() else ''}"
    r.require(
        not retried and database.can_login(role, new_pw),
        f"{label}: setSecret can be retried (it tries the pending password first, as AWS's rotation functions do)",
        f"{label}: setSecret called a second time (a retry) failed with {retried or 'a broken login'}: by then the "
        "database has the pending password and AWSCURRENT's no longer works. First try to log in with the PENDING "
        "password: if that works, setSecret is already done",
    )
    step("testSecret")
    database.set_password(role, "sabotaged-" + secrets.token_hex(6))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            handler({"SecretId": sid, "ClientRequestToken": token, "Step": "testSecret"}, None)
        tested = False
    except Exception:
        tested = True
    database.set_password(role, new_pw)
    r.expect(
        tested,
        f"{label}: testSecret really logs in (it failed when the database refused the pending password)",
        "testSecret did not fail when the database refused the pending password: it must log in and raise",
    )
    step("finishSecret")
    r.expect(
        "AWSCURRENT" in _stage_of(sid, token) and "AWSPREVIOUS" in _stage_of(sid, old),
        f"{label}, finishSecret: AWSCURRENT is on the new version, AWSPREVIOUS on the old one",
        f"{label}: after finishSecret the labels are {store.stages(sid)}: move AWSCURRENT to the token's version",
    )
    step("finishSecret")
    r.expect(
        "AWSCURRENT" in _stage_of(sid, token),
        f"{label}: finishSecret is idempotent",
        "calling finishSecret twice broke the labels",
    )
    current = _value(sid).get("password", "")
    r.expect(
        database.can_login(role, current) and not database.can_login(role, before),
        f"{label}: the database accepts the new AWSCURRENT password and refuses the old one",
        f"{label}: AWSCURRENT and the database disagree after the rotation",
    )
    return current


@check(
    "07.5",
    "Rotation follows the four steps, and the database really changes",
    hints=[
        "One handler, four steps (event['Step']), all keyed by event['ClientRequestToken'] (the new version's id). "
        "createSecret: put the new password as that version with VersionStages=['AWSPENDING'] (only if it does not "
        "exist yet). setSecret: ALTER ROLE in the database. testSecret: log in with it. finishSecret: move AWSCURRENT.",
        "Read the pending version with get_secret_value(SecretId=..., VersionId=token, VersionStage='AWSPENDING'). "
        "setSecret may run twice: first try to log in with the PENDING password (if that works, it is already set: "
        "return); else log in with AWSCURRENT and run ALTER ROLE <user> PASSWORD '<new>'. testSecret must raise "
        "when the login fails.",
        "finishSecret: find the version holding AWSCURRENT; if it is not the token, update_secret_version_stage("
        "VersionStage='AWSCURRENT', MoveToVersionId=token, RemoveFromVersionId=<current>). Never touch AWSCURRENT "
        "earlier: clients read it all the time. The check rotates its own secret twice, retrying steps.",
    ],
)
def check_rotation(r, ns):
    handler = r.need(ns, "lambda_handler", callable)
    database = dbm.start(quiet=True)
    n = nonce()
    role, pw0 = f"{dbm.CHECK_ROLE_PREFIX}{n}", store.generate_password()
    database.set_password(role, pw0, create=True)
    sid = f"l07/chk-{n}/rotation"
    value = {
        "engine": "postgres",
        "username": role,
        "password": pw0,
        "host": database.host,
        "port": database.port,
        "dbname": database.dbname,
    }
    store.put_secret(sid, value, store.ensure_key())
    sm = aws.client("secretsmanager")
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            first = _rotation(r, handler, sid, database, role, str(uuid.uuid4()), "rotation 1")
            second = ""
            if not r.wrong:  # the second rotation starts from the first one's result: only when that one is right
                current = next(v for v, s in store.stages(sid).items() if "AWSCURRENT" in s)
                if "AWSPENDING" in _stage_of(sid, current):  # what Secrets Manager does when a rotation ends
                    sm.update_secret_version_stage(SecretId=sid, VersionStage="AWSPENDING", RemoveFromVersionId=current)
                second = _rotation(r, handler, sid, database, role, str(uuid.uuid4()), "rotation 2")
        said = out.getvalue()
        r.expect(
            not any(p and p in said for p in (pw0, first, second)),
            "your function printed no password (a Lambda's output goes to its CloudWatch log group)",
            "your function printed a password: its output is kept in CloudWatch Logs; print what it did, not values",
        )
    finally:
        with contextlib.suppress(Exception):
            sm.delete_secret(SecretId=sid, ForceDeleteWithoutRecovery=True)
