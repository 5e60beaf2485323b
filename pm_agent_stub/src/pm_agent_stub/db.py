"""One SQLite connection per process, WAL, explicit `BEGIN IMMEDIATE` transactions.

In the stub the connection is used only from the board thread (board_thread.py), one call
at a time, never awaiting inside a transaction, so transactions never interleave. Other
processes (the CLI with `--db`, more stub processes) share the file safely because each
write takes the database write lock up front (`BEGIN IMMEDIATE`) and waits for it
(`busy_timeout`) instead of failing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pm_agent_stub.schema import SCHEMA_VERSION, STATEMENTS, upgrade

BUSY_TIMEOUT_MS = 15_000


class SchemaMismatchError(RuntimeError):
    """The file was made by a stub with a different schema; refuse rather than corrupt it."""


def connect(path: Path | str, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open (creating if needed) the board database and make sure the schema is there."""
    if str(path) != ":memory:":
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    if synchronous.upper() not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys = ON")
    with transaction(conn):
        for statement in STATEMENTS:
            conn.execute(statement)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        found = upgrade(
            conn, conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        )
    if found != str(SCHEMA_VERSION):
        conn.close()
        raise SchemaMismatchError(
            f"{path}: board schema version {found}, this stub needs {SCHEMA_VERSION}; "
            "move the old file away (or point PM_AGENT_DB elsewhere) and reload the project"
        )
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` on any exception (nothing half-written)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A deferred `BEGIN` … `COMMIT`: several reads see one state of the file, and no write lock is taken."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection commits to the file (ours do not move it)."""
    row = conn.execute("PRAGMA data_version").fetchone()
    return int(row[0])
