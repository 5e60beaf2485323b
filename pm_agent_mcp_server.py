"""The tutorial's `python pm_agent_mcp_server.py`: the PM Agent stub over stdio on PM_AGENT_DB.

The upstream tutorial's worker spawns `python pm_agent_mcp_server.py` with whatever `python`
is first on its PATH, often one without this project's packages. So this file runs under any
Python 3: if that Python cannot import the stub, it hands over (exec, same arguments, same
stdio) to the project's own interpreter in `.venv/` next to it; if there is none, it says in
one line how to make it. Nothing but the MCP stream is ever written to stdout.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PYTHON = os.path.join(HERE, ".venv", "bin", "python")
HANDED_OVER = "PM_AGENT_MCP_SERVER_REEXEC"  # set on the hand-over, so it happens at most once


def _project_python():
    """The project's interpreter, unless it is the one already running (or missing)."""
    if not os.access(VENV_PYTHON, os.X_OK) or os.environ.get(HANDED_OVER):
        return None
    if os.path.realpath(sys.prefix) == os.path.realpath(os.path.join(HERE, ".venv")):
        return None
    return VENV_PYTHON


try:
    from pm_agent_stub.cli import main
except ImportError as exc:
    found = _project_python()
    if found is not None:
        os.environ[HANDED_OVER] = "1"
        os.execv(found, [found, os.path.abspath(__file__), *sys.argv[1:]])
    sys.stderr.write(
        f"pm_agent_mcp_server.py: {sys.executable} cannot import the PM Agent stub ({exc}). "
        f"Create the project's environment with `make install` in {HERE}, then run this again "
        f"(it uses {VENV_PYTHON} by itself), or run it with that interpreter.\n"
    )
    raise SystemExit(1) from None

if __name__ == "__main__":
    raise SystemExit(main(["serve", "--transport", "stdio"]))
