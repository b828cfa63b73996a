"""One error shape everywhere, `{"detail": ...}`: handlers for validation and unexpected errors, and their docs."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rolesearch.api.models import ErrorResponse

log = logging.getLogger("rolesearch.errors")



def error_response(description: str, html_too: bool = False) -> dict[str, Any]:
    """OpenAPI for an error answered as JSON `{"detail": ...}` (and as a page for browsers if html_too).

    The JSON content is named explicitly: on an HTML route FastAPI would file the model under text/html.
    """
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    if html_too:
        content["text/html"] = {"schema": {"type": "string"}}
    return {"model": ErrorResponse, "description": description, "content": content}


# Documented on every operation (the body limit and the index apply to all of them).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: error_response("Malformed request (e.g. a body that is not UTF-8)"),
    413: error_response("Request body over the size limit"),
    500: error_response("Unexpected error (a bug; logged)"),
    503: error_response("No index loaded yet"),
}


class ErrorJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error may echo a key or value that is not valid UTF-8 text."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def json_error(status: int, detail: Any, headers: dict[str, str] | None = None) -> ErrorJSONResponse:
    """An error response in the one shape."""
    return ErrorJSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> ErrorJSONResponse:
    # FastAPI's shape (HTTPValidationError) without echoing the input back: it can be 5,000 characters,
    # infinite, or not encodable, and the message already says what is wrong.
    detail = [{"type": e.get("type", "value_error"), "loc": list(e.get("loc", ())), "msg": e.get("msg", "invalid")}
              for e in exc.errors()]
    return json_error(422, detail)


async def _unexpected_error(request: Request, exc: Exception) -> ErrorJSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_error(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Make validation and unexpected errors answer in the one shape (HTTP errors already do)."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
