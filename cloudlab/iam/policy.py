"""IAM policy documents: parse them with plain-words errors, list what they grant, find what is too broad.

A small reader of the policy grammar (Version, Statement, Effect, Action/NotAction, Resource/NotResource,
Condition, Principal), enough to tell a learner *where* a document is wrong before an emulator or AWS
answers ``MalformedPolicyDocument``. The linting of meaning (unknown actions, resource formats,
privilege escalation) is parliament's job: :func:`cloudlab.scanners.parliament`. Serves lesson 07.
"""

from __future__ import annotations

import json
import re

ACTION = re.compile(r"^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$")
KNOWN_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
    "NotPrincipal",
}


class PolicyError(ValueError):
    """The document is not a valid IAM policy; the message says where and how."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mPolicyError\x1b[0m: {self}"]


def _list(v) -> list:
    return v if isinstance(v, list) else [v]


def parse(doc, identity: bool = True) -> dict:
    """The policy as a dict, from a dict or JSON text; raises :class:`PolicyError` in plain words.

    ``identity``: an identity policy (attached to a user or role) has no Principal; a resource
    policy (a bucket policy) needs one.
    """
    if isinstance(doc, (bytes, str)):
        try:
            doc = json.loads(doc)
        except ValueError as e:
            raise PolicyError(
                f"the policy is not valid JSON ({e}). Write it as a Python dict, or check quotes and commas."
            ) from None
    if not isinstance(doc, dict):
        raise PolicyError(f"a policy is a JSON object ({{...}}), not a {type(doc).__name__}")
    if doc.get("Version") != "2012-10-17":
        raise PolicyError(
            f'"Version" must be "2012-10-17" (the language version, not a date you choose); got {doc.get("Version")!r}'
        )
    if "Statement" not in doc:
        raise PolicyError('a policy needs a "Statement": one statement (an object) or a list of them')
    for i, st in enumerate(_list(doc["Statement"])):
        where = f"statement {i + 1}" + (f" ({st.get('Sid')})" if isinstance(st, dict) and st.get("Sid") else "")
        if not isinstance(st, dict):
            raise PolicyError(f"{where} must be an object, not {type(st).__name__}")
        unknown = set(st) - KNOWN_KEYS
        if unknown:
            raise PolicyError(
                f"{where} has unknown element(s) {sorted(unknown)} (case matters: Effect, Action, Resource ...)"
            )
        if st.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f'{where}: "Effect" must be "Allow" or "Deny", got {st.get("Effect")!r}')
        if ("Action" in st) == ("NotAction" in st):
            raise PolicyError(f'{where} needs exactly one of "Action" or "NotAction"')
        for a in _list(st.get("Action", st.get("NotAction"))):
            if not isinstance(a, str) or not ACTION.match(a):
                raise PolicyError(f'{where}: {a!r} is not an action; write "service:Action", e.g. "s3:GetObject"')
        if identity and ("Principal" in st or "NotPrincipal" in st):
            raise PolicyError(
                f"{where}: an identity policy has no Principal (the principal is whoever it is attached to)"
            )
        if not identity and "Principal" not in st and "NotPrincipal" not in st:
            raise PolicyError(f'{where}: a resource policy (a bucket policy) needs a "Principal"')
        if ("Resource" in st) == ("NotResource" in st):
            raise PolicyError(f'{where} needs exactly one of "Resource" or "NotResource"')
        for r in _list(st.get("Resource", st.get("NotResource"))):
            if not isinstance(r, str) or not (r == "*" or r.startswith("arn:")):
                raise PolicyError(f'{where}: resource {r!r} should be an ARN ("arn:aws:s3:::bucket/prefix/*") or "*"')
        if "Condition" in st and not isinstance(st["Condition"], dict):
            raise PolicyError(
                f'{where}: "Condition" is an object like {{"StringEquals": {{"aws:RequestedRegion": "us-east-1"}}}}'
            )
    return doc


def statements(doc) -> list[dict]:
    return [dict(st) for st in _list(parse(doc)["Statement"])]


def actions(doc) -> set[str]:
    """Every action an Allow statement names (as written; wildcards are not expanded)."""
    return {a for st in statements(doc) if st["Effect"] == "Allow" for a in _list(st.get("Action", []))}


def broad_statements(doc) -> list[str]:
    """What makes an identity policy broader than a service needs, in plain words (empty: nothing found).

    Flags Allow statements with an action wildcard (``*`` or ``service:*``), ``Resource: "*"``, and
    NotAction/NotResource (an allow-everything-except, which grows whenever AWS adds an action).
    """
    out = []
    for i, st in enumerate(statements(doc)):
        if st["Effect"] != "Allow":
            continue
        where = f"statement {i + 1}" + (f" ({st['Sid']})" if st.get("Sid") else "")
        if "NotAction" in st:
            out.append(f"{where} allows everything except some actions (NotAction): it grows with every new AWS action")
        wild = [a for a in _list(st.get("Action", [])) if a == "*" or a.endswith(":*")]
        if wild:
            out.append(f"{where} allows every action of {', '.join(wild)}: name the actions the code calls")
        if "NotResource" in st:
            out.append(f"{where} allows every resource except some (NotResource)")
        if "*" in _list(st.get("Resource", [])):
            out.append(f'{where} has Resource "*": every bucket, queue ... in the account, not just the service\'s')
    return out
