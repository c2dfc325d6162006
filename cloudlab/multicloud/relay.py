"""A TCP relay on 127.0.0.1 that counts who went through it (lesson 11's checks).

A check points a provider's standard variable (``STORAGE_EMULATOR_HOST``, the connection string's endpoints)
at a relay in front of the real emulator, then runs the learner's code: traffic through the relay proves the
code read the variable; none proves it hard-coded an address. Bytes are forwarded as they are (HTTP/1.1 and
gRPC's HTTP/2 alike), both ways.
"""

from __future__ import annotations

import socket
import threading
import time


class Relay:
    """``with Relay(target_port) as r: ... r.url ... r.connections``

    ``delay``: seconds added before each request the client sends (the first bytes after a pause), so two
    clients that read and then write interleave the way a slow network makes them: a check widens a race."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", delay: float = 0.0):
        self.target = (target_host, target_port)
        self.delay = float(delay)
        self.connections = 0
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._stop.set()
        try:
            self._server.close()
        except OSError:
            pass
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                self._socks += [client, upstream]
            for a, b, delay in ((client, upstream, self.delay), (upstream, client, 0.0)):
                threading.Thread(target=self._pump, args=(a, b, delay), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, delay: float = 0.0) -> None:
        last = 0.0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if delay and time.monotonic() - last > 0.05:  # a new request, not the rest of one
                    time.sleep(delay)
                last = time.monotonic()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
