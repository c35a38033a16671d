"""Logging set-up for the command line: readable text by default, JSON lines on request."""

from __future__ import annotations

import logging
import sys

import orjson

from chatcore.settings import LoggingSettings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": int(record.created * 1000),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)  # structured fields (e.g. the access log's)
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def setup_logging(
    settings: LoggingSettings, *, one_shot: bool = False, verbose: bool = False
) -> None:
    """Log to stderr at `settings.level`. A `one_shot` command (not a server) shows warnings and
    errors only; `verbose` shows INFO messages at least."""
    level = logging.getLevelNamesMapping()[settings.level]
    if verbose:
        level = min(level, logging.INFO)
    elif one_shot:
        level = max(level, logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party access logs (and Alembic's set-up chatter) are chatty at INFO; our own loggers
    # say what matters ("database schema upgraded from 0006 to 0007").
    for noisy in ("hypercorn.access", "websockets.server", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
