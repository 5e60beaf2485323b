"""A fake model endpoint for the LLM worker's tests: a real HTTP server on 127.0.0.1.

It speaks both dialects on one port and replays a script of replies, one per model call:

- ``POST /v1/messages``: the Anthropic Messages API (`tool_use` blocks)
- ``POST /v1/chat/completions``: OpenAI chat completions (`tool_calls`)
- ``GET /v1/models``: the model list (both dialects' start-up checks)

Every request is recorded (path, JSON body, headers, arrival time) so a test can check
what the worker sent back: tool results, their error flags, the system prompt.

    fake = FakeModel().start()
    fake.script([turn(call("list_dir", {"path": "."})), turn(call("finish", {"summary": "done"}))])
    ... ANTHROPIC_BASE_URL=fake.anthropic_url  or  LLM_BASE_URL=fake.openai_url ...
    fake.stop()
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MODEL_ID = "fake-model"


@dataclass
class Call:
    name: str
    arguments: dict[str, Any] | None = None
    raw: str | None = None  # sent verbatim instead of `arguments` (OpenAI: broken JSON text)


@dataclass
class Reply:
    calls: list[Call] = field(default_factory=list)
    text: str = ""
    usage: tuple[int, int] = (100, 20)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def call(name: str, arguments: dict[str, Any] | None = None, *, raw: str | None = None) -> Call:
    return Call(name, arguments if arguments is not None else ({} if raw is None else None), raw)


def turn(*calls: Call, text: str = "", usage: tuple[int, int] = (100, 20)) -> Reply:
    return Reply(list(calls), text, usage)


def http_error(status: int, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, headers=headers or {})


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeModel:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.repeat_last = False
        self.requests: list[Recorded] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- the script ----------------------------------------------------------------

    def script(self, replies: list[Reply], *, repeat_last: bool = False) -> None:
        with self._lock:
            self.replies = list(replies)
            self.repeat_last = repeat_last
            self.requests = []

    def _next(self) -> Reply | None:
        with self._lock:
            if len(self.replies) > 1 or (self.replies and not self.repeat_last):
                return self.replies.pop(0)
            return self.replies[0] if self.replies else None

    # -- the server ----------------------------------------------------------------

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeModel:
        app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-model", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake model server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _record(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        with self._lock:
            self.requests.append(Recorded(request.url.path, body, dict(request.headers), time.monotonic()))
        return dict(body)

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "type": "model"}]}
        )

    async def _messages(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        reply = self._next()
        if reply is None:
            return JSONResponse(
                {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "fake: script exhausted"},
                },
                status_code=400,
            )
        if reply.status != 200:
            return JSONResponse(
                {
                    "type": "error",
                    "error": {
                        "type": "rate_limit_error" if reply.status == 429 else "api_error",
                        "message": f"fake {reply.status}",
                    },
                },
                status_code=reply.status,
                headers=reply.headers,
            )
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for c in reply.calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{next(self._ids)}",
                    "name": c.name,
                    "input": c.arguments if c.raw is None else c.raw,
                }
            )
        return JSONResponse(
            {
                "id": f"msg_{next(self._ids)}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": content,
                "stop_reason": "tool_use" if reply.calls else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]},
            }
        )

    async def _chat(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        reply = self._next()
        if reply is None:
            return JSONResponse(
                {"error": {"message": "fake: script exhausted", "type": "invalid_request_error"}},
                status_code=400,
            )
        if reply.status != 200:
            return JSONResponse(
                {"error": {"message": f"fake {reply.status}", "type": "rate_limit"}},
                status_code=reply.status,
                headers=reply.headers,
            )
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": c.raw if c.raw is not None else json.dumps(c.arguments),
                    },
                }
                for c in reply.calls
            ]
        return JSONResponse(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.calls else "stop"}
                ],
                "usage": {
                    "prompt_tokens": reply.usage[0],
                    "completion_tokens": reply.usage[1],
                    "total_tokens": sum(reply.usage),
                },
            }
        )

    # -- what the worker sent ------------------------------------------------------

    def tool_results(self, index: int) -> list[dict[str, Any]]:
        """The tool results carried by request `index`, as {"id", "content", "is_error"} in both dialects."""
        body = self.requests[index].body
        out: list[dict[str, Any]] = []
        if self.requests[index].path.endswith("/messages"):
            last = body["messages"][-1]
            for block in last["content"] if isinstance(last["content"], list) else []:
                if block.get("type") == "tool_result":
                    out.append(
                        {
                            "id": block["tool_use_id"],
                            "content": _text(block.get("content")),
                            "is_error": bool(block.get("is_error")),
                        }
                    )
            return out
        for msg in reversed(body["messages"]):
            if msg.get("role") != "tool":
                break
            content = str(msg.get("content"))
            out.insert(
                0, {"id": msg["tool_call_id"], "content": content, "is_error": content.startswith("ERROR:")}
            )
        return out

    def system_prompt(self, index: int = 0) -> str:
        body = self.requests[index].body
        if "system" in body:
            return _text(body["system"])
        return str(body["messages"][0]["content"])

    def first_user_text(self, index: int = 0) -> str:
        body = self.requests[index].body
        messages = body["messages"]
        first = messages[0] if "system" in body else messages[1]
        return _text(first["content"])


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)
