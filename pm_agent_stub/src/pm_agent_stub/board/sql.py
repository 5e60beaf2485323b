"""The board's database connection as the rules see it: transactions, reads, and the questions
the board thread asks of the file. SQLite; the one module here that knows the connection.

`Row` is what a read returns as far as the rules care: a row indexed by column name
(`sqlite3.Row` here; a mapping would do).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from pm_agent_stub.db import data_version, read_transaction, transaction

Connection = sqlite3.Connection
"""What a board is opened on (`db.connect`)."""


def locked(exc: BaseException) -> bool:
    """Whether `exc` says another process held the board's write lock longer than we wait."""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class Row(Protocol):
    """A row of a read, its columns by name."""

    def __getitem__(self, key: str, /) -> Any: ...


Id = TypeVar("Id", str, int)  # a task's or an artifact's

_CHUNK: Final = 500  # ids per `IN (...)`, well under SQLite's variable limit


def in_chunks(ids: Sequence[Id]) -> Iterator[tuple[list[Id], str]]:
    """`ids` in slices of at most `_CHUNK`, each with its placeholders (`?,?,...`) for `IN (...)`."""
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i : i + _CHUNK])
        yield chunk, ",".join("?" * len(chunk))


class Sql:
    """One connection: statements, the transactions around them, and the file's own state."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    def transaction(self) -> AbstractContextManager[object]:
        """`BEGIN IMMEDIATE` ... `COMMIT` (the write lock first), or `ROLLBACK` on any exception."""
        return transaction(self.conn)

    def read_transaction(self) -> AbstractContextManager[object]:
        """Several reads that see one state of the board, taking no write lock."""
        return read_transaction(self.conn)

    def data_version(self) -> int:
        """Moves whenever another connection commits to the board (our own commits do not move it)."""
        return data_version(self.conn)

    def main_file(self) -> Path | None:
        """The board's database file, or None in memory."""
        for _seq, name, file in self.conn.execute("PRAGMA database_list").fetchall():
            if name == "main" and file:
                return Path(file)
        return None

    def close(self) -> None:
        self.conn.close()
