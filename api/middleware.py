"""ASGI middleware: request metrics and access log, and the request body size limit."""

from __future__ import annotations

import logging
import time

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import access_line
from api.errors import json_error
from api.metrics import UNMATCHED_ROUTE, Metrics


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


class BodySizeLimit:
    """Refuses request bodies over max_bytes with a 413, by Content-Length or while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _message(self, size: int | None = None) -> str:
        got = f"{size:,} bytes" if size is not None else "larger"
        return f"request body is {got}, over the limit of {self.max_bytes:,} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await json_error(413, self._message(int(declared)))(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body, so this becomes the 413.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited_receive, send)
