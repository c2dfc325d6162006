"""Three adapters for the port (:mod:`.port`): AWS (S3 + SQS), Google Cloud (Cloud Storage + Pub/Sub),
Azure (Blob + Queue storage). Each is plain SDK code: boto3, google-cloud-*, azure-storage-*; clients come from
the guards (:func:`cloudlab.client`, :mod:`.guard`), which read the providers' standard variables (lesson 11).

``ensure()`` creates what the adapter needs (bucket, queue, topic + subscription); ``drop()`` deletes it.
"""

from __future__ import annotations

from .port import AlreadyExists, Message


# ============================================================================ AWS
class S3Store:
    cloud = "aws"

    def __init__(self, bucket: str, s3=None):
        from .. import aws

        self.bucket = bucket
        self.s3 = s3 or aws.client("s3")

    def ensure(self):
        try:
            self.s3.create_bucket(Bucket=self.bucket)
        except self.s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        return self

    def put(self, key, data, if_absent=False):
        extra = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            return self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)["ETag"]
        except self.s3.exceptions.ClientError as e:
            if e.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise AlreadyExists(key) from None
            raise

    def get(self, key):
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def list(self, prefix=""):
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def delete(self, key):
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def drop(self):
        from ..cleanup import empty_and_delete_bucket

        empty_and_delete_bucket(self.s3, self.bucket)


