"""Lesson 12's small HTTP API: a customer's profile, behind API Gateway (payload format 2.0).

Routes: PUT /customers/{customer} stores {"name": ..., "email": ...}; GET /customers/{customer} reads it.
One DynamoDB table holds every kind of item (single-table design): the profile is pk=CUSTOMER#<id>, sk=PROFILE,
next to the customer's orders (sk=ORDER#<id>), so one Query reads a customer and everything they own.
"""

import json
import os

import boto3

TABLE = os.environ["ORDERS_TABLE"]
ddb = boto3.client("dynamodb")  # made once per execution environment (INIT), reused by every invoke


def respond(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def handler(event, context):
    customer = event["pathParameters"]["customer"]
    key = {"pk": {"S": f"CUSTOMER#{customer}"}, "sk": {"S": "PROFILE"}}
    if event["routeKey"].startswith("GET "):
        item = ddb.get_item(TableName=TABLE, Key=key).get("Item")
        if item is None:
            return respond(404, {"error": f"no customer {customer}"})
        return respond(200, {"customer": customer, "name": item["name"]["S"], "email": item["email"]["S"]})
    try:
        profile = json.loads(event.get("body") or "")
        name, email = profile["name"], profile["email"]
    except (ValueError, TypeError, KeyError):
        return respond(400, {"error": "send JSON with name and email"})
    if not isinstance(name, str) or not isinstance(email, str) or "@" not in email:
        return respond(400, {"error": "name and email must be strings, email with an @"})
    ddb.put_item(TableName=TABLE, Item={**key, "name": {"S": name}, "email": {"S": email}})
    return respond(200, {"customer": customer, "name": name, "email": email})
