"""The tutorial's `python pm_agent_mcp_server.py`: the PM Agent stub over stdio on PM_AGENT_DB."""

from pm_agent_stub.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["serve", "--transport", "stdio"]))
