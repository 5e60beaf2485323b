"""The SQLite schema. Indexes are chosen so each call touches O(log n) rows, not the board.

- Each task's required skills, lower-cased and sorted, form its skill signature
  (`skill_sig`); `skill_sigs` lists the few distinct signatures. `tasks_ready` is a partial
  index over exactly the offerable tasks (todo, no pending dependency) by signature in
  offer order, so picking = one index probe per signature the agent satisfies, however many
  tasks the agent lacks skills for.
- `pending_deps` is a counter decremented when a dependency completes, so completing a
  task never rescans the board.
- `tasks_lease` finds expired leases without looking at tasks that have none.
- `tasks.run` counts the task's runs (1, then one more per `rerun_task`); each artifact
  carries the run that logged it, so a dependent is handed only its dependency's current
  results.

A file made by an older stub is brought up to date in place by `MIGRATIONS` (version ->
the statements that make it the next version); nothing is dropped.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 3

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
    """CREATE TABLE IF NOT EXISTS tasks (
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
        status           TEXT NOT NULL CHECK (status IN ('todo','in_progress','blocked','done')),
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
        run              INTEGER NOT NULL DEFAULT 1
    )""",
    """CREATE INDEX IF NOT EXISTS tasks_ready
        ON tasks (skill_sig, priority_rank DESC, created_seq)
        WHERE status = 'todo' AND pending_deps = 0""",
    """CREATE TABLE IF NOT EXISTS skill_sigs (sig TEXT PRIMARY KEY, skill_count INTEGER NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS tasks_lease ON tasks (lease_expires_at) WHERE status = 'in_progress'""",
    """CREATE INDEX IF NOT EXISTS tasks_holder ON tasks (holder) WHERE holder IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status)""",
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
        description TEXT NOT NULL, location TEXT, data TEXT, created_at REAL NOT NULL,
        run INTEGER NOT NULL DEFAULT 1
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

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    # 2 -> 3: runs (rerun_task) and deregistration.
    2: (
        "ALTER TABLE tasks ADD COLUMN run INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE artifacts ADD COLUMN run INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE agents ADD COLUMN deregistered_at REAL",
    ),
}
