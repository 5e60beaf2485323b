"""`list_tasks` pages on a big board: does a deep page cost more than the first?

    .venv/bin/python -m bench.list_tasks_pages [N]      # N tasks (default 100,000), in process

The operator's `status` pages through the board in board order (in progress, blocked, todo,
done; priority; load order). Each page seeks the expression index `tasks_board_order`, so
page 500 should cost what page 1 costs; this prints both, and the mean over every page.
Not part of `make bench` (it measures one query shape, not the fleet).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pm_agent_stub.board import Board
from pm_agent_stub.db import connect
from pm_agent_stub.project_file import check_project
from pm_protocol.limits import MAX_PAGE_LIMIT


def main(n: int) -> None:
    board = Board(connect(Path(tempfile.mkdtemp(prefix="pm-pages-")) / "board.db"))
    priorities = ("low", "medium", "high", "urgent")
    spec = check_project(
        {
            "tasks": [
                {
                    "id": f"t{i:06d}",
                    "name": "T",
                    "required_skills": ["testing"],
                    "priority": priorities[i % 4],
                }
                for i in range(n)
            ]
        },
        "bench",
    )
    started = time.perf_counter()
    board.load_project(spec, "bench")
    print(f"load {n:,} tasks: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    page = board.list_tasks(MAX_PAGE_LIMIT)
    print(f"first page ({MAX_PAGE_LIMIT} tasks): {1000 * (time.perf_counter() - started):.1f} ms")
    pages, worst, last = 1, 0.0, 0.0
    started = time.perf_counter()
    while page.next_cursor:
        one = time.perf_counter()
        page = board.list_tasks(MAX_PAGE_LIMIT, page.next_cursor)
        last = time.perf_counter() - one
        worst = max(worst, last)
        pages += 1
    total = time.perf_counter() - started
    print(
        f"all {pages} pages: {total:.1f} s; {1000 * total / pages:.1f} ms per page on average, "
        f"worst {1000 * worst:.1f} ms, last {1000 * last:.1f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
