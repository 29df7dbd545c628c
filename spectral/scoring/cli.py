"""Logging of the scoring command lines (stage: score, report).

Messages go to standard error as ``time file:line LEVEL message`` (icefall style),
through a handler that looks up ``sys.stderr`` at each message, so redirections made
after start-up (tests, notebooks) are honoured.
"""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """A stream handler that always writes to the current ``sys.stderr``."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(prog: str, argv: list[str]) -> logging.Logger:
    """Send ``spectral`` log messages (INFO and up) to stderr and log the command line
    ``prog argv...`` first.  Returns the ``spectral`` logger."""
    logger = logging.getLogger("spectral")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(filename)s:%(lineno)d %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.info("%s %s", prog, " ".join(argv))
    return logger
