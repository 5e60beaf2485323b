"""Put tasks on a Marcus SQLite board with Marcus's own `SQLiteKanban` (runs in Marcus's venv).

stdin: `{"db_path", "project_name", "tasks": [{"key", "name", "description", "priority",
"estimated_hours", "labels", "dependencies", "project_id"}, ...]}`; a dependency may name an
earlier task's `key`. stdout (last line): `{key: Marcus task id}`. Works while the server
runs: Marcus re-reads the board on every request.
"""

import asyncio
import json
import sys

from src.integrations.providers.sqlite_kanban import SQLiteKanban  # type: ignore[import-not-found]


async def seed(spec: dict) -> dict:  # type: ignore[type-arg]
    board = SQLiteKanban({"db_path": spec["db_path"], "project_name": spec.get("project_name", "fleet")})
    await board.connect()
    ids: dict[str, str] = {}
    for task in spec["tasks"]:
        data = dict(task)
        key = data.pop("key")
        data["dependencies"] = [ids.get(dep, dep) for dep in data.get("dependencies", [])]
        created = await board.create_task(data)
        ids[key] = created.id
    return ids


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed(json.load(sys.stdin)))))
