"""Logging: JSON lines (structlog) for machines, or plain text on a terminal.

Every process (`serve` workers, `worker`) configures the standard library's
root logger once, so our own loggers, uvicorn's and SQLAlchemy's all come
out in one format.

Some URL paths carry a secret: the customer's page is ``/s/<token>``, and
anyone holding the token holds the card. Every line is written with those
segments redacted (``redact_paths``), whichever logger wrote it: the access
log (``kit/access.py``, which redacts its own lines), an error's message, a traceback.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

_configured = False

# Path prefixes whose next segment is a secret: the stamp page's token, and
# the single-use code pages to come. Add a prefix here and it is redacted.
SECRET_PATH_PREFIXES = ("/s/", "/c/")
REDACTED = "<redacted>"
_SECRET_SEGMENT = re.compile(
    "(" + "|".join(re.escape(prefix) for prefix in SECRET_PATH_PREFIXES) + r")[^/?#\s\"']+"
)


def redact_paths(text: str) -> str:
    """``text`` with the secret segment of every secret path replaced:
    ``GET /s/Ab3…/qr.svg`` becomes ``GET /s/<redacted>/qr.svg``."""
    return _SECRET_SEGMENT.sub(lambda match: match.group(1) + REDACTED, text)


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, with secret path segments redacted from the whole
    line (message, values and traceback alike)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_paths(super().format(record))


def uses_json(fmt: str) -> bool:
    """True when lines are JSON: ``fmt`` json, or auto with stderr not a terminal."""
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def writes_info(level: str) -> bool:
    """True when a log at ``level`` (a name such as ``warning``) keeps info lines."""
    threshold = logging.getLevelName(level.upper())
    return not isinstance(threshold, int) or threshold <= logging.INFO


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Route all logging through structlog's formatter; ``fmt`` is json, text or auto."""
    global _configured
    if _configured:
        return
    _configured = True
    use_json = uses_json(fmt)
    shared: list[structlog.types.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    formatter = _RedactingFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The app writes the access log itself (kit/access.py). uvicorn decides
    # per connection whether to write its own line from whether this logger
    # has a handler, its parents' included: none, and no propagation.
    # httpx logs every request it sends at info: a second line per webhook
    # delivery, which the delivery log already records (webhooks/dispatcher.py).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False


def _keep(
    logger: object, method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event
