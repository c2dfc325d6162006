"""Lesson 09: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # Exponential backoff with a cap, but no jitter: every caller comes back at the same moment.
    "09.1": """
for n in range(1, attempts + 1):
    try:
        return fn()
    except Exception as e:
        if n == attempts or not is_retryable(e):
            raise
        sleep(min(cap, base * 2 ** (n - 1)))
""",
    # A success never resets the count of failures: three failures spread over a day open the breaker.
    "09.2": (
        """
self.fail_max, self.reset_timeout, self.clock = fail_max, reset_timeout, clock
self._state, self.failures, self.opened_at = "closed", 0, 0.0
""",
        """
if self._state == "open" and self.clock() - self.opened_at >= self.reset_timeout:
    self._state = "half-open"
return self._state
""",
        """
if self.state == "open":
    raise CircuitOpen("the circuit is open")
try:
    result = fn()
except Exception:
    self.failures += 1
    if self._state == "half-open" or self.failures >= self.fail_max:
        self._state, self.opened_at = "open", self.clock()
    raise
self._state = "closed"
return result
""",
    ),
    # The first version of this task (issue 20): the MessageId claimed, released only on an exception. A worker
    # killed between the claim and the work leaves a claim nobody may take over: at most once.
    "09.3": """
key = {"pk": {"S": message["MessageId"]}}
try:
    ddb.put_item(TableName=table, Item=key, ConditionExpression="attribute_not_exists(pk)")
except ddb.exceptions.ConditionalCheckFailedException:
    return "duplicate"
try:
    handler()
except Exception:
    ddb.delete_item(TableName=table, Key=key)
    raise
return "processed"
""",
    # Both queues with SQS's defaults for retention, and a poison message moved only after 5 receives.
    "09.4": """
dlq_url = sqs.create_queue(QueueName="l09-ex-jobs-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sqs.create_queue(QueueName="l09-ex-jobs", Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})
""",
    # "The version before the damage" instead of the backed-up one (wrong after two overwrites), and every key
    # copied back, damaged or not.
    "09.5": (
        """
return {v["Key"]: v["VersionId"] for v in s3.list_object_versions(Bucket=bucket).get("Versions", []) if v["IsLatest"]}
""",
        """
restored = []
for key in sorted(backup):
    versions = [v for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []) if v["Key"] == key]
    older = versions[1] if len(versions) > 1 else versions[0]
    s3.copy_object(Bucket=bucket, Key=key, MetadataDirective="REPLACE",
                   CopySource={"Bucket": bucket, "Key": key, "VersionId": older["VersionId"]})
    restored.append(key)
return restored
""",
    ),
    # A hypothesis that probes only the load balancer's health, and a rollback that only prints: the fault heals
    # by itself, so the run looks fine once.
    "09.6": """
fault = "partition" if netns.available()[0] else "freeze"
EXPERIMENT = {
    "version": "1.0.0",
    "title": "Zone c is cut off",
    "description": "Cut zone c for 3 s.",
    "configuration": {"lb_url": "http://127.0.0.1:8080"},
    "steady-state-hypothesis": {
        "title": "The service answers",
        "probes": [{"type": "probe", "name": "load-balancer-answers", "tolerance": 200,
                    "provider": {"type": "http", "url": "${lb_url}/health", "timeout": 3}}],
    },
    "method": [
        {"type": "action", "name": f"{fault}-zone-c", "pauses": {"after": 4},
         "provider": {"type": "process", "path": "python", "timeout": 10,
                      "arguments": ["-m", "cloudlab.reliability.faults", fault, "l09-web-c", "--for", "3"]}},
    ],
    "rollbacks": [
        {"type": "action", "name": "log-the-rollback",
         "provider": {"type": "process", "path": "python", "arguments": ["-c", "print('rolled back')"]}},
    ],
}
""",
}
