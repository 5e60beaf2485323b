"""A fake model endpoint for the LLM worker's tests: a real HTTP server on 127.0.0.1.

It speaks both dialects on one port and replays a script of replies, one per model call:

- ``POST /v1/messages``: the Anthropic Messages API (`tool_use` blocks)
- ``POST /v1/chat/completions``: OpenAI chat completions (`tool_calls`)
- ``GET /v1/models``: the model list (both dialects' start-up checks)

Every request is recorded (path, JSON body, headers, size, arrival time) so a test can check
what the worker sent back: tool results, their error flags, the system prompt, how big it got.

It can also be hostile, as a broken or malicious endpoint would be (`Reply` fields):
``usage`` may lie (negative, or any JSON as ``raw_usage``), ``trickle_every`` sends a
byte of whitespace that often and never the answer, ``pad_bytes`` makes the answer's text
that many bytes long (streamed, so the fake itself stays small), and a turn may ask for
hundreds of tool calls.

    fake = FakeModel().start()
    fake.script([turn(call("list_dir", {"path": "."})), turn(call("finish", {"summary": "done"}))])
    ... ANTHROPIC_BASE_URL=fake.anthropic_url  or  LLM_BASE_URL=fake.openai_url ...
    fake.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODEL_ID = "fake-model"
KEEP_BODY_BYTES = 4 * 1024 * 1024  # bigger request bodies are measured, not kept (nor parsed)
PAD_CHUNK = 1024 * 1024


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
    raw_usage: Any = None  # sent as the usage object instead of `usage` (any JSON: a lie)
    trickle_every: float | None = None  # a byte of whitespace this often, for ever; never the answer
    pad_bytes: int = 0  # the answer's text is this many bytes of "x" (streamed)


def call(name: str, arguments: dict[str, Any] | None = None, *, raw: str | None = None) -> Call:
    return Call(name, arguments if arguments is not None else ({} if raw is None else None), raw)


def turn(*calls: Call, text: str = "", usage: tuple[int, int] = (100, 20)) -> Reply:
    return Reply(list(calls), text, usage)


def trickle(every: float = 0.5) -> Reply:
    """An answer that starts (200, headers) and then trickles whitespace for ever."""
    return Reply(trickle_every=every)


def huge_answer(pad_bytes: int) -> Reply:
    """An answer whose text is `pad_bytes` long."""
    return Reply(pad_bytes=pad_bytes)


def http_error(status: int, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, headers=headers or {})


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]  # {} when the body was over KEEP_BODY_BYTES
    headers: dict[str, str]
    at: float
    size: int = 0  # bytes of the request body, as sent


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
        raw = await request.body()
        body = json.loads(raw) if len(raw) <= KEEP_BODY_BYTES else {}
        with self._lock:
            self.requests.append(
                Recorded(request.url.path, body, dict(request.headers), time.monotonic(), len(raw))
            )
        return dict(body)

    def _usage(self, reply: Reply, anthropic: bool) -> Any:
        if reply.raw_usage is not None:
            return reply.raw_usage
        if anthropic:
            return {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]}
        return {
            "prompt_tokens": reply.usage[0],
            "completion_tokens": reply.usage[1],
            "total_tokens": sum(reply.usage),
        }

    def _answer(self, reply: Reply, answer: dict[str, Any], text_at: list[Any]) -> Response:
        """`answer` as JSON; trickled or padded (the text at the path `text_at`) if the reply says so."""
        if reply.trickle_every is not None:
            return StreamingResponse(_trickle(reply.trickle_every), media_type="application/json")
        if not reply.pad_bytes:
            return JSONResponse(answer)
        holder: Any = answer
        for key in text_at[:-1]:
            holder = holder[key]
        holder[text_at[-1]] = "\x00PAD\x00"
        before, after = json.dumps(answer).split('"\\u0000PAD\\u0000"')
        return StreamingResponse(
            _padded(before.encode() + b'"', reply.pad_bytes, b'"' + after.encode()),
            media_type="application/json",
        )

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "type": "model"}]}
        )

    async def _messages(self, request: Request) -> Response:
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
        if reply.text or reply.pad_bytes:
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
        answer = {
            "id": f"msg_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": "tool_use" if reply.calls else "end_turn",
            "stop_sequence": None,
            "usage": self._usage(reply, anthropic=True),
        }
        return self._answer(reply, answer, ["content", 0, "text"])

    async def _chat(self, request: Request) -> Response:
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
        answer = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.calls else "stop"}
            ],
            "usage": self._usage(reply, anthropic=False),
        }
        return self._answer(reply, answer, ["choices", 0, "message", "content"])

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


async def _trickle(every: float) -> AsyncIterator[bytes]:
    while True:
        yield b" "
        await asyncio.sleep(every)


async def _padded(before: bytes, size: int, after: bytes) -> AsyncIterator[bytes]:
    yield before
    chunk = b"x" * PAD_CHUNK
    left = size
    while left > 0:
        yield chunk[: min(left, PAD_CHUNK)]
        left -= PAD_CHUNK
        await asyncio.sleep(0)
    yield after


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)
