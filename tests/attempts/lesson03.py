"""Lesson 03: a plausible wrong answer per task, run before the solution in the same kernel."""

ATTEMPTS = {
    # Each hour's worst 10 minutes (Maximum) instead of its average: the web server's short spikes look busy.
    "03.1": """
cw = cloudlab.client("cloudwatch", region_name=region)
end = dt.datetime.now(dt.UTC)
series = {}
for namespace, metric in (("AWS/EC2", "CPUUtilization"), ("CWAgent", "mem_used_percent")):
    resp = cw.get_metric_statistics(
        Namespace=namespace, MetricName=metric, Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
        StartTime=end - dt.timedelta(hours=48), EndTime=end, Period=3600, Statistics=["Maximum"])
    series[metric] = [p["Maximum"] for p in resp["Datapoints"]]
cpu_p95 = stats.percentile(series["CPUUtilization"], 95)
mem_p95 = stats.percentile(series["mem_used_percent"], 95)
return cost.recommend_size(instance_type, cpu_p95, mem_p95, PRICES, region).recommended
""",
    # The rule is right, but put_bucket_lifecycle_configuration replaces every rule the bucket had.
    "03.2": """
s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
    "ID": "logs-age-out", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
    "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
    "Expiration": {"Days": 365}}]})
""",
    # A name that contains the prefix counts, and the real run is the default.
    "03.3": """
volumes = ec2.describe_volumes(Filters=[{"Name": "status", "Values": ["available"]}])["Volumes"]
names = {v["VolumeId"]: {t["Key"]: t["Value"] for t in v.get("Tags", [])}.get("Name", "") for v in volumes}
unattached = [vid for vid, name in names.items() if prefix in name]
if not dry_run:
    for volume_id in unattached:
        ec2.delete_volume(VolumeId=volume_id)
return unattached
""",
    # The pager wired without the queue policy real AWS needs (LocalStack delivers anyway), and the alarm
    # average over the period.
    "03.4": (
        """
sns, sqs = cloudlab.client("sns"), cloudlab.client("sqs")
topic_arn = sns.create_topic(Name=name)["TopicArn"]
queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
return topic_arn, queue_url
""",
        """
cloudlab.client("cloudwatch").put_metric_alarm(
    AlarmName=name, Namespace="L03/Billing", MetricName="EstimatedCharges",
    Dimensions=[{"Name": "Currency", "Value": "USD"}], Statistic="Average", Period=10, EvaluationPeriods=1,
    Threshold=float(threshold), ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic_arn])
""",
    ),
    # 80 as a dollar amount (ABSOLUTE_VALUE), not 80 % of the limit.
    "03.5": """
def alert(kind, amount):
    return {"Notification": {"NotificationType": kind, "ComparisonOperator": "GREATER_THAN",
                             "Threshold": amount, "ThresholdType": "ABSOLUTE_VALUE"},
            "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "finops@example.com"}]}
cloudlab.client("budgets").create_budget(
    AccountId=lesson03.account_id(),
    Budget={"BudgetName": name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
            "BudgetLimit": {"Amount": str(limit_usd), "Unit": "USD"}},
    NotificationsWithSubscribers=[alert("ACTUAL", 80), alert("FORECASTED", 100)])
""",
}
