"""Lesson 12's checks of the HTTP API (12.1 orders, 12.2 pages): they deploy the learner's file as a function,
invoke it through the Runtime Interface Emulator with API Gateway proxy events for customers and orders the
notebook never used, and read the DynamoDB table behind it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from .. import aws
from ..checks import check
from ..serverless import apigw
from . import setup

API_FILE, LIST_FILE = "l12_orders_api.py", "l12_orders_list.py"
CREATE, GET, LIST = (
    "POST /customers/{customer}/orders",
    "GET /customers/{customer}/orders/{order_id}",
    "GET /customers/{customer}/orders",
)


def learner_file(r, name: str) -> Path:
    path = Path.cwd() / name
    r.require(
        path.exists(),
        f"{name} exists",
        f"{name} does not exist in {Path.cwd().name}/: run the task cell above (its first line writes the file)",
    )
    return path


class Probe:
    """The learner's function behind API Gateway, as the check calls it (every request recorded)."""

    def __init__(self, r, name: str, source: Path, handler: str, table: str):
        self.r = r
        self.fn = setup.deploy(name, source, handler, timeout=10, env={"ORDERS_TABLE": table})
        self.seen: list[str] = []

    def call(self, method: str, path: str, route: str, params: dict, body=None, query=None) -> apigw.HttpResponse:
        event = apigw.proxy_event(method, path, body, None, query, params, route)
        inv = self.fn.invoke(event)
        shown = f"{method} {path}" + (f"?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else "")
        if inv.error_type == "NotImplementedError" or "NotImplementedError" in inv.error_message:
            self.r.fail("the handler still raises NotImplementedError: replace the TODO with your code")
        if inv.error_type in ("Runtime.ImportModuleError", "Runtime.HandlerNotFound", "Runtime.UserCodeSyntaxError"):
            self.r.fail(f"the function could not start: {inv.error_type}: {inv.error_message[:200]}")
        resp = apigw.to_http(inv.payload, "2.0", function_error=not inv.ok)
        if not inv.ok:
            resp.problem = f"the function failed: {inv.error_type}: {inv.error_message[:160]}"
        self.seen.append(f"{shown} -> {resp.status}")
        return resp

    def stop(self):
        self.fn.stop()


def _said(resp: apigw.HttpResponse) -> str:
    return f"{resp.status} {resp.body[:100]}" + (f" ({resp.problem})" if resp.problem else "")


def _items(ddb, table: str, customer: str) -> list[dict]:
    got = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"CUSTOMER#{customer}"}},
    )
    return got.get("Items", [])


