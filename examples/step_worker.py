"""A minimal worker that shows checkpoints and resume; the chaos tests and benchmarks run it.

Each task is `payload.steps` steps (default 3) of `payload.step_seconds` each (default 0).
After every step it stores a checkpoint `{"next_step": i}`; a worker that is handed the
task again (after a kill, a SIGTERM release or a lease expiry) starts from that step and
records in the completion message where it resumed from, so tests can check it. With
`payload.ledger` set, each step appends a line to that file in the workspace — a
visible side effect, for proving which steps ran where.

    PM_AGENT_URL=127.0.0.1:8000 AGENT_ID=step-1 python examples/step_worker.py
"""

from __future__ import annotations

import asyncio
import os

from pm_worker import Assignment, TaskContext, TaskReleased, Worker, run


class StepWorker(Worker):
    role = "steps"
    name = "Step Worker"
    skills = ("steps",)

    async def execute(self, task: Assignment, ctx: TaskContext) -> str:
        steps = int(task.payload.get("steps", 3))
        step_seconds = float(task.payload.get("step_seconds", 0))
        start = int((task.checkpoint or {}).get("next_step", 0)) if isinstance(task.checkpoint, dict) else 0
        ledger = ctx.resolve(task.payload["ledger"], must_exist=False) if task.payload.get("ledger") else None
        for step in range(start, steps):
            if step_seconds:
                await asyncio.sleep(step_seconds)
            if ledger is not None:
                ledger.parent.mkdir(parents=True, exist_ok=True)
                with ledger.open("a") as fh:
                    fh.write(f"{task.task_id} step {step} by {self.agent_id} pid {os.getpid()}\n")
            await ctx.checkpoint({"next_step": step + 1}, message=f"step {step + 1}/{steps} done")
            if ctx.stopping:
                raise TaskReleased(f"stopping after step {step + 1}/{steps}; resume from the checkpoint")
        return f"{steps} steps done, resumed from step {start}"


if __name__ == "__main__":
    run(StepWorker)
