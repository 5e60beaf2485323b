"""An in-memory fake of the stub's tools, for unit tests of the client and the loop.

It implements just enough of docs/protocol.md to drive a worker: register, one queue,
leases by holder, progress/checkpoints, blockers, release, heartbeat. It can be told to
drop the connection on the Nth call, to test reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from pm_worker.connection import Reply
from pm_worker.errors import TransportError
from pm_worker.settings import WorkerSettings


@dataclass
class FakeBoard:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_calls: set[int] = field(default_factory=set)  # call numbers (1-based) that lose the connection
    connects: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    after_call: Any = None  # called with (tool name, arguments) after each answered call

    def add_task(self, task_id: str, **extra: Any) -> None:
        self.tasks[task_id] = {"task_id": task_id, "task_name": extra.pop("task_name", task_id), "status": "todo",
                               "holder": None, "checkpoint": None, "attempt": 0, "payload": extra.pop("payload", {}),
                               "required_skills": extra.pop("required_skills", []), "log": [], **extra}
        self.changed.set()

    def connection(self, settings: WorkerSettings) -> FakeConnection:
        return FakeConnection(self)

    def tool_names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _err(self, code: str, message: str) -> Reply:
        return Reply(True, {"success": False, "error": code, "message": message})

    async def handle(self, name: str, args: dict[str, Any]) -> Reply:
        agent = args.get("agent_id")
        if name != "register_agent" and agent is not None and agent not in self.agents:
            return self._err("agent_not_registered", "register first")
        if name == "register_agent":
            self.agents[args["agent_id"]] = dict(args)
            return ok({"success": True, "message": "registered", "agent_data": {**args, "registered_at": "now"}})
        if name == "request_next_task":
            deadline = asyncio.get_running_loop().time() + float(args.get("wait_seconds", 0))
            while True:
                held = self._held_by(agent)
                if held:
                    return ok({"success": True, "has_task": True, "assignment": self._assignment(held)})
                for task in self.tasks.values():
                    if task["status"] == "todo":
                        task.update(status="in_progress", holder=agent, attempt=task["attempt"] + 1)
                        return ok({"success": True, "has_task": True, "assignment": self._assignment(task)})
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return ok({"success": True, "has_task": False, "message": "none", "retry_after_seconds": 0.01})
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)
        task = self.tasks.get(args.get("task_id", ""))
        if name == "heartbeat":
            held = self._held_by(agent)
            return ok({"success": True, "current_task": held["task_id"] if held else None})
        if task is None:
            return self._err("task_not_found", "no such task")
        if name == "report_task_progress":
            if task["status"] == "done" and task.get("completed_by") == agent:
                return ok({"acknowledged": True, "status": "already_complete"})
            if task["holder"] != agent:
                return self._err("not_task_holder", "not yours")
            task["log"].append((args["status"], args["progress"], args["message"]))
            if "checkpoint" in args:
                task["checkpoint"] = args["checkpoint"]
            if args["status"] == "completed":
                task.update(status="done", holder=None, completed_by=agent)
                self.changed.set()
                return ok({"acknowledged": True, "status": "task_completed"})
            return ok({"acknowledged": True, "status": "progress_recorded"})
        if task["holder"] != agent:
            return self._err("not_task_holder", "not yours")
        if name == "report_blocker":
            task.update(status="blocked", holder=None, blocker=(args["blocker_description"], args["severity"]))
            return ok({"success": True, "blocker_id": 1, "resolution_suggestion": "fix it"})
        if name == "release_task":
            task.update(status="todo", holder=None, released=args["reason"])
            self.changed.set()
            return ok({"success": True, "message": "released"})
        if name == "log_artifact":
            task.setdefault("artifacts", []).append(args)
            return ok({"success": True, "artifact_id": len(task["artifacts"])})
        return self._err("invalid_argument", f"unknown tool {name}")

    def _held_by(self, agent: Any) -> dict[str, Any] | None:
        return next((t for t in self.tasks.values() if t["holder"] == agent and t["status"] == "in_progress"), None)

    def _assignment(self, task: dict[str, Any]) -> dict[str, Any]:
        return {"task_id": task["task_id"], "task_name": task["task_name"], "attempt": task["attempt"],
                "payload": task["payload"], "checkpoint": task["checkpoint"],
                "required_skills": task["required_skills"]}


def ok(payload: dict[str, Any]) -> Reply:
    return Reply(False, payload)


class FakeConnection:
    def __init__(self, board: FakeBoard) -> None:
        self.board = board
        self._alive = False

    @property
    def alive(self) -> bool:
        return self._alive

    async def open(self) -> None:
        self.board.connects += 1
        await asyncio.sleep(0.01)  # connecting takes time: concurrent callers can race here
        self._alive = True

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> Reply:
        if not self._alive:
            raise TransportError("not connected")
        self.board.calls.append((name, dict(arguments)))
        if len(self.board.calls) in self.board.fail_calls:
            self._alive = False
            raise TransportError(f"{name}: connection lost (injected)")
        answer = await self.board.handle(name, arguments)
        if self.board.after_call is not None:
            self.board.after_call(name, arguments)
        return answer

    async def close(self) -> None:
        self._alive = False
