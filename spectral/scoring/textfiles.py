"""Plain-text files of the score stage, read strictly and written atomically (stage: score).

The contracts between stages are Kaldi text files, one record a line, fields separated
by blanks:

- trials (``data/<set>/trials/<name>``): ``enroll test target|nontarget``
- scores (``exp/<system>/scores/<name>.score``): ``enroll test score``
- labelled scores (input of ``compute-eer``): ``score target|nontarget``
- ``spk2utt``: ``speaker utt1 utt2 ...`` (also used as an enroll map ``model utt1 ...``)
- ``utt2spk``: ``utt speaker``

Every reader refuses a malformed line with an :class:`InputFormatError` whose message
names the file, the 1-based line number and the line, as Kaldi's tools do.  Blank lines
are refused too (Kaldi's ``compute-eer`` does the same).  Scores are parsed as Python
floats; NaN is refused (Kaldi would sort it with undefined results), infinities are
accepted as Kaldi accepts them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spectral.atomic import atomic_write_text  # noqa: F401  (re-exported for the score stage)
from spectral.errors import InputError, decode_error, read_utf8

TARGET = "target"
NONTARGET = "nontarget"


#: The one error type of every stage (:class:`spectral.errors.InputError`), under its old name.
InputFormatError = InputError


def display_name(path: str | Path) -> str:
    """Return how ``path`` is named in messages (``-`` is standard input)."""
    return "standard input" if str(path) == "-" else str(path)


def read_text(path: str | Path) -> str:
    """Return the whole text of ``path`` (``-`` reads standard input).

    Raises :class:`InputError` when the file does not exist or is not UTF-8 (naming the line).
    """
    if str(path) == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise decode_error(display_name(path), data, err) from None
    return read_utf8(path)


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# The ASCII characters str.split() separates fields on (\n ends a line as well).
_ASCII_BLANK = np.zeros(128, dtype=bool)
_ASCII_BLANK[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def _fields_per_line(text: str) -> np.ndarray | None:
    """Number of blank-separated fields on each ``\n``-ended line of ASCII ``text``,
    counted with numpy over the bytes (no per-line Python objects); None when the text
    is not ASCII."""
    if not text.isascii():
        return None
    chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    blank = _ASCII_BLANK[chars]
    starts = ~blank
    starts[1:] &= blank[:-1]
    newlines = np.flatnonzero(chars == 10)
    n_lines = newlines.size + (0 if text.endswith("\n") else 1)
    return np.bincount(np.searchsorted(newlines, np.flatnonzero(starts)), minlength=n_lines)


def _columns(text: str, path: str | Path, nfields: int, what: str) -> list[list[str]]:
    """Split ``text`` (lines of exactly ``nfields`` blank-separated fields) into columns.

    Returns ``nfields`` lists of strings; refuses empty input and a line with another
    count, naming file and line.  ASCII text (the usual case) is checked with numpy and
    split in one call, which keeps a million lines well under a second.
    """
    if not text:
        raise InputFormatError(f"{display_name(path)}: empty input (expected lines '{what}')")
    counts = _fields_per_line(text)
    if counts is None:
        counts = np.fromiter(map(len, map(str.split, _lines(text))), dtype=np.int64)
    bad = np.flatnonzero(counts != nfields)
    if bad.size:
        i = int(bad[0])
        raise InputFormatError(f"{display_name(path)}:{i + 1}: invalid line (must have {nfields} "
                               f"fields, '{what}'): {_lines(text)[i]!r}")
    tokens = text.split()
    return [tokens[i::nfields] for i in range(nfields)]


def _rows(text: str, path: str | Path, min_fields: int, what: str) -> list[list[str]]:
    """Split ``text`` into rows of at least ``min_fields`` blank-separated fields.

    Returns the rows; refuses empty input and a shorter line, naming file and line.
    """
    lines = _lines(text)
    if not lines:
        raise InputFormatError(f"{display_name(path)}: empty input (expected lines '{what}')")
    rows = [line.split() for line in lines]
    for i, row in enumerate(rows):
        if len(row) < min_fields:
            raise InputFormatError(
                f"{display_name(path)}:{i + 1}: invalid line (must have at least "
                f"{min_fields} fields, '{what}'): {lines[i]!r}")
    return rows


def _parse_scores(tokens: list[str], path: str | Path) -> np.ndarray:
    """Parse score strings into a float64 array, refusing non-numbers and NaN."""
    try:
        if "_" in "".join(tokens):  # float() accepts '1_0'; Kaldi does not
            raise ValueError
        values = np.fromiter(map(float, tokens), dtype=np.float64, count=len(tokens))
    except ValueError:
        for i, tok in enumerate(tokens):
            try:
                if "_" in tok:
                    raise ValueError
                float(tok)
            except ValueError:
                raise InputFormatError(
                    f"{display_name(path)}:{i + 1}: invalid score (must be a number): "
                    f"{tok!r}") from None
        raise
    nan = np.isnan(values)
    if nan.any():
        i = int(np.argmax(nan))
        raise InputFormatError(f"{display_name(path)}:{i + 1}: score is NaN: {tokens[i]!r}")
    return values


def _parse_labels(tokens: list[str], path: str | Path) -> np.ndarray:
    """Map ``target``/``nontarget`` to a bool array, refusing any other label."""
    if not set(tokens) <= {TARGET, NONTARGET}:
        for i, tok in enumerate(tokens):
            if tok not in (TARGET, NONTARGET):
                raise InputFormatError(
                    f"{display_name(path)}:{i + 1}: invalid label {tok!r} "
                    f"(must be 'target' or 'nontarget')")
    return np.fromiter(map(TARGET.__eq__, tokens), dtype=bool, count=len(tokens))


def read_labelled_scores(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``score target|nontarget`` lines (``-`` = standard input).

    Returns ``(scores, is_target)``: float64 and bool arrays in file order.  Refuses, as
    Kaldi's ``compute-eer`` does, a line without two fields, a non-numeric score, an
    unknown label and empty input (and, unlike Kaldi, a NaN score).
    """
    score_tokens, label_tokens = _columns(read_text(path), path, 2, "<score> target|nontarget")
    is_target = _parse_labels(label_tokens, path)
    scores = _parse_scores(score_tokens, path)
    return scores, is_target


