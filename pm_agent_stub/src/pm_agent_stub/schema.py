"""The SQLite schema. Indexes are chosen so each call touches O(log n) rows, not the board.

- Each task's required skills, lower-cased and sorted, form its skill signature
  (`skill_sig`); `skill_sigs` lists the few distinct signatures. `tasks_ready` is a partial
  index over exactly the offerable tasks (todo, no pending dependency) by signature in
  offer order, so picking = one index probe per signature the agent satisfies, however many
  tasks the agent lacks skills for.
- `pending_deps` is a counter decremented when a dependency completes, so completing a
  task never rescans the board.
- `tasks_lease` finds expired leases without looking at tasks that have none.
- An artifact's metadata (`artifacts`, with `size`: bytes of its data as JSON) and its data
  (`artifact_data`) live in two tables, so listing artifacts and summing a task's artifact
  bytes never read the data pages; `get_artifact` reads one row of `artifact_data`.
- `agents_registered` pages the roster in registration order; `agents_last_seen` finds the
  agents to forget (and the stalest to make room) without a scan.
- `tasks.run` counts the task's runs (1, then one more per `rerun_task`); each artifact
  carries the run that logged it, so a dependent is handed only its dependency's current
  results. `tasks_board_order` is the operator's board order (in progress, blocked, todo,
  done; priority; load order) as an index on an expression, so `list_tasks` pages by key.
- A task keeps its newest `PM_MAX_PROGRESS_PER_TASK` progress entries; `progress_dropped`
  counts the older ones dropped (board/history.py).

A file made by an older stub is upgraded in place (`upgrade`), in the transaction that
opens it; a file from a newer stub is refused.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from pm_protocol.literals import BOARD_ORDER, TASK_STATUSES

SCHEMA_VERSION: Final = 5

# The operator's board order: in progress, blocked, todo, done (then priority, then load order).
# (The text is the index's expression: it must stay exactly this for files made before.)
BOARD_RANK: Final = (
    "(CASE status "
    + " ".join(f"WHEN '{status}' THEN {rank}" for rank, status in enumerate(BOARD_ORDER[:-1]))
    + f" ELSE {len(BOARD_ORDER) - 1} END)"
)

_STATUSES: Final = ",".join(f"'{status}'" for status in TASK_STATUSES)  # 'todo','in_progress',...

STATEMENTS: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS agents (
        agent_id        TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        role            TEXT NOT NULL,
        skills          TEXT NOT NULL,            -- JSON list as registered
        skills_lc       TEXT NOT NULL,            -- JSON list, lower-cased, for matching
        registered_at   REAL NOT NULL,
        last_seen       REAL NOT NULL,
        tasks_completed INTEGER NOT NULL DEFAULT 0,
        deregistered_at REAL                      -- set by deregister_agent, cleared by register_agent
    )""",
    """CREATE INDEX IF NOT EXISTS agents_registered ON agents (registered_at, agent_id)""",
    """CREATE INDEX IF NOT EXISTS agents_last_seen ON agents (last_seen)""",
    f"""CREATE TABLE IF NOT EXISTS tasks (
        task_id          TEXT PRIMARY KEY,
        project          TEXT,
        name             TEXT NOT NULL,
        description      TEXT NOT NULL DEFAULT '',
        instructions     TEXT NOT NULL DEFAULT '',
        priority         TEXT NOT NULL,
        priority_rank    INTEGER NOT NULL,
        required_skills  TEXT NOT NULL,           -- JSON list as written in the file
        skill_count      INTEGER NOT NULL,
        skill_sig        TEXT NOT NULL,           -- JSON list, lower-cased, sorted, distinct
        labels           TEXT NOT NULL,
        dependencies     TEXT NOT NULL,           -- JSON list, in file order
        pending_deps     INTEGER NOT NULL,
        estimated_hours  REAL,
        payload          TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ({_STATUSES})),
        holder           TEXT,
        lease_id         TEXT,
        lease_expires_at REAL,                    -- wall-clock epoch: survives restarts
        attempt          INTEGER NOT NULL DEFAULT 0,
        expiries         INTEGER NOT NULL DEFAULT 0,
        progress         INTEGER NOT NULL DEFAULT 0,
        checkpoint       TEXT,                    -- JSON or NULL
        created_seq      INTEGER NOT NULL,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        completed_by     TEXT,
        completed_at     REAL,
        run              INTEGER NOT NULL DEFAULT 1,
        progress_dropped INTEGER NOT NULL DEFAULT 0  -- oldest progress_log rows dropped (history.py)
    )""",
    """CREATE INDEX IF NOT EXISTS tasks_ready
        ON tasks (skill_sig, priority_rank DESC, created_seq)
        WHERE status = 'todo' AND pending_deps = 0""",
    """CREATE TABLE IF NOT EXISTS skill_sigs (sig TEXT PRIMARY KEY, skill_count INTEGER NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS tasks_lease ON tasks (lease_expires_at) WHERE status = 'in_progress'""",
    """CREATE INDEX IF NOT EXISTS tasks_holder ON tasks (holder) WHERE holder IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status)""",
    f"""CREATE INDEX IF NOT EXISTS tasks_board_order ON tasks ({BOARD_RANK}, priority_rank DESC, created_seq)""",
    """CREATE TABLE IF NOT EXISTS task_deps (
        task_id TEXT NOT NULL, depends_on TEXT NOT NULL, PRIMARY KEY (task_id, depends_on)
    ) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS task_deps_rev ON task_deps (depends_on)""",
    """CREATE TABLE IF NOT EXISTS progress_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL, agent_id TEXT NOT NULL, attempt INTEGER NOT NULL,
        status TEXT NOT NULL, progress INTEGER NOT NULL, message TEXT NOT NULL, at REAL NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS progress_log_task ON progress_log (task_id, id)""",
    """CREATE TABLE IF NOT EXISTS blockers (
        blocker_id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL, agent_id TEXT, description TEXT NOT NULL, severity TEXT NOT NULL,
        resolution_suggestion TEXT NOT NULL, created_at REAL NOT NULL,
        resolved_at REAL, resolution TEXT
    )""",
    """CREATE INDEX IF NOT EXISTS blockers_task ON blockers (task_id, blocker_id)""",
    """CREATE TABLE IF NOT EXISTS artifacts (
        artifact_id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL, agent_id TEXT NOT NULL, artifact_type TEXT NOT NULL,
        description TEXT NOT NULL, location TEXT, created_at REAL NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,          -- bytes of the data as JSON, 0 for none
        run INTEGER NOT NULL DEFAULT 1            -- the run of its task that logged it
    )""",
    """CREATE TABLE IF NOT EXISTS artifact_data (
        artifact_id INTEGER PRIMARY KEY,          -- the artifact's id; no row when it has no data
        data TEXT NOT NULL                        -- JSON
    )""",
    """CREATE INDEX IF NOT EXISTS artifacts_task ON artifacts (task_id, artifact_id)""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL, task_id TEXT, agent_id TEXT, attempt INTEGER,
        at REAL NOT NULL, detail TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE INDEX IF NOT EXISTS events_task ON events (task_id, id)""",
    """CREATE INDEX IF NOT EXISTS events_kind ON events (kind, id)""",
)

