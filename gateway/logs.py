"""Logging for ``broker-gateway``: one handler on the root logger, text or JSON lines, every record
carrying the id of the request it was logged for (``request_id``, ``null`` outside a request).

JSON records (python-json-logger) have ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
``request_id``, and ``exc_info`` when an exception is attached. uvicorn's loggers are made to
propagate to the root logger, so its lines take the same format and honour the same level.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from .request_id import current_request_id

__all__ = ["LogFormat", "RequestIdFilter", "adopt_uvicorn_loggers", "configure_logging"]

LogFormat = Literal["text", "json"]

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the current request's, see ``gateway.request_id``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
            try:
                return super().format(record)
            finally:
                record.request_id = None
        return super().format(record)


def _formatter(fmt: LogFormat) -> logging.Formatter:
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                                  datefmt="%Y-%m-%dT%H:%M:%SZ")
    else:
        formatter = _TextFormatter(TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime  # type: ignore[assignment]  # UTC, as the "Z" says
    return formatter


def configure_logging(level: str = "warning", fmt: LogFormat = "text", stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one writing ``fmt`` lines to ``stream`` (stderr) at
    ``level`` (``debug`` … ``error``); returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter(fmt))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    adopt_uvicorn_loggers()
    return handler


def adopt_uvicorn_loggers(*, access_log: bool = False) -> None:
    """Undo uvicorn's own logging set-up (each ``uvicorn.Config`` installs its handlers and levels):
    its loggers propagate to the root handler and follow the root level. The access log stays off
    unless ``access_log`` (uvicorn writes it whenever ``uvicorn.access`` has a handler, root included)."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = access_log if name == "uvicorn.access" else True
        logger.setLevel(logging.NOTSET)
