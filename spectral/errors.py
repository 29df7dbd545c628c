"""The one error type of every stage: bad input, named by file (and line).

Every command-line entry point runs its work through :func:`spectral.logutil.run_main`,
which prints an :class:`InputError` (or an ``OSError`` such as a full disk) as
``<prog>: error: <file>[:<line>]: <what>`` and exits with status 1, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input: the message names the file and, where there is one, the line.

    ``InputError(path, message, line=None)``; or ``InputError(text)`` where ``text``
    already begins with ``<file>[:<line>]: `` (the scoring readers build it so).
    Stages raise it before writing anything that looks complete.
    """

    def __init__(self, path: str | Path, message: str | None = None, line: int | None = None):
        if message is None:
            self.path, self.line, self.message = None, None, str(path)
            super().__init__(str(path))
            return
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        self.message = message
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # survive the trip back from a worker process
        if self.path is None:
            return (type(self), (self.message,))
        return (type(self), (self.path, self.message, self.line))


def decode_error(path: str | Path, data: bytes, err: UnicodeDecodeError) -> InputError:
    """An :class:`InputError` naming the line of ``data`` (the bytes of ``path``) that is not UTF-8."""
    line = data.count(b"\n", 0, err.start) + 1
    return InputError(path, f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})", line)


def read_utf8(path: str | Path) -> str:
    """The text of ``path``; a missing file or one that is not UTF-8 is an :class:`InputError`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise decode_error(path, data, err) from None
