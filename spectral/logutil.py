"""Logging for command-line entry points: time, file and line; the arguments first."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from typing import Callable

from spectral.errors import InputError

FORMAT = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with time, file and line (icefall style)."""
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr, force=True)


def log_invocation(prog: str, args: argparse.Namespace) -> None:
    """Set up logging and log the command line and every parsed argument."""
    setup_logging()
    log = logging.getLogger(prog)
    log.info("%s", " ".join(shlex.quote(a) for a in sys.argv))
    for key, value in sorted(vars(args).items()):
        log.info("  --%s %s", key.replace("_", "-"), value)


def run_main(prog: str, work: Callable[[], object], errors: tuple[type[Exception], ...] = ()) -> int:
    """Run ``work``; bad input (or one of ``errors``, a stage's own way of stopping)
    becomes ``<prog>: error: <message>`` and exit status 1."""
    try:
        work()
    except (InputError, *errors) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0
