"""Atomic output, one way for every stage: write beside, rename when complete.

A file or directory is written under a temporary name in the same folder,
``.<name>.tmp-<pid>``, and renamed over the destination only when complete, so a killed
or failed stage leaves the previous complete output as it was and never a file that
looks finished. Temporaries of killed runs (their process gone) are removed first.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from spectral.workers import pid_alive


def temp_name(dest: str | Path, kind: str = "tmp", suffix: str = "") -> Path:
    """``.<name>.<kind>-<pid><suffix>`` beside ``dest`` (``suffix`` for writers that infer
    the format from the name, e.g. ``.jsonl.gz``)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{kind}-{os.getpid()}{suffix}")


def _pid_alive(pid: int) -> bool:
    return pid != os.getpid() and pid_alive(pid)  # a leftover of this very process is not in use


_TEMP = re.compile(r"\.(?P<name>.+?)\.(?P<kind>tmp|old)-(?P<pid>[0-9]+)(?:\.[A-Za-z0-9.]+)?")


def remove_stale(dest: str | Path, any_name: bool = False) -> None:
    """Remove temporary siblings of ``dest`` left by killed runs (their process is gone);
    with ``any_name``, those of every file in ``dest``'s folder."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return
    for p in dest.parent.iterdir():
        m = _TEMP.fullmatch(p.name)
        if not m or (not any_name and m["name"] != dest.name) or _pid_alive(int(m["pid"])):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@contextmanager
def atomic_path(dest: str | Path, fsync: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path beside ``dest`` (ending in ``suffix``); when the block
    ends without an exception it replaces ``dest`` (flushed to disk first if ``fsync``),
    else it is removed."""
    dest = Path(dest)
    if dest.parent != Path(""):
        dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dest)
    tmp = temp_name(dest, suffix=suffix)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_paths(*dests: str | Path) -> Iterator[list[Path]]:
    """Temporary paths beside each of ``dests``; when the block ends without an exception
    they replace their destinations in the order given (put the file that marks the set
    complete last), else they are all removed and every destination is left as it was."""
    dests_ = [Path(d) for d in dests]
    for d in dests_:
        d.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(d)
    temps = [temp_name(d) for d in dests_]
    try:
        yield temps
        for tmp, dest in zip(temps, dests_):
            os.replace(tmp, dest)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``dest``; on success it replaces ``dest``.

    On an exception the temporary directory is removed and ``dest`` is left as it was;
    temporary directories of killed runs are removed first.
    """
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dest)
    tmp = temp_name(dest)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        old = temp_name(dest, "old")
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(dest)
