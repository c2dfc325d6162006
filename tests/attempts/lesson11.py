"""Lesson 11: one plausible wrong attempt per check, run in the retry notebook between the blank task and the
solution (see the brief's "Retry attempts"). A task whose cell holds several solution blocks gets a tuple, one
string per block, in order."""

ATTEMPTS = {
    # 11.1: lists by substring: "archive/2026/orders/x" shows up under the prefix "orders/"
    "11.1": (
        "self.client = storage.Client()\nself.bucket = self.client.bucket(bucket)",
        "blob = self.bucket.blob(key)\n"
        "try:\n"
        "    blob.upload_from_string(data, if_generation_match=0 if if_absent else None)\n"
        "except PreconditionFailed:\n"
        "    raise AlreadyExists(key) from None\n"
        "return str(blob.generation)",
        "blob = self.bucket.get_blob(key)\nreturn None if blob is None else blob.download_as_bytes()",
        "return sorted(b.name for b in self.client.list_blobs(self.bucket.name) if prefix in b.name)",
        "try:\n    self.bucket.blob(key).delete()\nexcept NotFound:\n    pass",
    ),
    # 11.2: ignores the lease (Azure's default visibility timeout of 30 s applies)
    "11.2": (
        'self.queue = QueueClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"], name)',
        "return self.queue.send_message(body).id",
        "got = self.queue.receive_messages(max_messages=max_messages, messages_per_page=max_messages)\n"
        "return [Message(m.id, m.content, m.pop_receipt, m.dequeue_count) for m in got]",
        "self.queue.delete_message(message.id, message.receipt)",
        "self.queue.update_message(message.id, message.receipt, visibility_timeout=0)",
    ),
    # 11.3: claims the MESSAGE id: a publisher's retry (a new message, the same order) is charged twice
    "11.3": (
        "order = json.loads(message.body)\n"
        'claim = db.collection("l11-charged").document(message.id)\n'
        "try:\n"
        '    claim.create({"status": "charging", "expires": clock() + lease_s})\n'
        "except FirestoreConflict:\n"
        '    return "duplicate" if claim.get().get("status") == "charged" else "in-progress"\n'
        "charge(order)\n"
        'claim.update({"status": "charged"})\n'
        'return "charged"'
    ),
    # 11.4: the bucket written into the function (the check deploys it again with another ARCHIVE_BUCKET);
    # the subscription itself is right
    "11.4": (
        'order = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))\n'
        'bucket = storage.Client().bucket("l11-ex-archive")\n'
        "bucket.blob(f\"archive/{order['id']}.json\").upload_from_string(json.dumps(order))",
        'push = subscriber.subscription_path(guard.project(), "l11-ex-archive-push")\n'
        "try:\n"
        "    subscriber.delete_subscription(subscription=push)\n"
        "except NotFound:\n"
        "    pass\n"
        "subscriber.create_subscription(\n"
        '    request={"name": push, "topic": topic, "push_config": {"push_endpoint": fn.url}}\n'
        ")",
    ),
    # 11.5: the whole volume at the first tier's price (no tiers)
    "11.5": "return round(max(0, gb - free_gb) * tiers[0].usd_per_gb, 2)",
}