# Statements that bring a file of an older version to the next one, by the version they start from.
_UPGRADES: Final[dict[str, tuple[str, ...]]] = {
    # 2 -> 3: artifact data moves to its own table; `size` remembers how big it is.
    "2": (
        "ALTER TABLE artifacts ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
        "INSERT INTO artifact_data (artifact_id, data) SELECT artifact_id, data FROM artifacts WHERE data IS NOT NULL",
        "UPDATE artifacts SET size = length(CAST(data AS BLOB)) WHERE data IS NOT NULL",
        "ALTER TABLE artifacts DROP COLUMN data",
    ),
    # 3 -> 4: runs (rerun_task) and deregistration.
    "3": (
        "ALTER TABLE tasks ADD COLUMN run INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE artifacts ADD COLUMN run INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE agents ADD COLUMN deregistered_at REAL",
    ),
    # 4 -> 5: the progress log is capped per task; the task counts what was dropped.
    "4": ("ALTER TABLE tasks ADD COLUMN progress_dropped INTEGER NOT NULL DEFAULT 0",),
}


def _adds_a_column_already_there(conn: sqlite3.Connection, statement: str) -> bool:
    """`ALTER TABLE t ADD COLUMN c ...` where `t` already has `c`: a table STATEMENTS just made
    for a file that lacked it has every column of this version from the start."""
    words = statement.split()
    if words[:2] != ["ALTER", "TABLE"] or words[3:5] != ["ADD", "COLUMN"]:
        return False
    return any(row[1] == words[5] for row in conn.execute(f"PRAGMA table_info({words[2]})"))


def upgrade(conn: sqlite3.Connection, found: str) -> str:
    """Upgrade a file at version `found` as far as this stub knows how (inside the caller's
    transaction, after STATEMENTS made any missing tables); the version it is at now."""
    while found in _UPGRADES:
        for statement in _UPGRADES[found]:
            if not _adds_a_column_already_there(conn, statement):
                conn.execute(statement)
        found = str(int(found) + 1)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (found,))
    return found