# ======================================================================= 12.1 create and read an order
@check(
    "12.1",
    "The orders API answers proxy events with the right status codes and never overwrites an order",
    hints=[
        "Read `event['routeKey']`, `event['pathParameters']` and `event['body']` (a string: json.loads it inside a "
        "try). Return {'statusCode': 201, 'headers': {'content-type': 'application/json'}, 'body': json.dumps(...)}.",
        "Create with put_item(..., ConditionExpression='attribute_not_exists(pk)') and turn "
        "ConditionalCheckFailedException into 409. Keys: pk='CUSTOMER#'+customer, sk='ORDER#'+order_id; total as "
        "{'N': str(total)}.",
        "Validate before writing: the body must be JSON with a non-empty string order_id and a number total > 0 "
        "(not a bool), else 400. GET: get_item with both keys; no 'Item' in the answer -> 404.",
    ],
)
def check_orders_api(r, ns):
    src = learner_file(r, API_FILE)
    ddb = aws.client("dynamodb")
    table = setup.create_table(ddb, setup.fresh("l12-chk-orders"))
    cust, other = f"c-{uuid.uuid4().hex[:6]}", f"c-{uuid.uuid4().hex[:6]}"
    oid = f"o-{uuid.uuid4().hex[:8]}"
    total = round(17 + uuid.uuid4().int % 5000 / 100, 2)
    api = Probe(r, "l12-chk-api", src, "l12_orders_api.handler", table)
    try:
        path = f"/customers/{cust}/orders"
        created = api.call("POST", path, CREATE, {"customer": cust}, {"order_id": oid, "total": total})
        r.require(
            created.status == 201,
            f"POST {path} with a new order answers 201",
            f"POST {path} with a new order should answer 201 Created; it answered {_said(created)}",
        )
        r.expect(
            (created.json() or {}).get("order_id") == oid and created.headers.get("content-type") == "application/json",
            "the 201 carries the order as JSON (content-type application/json)",
            f"the 201's body should be the order as JSON with content-type application/json; got "
            f"{created.headers.get('content-type')!r} and {created.body[:80]!r}",
        )
        item = ddb.get_item(TableName=table, Key={"pk": {"S": f"CUSTOMER#{cust}"}, "sk": {"S": f"ORDER#{oid}"}})
        stored = item.get("Item", {})
        r.expect(
            stored and float(stored.get("total", {}).get("N", "nan")) == total,
            f"DynamoDB holds it at pk=CUSTOMER#{cust}, sk=ORDER#{oid} with total {total} (a Number)",
            "DynamoDB has no item at pk=CUSTOMER#<customer>, sk=ORDER#<order_id> with total as a Number (N); "
            f"items of this customer: {[(i['pk']['S'], i['sk']['S']) for i in _items(ddb, table, cust)][:3]}",
        )
        again = api.call("POST", path, CREATE, {"customer": cust}, {"order_id": oid, "total": total + 100})
        after = ddb.get_item(TableName=table, Key={"pk": {"S": f"CUSTOMER#{cust}"}, "sk": {"S": f"ORDER#{oid}"}})
        kept = float(after.get("Item", {}).get("total", {}).get("N", "nan")) == total
        overwritten = bool(stored) and not kept  # (without the first item at its keys, nothing to compare)
        r.expect(
            again.status == 409 and not overwritten,
            "POST of an order id that exists answers 409 and leaves the stored order as it was",
            f"POST of an existing order id answered {_said(again)}"
            + (" and OVERWROTE the stored total" if overwritten else "")
            + ": make the write conditional (attribute_not_exists) and answer 409 Conflict",
        )
        bad = {
            "a body that is not JSON": "{order_id: ",
            "no body at all": None,
            "no total": {"order_id": f"o-{uuid.uuid4().hex[:8]}"},
            "a negative total": {"order_id": f"o-{uuid.uuid4().hex[:8]}", "total": -5},
            "total true": {"order_id": f"o-{uuid.uuid4().hex[:8]}", "total": True},
            "an empty order_id": {"order_id": "", "total": 5},
        }
        wrong = []
        for what, body in bad.items():
            resp = api.call("POST", path, CREATE, {"customer": cust}, body)
            if resp.status != 400:
                wrong.append(f"{what}: {_said(resp)}")
        r.expect(
            not wrong,
            f"{len(bad)} bad requests (not JSON, no body, no total, total < 0, total true, empty id) answer 400",
            "bad requests should answer 400 Bad Request (a client error, not a crash): " + "; ".join(wrong[:3]),
        )
        r.expect(
            len(_items(ddb, table, cust)) == 1,
            "the bad requests wrote nothing",
            f"after the bad requests the customer has {len(_items(ddb, table, cust))} items, not 1: validate first",
        )
        got = api.call("GET", f"{path}/{oid}", GET, {"customer": cust, "order_id": oid})
        body = got.json() or {}
        r.expect(
            got.status == 200 and isinstance(body, dict) and body.get("total") == total,
            f"GET {path}/{oid} answers 200 with the order (total {total} as a JSON number)",
            f"GET of the stored order should answer 200 with its total {total} as a number; it answered {_said(got)}",
        )
        missing = api.call("GET", f"{path}/o-nope", GET, {"customer": cust, "order_id": "o-nope"})
        elsewhere = api.call("GET", f"/customers/{other}/orders/{oid}", GET, {"customer": other, "order_id": oid})
        r.expect(
            missing.status == 404 and elsewhere.status == 404,
            "an order that does not exist, or that belongs to another customer, answers 404",
            f"GET of a missing order answered {_said(missing)}; GET of the order under another customer answered "
            f"{_said(elsewhere)}: both should be 404 Not Found",
        )
    finally:
        api.stop()


# ======================================================================= 12.2 pages of orders
def _page_ids(resp) -> list[str] | None:
    body = resp.json()
    if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        return None
    return [o.get("order_id") if isinstance(o, dict) else o for o in body["orders"]]


