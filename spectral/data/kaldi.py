"""Kaldi data directories: ``wav.scp``, ``utt2spk``, ``spk2utt``, ``spk2gender``, ``trials/``.

Files are sorted as Kaldi sorts them (``LC_ALL=C``: by bytes) and written atomically:
a directory is assembled under a temporary name beside its destination and renamed
into place, so a killed stage never leaves a data directory that looks finished.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from spectral.errors import InputError

TRIAL_LABELS = ("target", "nontarget")


def c_sorted(items: Iterable[str]) -> list[str]:
    """Sort strings by their UTF-8 bytes, as ``LC_ALL=C sort`` does."""
    return sorted(items, key=lambda s: s.encode("utf-8"))


def write_table(path: str | Path, rows: Mapping[str, str]) -> None:
    """Write ``key value`` lines sorted by key, C order."""
    with open(path, "w", encoding="utf-8") as f:
        for key in c_sorted(rows):
            f.write(f"{key} {rows[key]}\n")


def read_table(path: str | Path) -> dict[str, str]:
    """Read ``key value...`` lines into a dict; refuses blank keys and duplicates, naming the line."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split(maxsplit=1)
            if len(parts) != 2:
                raise InputError(path, f"expected '<key> <value>', got {line.rstrip()!r}", n)
            if parts[0] in out:
                raise InputError(path, f"duplicate key {parts[0]!r}", n)
            out[parts[0]] = parts[1]
    return out


def spk2utt_from(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk into speaker -> sorted utterances."""
    groups: dict[str, list[str]] = defaultdict(list)
    for utt in c_sorted(utt2spk):
        groups[utt2spk[utt]].append(utt)
    return dict(groups)


def read_trials(path: str | Path) -> list[tuple[str, str, str]]:
    """Read a Kaldi trials file (``enroll test target|nontarget``), checking every line."""
    trials = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 3:
                raise InputError(path, f"expected 'enroll test target|nontarget', got {line.rstrip()!r}", n)
            if parts[2] not in TRIAL_LABELS:
                raise InputError(path, f"unknown label {parts[2]!r} (expected target or nontarget)", n)
            trials.append((parts[0], parts[1], parts[2]))
    if not trials:
        raise InputError(path, "no trials")
    return trials


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of this very process: not in use
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(dest: Path) -> None:
    """Remove temporary siblings of ``dest`` left by killed runs (their process is gone)."""
    for p in dest.parent.glob(f".{dest.name}.*-*"):
        kind, _, pid = p.name[len(dest.name) + 2 :].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``dest``; on success it replaces ``dest``.

    On an exception the temporary directory is removed and ``dest`` is left as it was;
    temporary directories of killed runs are removed first.
    """
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dest)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(dest)


def write_data_dir(
    out: str | Path,
    wav_scp: Mapping[str, str],
    utt2spk: Mapping[str, str],
    spk2gender: Mapping[str, str] | None = None,
) -> None:
    """Write ``wav.scp``, ``utt2spk``, ``spk2utt`` (and ``spk2gender``) into directory ``out``."""
    out = Path(out)
    if set(wav_scp) != set(utt2spk):
        raise ValueError("wav.scp and utt2spk must cover the same utterances")
    write_table(out / "wav.scp", wav_scp)
    write_table(out / "utt2spk", utt2spk)
    write_table(out / "spk2utt", {s: " ".join(u) for s, u in spk2utt_from(utt2spk).items()})
    if spk2gender:
        speakers = set(utt2spk.values())
        write_table(out / "spk2gender", {s: g for s, g in spk2gender.items() if s in speakers})


def write_trials(path: str | Path, trials: Iterable[tuple[str, str, str]]) -> int:
    """Write ``enroll test label`` lines in the given order; returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for enroll, test, label in trials:
            f.write(f"{enroll} {test} {label}\n")
            n += 1
    return n
