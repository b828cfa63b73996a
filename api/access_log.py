"""Access log: one JSON object per request on one line, and the logging set-up that prints it."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging

LOGGER_NAME = "rolesearch.access"


def access_logger() -> logging.Logger:
    """The logger the request middleware writes to; `serve` gives it a handler."""
    return logging.getLogger(LOGGER_NAME)


def access_line(method: str, path: str, route: str, status: int, seconds: float, client: str | None) -> str:
    """One request as a JSON line; the query string is left out (it holds what people search for)."""
    return json.dumps(
        {
            "ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "latency_ms": round(seconds * 1000, 2),
            "client": client,
        },
        ensure_ascii=True,  # a path may hold anything; escaped, the line stays one valid line
    )


def uvicorn_log_config() -> dict:
    """Uvicorn's logging set-up plus the access logger printing bare JSON lines to stdout."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["json_line"] = {"format": "%(message)s"}
    config["handlers"]["json_access"] = {
        "class": "logging.StreamHandler", "formatter": "json_line", "stream": "ext://sys.stdout",
    }
    config["loggers"][LOGGER_NAME] = {"handlers": ["json_access"], "level": "INFO", "propagate": False}
    return config
