"""A Cloud Function on this machine: Google's functions-framework, pushed to by the Pub/Sub emulator (lesson 11).

:func:`deploy` does locally what ``gcloud functions deploy`` does: it takes the source file, puts it in a folder of
its own with its ``requirements.txt``, and serves ``--target`` with functions-framework on 127.0.0.1 (a lesson
process ``l11-...``), in the function's own environment (``pins/functions-lock.txt``). :func:`push_to` makes the
Pub/Sub push subscription that triggers it. :func:`sqs_event` builds the event Lambda's SQS trigger hands a
handler, from real SQS messages, for the same work in Lambda's shape.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import procs
from ..lab import tools
from . import emulators, guard

LESSON_FUNCTION = Path(__file__).resolve().parent.parent.parent / "lessons" / "11_multi-cloud" / "function"


@dataclass
class Function:
    name: str
    url: str
    command: str
    source: Path
    bucket: str

    def logs(self, wait_for: str = "", timeout: float = 5.0) -> str:
        """The function's log (the last 3000 characters); with ``wait_for``, wait until it shows up."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                text = procs.log_path(self.name).read_text(errors="replace")
            except OSError:
                text = ""
            if wait_for in text or time.monotonic() > deadline:
                return text[-3000:]
            time.sleep(0.1)

    def events(self, wait_for: str = "archived") -> list[dict]:
        """The JSON lines the function logged (one per event), after ``wait_for`` appears."""
        out = []
        for line in self.logs(wait_for).splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return [e for e in out if isinstance(e, dict)]


class DeployFailed(RuntimeError):
    def _render_traceback_(self):
        return [f"\x1b[31mDeployFailed\x1b[0m: {self}"]


def deploy(
    source,
    target: str = "archive_order",
    bucket: str = "l11-archive",
    name: str = "l11-function",
    port: int | None = None,
) -> Function:
    """Serve ``target`` from the file ``source`` with functions-framework; wait until it answers."""
    src = Path(source)
    if not src.is_file():
        raise DeployFailed(f"{src} does not exist: write the function's file first (the cell with %%writefile)")
    exe = tools.require("functions-framework", "11")
    folder = emulators.work_dir() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(src, folder / "main.py")
    shutil.copy(LESSON_FUNCTION / "requirements.txt", folder / "requirements.txt")
    port = port or emulators.lab().port("function")
    cmd = [exe, "--target", target, "--source", "main.py", "--signature-type", "cloudevent"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    env = {k: v for k, v in emulators.env().items() if k != guard.AZURE_VAR}
    env.update({k: v for k, v in os.environ.items() if k in guard.GCP_VARS.values()})
    env.update(ARCHIVE_BUCKET=bucket, PYTHONUNBUFFERED="1")
    url = f"http://127.0.0.1:{port}"
    try:
        procs.start(name, cmd, env=env, python=False, cwd=str(folder), ready_url=url, timeout=30)
    except RuntimeError as e:
        raise DeployFailed(f"functions-framework did not start the function {target!r}:\n{str(e)[-1500:]}") from None
    shown = ["functions-framework"] + cmd[1:]
    return Function(name, url, shlex.join(shown), folder / "main.py", bucket)


def push_to(function_url: str, topic: str, subscription: str, publisher=None, subscriber=None) -> str:
    """A Pub/Sub push subscription on ``topic`` that POSTs each message to the function (made fresh)."""
    from google.api_core.exceptions import AlreadyExists, NotFound

    pub = publisher or guard.publisher()
    sub = subscriber or guard.subscriber()
    project = guard.project()
    topic_path = pub.topic_path(project, topic)
    sub_path = sub.subscription_path(project, subscription)
    try:
        pub.create_topic(name=topic_path)
    except AlreadyExists:
        pass
    try:
        sub.delete_subscription(subscription=sub_path)
    except NotFound:
        pass
    sub.create_subscription(
        request={
            "name": sub_path,
            "topic": topic_path,
            "push_config": {"push_endpoint": f"{function_url}/{topic_path}"},
            "ack_deadline_seconds": 10,
        }
    )
    return sub_path


def wait_for_object(store, key: str, timeout: float = 10.0) -> bytes | None:
    """Poll ``store`` (an ObjectStore) until ``key`` exists: the function's output, or None."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = store.get(key)
        if data is not None:
            return data
        time.sleep(0.1)
    return None


def sqs_event(sqs, queue_url: str, max_messages: int = 10) -> dict:
    """The event Lambda's SQS trigger passes a handler: real messages from ``queue_url``, in Lambda's shape."""
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=1)
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{queue_url.rsplit('/', 1)[-1]}",
        }
        for m in got.get("Messages", [])
    ]
    return {"Records": records}


def line_counts(path: Path = LESSON_FUNCTION / "main.py") -> dict[str, int]:
    """Lines of each top-level function in the file (the portable work vs each cloud's shell)."""
    tree = ast.parse(path.read_text())
    return {
        node.name: node.end_lineno - node.lineno + 1
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