@dataclass(frozen=True)
class Trials:
    """A trials file: parallel lists of enroll and test ids and a bool target array."""

    path: str
    enroll: tuple[str, ...]
    test: tuple[str, ...]
    is_target: np.ndarray

    def __len__(self) -> int:
        return len(self.enroll)


def read_trials(path: str | Path) -> Trials:
    """Read a Kaldi trials file (``enroll test target|nontarget``) into :class:`Trials`.

    Refuses empty input, a line without three fields and an unknown label.
    """
    enroll, test, labels = _columns(read_text(path), path, 3, "enroll test target|nontarget")
    return Trials(str(path), tuple(enroll), tuple(test), _parse_labels(labels, path))


@dataclass(frozen=True)
class PairScores:
    """A score file: parallel lists of enroll and test ids and a float64 score array."""

    path: str
    enroll: tuple[str, ...]
    test: tuple[str, ...]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.enroll)


def read_pair_scores(path: str | Path) -> PairScores:
    """Read a score file (``enroll test score``) into :class:`PairScores`.

    Refuses empty input, a line without three fields, a non-numeric or NaN score.
    """
    enroll, test, scores = _columns(read_text(path), path, 3, "enroll test score")
    return PairScores(str(path), tuple(enroll), tuple(test), _parse_scores(scores, path))


def label_scores(scores: PairScores, trials: Trials,
                 require_all: bool = False) -> np.ndarray:
    """Return the bool target array of every scored pair, looked up in ``trials``.

    As Kaldi's ``compute_min_dcf.py``: a scored pair that is not in the trials is refused
    (naming the score file, line and pair); trials without a score are ignored unless
    ``require_all`` is set, in which case the first unscored trial is refused.
    """
    if scores.enroll == trials.enroll and scores.test == trials.test:
        return trials.is_target
    # Ids hold no blanks, so 'enroll test' names a pair uniquely (as in Kaldi's script).
    trial_keys = list(map(" ".join, zip(trials.enroll, trials.test)))
    lookup = dict(zip(trial_keys, trials.is_target.tolist()))
    score_keys = list(map(" ".join, zip(scores.enroll, scores.test)))
    try:
        labels = np.fromiter(map(lookup.__getitem__, score_keys), dtype=bool, count=len(score_keys))
    except KeyError:
        for i, key in enumerate(score_keys):
            if key not in lookup:
                raise InputFormatError(
                    f"{scores.path}:{i + 1}: scored pair '{key}' is not in the trials "
                    f"{trials.path}") from None
        raise
    if require_all:
        scored = set(score_keys)
        if not scored.issuperset(trial_keys):
            for i, key in enumerate(trial_keys):
                if key not in scored:
                    raise InputFormatError(f"{trials.path}:{i + 1}: trial '{key}' has no score in "
                                           f"{scores.path}")
    return labels


def read_spk2utt(path: str | Path) -> dict[str, list[str]]:
    """Read a ``spk2utt``-like map (``speaker utt1 utt2 ...``); returns speaker -> utts.

    Refuses empty input, a line with fewer than two fields and a repeated speaker.
    """
    rows = _rows(read_text(path), path, 2, "speaker utt1 [utt2 ...]")
    out: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        if row[0] in out:
            raise InputFormatError(f"{display_name(path)}:{i + 1}: speaker {row[0]!r} repeated")
        out[row[0]] = row[1:]
    return out


def read_utt2spk(path: str | Path) -> dict[str, str]:
    """Read an ``utt2spk`` file (``utt speaker``); returns utt -> speaker.

    Refuses empty input, a line without two fields and a repeated utterance.
    """
    utts, spks = _columns(read_text(path), path, 2, "utt speaker")
    out: dict[str, str] = {}
    for i, (utt, spk) in enumerate(zip(utts, spks)):
        if utt in out:
            raise InputFormatError(f"{display_name(path)}:{i + 1}: utterance {utt!r} repeated")
        out[utt] = spk
    return out


def utt2spk_to_spk2utt(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    """Invert an utt -> speaker map into speaker -> utts (speakers and utts in C order)."""
    out: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return {spk: out[spk] for spk in sorted(out)}

