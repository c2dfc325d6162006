"""Lesson 07's least-privilege checks: an IAM policy tested with real calls against the enforcing emulator
(07.6), and Kubernetes RBAC plus the Secret's mount read from the rendered manifests (07.7)."""

from __future__ import annotations

from .. import iam, k8s, scanners
from ..checks import check
from ..lab.tools import ToolMissing
from ..tables import Table
from .checks import IAM_NAME, nonce
from .k8s import render_pair

LINT_BLOCKING = {"MALFORMED_JSON", "UNKNOWN_ACTION", "UNKNOWN_PREFIX", "RESOURCE_MISMATCH", "RESOURCE_STAR"}


@check(
    "07.6",
    "The service's policy allows what its code calls, on its resources, and nothing else",
    hints=[
        "The service calls three things: s3:PutObject and s3:GetObject on objects under orders/ in its bucket, "
        "and sqs:SendMessage on its queue. Name exactly those actions, and each on its resource's ARN.",
        "Objects are `arn:aws:s3:::<bucket>/orders/*` (the bucket's own ARN, without /..., is for bucket actions "
        "such as ListBucket); the queue is the queue_arn you are given. Build the ARNs from the arguments.",
        "No `*` in actions or resources, no NotAction: return {'Version': '2012-10-17', 'Statement': [{...S3...}, "
        "{...SQS...}]}. The check attaches it to a fresh user and makes real calls with its key.",
    ],
)
def check_policy(r, ns):
    service_policy = r.need(ns, "service_policy", callable)
    e = iam.running(IAM_NAME)
    r.require(
        e is not None,
        "the enforcing IAM emulator runs",
        "the enforcing IAM emulator (l07-iam) is not running: run the setup cell at the top again",
    )
    n = nonce()
    bucket, other = f"l07-chk-{n}", f"l07-chk-{n}-other"
    q, q_other, qarn = make_resources(e, bucket, other, f"l07-chk-{n}", f"l07-chk-{n}-other")
    doc = r.call(service_policy, bucket, qarn)
    try:
        parsed = iam.parse(doc)
    except iam.PolicyError as err:
        r.fail(f"service_policy({bucket!r}, ...) does not return a valid IAM policy: {err}")
    broad = iam.broad_statements(parsed)
    r.expect(not broad, 'no wildcard action, no Resource "*", no NotAction', "too broad: " + "; ".join(broad))
    try:
        lint = scanners.parliament(parsed, quiet=True, lesson="07", community=False)["findings"]
    except scanners.ScanError as err:
        r.fail(f"parliament could not lint the policy: {err}")
    blocking = [f for f in lint if f[0] in LINT_BLOCKING or f[1] in ("HIGH", "CRITICAL")]
    r.expect(
        not blocking,
        f"parliament finds nothing serious ({len(lint)} note(s))",
        "parliament: " + "; ".join(f"{i} {d[:80]}" for i, _, d in blocking[:3]),
    )
    user = f"l07-chk-{n}"
    try:
        creds = e.create_user(user, parsed)
    except Exception as err:  # moto's own grammar check (MalformedPolicyDocument)
        r.fail(f"the emulator refused the policy: {err}")
    needed, outside = probe(e, creds, bucket, other, q, q_other)
    for what, out in needed.items():
        r.expect(out.allowed, f"allowed: {what}", f"{what} was {out}: the service needs it")
    leaks = [what for what, out in outside.items() if not out.denied]
    r.expect(
        not leaks,
        f"denied: all {len(outside)} calls outside the service's job (other bucket, other prefix, deletes, IAM ...)",
        f"allowed although the service never needs it: {', '.join(leaks)}",
    )
    e.delete_user(user)


def probe(e: iam.EnforcingIAM, creds: iam.Creds, bucket: str, other: str, q: str, q_other: str):
    """Real calls with ``creds``: the three the orders service needs, and eight it never needs.
    Returns ``(needed, outside)``, each ``{what: Outcome}``. The buckets hold orders/seed.json."""
    us3, usqs, uiam = e.client("s3", creds), e.client("sqs", creds), e.client("iam", creds)
    needed = {
        "s3:PutObject orders/...": iam.try_call(us3.put_object, Bucket=bucket, Key="orders/new.json", Body=b"{}"),
        "s3:GetObject orders/...": iam.try_call(us3.get_object, Bucket=bucket, Key="orders/seed.json"),
        "sqs:SendMessage to its queue": iam.try_call(usqs.send_message, QueueUrl=q, MessageBody="{}"),
    }
    outside = {
        "s3:PutObject in another bucket": iam.try_call(us3.put_object, Bucket=other, Key="orders/x.json", Body=b"{}"),
        "s3:GetObject outside orders/": iam.try_call(us3.get_object, Bucket=bucket, Key="admin/config.json"),
        "s3:DeleteObject": iam.try_call(us3.delete_object, Bucket=bucket, Key="orders/old.json"),
        "s3:DeleteBucket": iam.try_call(us3.delete_bucket, Bucket=other),
        "s3:ListAllMyBuckets": iam.try_call(us3.list_buckets),
        "sqs:SendMessage to another queue": iam.try_call(usqs.send_message, QueueUrl=q_other, MessageBody="{}"),
        "sqs:DeleteQueue": iam.try_call(usqs.delete_queue, QueueUrl=q_other),
        "iam:CreateUser": iam.try_call(uiam.create_user, UserName=f"{creds.user}-evil"),
    }
    return needed, outside


def probe_table(needed: dict, outside: dict) -> str:
    """What the probe tried and what came back (a string; a notebook shows it as a table when not printed)."""
    rows = [("needed", what, out) for what, out in needed.items()]
    rows += [("outside", what, out) for what, out in outside.items()]
    return Table(("the job", "call", "result"), rows, indent=2).text()


