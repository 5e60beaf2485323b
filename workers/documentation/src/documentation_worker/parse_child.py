"""The parser child (`python -m documentation_worker.parse_child MEMORY_MB`): see :mod:`.parsing`.

It imports only :mod:`ast` and the worker's own syntax-tree reader, caps its own address
space, and answers one JSON line per request until its stdin closes. A `MemoryError` or
`RecursionError` from a hostile file becomes an answer naming the problem; anything
worse ends this process, which the worker reports with the file it was reading.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import resource
import sys
from typing import Any, BinaryIO

from documentation_worker.apidoc import SourceError, parse_source


def answer(name: str, path: str, data: bytes, memory_mb: int) -> dict[str, Any]:
    """``{"module": facts}`` or ``{"error": {"line", "problem"}}`` for one file."""
    try:
        return {"module": dataclasses.asdict(parse_source(name, data, path))}
    except SourceError as exc:
        return {"error": {"line": exc.line, "problem": exc.problem}}
    except MemoryError:
        return {
            "error": {
                "line": None,
                "problem": (
                    f"too large or too deeply nested to parse within DOCS_PARSE_MEMORY_MB={memory_mb} (MemoryError)"
                ),
            }
        }
    except RecursionError:
        return {"error": {"line": None, "problem": "nested too deeply to document (RecursionError)"}}


def serve(memory_mb: int, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Cap this process's address space, then answer requests until ``stdin`` closes."""
    limit = memory_mb << 20
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        header = stdin.readline()
        if not header:
            return
        request = json.loads(header)
        data = stdin.read(int(request["size"]))
        try:
            out = json.dumps(answer(request["name"], request["path"], data, memory_mb))
        except MemoryError:  # the facts themselves did not fit
            out = json.dumps(
                {
                    "error": {
                        "line": None,
                        "problem": (
                            f"too large to document within DOCS_PARSE_MEMORY_MB={memory_mb} (MemoryError)"
                        ),
                    }
                }
            )
        stdout.write(out.encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
