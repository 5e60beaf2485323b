"""A damaged or foreign board file against the real `serve` and `status --db` (issue 24, item 9).

Each is refused before anything reads or writes it, with one line naming the file and what to
do, exit 2, no traceback, and the file left byte for byte as it was:

- a file that is not SQLite at all;
- a board with one page overwritten (before: `status --json` ended in `sqlite3.DatabaseError`,
  and plain `status` listed the tasks it could read and said nothing);
- a board with one stale page of the ready index, as a lost write leaves it (passes
  `quick_check`; before: every `request_next_task` was internal_error);
- a board of another schema version (before: a SchemaMismatchError traceback).

A healthy board still opens.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pm_agent_stub.testing import free_port, load_tasks, run_cli, stub_env, task

TASKS = 3000


def healthy_board(path: Path) -> Path:
    load_tasks(path, *(task(f"t{i:04d}", "x", description="d" * 200) for i in range(TASKS)))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def page_size_and_pages(path: Path, table: str) -> tuple[int, list[int]]:
    conn = sqlite3.connect(path)
    try:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,)
        ).fetchall()
    except sqlite3.OperationalError as exc:  # a SQLite built without the dbstat table
        pytest.skip(f"this SQLite has no dbstat table to find pages with: {exc}")
    finally:
        conn.close()
    return int(size), [p[0] for p in pages]


def write_page(path: Path, page: int, size: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(data)


def one_page_overwritten(tmp_path: Path) -> Path:
    board = healthy_board(tmp_path / "damaged.db")
    size, pages = page_size_and_pages(board, "tasks")
    write_page(board, pages[len(pages) // 2], size, b"\xff" * size)
    return board


def stale_index_page(tmp_path: Path) -> Path:
    """The ready index's first page as it was before half the tasks were done (a lost write)."""
    before = healthy_board(tmp_path / "before.db")
    board = tmp_path / "stale.db"
    shutil.copy(before, board)
    conn = sqlite3.connect(board)
    conn.execute("UPDATE tasks SET status = 'done' WHERE task_id < 't1500'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size, pages = page_size_and_pages(board, "tasks_ready")
    with before.open("rb") as f:
        f.seek((pages[0] - 1) * size)
        old = f.read(size)
    write_page(board, pages[0], size, old)
    return board


def not_sqlite(tmp_path: Path) -> Path:
    board = tmp_path / "notes.db"
    board.write_text("these are my notes, not a board\n")
    return board


def other_schema(tmp_path: Path) -> Path:
    board = healthy_board(tmp_path / "future.db")
    conn = sqlite3.connect(board)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return board


def serve(board: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pm_agent_stub", "serve", "--port", str(free_port()), "--db", str(board)],
        capture_output=True, text=True, env=stub_env(), timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (not_sqlite, "not a board file (SQLite: file is not a database)"),
        (one_page_overwritten, "the board file is damaged (database disk image is malformed"),
        (stale_index_page, "missing from index tasks_ready"),
        (other_schema, "board schema version 999"),
    ],
    ids=["not-sqlite", "one-page-overwritten", "stale-index-page", "other-schema"],
)
def test_a_damaged_or_foreign_board_file_is_refused_in_one_line(
    tmp_path: Path, make: object, says: str
) -> None:
    board = make(tmp_path)  # type: ignore[operator]
    before = board.read_bytes()
    for name, done in (("serve", serve(board)), ("status", run_cli("status", "--db", str(board))),
                       ("status --json", run_cli("status", "--json", "--db", str(board)))):  # fmt: skip
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (name, done.stderr)
        assert lines[0].startswith(f"{board}: "), (name, lines[0])
        assert says in lines[0], (name, lines[0])
        assert "Traceback" not in done.stderr
        assert done.stdout == ""  # nothing shown as if it were the board
    assert board.read_bytes() == before
    assert not Path(f"{board}-wal").exists()


def test_the_refusal_says_what_to_do(tmp_path: Path) -> None:
    done = run_cli("status", "--db", str(one_page_overwritten(tmp_path)))
    assert "restore it from a backup" in done.stderr
    assert "PM_AGENT_DB (--db)" in done.stderr
    assert "docs/reliability.md" in done.stderr


def test_a_healthy_board_opens(tmp_path: Path) -> None:
    done = run_cli("status", "--json", "--db", str(healthy_board(tmp_path / "ok.db")))
    assert done.returncode == 0, done.stderr
    assert f'"total_tasks": {TASKS}' in done.stdout
