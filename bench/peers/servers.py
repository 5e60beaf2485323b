"""Redis and PostgreSQL for the peers, from Debian's packages, started and stopped by the bench.

Each server gets a free port on 127.0.0.1 and a scratch data folder of its own; nothing
touches the system's default clusters or ports (6379, 5432). PostgreSQL runs as the
`postgres` user (`runuser -u postgres --`) when the bench runs as root, as the bench's own
user otherwise; fsync, synchronous_commit and full_page_writes keep their defaults (on):
procrastinate is the peer with our durability, so its server is as durable as a user's.
Redis runs without persistence (no RDB snapshot, no AOF): the Redis peers are the speed
references, and a snapshot would fork a child whose CPU the bench could not attribute.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pm_agent_stub.testing import free_port


class ServerUnavailable(RuntimeError):
    """A server the peers need is not installed or does not start; the message says what to do."""


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise ServerUnavailable(f"{what} did not answer on 127.0.0.1:{port} within {timeout:.0f} s:\n{tail}")


@dataclass
class Redis:
    """A redis-server on 127.0.0.1:port, data folder `folder` (removed by stop())."""

    proc: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_redis(workdir: Path, timeout: float = 30.0) -> Redis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server is not installed: apt-get install -y redis-server")
    folder = Path(tempfile.mkdtemp(prefix="redis-", dir=workdir))
    log = folder / "redis.log"
    last: ServerUnavailable | None = None
    for _ in range(3):  # a free port can be taken between choosing it and binding it
        port = free_port()
        cmd = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(folder),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(log),
            "--daemonize", "no",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=folder)
        try:
            _wait_port(port, proc, timeout, "redis-server", log)
            return Redis(proc=proc, port=port, folder=folder)
        except ServerUnavailable as exc:
            last = exc
            proc.kill()
            proc.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)
    raise last or ServerUnavailable("redis-server did not start")


def _pg_bindir() -> Path:
    """Debian's newest /usr/lib/postgresql/<major>/bin (initdb, pg_ctl)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise ServerUnavailable("PostgreSQL is not installed: apt-get install -y postgresql")


@dataclass
class Postgres:
    """A PostgreSQL cluster on 127.0.0.1:port in `folder` (removed by stop()); trust auth, loopback only."""

    bindir: Path
    folder: Path
    port: int
    as_user: list[str] = field(default_factory=list)
    pid: int = 0

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.folder,
        )

    def stop(self) -> None:
        if self.data.exists():
            self.run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(timeout: float = 90.0) -> Postgres:
    bindir = _pg_bindir()
    # Under /tmp (not the bench's 0700 work folder) so the postgres user can reach it.
    folder = Path(tempfile.mkdtemp(prefix="bench-peers-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise ServerUnavailable("runuser is missing (util-linux): cannot start PostgreSQL as postgres")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(folder, "postgres", "postgres")
    pg = Postgres(bindir=bindir, folder=folder, port=0, as_user=as_user)
    try:
        done = pg.run(
            str(bindir / "initdb"), "-D", str(pg.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        if done.returncode != 0:
            raise ServerUnavailable(f"initdb failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
        log = folder / "postgres.log"
        last = ""
        for _ in range(3):
            pg.port = free_port()
            opts = (
                f"-c port={pg.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder} "
                "-c max_connections=300"
            )
            done = pg.run(
                str(bindir / "pg_ctl"), "-D", str(pg.data), "-l", str(log), "-o", opts, "-w", "-t",
                str(int(timeout)), "start",
            )  # fmt: skip
            if done.returncode == 0:
                pg.pid = int((pg.data / "postmaster.pid").read_text().split()[0])
                return pg
            last = (log.read_text(errors="replace") if log.exists() else done.stderr)[-1500:]
        raise ServerUnavailable(f"PostgreSQL did not start: {last}")
    except BaseException:
        pg.stop()
        raise
