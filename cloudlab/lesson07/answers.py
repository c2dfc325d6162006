"""What lesson 07's task cells do after the learner's answer: one line when the answer breaks it, and a clean slate
before a task runs again.

A task cell defines the learner's functions and then uses them (stores the payments login, launches the service,
rotates the secret, renders the manifests). When a wrong answer makes that follow-up code fail, the learner should
read one line saying what their answer did and that the check below explains it, not a boto3 or psycopg traceback
(:func:`after_answer`). A blank answer (``NotImplementedError``) passes through unchanged. And because a learner
always re-runs a corrected cell, :func:`forget_store_attempt` removes what an earlier run of task 3 created.
"""

from __future__ import annotations

import contextlib

from .. import aws


class AnswerError(RuntimeError):
    """The learner's answer made the task cell's own follow-up code fail; the message says what and where to look."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mAnswerError\x1b[0m: {self}"]


def first_line(err: BaseException, limit: int = 220) -> str:
    """``Type: first line of the message`` (botocore's ClientError already names its code and operation)."""
    text = str(err).strip().splitlines()
    said = text[0] if text else ""
    said = said if len(said) <= limit else said[: limit - 3] + "..."
    return f"{type(err).__name__}: {said}" if said else type(err).__name__


@contextlib.contextmanager
def after_answer(what: str, check: str):
    """Run the task cell's follow-up code; an exception caused by the answer becomes one :class:`AnswerError` line.

    ``what``: what the code was doing ("storing the payments login with your functions"); ``check``: the check
    id that explains it. ``NotImplementedError`` (a blank task), ``KeyboardInterrupt`` and course errors that already
    render as one line (``_render_traceback_``) pass through unchanged.
    """
    try:
        yield
    except NotImplementedError:
        raise
    except AnswerError:
        raise
    except Exception as err:  # noqa: BLE001  (whatever the answer made fail, said in one line)
        if hasattr(err, "_render_traceback_"):
            raise
        raise AnswerError(
            f"{what} failed with your answer: {first_line(err)}. "
            f"Run the check below (check {check}): it says what is missing."
        ) from None


def forget_store_attempt(alias: str, secret: str, parameter: str) -> list[str]:
    """Remove what an earlier run of the store task made, so the cell can run again with another answer: the alias
    (its key is scheduled for deletion, 7 days, as on AWS), the secret (deleted without a recovery window) and the
    parameter. Returns what was removed (names), so the cell can say so."""
    removed = []
    kms = aws.client("kms")
    for page in kms.get_paginator("list_aliases").paginate():
        for a in page["Aliases"]:
            if a["AliasName"] == alias:
                kms.delete_alias(AliasName=alias)
                if a.get("TargetKeyId"):
                    with contextlib.suppress(kms.exceptions.KMSInvalidStateException):
                        kms.schedule_key_deletion(KeyId=a["TargetKeyId"], PendingWindowInDays=7)
                removed.append(alias)
    sm = aws.client("secretsmanager")
    try:
        # first ask: LocalStack's DeleteSecret also "succeeds" for a secret that is not there
        sm.describe_secret(SecretId=secret)
        sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
        removed.append(secret)
    except sm.exceptions.ResourceNotFoundException:
        pass
    ssm = aws.client("ssm")
    try:
        ssm.delete_parameter(Name=parameter)
        removed.append(parameter)
    except ssm.exceptions.ParameterNotFound:
        pass
    return removed
