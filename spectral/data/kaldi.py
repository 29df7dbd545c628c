"""Kaldi data directories: ``wav.scp``, ``utt2spk``, ``spk2utt``, ``spk2gender``, ``trials/``.

Files are sorted as Kaldi sorts them (``LC_ALL=C``: by bytes) and written atomically:
a directory is assembled under a temporary name beside its destination and renamed
into place, so a killed stage never leaves a data directory that looks finished.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

from spectral.atomic import atomic_dir, atomic_path, remove_stale  # noqa: F401  (re-exported)
from spectral.errors import InputError, read_utf8

TRIAL_LABELS = ("target", "nontarget")


def c_sorted(items: Iterable[str]) -> list[str]:
    """Sort strings by their UTF-8 bytes, as ``LC_ALL=C sort`` does."""
    return sorted(items, key=lambda s: s.encode("utf-8"))


def write_table(path: str | Path, rows: Mapping[str, str]) -> None:
    """Write ``key value`` lines sorted by key, C order, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for key in c_sorted(rows):
            f.write(f"{key} {rows[key]}\n")


def data_dir_utt2spk(data_dir: str | Path, missing: str = "missing (run the prepare stage first)",
                     allow_empty: bool = False) -> dict[str, str]:
    """``<data_dir>/utt2spk`` as utterance -> speaker; InputError naming the file when it is not
    there (``missing`` says what to do) or, unless ``allow_empty``, holds no utterances."""
    path = Path(data_dir) / "utt2spk"
    if not path.is_file():
        raise InputError(path, missing)
    utt2spk = read_table(path)
    if not utt2spk and not allow_empty:
        raise InputError(path, "holds no utterances")
    return utt2spk


def read_table(path: str | Path) -> dict[str, str]:
    """Read ``key value...`` lines into a dict; refuses blank keys and duplicates, naming the line."""
    out: dict[str, str] = {}
    lines = read_utf8(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        parts = line.rstrip("\r").split(maxsplit=1)
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
    """A Kaldi trials file as ``(enroll, test, target|nontarget)`` tuples, read (and every
    line checked) by the one trials reader, :func:`spectral.scoring.textfiles.read_trials`."""
    from spectral.scoring.textfiles import read_trials as read

    trials = read(path)
    labels = ["target" if t else "nontarget" for t in trials.is_target.tolist()]
    return list(zip(trials.enroll, trials.test, labels))


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
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for enroll, test, label in trials:
            f.write(f"{enroll} {test} {label}\n")
            n += 1
    return n
