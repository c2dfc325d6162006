"""IAM you can test: an emulator that really denies, and policies read the way AWS reads them.

LocalStack's community edition stores IAM policies but never enforces them. moto does, when its
server starts with ``INITIAL_NO_AUTH_ACTION_COUNT``: after that many unauthenticated calls, every
request must be signed by a key of one of *its* IAM users and is allowed only if that user's
policies allow the action (and, for S3, SQS, IAM and STS, the resource). This toolkit starts such a
moto for a lesson (``enforcing``), and parses, checks and summarises policy documents (``policy``).

What moto's evaluator does not model (say so wherever it matters): conditions in identity and
bucket policies are treated as met; for services other than S3, SQS, IAM and STS the resource is
``*`` (so a statement scoped to a secret's or key's ARN never matches); resource policies can only
deny (a bucket policy ``Allow`` grants nothing by itself); no permission boundaries, SCPs, session
policies, policy variables or KMS key policies. Serves lesson 07 (and 08's pipeline identities).
"""

from .enforcing import (  # noqa: F401
    Creds,
    EnforcingIAM,
    Outcome,
    running,
    start,
    try_call,
)
from .policy import (  # noqa: F401
    PolicyError,
    actions,
    broad_statements,
    parse,
    statements,
)
