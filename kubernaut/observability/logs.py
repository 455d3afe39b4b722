"""Structured logs: ``request_id`` and ``incident_id`` on every record of the ``kubernaut`` loggers.

Inside a Serve replica, :func:`configure_logging` hands the ``kubernaut`` loggers' records to Ray Serve's
own logger, so they land in the replica's file in Ray's log directory
(``/tmp/ray/session_latest/logs/serve/replica_<app>_<deployment>_<id>.log``) — the file the Ray dashboard
shows under *Serve → replica → Logs*. With ``logging_config: {encoding: JSON}`` in the Serve config,
Serve's JSON formatter writes one object per line with its own fields (``deployment``, ``replica``,
``request_id`` of the HTTP request, ``application``) plus every extra attribute of the record: the
``request_id`` / ``incident_id`` (and other fields) bound here with :func:`log_context`.

Serve's filter sets ``request_id`` to the Serve request ID inside an HTTP request (the incoming
``X-Request-ID`` header, or one it generated): use :func:`serve_request_id` as the gateway's request ID
so the answer, the database row and the logs carry the same value.

Outside Serve (CLI, scripts, background tools) the records go to stderr, as JSON with
``json_output=True`` (:class:`JsonFormatter`, same field names as Ray's JSON logs).

Usage::

    configure_logging(config.log_level)          # once per replica, e.g. in ReplicaBase._setup
    with log_context(incident_id=incident_id):
        logger.info("analysis finished")         # → {"message": ..., "incident_id": 42, ...}
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

ROOT_LOGGER = "kubernaut"
SERVE_LOGGER = "ray.serve"

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("kubernaut_log_context", default=_EMPTY)

# Attributes every LogRecord has; anything else on a record is a structured field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # Ray's JSON formatter calls json.dumps without a default: never hand it objects


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind fields (``request_id``, ``incident_id``, ``workflow_id`` …) to every log record in this block.

    Context variables follow ``await`` and tasks created inside the block, so concurrent requests in one
    replica never see each other's IDs. ``None`` values are ignored.
    """
    merged = {**_context.get(), **{k: _jsonable(v) for k, v in fields.items() if v is not None}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    """The fields bound by the enclosing :func:`log_context` blocks."""
    return dict(_context.get())


def serve_request_id() -> str | None:
    """The Ray Serve request ID of the HTTP request being handled (``X-Request-ID`` or generated), if any."""
    try:
        from ray.serve.context import _get_serve_request_context

        return _get_serve_request_context().request_id or None
    except Exception:
        return None


class ContextFilter(logging.Filter):
    """Adds the bound fields to each record (record attributes set by ``extra=`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _jsonable(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, field names as in Ray's JSON logs (``asctime``, ``levelname``, ``message``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "asctime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
            + f",{int(record.msecs):03d}",
            "levelname": record.levelname,
            "name": record.name,
            "message": record.getMessage(),
            "filename": record.filename,
            "lineno": record.lineno,
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in out:
                out[key] = _jsonable(value)
        if record.exc_info:
            out["exc_text"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain text with the structured fields appended as ``key=value`` (like Ray's TEXT encoding)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD_ATTRS)
        text = super().format(record)
        return f"{text} {extras}" if extras else text


class _ServeForwardHandler(logging.Handler):
    """Hands records to Ray Serve's logger: its file handler, filters and (JSON) formatter."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logging.getLogger(SERVE_LOGGER).handle(record)
        except Exception:
            self.handleError(record)


def in_serve_replica() -> bool:
    try:
        from ray import serve

        serve.get_replica_context()
        return True
    except Exception:
        return False


def configure_logging(level: str | int = "INFO", *, json_output: bool = False) -> logging.Logger:
    """Route the ``kubernaut`` loggers (idempotent; call once per process or replica).

    In a Serve replica: into Serve's replica log (format from the Serve ``logging_config``). Elsewhere:
    stderr, JSON when ``json_output``. Propagation to the root logger is turned off so a record is
    written once, not a second time through a ``basicConfig`` handler on redirected stderr.
    """
    root = logging.getLogger(ROOT_LOGGER)
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_kubernaut", False):
            root.removeHandler(handler)
    handler: logging.Handler
    if in_serve_replica():
        handler = _ServeForwardHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if json_output else TextFormatter())
    handler._kubernaut = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.propagate = False
    return root
