"""Byte relays between two network namespaces, through Unix sockets (a path on disk reaches every namespace).

A learner's server runs in a network namespace of its own (:mod:`cloudlab.hub.launch`). Two relays join it
to the host's loopback, and nothing else does:

* the hub and its proxy reach the learner's JupyterLab: host ``127.0.0.1:<port JupyterHub chose>``
  -> ``jupyter.sock`` (the server listens on it inside the namespace);
* the learner's server reaches the hub's API: ``127.0.0.1:<hub API port>`` inside the namespace ->
  ``hub-api.sock`` -> host ``127.0.0.1:<hub API port>``.

Plain bytes both ways (HTTP and WebSockets alike). Standard library only. Serves the workshop hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from pathlib import Path

CHUNK = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def _join(client_r, client_w, opener) -> None:
    try:
        server_r, server_w = await opener()
    except OSError:
        client_w.close()
        return
    await asyncio.gather(_pump(client_r, server_w), _pump(server_r, client_w))
    for w in (client_w, server_w):
        with contextlib.suppress(Exception):
            w.close()


def unix_opener(path: Path, owner: int | None = None):
    """Connect to the Unix socket ``path`` (when ``owner`` is given: only a socket that uid owns, never a link)."""

    async def open_():
        if owner is not None:
            st = os.lstat(path)
            if not stat.S_ISSOCK(st.st_mode) or st.st_uid != owner:
                raise OSError(f"{path} is not a socket of uid {owner}")
        return await asyncio.open_unix_connection(str(path))

    return open_


def tcp_opener(port: int, host: str = "127.0.0.1"):
    async def open_():
        return await asyncio.open_connection(host, port)

    return open_


def tcp_listener(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening TCP socket (made now, in the namespace this process is in; it stays there)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    return s


def unix_listener(path: Path, uid: int | None = None, gid: int | None = None) -> socket.socket:
    """A listening Unix socket at ``path``, readable and writable by its owner only."""
    path.unlink(missing_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        s.bind(str(path))
    finally:
        os.umask(old)
    if uid is not None:
        os.chown(path, uid, gid if gid is not None else -1)
    s.listen(128)
    return s


async def serve(listener: socket.socket, opener) -> asyncio.AbstractServer:
    """Relay every connection accepted on ``listener`` to what ``opener`` connects to."""

    async def handle(r, w):
        await _join(r, w, opener)

    if listener.family == socket.AF_UNIX:
        return await asyncio.start_unix_server(handle, sock=listener)
    return await asyncio.start_server(handle, sock=listener)
