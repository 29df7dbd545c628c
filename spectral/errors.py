"""Errors that stop a stage with a message naming the file (and line) at fault."""

from __future__ import annotations

from pathlib import Path


class InputError(RuntimeError):
    """Bad input: the message names the file and, where there is one, the line.

    Stages raise it before writing anything that looks complete; command-line entry
    points print it as ``<prog>: error: <message>`` and exit with status 1.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        self.message = message
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # survive the trip back from a worker process
        return (type(self), (self.path, self.message, self.line))
