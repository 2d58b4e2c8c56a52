"""The server's log: text for a person at a terminal, one JSON object per line for a
machine (LIVEBLOG_LOG_FORMAT; `auto`, the default, picks JSON unless stderr is a
terminal).

Each request but reader streams gets one line (web/app.py) with its method, route template,
path (never the query string), status, duration, client address and request id. Nothing
else from the request is logged: no headers, so no Authorization, cookie or token. Every
other line logged while a request is handled carries its request id too (in JSON).
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["auto", "text", "json"]
# The request being handled, for every line logged meanwhile.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None)
# An X-Request-ID we take from a client (or its proxy) as it is: short, and only
# characters that cannot break a log line or a header.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
# What a LogRecord has of itself; anything else on it came as `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message", "taskName"}


def request_id_from(incoming: bytes | None) -> str:
    """The client's X-Request-ID if it is a sane one, else a new one."""
    if incoming is not None:
        text = incoming.decode("latin-1")
        if _SANE_REQUEST_ID.fullmatch(text):
            return text
    return secrets.token_hex(16)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id when there
    is one, what the call passed as `extra`, and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            line["request_id"] = current
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def resolve(log_format: LogFormat) -> Literal["text", "json"]:
    if log_format == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return log_format


def log_config(log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's logging configuration (handed to every worker), with liveblog's loggers
    on the same handlers, in text or JSON."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    # The app's access lines are whole messages (uvicorn's access formatter wants its own
    # five arguments), on stdout like uvicorn's.
    config["formatters"]["liveblog_access"] = {
        "()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"}
    config["handlers"]["liveblog_access"] = {
        "formatter": "liveblog_access", "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout"}
    if resolve(log_format) == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = "liveblog.logs.JsonFormatter"
    config["loggers"]["liveblog.access"] = {
        "handlers": ["liveblog_access"], "level": "INFO", "propagate": False,
    }
    config["loggers"]["liveblog"] = {
        "handlers": ["default"], "level": "INFO", "propagate": False,
    }
    return config
