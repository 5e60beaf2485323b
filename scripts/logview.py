"""`make logs`: the fleet's JSON log lines, readable on a terminal.

    docker compose logs -f | python3 scripts/logview.py

The containers log JSON lines (one object a line: what log shippers and `jq` want), so a
person reading `docker compose logs` got walls of braces. On a terminal this prints each
line as `service | 12:00:01 info     task_received  task_id=unit-tests attempt=1`, with the
level coloured and an exception's traceback on the lines after it; lines that are not JSON
(Compose's own messages, a crash before logging was set up) are printed as they are.

Piped anywhere else (`make logs | jq ...`, a file), or with LOG_RAW=1, every line is one JSON
object, which `jq` reads: Compose puts `testing-worker-1  | ` in front of each line, so the
prefix goes and becomes the object's `service` field (unless it has one), and a line that is
not a JSON object becomes `{"service": ..., "event": <the line>, "raw": true}`.

Standard library only: it runs with the host's python3, before any venv exists.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, TextIO

SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a container's name, as Compose prefixes it
LEVEL_COLOURS = {"debug": "2", "info": "32", "warning": "33", "error": "31;1", "critical": "31;1"}
SKIP = ("event", "level", "timestamp", "logger", "exception")


def _colour(text: str, code: str, on: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if on else text


def _plain(value: Any) -> str:
    """The value as one line of inert text: control characters (a log is data) shown as escapes."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _value(value: Any) -> str:
    shown = _plain(value)
    return f"'{shown}'" if (" " in shown or not shown) else shown


def render(line: str, colour: bool) -> str:
    """One log line for people; unchanged if it is not a JSON log object."""
    prefix, sep, rest = line.partition("| ")
    body = rest if sep else line
    if not sep:
        prefix = ""
    try:
        entry = json.loads(body)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "event" not in entry:
        return line
    stamp = str(entry.get("timestamp", ""))
    clock = stamp[11:19] if len(stamp) >= 19 else stamp
    level = str(entry.get("level", "")).lower()
    fields = " ".join(f"{k}={_value(v)}" for k, v in entry.items() if k not in SKIP and v is not None)
    head = (
        f"{prefix}{sep}{_colour(clock, '2', colour)} "
        f"{_colour(f'{level:<8}', LEVEL_COLOURS.get(level, '0'), colour)} {_plain(entry['event'])}"
    )
    text = f"{head}  {fields}" if fields else head
    trace = entry.get("exception")
    if isinstance(trace, str) and trace:
        text += "\n" + "\n".join(f"{prefix}{sep}    {ln}" for ln in trace.rstrip().splitlines())
    return text


def as_json(line: str) -> str:
    """One log line as one JSON object: Compose's prefix as `service`, other text as `event`."""
    prefix, sep, rest = line.partition("| ")
    service, body = (
        (prefix.strip(), rest) if sep and prefix.strip() and " " not in prefix.strip() else ("", line)
    )
    try:
        entry = json.loads(body)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        entry = {"event": body, "raw": True}
    if service and "service" not in entry:
        entry = {"service": service, **entry}
    return json.dumps(entry, ensure_ascii=False)


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    readable = stdout.isatty() and not os.environ.get("LOG_RAW")
    colour = readable and not os.environ.get("NO_COLOR")
    try:
        for raw in stdin:
            line = raw.rstrip("\n")
            if not line.strip() and not readable:
                continue
            stdout.write((render(line, colour) if readable else as_json(line)) + "\n")
            stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
