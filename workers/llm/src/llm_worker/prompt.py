"""What the model is told: the tutorial's system prompt, fitted to this worker, and the assignment.

The upstream tutorial ("Integration with Claude") gives the model its identity, its
tools and the board's workflow. Here the worker itself registers, asks for work and
reports the outcome (leases, heartbeats and retries are `pm_worker`'s job), so the
model's tools are the task's: its files, progress, blockers, artifacts and `finish`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llm_worker.conversation import truncate
from pm_worker import Assignment

SYSTEM_PROMPT = """\
You are an autonomous AI worker connected to PM Agent.

Your identity:
- Agent ID: {agent_id}
- Role: {role}
- Skills: {skills}

Available tools:
- list_dir, read_file, write_file: the files of the task's folder ({folder}); paths are relative to it
- report_progress: update the task's progress (percent and a message)
- report_blocker: report an issue you cannot get past; it ends the task as blocked
- log_artifact: record something you produced (a file, a report) so later tasks can use it
- finish: end the task with a summary of what you did

Workflow (you are already registered, and this task is assigned to you):
1. Read the assignment below, then look at the files you need
2. Complete the work using your skills, writing results into the task's folder
3. Report progress regularly
4. Handle blockers intelligently: try to solve problems yourself first; report a blocker only when you \
cannot go on, saying what is missing and what would fix it
5. When the work is done, log what you produced as artifacts and call finish with a summary

Rules of the board:
- Work only on this task; do only what its description and instructions ask.
- Paths outside the task's folder (absolute paths, '..' that leaves it, symlinks out of it) are refused.
- A tool error is a message to you: read it, correct the call and go on.
- You have at most {max_steps} turns and {max_tokens} tokens for this task. If they run out before \
you call finish, the task is reported blocked.
- Ask for at most {max_calls} tool calls in one turn: a turn with more runs none of them and ends the task.
- Only finish completes the task; a reply without a tool call does nothing.
"""

NUDGE = (
    "Your reply had no tool call, so nothing happened. Continue the task with the tools; call finish "
    "with a summary when it is done, or report_blocker if you cannot go on."
)


def system_prompt(
    *,
    agent_id: str,
    role: str,
    skills: Sequence[str],
    folder: str,
    max_steps: int,
    max_tokens: int,
    max_calls: int,
) -> str:
    return SYSTEM_PROMPT.format(
        agent_id=agent_id,
        role=role,
        skills=", ".join(skills) or "(none)",
        folder=folder,
        max_steps=max_steps,
        max_tokens=max_tokens,
        max_calls=max_calls,
    )


def _json(value: Any, limit: int) -> str:
    return truncate(json.dumps(value, indent=2, sort_keys=True, default=str), limit)


def assignment_message(task: Assignment, *, folder: str, resumed: dict[str, Any] | None = None) -> str:
    """The first user message: everything the board says about the task."""
    parts = [
        f"# Assignment: {task.task_name}",
        f"Task id: {task.task_id} (attempt {task.attempt}, priority {task.priority})",
        f"Task folder: {folder}",
    ]
    if task.required_skills:
        parts.append(f"Required skills: {', '.join(task.required_skills)}")
    parts.append(f"\n## Description\n{task.description or '(none)'}")
    parts.append(f"\n## Instructions\n{task.instructions or '(none)'}")
    if task.payload:
        parts.append(f"\n## Payload\n```json\n{_json(task.payload, 4000)}\n```")
    if task.dependency_artifacts:
        lines = ["\n## Artifacts of the tasks this one depends on"]
        for art in task.dependency_artifacts[:50]:
            line = f"- [{art.task_id}] {art.artifact_type}: {truncate(art.description, 500)}"
            if art.location:
                line += f" (location: {art.location})"
            if not art.data_included:  # too big to travel with the assignment
                line += f"\n  data: {art.size or 0:,} bytes, not shown"
            elif art.data is not None:
                line += f"\n  data: {_json(art.data, 1500)}"
            lines.append(line)
        parts.append("\n".join(lines))
    if resumed:
        files = resumed.get("files_written") or []
        parts.append(
            "\n## Earlier attempt\n"
            f"A previous attempt of this task stopped after {resumed.get('steps', 0)} model turns"
            + (f" and wrote: {', '.join(map(str, files))}" if files else " without writing files")
            + ". Check what is already there before redoing work."
        )
    elif task.checkpoint is not None:
        parts.append(f"\n## Checkpoint from an earlier attempt\n```json\n{_json(task.checkpoint, 2000)}\n```")
    return "\n".join(parts)