@check(
    "12.2",
    "The list of a customer's orders comes in pages of `limit`, every order exactly once",
    hints=[
        "Query (not Scan) pk = CUSTOMER#<customer> AND begins_with(sk, 'ORDER#'), with Limit=limit; DynamoDB "
        "answers LastEvaluatedKey while there is more.",
        "Make the token a string a URL can carry: base64.urlsafe_b64encode(json.dumps(LastEvaluatedKey).encode())"
        "."
        "decode(); on the next request decode it and pass it as ExclusiveStartKey. A token that does not decode: 400.",
        "queryStringParameters may be None. limit: int(q.get('limit', 10)), 1..50 else 400. Answer "
        "{'orders': [...], 'next': token or None}, the orders as JSON objects with order_id and total.",
    ],
)
def check_orders_list(r, ns):
    src = learner_file(r, LIST_FILE)
    ddb = aws.client("dynamodb")
    table = setup.create_table(ddb, setup.fresh("l12-chk-list"))
    cust, other = f"c-{uuid.uuid4().hex[:6]}", f"c-{uuid.uuid4().hex[:6]}"
    mine = sorted(f"o-{uuid.uuid4().hex[:8]}" for _ in range(23))
    rows = [(cust, o, 10 + i) for i, o in enumerate(mine)] + [(other, f"o-{uuid.uuid4().hex[:8]}", 5) for _ in range(6)]
    for c, o, t in rows:
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": f"CUSTOMER#{c}"}, "sk": {"S": f"ORDER#{o}"}, "order_id": {"S": o},
                  "customer": {"S": c}, "total": {"N": str(t)}},
        )  # fmt: skip
    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": f"CUSTOMER#{cust}"}, "sk": {"S": "PROFILE"}, "order_id": {"S": "PROFILE"},
              "name": {"S": "Ada"}},
    )  # fmt: skip
    api = Probe(r, "l12-chk-list", src, "l12_orders_list.handler", table)
    path, limit = f"/customers/{cust}/orders", 4
    try:
        first = api.call("GET", path, LIST, {"customer": cust}, query={"limit": str(limit)})
        r.require(
            first.status == 200 and _page_ids(first) is not None,
            f"GET {path}?limit={limit} answers 200 with a list of orders",
            f"GET {path}?limit={limit} should answer 200 with {{'orders': [...], 'next': ...}}; it answered "
            f"{_said(first)}",
        )
        pages, resp, token, guard = [], first, None, 0
        while True:
            ids = _page_ids(resp)
            if resp.status != 200 or ids is None:
                r.fail(f"page {len(pages) + 1} (next={str(token)[:40]!r}) answered {_said(resp)}")
            pages.append(ids)
            token = (resp.json() or {}).get("next")
            guard += 1
            if token in (None, "") or guard > 12:
                break
            if not isinstance(token, str):
                r.fail(
                    f"'next' should be an opaque string a client can send back in the URL, not {type(token).__name__}"
                )
            resp = api.call("GET", path, LIST, {"customer": cust}, query={"limit": str(limit), "next": token})
        got = [i for p in pages for i in p]
        r.expect(
            sorted(got) == mine,
            f"following `next` gives all {len(mine)} orders of the customer, each exactly once",
            f"following `next` gave {len(got)} orders ({len(set(got) & set(mine))} of the customer's {len(mine)}, "
            f"{len(got) - len(set(got))} repeated"
            + (", and items that are not orders of this customer" if set(got) - set(mine) else "")
            + (")" if len(pages) > 1 else "); only one page came: return LastEvaluatedKey as `next`"),
        )
        sizes = [len(p) for p in pages]
        r.expect(
            all(s == limit for s in sizes[:-1]) and sizes[-1] <= limit,
            f"every page but the last holds exactly limit={limit} orders (pages: {sizes})",
            f"pages should hold limit={limit} orders each until the last; they held {sizes} (Limit on a Query counts "
            "what it reads: a Scan with a filter, or no Limit, gives other sizes)",
        )
        default = api.call("GET", path, LIST, {"customer": cust})
        r.expect(
            default.status == 200 and len(_page_ids(default) or []) == 10,
            "without limit, a page holds 10 orders",
            f"without a limit the first page should hold 10 orders; it answered {_said(default)}",
        )
        bad = {
            "next=garbage": {"next": "not-a-token"},
            "limit=0": {"limit": "0"},
            "limit=500": {"limit": "500"},
            "limit=ten": {"limit": "ten"},
        }
        wrong = []
        for what, query in bad.items():
            resp = api.call("GET", path, LIST, {"customer": cust}, query=query)
            if resp.status != 400:
                wrong.append(f"{what}: {_said(resp)}")
        r.expect(
            not wrong,
            "a token that does not decode and a limit outside 1..50 answer 400",
            "these should answer 400 Bad Request: " + "; ".join(wrong[:3]),
        )
    finally:
        api.stop()


def orders_event_example(customer: str = "ada", order: dict | None = None) -> str:
    """A POST proxy event as the function receives it (for the notebook to show)."""
    order = order or {"order_id": "o-1001", "total": 42.5}
    ev = apigw.proxy_event("POST", f"/customers/{customer}/orders", order, None, None, {"customer": customer}, CREATE)
    return json.dumps(ev, indent=1)
