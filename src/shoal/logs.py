"""Logging set-up for entry points: the one place shoal installs handlers.

Library modules only call `logging.getLogger(__name__)` with `extra={"event": ...}`; an entry
point (`shoal server`, `shoal worker`, `shoal demo`, a user's own script) calls `configure` once.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal, TextIO

__all__ = ["JsonFormatter", "configure"]

#: Fields of `extra=` that the JSON format carries when a record has them.
_EXTRA_FIELDS = ("event", "job_id", "worker_id", "queue", "task", "address", "namespace")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, shoal's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        data: dict[str, object] = {
            "at": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA_FIELDS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure(
    fmt: Literal["text", "json"] | str = "text",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    """Send every log record at `level` or above to `stream` (standard error by default).

    Replaces the root logger's handlers, so calling it twice does not duplicate lines.

    Args:
        fmt: `text` (a timestamped line) or `json` (one object per line, for log shippers).
        level: A logging level name: debug, info, warning, error or critical.
        stream: Where lines go; standard error keeps standard output for a command's result.

    Raises:
        ValueError: an unknown format or level.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    if level.upper() not in _LEVELS:
        raise ValueError(f"{level!r} is not a logging level")
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
