"""The order archiver: one piece of work, two function shapes (lesson 11).

`archive(order, put)` is the work and knows no cloud. Each cloud calls a function its own way:

* Google Cloud (Cloud Run functions, run here by functions-framework): a CloudEvent whose data holds the Pub/Sub
  message, its payload base64-encoded; the object goes to Cloud Storage.
* AWS Lambda, triggered by SQS: ``handler(event, context)`` with a batch of ``Records``, each body a string;
  the object goes to S3. Lesson 12 runs this shape in the Lambda runtime emulator.

Deploy on Google Cloud (for comparison; here `cloudlab.multicloud.functions.deploy` runs functions-framework):
    gcloud functions deploy archive-orders --gen2 --runtime=python312 --entry-point=archive_order \
        --trigger-topic=orders --set-env-vars=ARCHIVE_BUCKET=my-archive --source=.
"""

import base64
import json
import os


def archive(order: dict, put) -> str:
    """The work, cloud-free: validate the order, store it under archive/<id>.json through ``put(key, bytes)``."""
    if not isinstance(order, dict) or not order.get("id"):
        raise ValueError(f"not an order: {order!r}")
    key = f"archive/{order['id']}.json"
    put(key, json.dumps(order, sort_keys=True).encode())
    return key


# ---------------------------------------------------------------- Google Cloud: a CloudEvent from Pub/Sub
try:
    import functions_framework
except ImportError:  # the kernel imports this file to show it; the function's own environment has the framework
    functions_framework = None


def _gcs_put(key: str, data: bytes) -> None:
    from google.cloud import storage  # STORAGE_EMULATOR_HOST routes it to the emulator

    storage.Client().bucket(os.environ["ARCHIVE_BUCKET"]).blob(key).upload_from_string(data)


def archive_order(cloud_event):
    order = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
    key = archive(order, _gcs_put)
    print(json.dumps({"event": "archived", "key": key, "id": cloud_event["id"]}), flush=True)


if functions_framework is not None:
    archive_order = functions_framework.cloud_event(archive_order)


# ---------------------------------------------------------------- AWS Lambda: an SQS batch
def handler(event, context, s3=None):
    import boto3

    s3 = s3 or boto3.client("s3")
    bucket = os.environ["ARCHIVE_BUCKET"]
    failures = []
    for record in event["Records"]:
        try:
            archive(json.loads(record["body"]), lambda k, d: s3.put_object(Bucket=bucket, Key=k, Body=d))
        except Exception:  # noqa: BLE001 - report this record as failed; SQS redelivers only those
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
