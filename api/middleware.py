"""ASGI middleware: request metrics and access log, and the request body size limit."""

from __future__ import annotations

import logging
import time

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolesearch.api.access_log import access_line
from rolesearch.api.errors import json_error
from rolesearch.api.metrics import UNMATCHED_ROUTE, Metrics


class RequestObserver:
    """Times every HTTP request, counts it by route template and status, and logs it as one JSON line."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log: logging.Logger | None = None) -> None:
        self.app, self.metrics, self.log = app, metrics, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - t0
            # The router leaves the matched route in the scope; its template keeps the label set small.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.observe_request(scope["method"], route, status, seconds)
            if self.log is not None:
                client = scope.get("client")
                self.log.info(access_line(scope["method"], scope["path"], route, status, seconds,
                                          client[0] if client else None))


# Bodies over the limit are still read (and thrown away) up to this size before the 413 goes out: a server
# that closes a socket with unread data makes the kernel send a reset, which can destroy the 413 before a
# client that writes its whole body before reading (urllib, requests) has read it.
DRAIN_BYTES = 16 * 1024 * 1024


class BodySizeLimit:
    """Refuses request bodies over max_bytes with a 413, by Content-Length or while the body streams in.

    The rest of the body is drained (up to drain_bytes) before answering, so the client gets the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int = DRAIN_BYTES) -> None:
        self.app, self.max_bytes, self.drain_bytes = app, max_bytes, drain_bytes

    def _message(self, size: int | None = None) -> str:
        got = f"{size:,} bytes" if size is not None else "larger"
        return f"request body is {got}, over the limit of {self.max_bytes:,} bytes"

    async def _drain(self, receive: Receive, received: int = 0) -> None:
        """Read and discard what is left of the body, stopping past drain_bytes or at a disconnect."""
        while received <= self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            received += len(message.get("body", b""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # A client waiting for "100 Continue" has sent nothing yet: answering at once spares the upload.
            if int(declared) <= self.drain_bytes and headers.get(b"expect", b"").lower() != b"100-continue":
                await self._drain(receive)
            await json_error(413, self._message(int(declared)))(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if message.get("more_body", False):
                        await self._drain(receive, seen)
                    # FastAPI re-raises an HTTPException met while reading the body, so this becomes the 413.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited_receive, send)


class PrivateResponses:
    """Marks every response private to its reader: `Cache-Control: private` and `Vary` on the identity headers.

    Answers depend on who asks (groups, token), so a shared cache in front must neither keep one reader's
    answer for another nor serve it by URL alone.
    """

    def __init__(self, app: ASGIApp, vary: list[str]) -> None:
        self.app = app
        self.vary = ", ".join(vary).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                vary = [v for k, v in headers if k.lower() == b"vary"]
                headers = [(k, v) for k, v in headers if k.lower() != b"vary"]
                headers += [(b"cache-control", b"private"),
                            (b"vary", b", ".join([*vary, self.vary]) if vary else self.vary)]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_private)
