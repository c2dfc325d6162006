"""The order service as many services start out: it works on one laptop, and nowhere else.

Deliberately NOT a 12-factor app (lesson 01 takes it apart):
  * config is hard-coded (port, data directory, debug flag);
  * state lives on the local disk of the process (orders/*.json next to it);
  * logs go to a file, in free text;
  * start-up is slow, and SIGTERM is ignored, so stopping it needs SIGKILL.
Run:  python app/legacy_service.py   (then POST JSON to http://127.0.0.1:8081/orders)
"""

import json
import logging
import os
import signal
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = 8081  # hard-coded: two copies on one host collide
DATA_DIR = "legacy-data"  # local disk: each copy has its own orders
DEBUG = True  # the same in every environment
LOG_FILE = "legacy-service.log"  # a file nobody ships anywhere

logging.basicConfig(
    filename=LOG_FILE, level=logging.DEBUG if DEBUG else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
log = logging.getLogger("orders")


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/orders":
            return self._send(404, {"error": "not found"})
        order = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        order["id"] = uuid.uuid4().hex[:12]
        os.makedirs(DATA_DIR, exist_ok=True)
        with open(os.path.join(DATA_DIR, order["id"] + ".json"), "w") as fh:
            json.dump(order, fh)
        log.info("stored order %s for %s", order["id"], order.get("item"))
        self._send(201, order)

    def do_GET(self):
        if self.path == "/health":
            return self._send(200, {"status": "ok"})
        if self.path.startswith("/orders/"):
            path = os.path.join(DATA_DIR, self.path.rsplit("/", 1)[-1] + ".json")
            if os.path.exists(path):
                with open(path) as fh:
                    return self._send(200, json.load(fh))
        self._send(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        log.debug(fmt, *args)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # "we never stop in production"
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 3)  # "warming caches"
    log.info("listening on %d", PORT)
    HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
