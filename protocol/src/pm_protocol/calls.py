"""One typed call of a tool, the same at every end: the worker client, the operator CLI, the test kits.

    offer = await call(send, tools.request_next_task, {"agent_id": "w1", "wait_seconds": 5}, extra_timeout=5)
    offer.assignment                          # typed: a TaskOffer, as the tool table says

`call` checks the arguments with the tool's model (`InvalidCall`, nothing sent), sends what
the model dumps (`ToolArgs.wire()`: an omitted optional stays omitted), and reads the answer
with the tool's result model (`UnexpectedAnswer`). `send` is each end's own way to deliver a
call: it returns a success answer's JSON object and raises for an error answer, so each end
keeps its own decisions about errors (`pm_worker` reconnects and re-registers inside its
send and raises its `PMError`s; the CLI raises `OperatorError`; a test kit `Refused`).
"""

from __future__ import annotations

from typing import Any, Protocol

from pm_protocol.tools import A, R, Tool


class Send(Protocol):
    """Delivers one call; the answer's JSON object, or an exception for an error answer.

    `extra_timeout` is added to the call's own timeout (a long-poll waits that much longer).
    """

    async def __call__(
        self, tool: str, arguments: dict[str, Any], *, extra_timeout: float = 0.0
    ) -> dict[str, Any]: ...


async def call(send: Send, tool: Tool[A, R], args: A | dict[str, Any], *, extra_timeout: float = 0.0) -> R:
    """Call `tool` with `args` (its argument model, or a dict of it) through `send`; its result model."""
    checked = tool.arguments(args)
    return tool.read(await send(tool.name, checked.wire(), extra_timeout=extra_timeout))
