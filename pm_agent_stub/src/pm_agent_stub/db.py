"""One SQLite connection per process, WAL, explicit `BEGIN IMMEDIATE` transactions.

The connection is used only from the event-loop thread: every call is sub-millisecond and
never awaits inside a transaction, so there is no thread hop and no interleaving. Other
processes (CLI `load`/`resolve`, more stub processes) share the file safely because each
write takes the database write lock up front (`BEGIN IMMEDIATE`) and waits for it
(`busy_timeout`) instead of failing.

A board file is checked before anything else touches it (issue 24 item 9): a file that is
not SQLite, or one `PRAGMA integrity_check` finds damaged, is refused with one line naming
the file and what to do (`BoardFileError`), instead of a `sqlite3.DatabaseError` traceback,
or, with one bad page, a board that silently shows less (`status` listed the tasks it could
read and said nothing). `integrity_check`, not `quick_check`: a stale index page (a lost
write) passes quick_check, and the ready index then offered tasks that were done and hid
others (tests/reliability/test_board_file.py). It reads the whole file once at opening:
0.24 s on a 58 MB board of 100,000 tasks here (quick_check 0.1 s; `check="quick"`).
SQLite keeps no checksums, so a changed byte inside a value stays unseen by either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pm_agent_stub.schema import SCHEMA_VERSION, STATEMENTS, upgrade

BUSY_TIMEOUT_MS = 15_000
Check = Literal["quick", "full"]
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


class BoardFileError(RuntimeError):
    """A board file the stub will not use; the message is the one line to show."""


class SchemaMismatchError(BoardFileError):
    """The file was made by a stub with a different schema; refuse rather than corrupt it."""


def _damaged(path: Path | str, exc: sqlite3.DatabaseError) -> BoardFileError:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return BoardFileError(
            f"{path}: not a board file (SQLite: {exc}); point PM_AGENT_DB (--db) at the board, "
            "or move this file away to start an empty board there"
        )
    return _refused(path, str(exc), 1)


def _refused(path: Path | str, problem: str, count: int) -> BoardFileError:
    more = "" if count <= 1 else f"; {count if count < 20 else '20 or more'} problems found"
    return BoardFileError(
        f"{path}: the board file is damaged ({problem[:300]}{more}); it was not used, nothing was "
        "written. Stop every process using it and keep a copy; then restore it from a backup, or save "
        "what is readable into a new file and point PM_AGENT_DB (--db) there (docs/reliability.md, "
        "'A damaged board file')"
    )


def check_file(conn: sqlite3.Connection, path: Path | str, check: Check = "full") -> None:
    """Refuse a damaged file: `PRAGMA quick_check` (pages and records), or `integrity_check`
    (`full`: indexes against their tables too). BoardFileError, one line."""
    pragma = "integrity_check" if check == "full" else "quick_check"
    try:
        found = [row[0] for row in conn.execute(f"PRAGMA {pragma}(20)").fetchall()]
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") not in DAMAGED:
            raise
        raise _damaged(path, exc) from None
    if found != ["ok"]:
        raise _refused(path, found[0] if found else "no answer", len(found))


def connect(path: Path | str, synchronous: str = "NORMAL", *, check: Check = "full") -> sqlite3.Connection:
    """Open (creating if needed) the board database, check it, and make sure the schema is there."""
    if str(path) != ":memory:":
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    if synchronous.upper() not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    try:
        _prepare(conn, path, synchronous, check)
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection, path: Path | str, synchronous: str, check: Check) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    check_file(conn, path, check)
    try:
        _schema(conn, path, synchronous)
    except sqlite3.DatabaseError as exc:  # damage quick_check could not see (a bad header page)
        if getattr(exc, "sqlite_errorname", "") not in DAMAGED:
            raise
        raise _damaged(path, exc) from None


def _schema(conn: sqlite3.Connection, path: Path | str, synchronous: str) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
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
        raise SchemaMismatchError(
            f"{path}: board schema version {found}, this stub needs {SCHEMA_VERSION}; "
            "move the old file away (or point PM_AGENT_DB elsewhere) and reload the project"
        )


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