def make_resources(e: iam.EnforcingIAM, bucket: str, other: str, queue: str, other_queue: str):
    """Two buckets (each with orders/seed.json, orders/old.json and admin/config.json) and two queues in the
    enforcing emulator, made by its administrator; returns (queue url, other queue url, queue ARN)."""
    s3, sqs = e.client("s3"), e.client("sqs")
    for b in (bucket, other):
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="orders/seed.json", Body=b"{}")
        s3.put_object(Bucket=b, Key="orders/old.json", Body=b"{}")
        s3.put_object(Bucket=b, Key="admin/config.json", Body=b"{}")
    q = sqs.create_queue(QueueName=queue)["QueueUrl"]
    q_other = sqs.create_queue(QueueName=other_queue)["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return q, q_other, qarn


# ------------------------------------------------------------------ 07.7
@check(
    "07.7",
    "A ServiceAccount that can read one Secret, mounted as a read-only file",
    hints=[
        'RBAC_YAML: a ServiceAccount `payments`, a Role with ONE rule: apiGroups [""], resources ["secrets"], '
        'resourceNames ["payments-db"], verbs ["get"], and a RoleBinding of that Role to the ServiceAccount.',
        "DEPLOYMENT_YAML: serviceAccountName: payments; no secretKeyRef/envFrom; a volume `secret: {secretName: "
        "payments-db, defaultMode: 0400}` mounted readOnly, and DB_PASSWORD_FILE pointing at the file in it.",
        "A rule without resourceNames covers every Secret, and `list`/`watch` on all Secrets return their data too; "
        "a ClusterRole with a ClusterRoleBinding reaches every namespace. Start from the lesson's k8s/base files.",
    ],
)
def check_rbac(r, ns):
    rbac_yaml = r.need(ns, "RBAC_YAML", str)
    deployment_yaml = r.need(ns, "DEPLOYMENT_YAML", str)
    try:
        objs = render_pair(rbac_yaml, deployment_yaml)
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
    spec = k8s.pod_spec(deps[0])
    sa = spec.get("serviceAccountName") or "default"
    r.expect(
        sa != "default",
        f"the pods run as their own ServiceAccount ({sa})",
        "the pods run as the namespace's `default` ServiceAccount: give them their own (serviceAccountName)",
    )
    r.expect(
        objs.get("ServiceAccount", sa) is not None,
        f"the ServiceAccount {sa} is defined",
        f"no ServiceAccount named {sa} in RBAC_YAML",
    )

    def can(verb, resource="secrets", name=None):
        return k8s.can(objs, sa, "payments", verb, resource, name)

    r.expect(can("get", name="payments-db"), "it can get the Secret payments-db", "it cannot get payments-db")
    too_much = [
        label
        for label, ok in (
            ("get another Secret", can("get", name="other-secret")),
            ("list Secrets (that returns every Secret's data)", can("list")),
            ("watch Secrets", can("watch")),
            ("update payments-db", can("update", name="payments-db")),
            ("delete payments-db", can("delete", name="payments-db")),
            ("get ConfigMaps", can("get", "configmaps", "any")),
            ("create Pods", can("create", "pods")),
        )
        if ok
    ]
    r.expect(
        not too_much,
        "and nothing else: no other Secret, no list/watch, no writes",
        "it can also " + ", ".join(too_much),
    )
    use = k8s.secret_use(deps[0])
    r.expect(
        not use["env"],
        "no Secret goes into an environment variable",
        "Secrets in environment variables: " + ", ".join(f"{c}:{v}" for c, v, _ in use["env"]),
    )
    vols = [v for v, s in use["volumes"].items() if s == "payments-db"]
    mounts = [m for m in use["mounts"] if m[1] in vols]
    r.require(
        bool(mounts),
        "the Secret payments-db is mounted as a volume",
        "the Secret payments-db is not mounted as a volume in the container",
    )
    r.expect(all(m[3] for m in mounts), "the mount is readOnly", "the Secret's volumeMount should be readOnly: true")
    mode = use["modes"][mounts[0][1]]
    r.expect(
        isinstance(mode, int) and mode & 0o037 == 0,
        f"its files are readable by the owner (and group) only ({oct(mode) if isinstance(mode, int) else mode})",
        f"defaultMode is {oct(mode) if isinstance(mode, int) else mode}: others can read the file (use 0400)",
    )
    envs = {e["name"]: e.get("value") for c in spec.get("containers") or [] for e in c.get("env") or []}
    pf = envs.get("DB_PASSWORD_FILE") or ""
    r.expect(
        any(pf.startswith(m[2].rstrip("/") + "/") for m in mounts),
        f"DB_PASSWORD_FILE points into the mount ({pf})",
        f"DB_PASSWORD_FILE ({pf or 'not set'}) should name the password file inside the mounted volume",
    )


def rbac_summary(objs: list[dict], sa: str, namespace: str = "payments") -> str:
    """A table of what ``sa`` may do, for the lesson (the questions the check asks)."""
    rows = []
    for verb, res, name in (
        ("get", "secrets", "payments-db"),
        ("get", "secrets", "other-secret"),
        ("list", "secrets", None),
        ("watch", "secrets", None),
        ("get", "configmaps", "any"),
        ("update", "secrets", "payments-db"),
    ):
        ok = k8s.can(objs, sa, namespace, verb, res, name)
        rows.append(f"  {'yes' if ok else 'no ':<4} {verb} {res}{'/' + name if name else ''}")
    return "\n".join(rows)
