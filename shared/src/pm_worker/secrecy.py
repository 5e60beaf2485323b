"""Keeping the stub's token away from the work a worker runs.

A task's commands run as children of the worker, as the same user. Three ways the token
could reach them, and what closes each:

- Inherited environment: `forget_token_env()` drops PM_AGENT_TOKEN (and the file's path)
  from `os.environ` once settings are read, so children start without them.
- `/proc/<worker pid>/environ`: the kernel keeps the worker's *initial* environment there,
  whatever `os.environ` says later, readable by any process of the same user.
  `make_undumpable()` (`prctl(PR_SET_DUMPABLE, 0)`) makes the worker's /proc files
  root-owned, so a child running as the worker's non-root user cannot read them (nor
  ptrace the worker). Better still, `PM_AGENT_TOKEN_FILE` keeps the token out of the
  environment altogether: it is read once at start (`read_token_file`) and the file closed.
- Text the worker sends: `pm_worker.outgoing` replaces the token wherever it occurs in a
  report, so a command that prints it (e.g. read from a token file its user can read)
  still cannot publish it on the board.

What is not closed: a child running as root, or one that reads a token file its user may
read and sends it elsewhere itself. Run task commands as a user that cannot read the
secret if that matters (docs: README "Trust boundary").
"""

from __future__ import annotations

import ctypes
import os
import sys

from pm_protocol.endpoint import read_token_file as read_token_file  # re-exported: one reader for both ends

PR_SET_DUMPABLE = 4
TOKEN_VARIABLES = ("PM_AGENT_TOKEN", "PM_AGENT_TOKEN_FILE")


def make_undumpable() -> bool:
    """Linux: make this process non-dumpable (its /proc files root-owned). False where not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def forget_token_env() -> None:
    """Drop the token's variables from this process's environment, so children do not inherit them."""
    for name in [n for n in os.environ if n.upper() in TOKEN_VARIABLES]:  # settings read them in any case
        del os.environ[name]
