"""The size limits of docs/protocol.md, in one place for the stub, the project file and the workers.

The stub refuses what exceeds them; `pm_worker` cuts what it sends to fit them, so a worker
never builds a report the stub must refuse."""

from __future__ import annotations

import json
import re
from typing import Final

MAX_ID: Final = 200
MAX_NAME: Final = 200
MAX_TEXT: Final = 10_000
MAX_SKILLS: Final = 64
MAX_SKILL_LEN: Final = 100
MAX_JSON_BYTES: Final = 256 * 1024
MAX_WAIT_SECONDS: Final = 30
# A project file sent to `load_project` (operator tool): its text, within the stub's 1 MiB
# request body even after JSON escaping. Bigger boards load as several files.
MAX_PROJECT_TEXT: Final = 768 * 1024

# Lists that grow with the board (agents, a task's progress log, blockers, artifacts) come
# in pages: at most `limit` entries (default PAGE_LIMIT, at most MAX_PAGE_LIMIT) and at most
# PAGE_BYTES of JSON (always at least one entry), so no answer grows with the board.
PAGE_LIMIT: Final = 100
MAX_PAGE_LIMIT: Final = 200
PAGE_BYTES: Final = 256 * 1024
MAX_CURSOR: Final = 1_000
# An artifact listed in an assignment or a task's context carries its `data` inline when it
# is at most INLINE_DATA_BYTES and the list's inline data stays within INLINE_BUDGET_BYTES;
# otherwise `data` is null, `data_included` false, and `get_artifact` returns it.
INLINE_DATA_BYTES: Final = 16 * 1024
INLINE_BUDGET_BYTES: Final = 128 * 1024
TASK_ID_PATTERN: Final = r"^[A-Za-z0-9._:@/-]+$"
TASK_ID_RE: Final = re.compile(TASK_ID_PATTERN)


def json_size(value: object) -> int:
    """Bytes of the compact JSON encoding: what the 256 KiB limits are measured on.

    Raises ValueError for NaN/Infinity: Python's json writes them, but they are not JSON, and
    stored they would come back in every answer carrying them, breaking strict clients.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        if "digits" in str(exc):  # Python refuses to write integers of more than 4,300 digits
            raise ValueError(
                "contains an integer too long to write as JSON (over 4,300 digits); send it as a string"
            ) from None
        raise ValueError(
            "contains NaN or Infinity, which are not JSON numbers; send null or a string instead"
        ) from None
    return len(text.encode())


_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: object) -> str:
    """Compact JSON (one encoder, built once: `json.dumps` with options builds one per call)."""
    return _ENCODER.encode(value)
