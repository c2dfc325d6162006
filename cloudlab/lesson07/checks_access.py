"""Lesson 07's IAM least-privilege check (07.6): a policy tested with real calls against the enforcing emulator.
Kubernetes RBAC (07.7) is in :mod:`.checks_k8s`."""

from __future__ import annotations

from .. import iam, scanners
from ..checks import check
from ..tables import Table
from .checks import IAM_NAME, nonce

LINT_BLOCKING = {"MALFORMED_JSON", "UNKNOWN_ACTION", "UNKNOWN_PREFIX", "RESOURCE_MISMATCH", "RESOURCE_STAR"}


@check(
    "07.6",
    "The service's policy allows what its code calls, on its resources, and nothing else",
    hints=[
        "The service calls three things: s3:PutObject and s3:GetObject on objects under orders/ in its bucket, "
        "and sqs:SendMessage on its queue. Name exactly those actions, and each on its resource's ARN.",
        "Objects are `arn:aws:s3:::<bucket>/orders/*` (the bucket's own ARN, without /..., is for bucket actions "
        "such as ListBucket); the queue is the queue_arn you are given. Build the ARNs from the arguments.",
        "No `*` in actions or resources, no NotAction, and `orders/*` with its slash (`orders*` also matches "
        "orders-archive/): return {'Version': '2012-10-17', 'Statement': [{...S3...}, {...SQS...}]}. The check "
        "attaches it to a fresh user of a fresh bucket and queue and makes real calls with its key.",
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
    stmts = parsed["Statement"] if isinstance(parsed["Statement"], list) else [parsed["Statement"]]
    if any(isinstance(st, dict) and st.get("Condition") for st in stmts):
        r.expect(
            True,
            "(not tested here) your Condition: moto treats every condition as met, so the calls below ran as if it "
            "held; AWS evaluates it. Test a condition in a sandbox account",
            "",
        )
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
        f"denied: all {len(outside)} calls outside the service's job (other bucket, other prefixes, deletes, IAM ...)",
        f"allowed although the service never needs it: {', '.join(leaks)}",
    )
    e.delete_user(user)


def probe(e: iam.EnforcingIAM, creds: iam.Creds, bucket: str, other: str, q: str, q_other: str):
    """Real calls with ``creds``: the three the orders service needs, and nine it never needs.
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
        "s3:GetObject in orders-archive/": iam.try_call(us3.get_object, Bucket=bucket, Key="orders-archive/2019.json"),
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
    """Two buckets (each with orders/seed.json, orders/old.json, orders-archive/2019.json and admin/config.json)
    and two queues in the enforcing emulator, made by its administrator (again: safe, a cell can run twice);
    returns (queue url, other queue url, queue ARN)."""
    s3, sqs = e.client("s3"), e.client("sqs")
    for b in (bucket, other):
        try:
            s3.create_bucket(Bucket=b)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
        for key in ("orders/seed.json", "orders/old.json", "orders-archive/2019.json", "admin/config.json"):
            s3.put_object(Bucket=b, Key=key, Body=b"{}")
    q = sqs.create_queue(QueueName=queue)["QueueUrl"]
    q_other = sqs.create_queue(QueueName=other_queue)["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return q, q_other, qarn
