"""cloudlab.answers: a learner's answer that fails in the task cell's own code says so in one line."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from cloudlab import answers


def _client_error():
    error = {"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}}
    return ClientError(error, "PutObject")


def test_a_boto3_error_becomes_one_line_with_the_code_and_the_pointer():
    def save(bucket):
        raise _client_error()

    with pytest.raises(answers.AnswerFailed) as e:
        answers.call("save(bucket)", save, "b")
    msg = str(e.value)
    assert msg.startswith("save(bucket) raised ClientError (NoSuchBucket in PutObject): The specified bucket")
    assert msg.endswith(answers.POINTER)
    assert e.value._render_traceback_() == [f"\x1b[31mAnswerFailed\x1b[0m: {msg}"]
    assert answers.call("ok", lambda x: x + 1, 1) == 2


def test_the_learner_line_is_named_when_the_error_comes_from_a_notebook_cell():
    code = compile("def f():\n    x = 1\n    return 1 / 0\n", "/tmp/ipykernel_123/456.py", "exec")
    ns: dict = {}
    exec(code, ns)
    with pytest.raises(answers.AnswerFailed, match=r"ZeroDivisionError: division by zero \(your line 3"):
        answers.call("f()", ns["f"])


@pytest.mark.parametrize(
    "exc",
    [NotImplementedError(), EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), answers.AnswerFailed("x")],
)
def test_the_blank_answer_a_course_error_and_a_lab_that_is_down_pass_through(exc):
    def fn():
        raise exc

    with pytest.raises(type(exc)):
        answers.call("fn()", fn)
    with pytest.raises(type(exc)), answers.after("reading"):
        fn()


def test_after_explains_what_the_course_code_could_not_read():
    with pytest.raises(answers.AnswerFailed, match="reading the alarm failed: IndexError: list index out of range"):
        with answers.after("reading the alarm"):
            [][0]
