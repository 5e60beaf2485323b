"""The HTTP client both providers use: an answer is read up to LLM_MAX_RESPONSE_BYTES, no further.

A model's answer is at most a few hundred KiB (`max_tokens` of text and tool calls);
an endpoint that sends more is broken or hostile, and reading it whole first would hold
it all in memory (a 256 MiB answer took the worker to 854 MiB). The transport counts the
body as it arrives and stops at the cap with `ResponseTooLarge`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2


class ResponseTooLarge(Exception):
    """The answer's body passed LLM_MAX_RESPONSE_BYTES; nothing of it is used."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the answer is larger than {limit} bytes (LLM_MAX_RESPONSE_BYTES); a model's answer "
            "never is: the endpoint is broken or not a model server"
        )
        self.limit = limit


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.inner:
            seen += len(chunk)
            if seen > self.limit:
                raise ResponseTooLarge(self.limit)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class CappedTransport(httpx2.AsyncBaseTransport):
    """An `AsyncHTTPTransport` whose response bodies stop at `limit` bytes."""

    def __init__(self, limit: int, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self.limit = limit
        self.inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        response.stream = _CappedStream(stream, self.limit)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def capped_client(
    limit: int, inner: httpx2.AsyncBaseTransport | None = None, **options: Any
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=CappedTransport(limit, inner), **options)
