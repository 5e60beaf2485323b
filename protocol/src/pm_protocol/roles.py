"""The worker roles this fleet ships: their skills and the payload keys each one accepts.

The stub checks a project file against this table when it is loaded (an unknown skill is
warned about, a payload key the likely worker refuses is refused) without importing any
worker code: the table is data. Each worker's own class is the truth (`Worker.skills`,
`Worker.payload_model`); tests/protocol/test_roles.py checks this table against them, so
the two cannot drift apart unnoticed.

A role marked `optional` is not part of the default fleet (the LLM worker needs a model
endpoint and is started on request): it counts as a taker of a task only once an agent of
that role has registered, so a documentation task with a misspelt key is not waved through
because an LLM worker, were one running, would accept anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Role:
    """One kind of worker: its role name, default skills (lower-case) and accepted payload keys."""

    name: str
    skills: frozenset[str]
    payload_keys: frozenset[str] | None
    """None: the worker takes any payload (it has no payload model)."""
    optional: bool = False

    @property
    def first_skill(self) -> str:
        """The skill to name in `required_skills` to reach this role (its role name when it has it)."""
        return self.name if self.name in self.skills else sorted(self.skills)[0]


ROLES: Final[tuple[Role, ...]] = (
    Role(
        "documentation",
        frozenset({"documentation", "markdown", "api-docs", "tutorials"}),
        frozenset({"kind", "path", "output", "api_docs", "title", "include_tests", "include_private"}),
    ),
    Role(
        "testing",
        frozenset({"testing", "pytest", "unit-testing", "integration-testing"}),
        frozenset({"path", "command", "timeout_seconds", "report", "env"}),
    ),
    Role(
        "devops",
        frozenset({"docker", "ci/cd", "deployment", "monitoring"}),
        frozenset(
            {
                "context",
                "dockerfile",
                "tag",
                "build_args",
                "smoke_command",
                "expect_output",
                "smoke_timeout_seconds",
                "build_timeout_seconds",
                "pull",
                "nocache",
            }
        ),
    ),
    Role("llm", frozenset({"python", "documentation", "code-review"}), None, optional=True),
)

ROLES_BY_NAME: Final[dict[str, Role]] = {r.name: r for r in ROLES}