class SqsQueue:
    cloud = "aws"

    def __init__(self, name: str, sqs=None):
        from .. import aws

        self.name = name
        self.sqs = sqs or aws.client("sqs")
        self.url = None

    def ensure(self):
        self.url = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
        return self

    def _url(self):
        if self.url is None:
            self.url = self.sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
        return self.url

    def send(self, body):
        return self.sqs.send_message(QueueUrl=self._url(), MessageBody=body)["MessageId"]

    def receive(self, max_messages=1, lease_seconds=30):
        got = self.sqs.receive_message(
            QueueUrl=self._url(),
            MaxNumberOfMessages=min(max_messages, 10),
            VisibilityTimeout=lease_seconds,
            WaitTimeSeconds=1,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        return [
            Message(m["MessageId"], m["Body"], m["ReceiptHandle"], int(m["Attributes"]["ApproximateReceiveCount"]), m)
            for m in got
        ]

    def ack(self, message):
        self.sqs.delete_message(QueueUrl=self._url(), ReceiptHandle=message.receipt)

    def release(self, message):
        self.sqs.change_message_visibility(QueueUrl=self._url(), ReceiptHandle=message.receipt, VisibilityTimeout=0)

    def drop(self):
        try:
            self.sqs.delete_queue(QueueUrl=self._url())
        except self.sqs.exceptions.QueueDoesNotExist:
            pass


# ============================================================================ Google Cloud
class GcsStore:
    cloud = "gcp"

    def __init__(self, bucket: str, client=None):
        from . import guard

        self.client = client or guard.storage_client()
        self.bucket = self.client.bucket(bucket)

    def ensure(self):
        from google.api_core.exceptions import Conflict

        try:
            self.client.create_bucket(self.bucket.name)
        except Conflict:
            pass
        return self

    def put(self, key, data, if_absent=False):
        from google.api_core.exceptions import PreconditionFailed

        blob = self.bucket.blob(key)
        try:  # generation 0 means "no live object": the write succeeds only if the key is new
            blob.upload_from_string(data, if_generation_match=0 if if_absent else None)
        except PreconditionFailed:
            raise AlreadyExists(key) from None
        return str(blob.generation)

    def get(self, key):
        blob = self.bucket.get_blob(key)
        return None if blob is None else blob.download_as_bytes()

    def list(self, prefix=""):
        return sorted(b.name for b in self.client.list_blobs(self.bucket.name, prefix=prefix))

    def delete(self, key):
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(key).delete()
        except NotFound:
            pass

    def drop(self):
        from google.api_core.exceptions import NotFound

        try:
            for b in self.client.list_blobs(self.bucket.name):
                b.delete()
            self.bucket.delete()
        except NotFound:
            pass


class PubSubQueue:
    """A topic and its pull subscription. A dead-letter policy makes Pub/Sub count deliveries (``attempts``)."""

    cloud = "gcp"
    MAX_DELIVERIES = 5

    def __init__(self, name: str, publisher=None, subscriber=None):
        from . import guard

        self.pub = publisher or guard.publisher()
        self.sub = subscriber or guard.subscriber()
        project = guard.project()
        self.topic = self.pub.topic_path(project, name)
        self.dead = self.pub.topic_path(project, f"{name}-dead")
        self.subscription = self.sub.subscription_path(project, f"{name}-sub")

    def ensure(self):
        from google.api_core.exceptions import AlreadyExists as Exists

        for t in (self.topic, self.dead):
            try:
                self.pub.create_topic(name=t)
            except Exists:
                pass
        try:
            self.sub.create_subscription(
                request={
                    "name": self.subscription,
                    "topic": self.topic,
                    "ack_deadline_seconds": 10,
                    "dead_letter_policy": {
                        "dead_letter_topic": self.dead,
                        "max_delivery_attempts": self.MAX_DELIVERIES,
                    },
                }
            )
        except Exists:
            pass
        return self

    def send(self, body):
        return self.pub.publish(self.topic, body.encode()).result(timeout=30)

    def receive(self, max_messages=1, lease_seconds=30):
        from google.api_core.exceptions import DeadlineExceeded

        try:  # a pull waits while nothing is there (long polling): give up after ~1 s, like SQS's WaitTimeSeconds=1
            got = self.sub.pull(
                subscription=self.subscription, max_messages=max_messages, timeout=1.0
            ).received_messages
        except DeadlineExceeded:
            got = []
        if got and lease_seconds != 10:  # the subscription's deadline is 10 s; set this delivery's lease
            self.sub.modify_ack_deadline(
                subscription=self.subscription, ack_ids=[m.ack_id for m in got], ack_deadline_seconds=lease_seconds
            )
        return [Message(m.message.message_id, m.message.data.decode(), m.ack_id, m.delivery_attempt, m) for m in got]

    def ack(self, message):
        self.sub.acknowledge(subscription=self.subscription, ack_ids=[message.receipt])

    def release(self, message):
        self.sub.modify_ack_deadline(subscription=self.subscription, ack_ids=[message.receipt], ack_deadline_seconds=0)

    def drop(self):
        from google.api_core.exceptions import NotFound

        for f, arg in ((self.sub.delete_subscription, "subscription"),):
            try:
                f(**{arg: self.subscription})
            except NotFound:
                pass
        for t in (self.topic, self.dead):
            try:
                self.pub.delete_topic(topic=t)
            except NotFound:
                pass


# ============================================================================ Azure
class BlobStore:
    cloud = "azure"

    def __init__(self, container: str, service=None):
        from . import guard

        self.service = service or guard.blob_service()
        self.container = self.service.get_container_client(container)

    def ensure(self):
        from azure.core.exceptions import ResourceExistsError

        try:
            self.container.create_container()
        except ResourceExistsError:
            pass
        return self

    def put(self, key, data, if_absent=False):
        from azure.core.exceptions import ResourceExistsError

        try:  # overwrite=False sends If-None-Match: * (create only)
            return self.container.get_blob_client(key).upload_blob(data, overwrite=not if_absent)["etag"]
        except ResourceExistsError:
            raise AlreadyExists(key) from None

    def get(self, key):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(key).readall()
        except ResourceNotFoundError:
            return None

    def list(self, prefix=""):
        return sorted(b.name for b in self.container.list_blobs(name_starts_with=prefix or None))

    def delete(self, key):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError:
            pass

    def drop(self):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_container()
        except ResourceNotFoundError:
            pass


class AzureQueue:
    cloud = "azure"

    def __init__(self, name: str, service=None):
        from . import guard

        self.service = service or guard.queue_service()
        self.queue = self.service.get_queue_client(name)

    def ensure(self):
        from azure.core.exceptions import ResourceExistsError

        try:
            self.queue.create_queue()
        except ResourceExistsError:
            pass
        return self

    def send(self, body):
        return self.queue.send_message(body).id

    def receive(self, max_messages=1, lease_seconds=30):
        got = self.queue.receive_messages(
            messages_per_page=max_messages, visibility_timeout=lease_seconds, max_messages=max_messages
        )
        return [Message(m.id, m.content, m.pop_receipt, m.dequeue_count, m) for m in got]

    def ack(self, message):
        self.queue.delete_message(message.id, message.receipt)

    def release(self, message):
        self.queue.update_message(message.id, message.receipt, visibility_timeout=0)

    def drop(self):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.queue.delete_queue()
        except ResourceNotFoundError:
            pass


STORES = {"aws": S3Store, "gcp": GcsStore, "azure": BlobStore}
QUEUES = {"aws": SqsQueue, "gcp": PubSubQueue, "azure": AzureQueue}
CLOUDS = {"aws": "AWS (LocalStack)", "gcp": "Google Cloud (emulators)", "azure": "Azure (Azurite)"}
