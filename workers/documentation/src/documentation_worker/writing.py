"""Writing a task's pages: through folder handles, resumable, and with refusals told as such.

A page is written through a handle on its folder (:mod:`documentation_worker.safefs`); a
checkpoint after each page lets a resumed task skip what is already there; the lists an
artifact or a checkpoint carries are cut to a budget so they always fit on the board. A
`PermissionError` leaves with the page's full path, so the blocker pm_worker makes of it
names the real folder, its owner and the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from documentation_worker.safefs import UnsafePath, full_path_error, is_file_in, opened_dir, write_file
from documentation_worker.sources import Found
from pm_worker import TaskBlocked, TaskContext
from pm_worker.clip import clip

__all__ = [
    "LIST_BUDGET",
    "listed",
    "output_folder",
    "pages_checkpoint",
    "resumed_pages",
    "skipped_note",
    "write_markdown",
    "write_page",
]

#: Bytes of file names an artifact or a checkpoint lists (the stub stores at most 256 KiB of either).
LIST_BUDGET = 64 * 1024


@contextlib.contextmanager
def output_folder(ctx: TaskContext, folder: Path, shown: str) -> Iterator[int]:
    """A handle on the checked output folder (made if missing), every component opened without following links.

    A `PermissionError` from what the body does through the handle leaves naming the file in full."""
    try:
        with opened_dir(ctx.workspace, folder.relative_to(ctx.workspace), create=True) as fd:
            yield fd
    except PermissionError as exc:  # a name relative to the handle (a page, the manifest): name it in full
        if exc.filename is not None and not Path(str(exc.filename)).is_absolute():
            raise full_path_error(exc, folder / str(exc.filename)) from None
        raise
    except UnsafePath as exc:
        raise TaskBlocked(
            f"payload.output {shown!r}: {exc}; give a folder inside the workspace", "high"
        ) from None


async def write_page(folder_fd: int, folder: Path, name: str, text: str, shown: str) -> None:
    """Write one page in the output folder; a failure is a blocker naming it."""
    try:
        await asyncio.to_thread(write_file, folder_fd, name, text)
    except PermissionError as exc:
        raise full_path_error(exc, folder / name) from None
    except (OSError, UnsafePath) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TaskBlocked(f"cannot write {name} in {shown}: {reason}", "high") from None


async def write_markdown(ctx: TaskContext, output: Path, shown: str, text: str) -> None:
    """Write a single-page output (tutorial, report) through a handle on its folder."""
    with output_folder(ctx, output.parent, str(PurePosixPath(shown).parent)) as fd:
        await write_page(fd, output.parent, output.name, text, shown)


def resumed_pages(checkpoint: Any, kind: str, output: str, out_fd: int) -> set[str]:
    """Pages an earlier attempt wrote (per its checkpoint) that are still in the output folder."""
    if (
        not isinstance(checkpoint, dict)
        or checkpoint.get("kind") != kind
        or checkpoint.get("output") != output
    ):
        return set()
    written = checkpoint.get("written")
    if not isinstance(written, list):
        return set()
    return {name for name in written if isinstance(name, str) and is_file_in(out_fd, name)}


def pages_checkpoint(kind: str, output: str, done: set[str]) -> dict[str, Any]:
    """The checkpoint after a page: the pages written so far, as many as fit in its budget.

    A resumed task rewrites the pages not listed (``not_listed`` counts them): cheap, and the
    checkpoint never grows past what the stub stores."""
    data: dict[str, Any] = {"kind": kind, "output": output, **listed("written", sorted(done))}
    if "written_not_listed" in data:
        data["not_listed"] = data.pop("written_not_listed")
    return data


def listed(key: str, names: list[str], budget: int = LIST_BUDGET) -> dict[str, Any]:
    """``{key: names}``, cut to ``budget`` bytes of names, with ``{key}_not_listed`` counting the rest."""
    kept, size = [], 0
    for name in names:
        size += len(name.encode()) + 3
        if size > budget:
            break
        kept.append(name)
    data: dict[str, Any] = {key: kept}
    if len(kept) < len(names):
        data[f"{key}_not_listed"] = len(names) - len(kept)
    return data


def _few(names: list[str], shown: int) -> str:
    text = "; ".join(clip(entry, 300) for entry in names[:shown])
    return text + (f"; and {len(names) - shown} more" if len(names) > shown else "")


def skipped_note(found: Found, shown: int = 5) -> str:
    """What was not read and which tests were left out, for the end of a message (each ~2,000 characters at most)."""
    note = f" (not read: {_few(found.skipped, shown)})" if found.skipped else ""
    if found.tests:
        note += f" (left out as tests: {_few(found.tests, shown)}; payload.include_tests documents them)"
    return note
