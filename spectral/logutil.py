"""Logging and error reporting of every command-line entry point.

One set-up for all: messages go to the current ``sys.stderr`` (looked up at each message,
so redirections made after start-up are honoured) as ``time LEVEL [file:line] message``;
the command line and its arguments are logged first; bad input ends the command with
``<prog>: error: <file>[:<line>]: <what>`` and exit status 1 (:func:`run_main`).
"""

from __future__ import annotations

import argparse
import errno
import logging
import shlex
import sys
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from spectral.errors import InputError

FORMAT = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"


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


def command_parser(prog: str, description: str, example: str,
                   formatter_class: type[argparse.HelpFormatter] = argparse.RawDescriptionHelpFormatter,
                   **kwargs) -> argparse.ArgumentParser:
    """The argument parser of a command: ``description`` first, the command lines of ``example``
    (as typed, one per line; a trailing backslash continues one) last, under "example:"."""
    lines = "\n".join(f"  {line}" for line in example.strip("\n").splitlines())
    return argparse.ArgumentParser(prog=prog, description=description, epilog=f"example:\n{lines}",
                                   formatter_class=formatter_class, **kwargs)


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with time, file and line (icefall style)."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def log_command(prog: str, argv: list[str] | None = None) -> logging.Logger:
    """Set up logging and log ``prog argv...`` (``sys.argv`` when ``argv`` is None)."""
    setup_logging()
    log = logging.getLogger(prog)
    words = sys.argv[1:] if argv is None else list(argv)
    log.info("%s", " ".join(shlex.quote(a) for a in [prog, *words]))
    return log


def log_invocation(prog: str, args: argparse.Namespace, argv: list[str] | None = None) -> None:
    """Set up logging and log the command line and every parsed argument."""
    log = log_command(prog, argv)
    for key, value in sorted(vars(args).items()):
        log.info("  --%s %s", key.replace("_", "-"), value)


def describe_error(err: BaseException) -> str | None:
    """``<file>[:<line>]: <what>`` for an error that ends a command, or None for a bug."""
    if isinstance(err, InputError):
        return str(err)
    if isinstance(err, OSError):
        what = err.strerror or str(err)
        if err.errno == errno.ENOSPC:
            what = f"{what} (the disk is full; nothing complete-looking was written)"
        name = err.filename if err.filename is not None else "(output)"
        return f"{name}: {what}"
    if isinstance(err, BrokenProcessPool):
        return f"(worker): a worker process died ({err})"
    return None


def run_main(prog: str, work: Callable[[], object], errors: tuple[type[Exception], ...] = ()) -> int:
    """Run ``work``; bad input, an ``OSError`` (full disk, no permission), a dead worker
    (or one of ``errors``, whose message names the file) become
    ``<prog>: error: <file>[:<line>]: <what>`` on stderr and exit status 1."""
    try:
        work()
    except (InputError, OSError, BrokenProcessPool, *errors) as err:
        message = describe_error(err) or str(err)
        logging.getLogger(prog).debug("stopped", exc_info=True)
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return 1
    return 0
