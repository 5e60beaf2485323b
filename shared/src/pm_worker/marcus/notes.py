"""What the Marcus dialect writes on Marcus's board, and why: each note in one place.

Marcus cannot take a task back, keep a checkpoint or read a payload field, so where the
stub would simply act the dialect leaves a note a person on Marcus's board can act on.
"""

from __future__ import annotations

ROUTING = "docs/marcus.md#routing"


def given_back(agent_id: str, reason: str) -> str:
    """The blocker on a task a worker gave back (Marcus would otherwise keep it on this agent)."""
    return (
        f"{agent_id} gave this task back ({reason}), and Marcus has no way to take a task back: blocked so "
        f"that it is not lost. Move it back to todo to offer it again ({ROUTING})."
    )


def held_unknown(agent_id: str, task_id: str, name: str) -> str:
    """The blocker on a task Marcus says this agent holds, which the held-task file does not know."""
    return (
        f"Marcus says {agent_id} holds task {task_id} ({name!r}), but this worker has no record of its "
        "assignment (the answer carrying it was lost, or PM_STATE_DIR is not the one the previous run "
        "used), so its inputs cannot be recovered. Move it back to todo to offer it again."
    )


def released(agent_id: str, reason: str) -> str:
    """The progress note for a release (Marcus has none)."""
    return (
        f"{reason} (Marcus has no release: {agent_id} resumes it when it restarts with the same id; "
        "otherwise Marcus re-offers it when the lease runs out)"
    )


def bad_payload(task_id: str, problem: str, role: str) -> str:
    """Why a task's `pm-payload` block cannot be read, and what to do."""
    return (
        f"Marcus task {task_id}: {problem}. Fix the pm-payload block in its description "
        f"(docs/workers.md#{role}) and move the task back to todo."
    )
