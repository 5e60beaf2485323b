"""A worker that runs `payload.argv` (no shell) and blocks with what it printed.

What a task's command can see of the worker that runs it, made visible on the board: the
token-secrecy test runs it as a real process.

    PM_AGENT_URL=127.0.0.1:8000 AGENT_SKILLS=command python shared/tests/command_worker.py
"""

from __future__ import annotations

import asyncio

from pm_worker import Assignment, TaskBlocked, TaskContext, Worker, run


class CommandWorker(Worker):
    role = "command"
    name = "Command Worker"
    skills = ("command",)

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        argv = [str(a) for a in task.payload["argv"]]  # type: ignore[union-attr]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ctx.workspace
        )
        out, _ = await proc.communicate()
        raise TaskBlocked(f"exit {proc.returncode}; output:\n{out.decode(errors='replace')}")


if __name__ == "__main__":
    run(CommandWorker)
