"""Slow clients against a real stub over raw sockets, and a measurement of what they cost.

A slow-body client announces a body with `Content-Length` and sends all of it but the last
byte; a slow-header client sends part of a request line and headers and never the blank
line that ends them; a silent client connects and sends nothing. None of them is a slow
*response* (a long-poll), which must keep working.

    python -m tests.reliability.slow_clients [--connections 200] [--env PM_X=Y ...]

starts a stub, opens the connections, and prints the stub's RSS and open sockets before,
during and after its timeouts, and what each attacker's socket finally got back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pm_agent_stub.testing import StubProcess, start_stub

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_sockets(pid: int) -> int:
    """How many sockets a process holds open (listening socket included)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:  # closed between listdir and readlink
            pass
    return count


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    return sock


def slow_body(port: int, size: int = MIB, headers: dict[str, str] | None = None) -> socket.socket:
    """A POST /mcp announcing `size` bytes and sending `size - 1` of them."""
    sock = _connect(port)
    lines = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Content-Length": str(size),
        **(headers or {}),
    }
    head = "POST /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.items()) + "\r\n"
    with contextlib.suppress(OSError):  # the stub answered and closed before taking it all: its right
        sock.sendall(head.encode() + b" " * (size - 1))
    return sock


def slow_header(port: int) -> socket.socket:
    """A request whose headers never end (no blank line)."""
    sock = _connect(port)
    sock.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: 1".encode())
    return sock


def silent(port: int) -> socket.socket:
    """A connection that sends nothing at all."""
    return _connect(port)


def answer(sock: socket.socket, timeout: float) -> str:
    """What the stub did with a connection within `timeout` s: the status line, `closed`, or `open`."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return data.decode(errors="replace").split("\r\n")[0] or "closed"
            data += chunk
    except TimeoutError:
        return "open"
    except OSError:  # reset: the stub closed with our bytes unread
        return data.decode(errors="replace").split("\r\n")[0] or "closed"
    return data.decode(errors="replace").split("\r\n")[0]


def wait_closed(sock: socket.socket, timeout: float) -> bool:
    """Read until the stub closes the connection (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


@dataclass
class Sample:
    label: str
    rss_mib: float
    sockets: int


def measure(stub: StubProcess, connections: int, settle: float, after: float) -> dict[str, object]:
    """Open `connections` slow bodies, slow headers and silent connections; sample the stub."""
    pid = stub.proc.pid
    samples = [Sample("before", rss_mib(pid), open_sockets(pid))]
    bodies = [slow_body(stub.port) for _ in range(connections)]
    headers = [slow_header(stub.port) for _ in range(connections // 4)]
    quiet = [silent(stub.port) for _ in range(connections // 4)]
    time.sleep(settle)  # a measurement, not a synchronisation: let the stub take what it will
    samples.append(Sample(f"{settle:.0f} s after opening", rss_mib(pid), open_sockets(pid)))
    time.sleep(after)
    samples.append(Sample(f"{settle + after:.0f} s after opening", rss_mib(pid), open_sockets(pid)))
    outcomes = {
        "slow bodies": Counter(answer(s, 0.5) for s in bodies),
        "slow headers": Counter(answer(s, 0.5) for s in headers),
        "silent": Counter(answer(s, 0.5) for s in quiet),
    }
    for sock in bodies + headers + quiet:
        sock.close()
    return {"samples": [s.__dict__ for s in samples], "outcomes": {k: dict(v) for k, v in outcomes.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.slow_clients", description=__doc__)
    parser.add_argument("--connections", type=int, default=200, help="slow-body connections (default 200)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the 'during' sample")
    parser.add_argument("--after", type=float, default=40.0, help="further seconds before the 'after' sample")
    parser.add_argument("--env", action="append", default=[], help="PM_X=Y for the stub (repeatable)")
    ns = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in ns.env)
    with tempfile.TemporaryDirectory() as tmp:
        stub = start_stub(Path(tmp) / "board.db", env=env)
        try:
            result = measure(stub, ns.connections, ns.settle, ns.after)
        finally:
            stub.stop()
    result["connections"] = {"slow bodies": ns.connections, "slow headers": ns.connections // 4,
                             "silent": ns.connections // 4}  # fmt: skip
    result["env"] = env
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
