"""Network namespaces the lesson creates, and the "links" that connect them to the lab on 127.0.0.1.

A network namespace is a network stack of its own (interfaces, ports, firewall), like a separate host.
An instance started inside one (``ip netns exec l09-az-c python ...``) listens on ITS 127.0.0.1, so
a firewall rule inside that namespace can cut it off without touching the machine's own network.
The namespace has no interface but its loopback: no address, route or rule is added to the machine.
A *link* process joins two namespaces at one port: it listens on 127.0.0.1:PORT in one and, for each
connection, connects to 127.0.0.1:PORT in the other (Linux ``setns``), then copies bytes both ways.

Only names starting with this lab's prefix (``l09-<tag>-``, :func:`prefix`: two labs on one machine never
share or delete each other's namespaces) are ever created or deleted; `make stop` deletes what is left.
Needs Linux, root and iproute2's ``ip``; :func:`available` says whether this machine can, and why not.
Serves lesson 09.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

PREFIX = "l09-"  # every lesson-09 namespace; this lab's own start with prefix() = l09-<tag of the lab>-
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
INNER_CONNECT_TIMEOUT = 20.0  # a link gives up on an unreachable side after this long (bounded, like TCP)


class NetnsError(RuntimeError):
    """A namespace could not be made or used; the message says why."""

    def _render_traceback_(self):  # IPython: the message, not a stack trace
        return [f"\x1b[31mNetnsError\x1b[0m: {self}"]


def prefix() -> str:
    """``l09-<tag>-``: the names of this lab's namespaces (the tag is a hash of the lab's state folder)."""
    from ..lab import Lab, runtime

    return runtime.netns_prefix(Lab.from_env(), "09")


def name(suffix: str) -> str:
    """This lab's namespace called ``suffix`` (``name("az-c")`` -> ``l09-1a2b3c-az-c``)."""
    return f"{prefix()}{suffix}"


def _ip() -> str | None:
    return shutil.which("ip") or next((p for p in ("/usr/sbin/ip", "/sbin/ip") if os.path.exists(p)), None)


def _iptables() -> str | None:
    return shutil.which("iptables") or next(
        (p for p in ("/usr/sbin/iptables", "/sbin/iptables") if os.path.exists(p)), None
    )


_AVAILABLE: tuple[bool, str] | None = None


def available() -> tuple[bool, str]:
    """(True, "") when this machine can make network namespaces and firewall them; else (False, why)."""
    global _AVAILABLE
    if _AVAILABLE is not None:
        return _AVAILABLE
    if not sys.platform.startswith("linux"):
        _AVAILABLE = (False, "network namespaces are a Linux feature (this is not Linux)")
    elif os.geteuid() != 0:
        _AVAILABLE = (False, "making network namespaces needs root (run the lab as root, or in the Docker path)")
    elif (_ip() is None or _iptables() is None) and not _install():
        _AVAILABLE = (False, "`ip` (iproute2) and `iptables` are needed: apt-get install iproute2 iptables")
    else:
        probe = name(f"probe-{os.getpid()}")
        out = subprocess.run([_ip(), "netns", "add", probe], capture_output=True, text=True)
        subprocess.run([_ip(), "netns", "del", probe], capture_output=True)
        ok = out.returncode == 0
        _AVAILABLE = (ok, "" if ok else f"`ip netns add` failed here: {out.stderr.strip()[:200]}")
    return _AVAILABLE


def _install() -> bool:
    """As root with apt: install iptables and iproute2 on first use, like every tool (lesson 00 says AUTO)."""
    from ..lab import LabError, tools

    try:
        tools.install("iptables", why="(lesson 09's network faults; once)")
    except LabError:
        return False
    return _ip() is not None and _iptables() is not None


def _own(ns: str) -> str:
    """A lesson-09 name (``l09-...``); the lesson makes its own with :func:`name`, which carries the lab's tag."""
    if not ns.startswith(PREFIX) or not ns[len(PREFIX) :].replace("-", "").isalnum():
        raise NetnsError(f"refusing namespace {ns!r}: the lesson only touches namespaces named {PREFIX}...")
    return ns


def run(cmd: list[str], show: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    """Run one real command (printed first, as you would type it)."""
    if show:
        print("$ " + " ".join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise NetnsError(f"`{' '.join(cmd)}` failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()}")
    return out


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def listing() -> list[str]:
    """This lab's lesson-09 namespaces that exist now (never another lab's)."""
    return sorted(p.name for p in NETNS_DIR.glob(f"{prefix()}*")) if NETNS_DIR.exists() else []


def create(name: str, show: bool = True) -> str:
    """Create the namespace (if needed) with its loopback up; returns its name."""
    ok, why = available()
    if not ok:
        raise NetnsError(why)
    _own(name)
    if not exists(name):
        run([_ip(), "netns", "add", name], show)
    run([_ip(), "netns", "exec", name, _ip(), "link", "set", "lo", "up"], show)
    return name


def delete(name: str, show: bool = False) -> bool:
    """Delete the namespace (its firewall rules and queues go with it). Stop its processes first."""
    _own(name)
    if not exists(name):
        return False
    run([_ip(), "netns", "del", name], show, check=False)
    return True


def exec_prefix(name: str | None) -> list[str]:
    """The command prefix that runs a program inside ``name`` (empty for the machine's own network)."""
    return [] if not name else [_ip() or "ip", "netns", "exec", _own(name)]


# ---------------------------------------------------------------------------------------------- link
def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def _serve_link(listen_ns: str, to_ns: str, port: int, to_port: int) -> None:
    home = f"/proc/{os.getpid()}/ns/net"
    home_fd = os.open(home, os.O_RDONLY)  # where we started: the machine's (or container's) network
    if listen_ns != "-":
        _setns(str(NETNS_DIR / _own(listen_ns)))
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    _setns(f"/proc/self/fd/{home_fd}")
    if to_ns != "-":
        _setns(str(NETNS_DIR / _own(to_ns)))  # from here on, new sockets live in to_ns
    print(f'{{"event": "link", "listen": "{listen_ns}:{port}", "to": "{to_ns}:{to_port}"}}', flush=True)

    def handle(client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", to_port), timeout=INNER_CONNECT_TIMEOUT)
            upstream.settimeout(None)
        except OSError:
            client.close()  # the other side is unreachable: the client sees the connection closed
            return
        t = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        t.start()
        _pipe(client, upstream)
        t.join(timeout=60)
        client.close()
        upstream.close()

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def link_args(listen_ns: str | None, to_ns: str | None, port: int, to_port: int | None = None) -> list[str]:
    """The command line of a link process (``None`` = the machine's own network)."""
    return [
        "-m",
        "cloudlab.reliability.netns",
        "link",
        "--listen-ns",
        listen_ns or "-",
        "--to-ns",
        to_ns or "-",
        "--port",
        str(port),
        "--to-port",
        str(to_port or port),
    ]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="join two network namespaces at one port")
    sub = p.add_subparsers(dest="cmd", required=True)
    lk = sub.add_parser("link")
    lk.add_argument("--listen-ns", required=True)
    lk.add_argument("--to-ns", required=True)
    lk.add_argument("--port", type=int, required=True)
    lk.add_argument("--to-port", type=int, required=True)
    a = p.parse_args(argv)
    _serve_link(a.listen_ns, a.to_ns, a.port, a.to_port)


if __name__ == "__main__":
    main()
