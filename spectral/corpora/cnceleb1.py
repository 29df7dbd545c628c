"""Stage *prepare* for CN-Celeb1 (lhotse has no recipe for it): dev set, eval set, enroll maps, trials.

Reads, with no network access, CN-Celeb1 as distributed on OpenSLR 82 (the root is
``CN-Celeb/`` or ``CN-Celeb_flac/``, or a directory holding one of them)::

    <root>/data/<spk>/<genre>-<nn>-<nnn>.flac   every utterance of every speaker
    <root>/dev/dev.lst                          the 800 development speakers, one id a line
    <root>/eval/enroll/<spk>-enroll.flac        enrollment audio: each model's utterances concatenated
    <root>/eval/test/<spk>-<genre>-...flac      test audio
    <root>/eval/lists/enroll.lst                '<model> enroll/<file>' (several lines per model allowed)
    <root>/eval/lists/enroll.map                '<model> <spk>/<file> [<spk>/<file> ...]': the utterances
                                                (under data/) that the model's enroll file concatenates
    <root>/eval/lists/test.lst                  'test/<file>'
    <root>/eval/lists/trials.lst                '<model> test/<file> 1|0'

Two protocols, as WeSpeaker and others report them, are two trial lists (``--trials``):

* ``cnceleb1_concat`` (CNC-Eval-Concat): each model is its concatenated ``eval/enroll/`` file;
* ``cnceleb1_avg`` (CNC-Eval-Avg): each model is the average of the embeddings of the
  utterances ``enroll.map`` names (read only for this protocol).

Paths in enroll.lst, test.lst and trials.lst are relative to ``eval/``, those in enroll.map
to ``data/``; a list naming ``x.wav`` where only ``x.flac`` exists (or the reverse) is resolved
to the file present, as copies differ in that. Writes::

    <data>/<dev-name>/{recordings,supervisions,cuts}.jsonl.gz, wav.scp utt2spk spk2utt
    <data>/<eval-name>/... the same over the test utterances and each protocol's enrollment ones, and
    <data>/<eval-name>/enroll_maps/<trials>     '<model> <utt> [<utt> ...]', one per protocol
    <data>/<eval-name>/trials/<trials>          '<model> <test utt> target|nontarget'

Utterance ids are Kaldi's: ``<spk>-<file stem>`` for utterances under ``data/`` (dev, and the
Avg protocol's enrollment) and the file stem for eval ones (``id00800-enroll``,
``id00800-singing-01-001``); the speaker is the id before the first '-'. Scoring averages the
embeddings of each model's enroll map utterances (``spectral-score --enroll-map``). Every input
is checked before anything is written; bad input stops the stage naming the file and line.
CN-Celeb is released for non-commercial research (http://www.openslr.org/82/, CN-Celeb licence).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

from tqdm import tqdm

from spectral.corpora.manifests import write_set
from spectral.data.audio import AudioInfo, check_audio
from spectral.data.kaldi import atomic_dir, c_sorted, write_table, write_trials
from spectral.errors import InputError, read_utf8
from spectral.logutil import command_parser, log_invocation, run_main

log = logging.getLogger("spectral.prepare")

AUDIO_SUFFIXES = (".flac", ".wav")
#: The two evaluation protocols (trial list names) and how each enrolls a model.
PROTOCOLS = {
    "cnceleb1_concat": "CNC-Eval-Concat: each model is its concatenated eval/enroll/ file (eval/lists/enroll.lst)",
    "cnceleb1_avg": "CNC-Eval-Avg: each model is the average of the embeddings of its eval/lists/enroll.map utterances",
}
SPEAKER = re.compile(r"id\d+")


def find_root(path: str | Path) -> Path:
    """The CN-Celeb1 root: ``path`` itself or its ``CN-Celeb``/``CN-Celeb_flac`` subdirectory."""
    path = Path(path)
    for cand in (path, path / "CN-Celeb_flac", path / "CN-Celeb"):
        if (cand / "eval" / "lists").is_dir() and (cand / "dev" / "dev.lst").is_file():
            return cand
    raise InputError(path, "not a CN-Celeb1 directory: expected dev/dev.lst, data/ and eval/lists/ "
                           "(here or in CN-Celeb/ or CN-Celeb_flac/)")


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines of a list file as (line number, fields)."""
    if not path.is_file():
        raise InputError(path, "missing list file")
    out = []
    for n, line in enumerate(read_utf8(path).split("\n"), 1):
        parts = line.split()
        if parts:
            out.append((n, parts))
    if not out:
        raise InputError(path, "empty list file")
    return out


def _speaker_of(stem: str, where: Path, line: int | None = None) -> str:
    spk = stem.split("-", 1)[0]
    if not SPEAKER.fullmatch(spk) or "-" not in stem:
        raise InputError(where, f"file name {stem!r} does not start with a speaker id ('id00800-...')", line)
    return spk


class Eval:
    """The eval part: audio files named by the lists, keyed by utterance id."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "eval"
        self.lists = self.dir / "lists"
        self.files: dict[str, Path] = {}  # utt -> audio path
        self.rel2utt: dict[str, str] = {}  # list path as written -> utt

    def resolve(self, rel: str, list_path: Path, line: int, data_spk: str | None = None) -> str:
        """Utterance id of the file ``rel`` (relative to eval/) named at ``list_path:line``.

        With ``data_spk``, ``rel`` is ``<spk>/<file>`` relative to data/ (enroll.map), and the id
        is ``<spk>-<stem>``, that speaker's.
        """
        key = ("data/" if data_spk else "") + rel
        if key in self.rel2utt:
            return self.rel2utt[key]
        base = self.dir.parent / "data" if data_spk else self.dir
        path = base / rel
        if not path.is_file():
            stem, suffix = os.path.splitext(rel)
            others = [base / (stem + s) for s in AUDIO_SUFFIXES if s != suffix]
            found = [p for p in others if p.is_file()]
            if not found:
                raise InputError(list_path, f"names {rel!r}, which is not in {base}", line)
            path = found[0]
        utt = f"{data_spk}-{path.stem}" if data_spk else path.stem
        _speaker_of(utt, list_path, line)
        if utt in self.files and self.files[utt] != path:
            raise InputError(list_path, f"utterance id {utt!r} of {rel!r} is also that of {self.files[utt]}", line)
        self.files[utt] = path
        self.rel2utt[key] = utt
        return utt


def read_dev_speakers(root: Path) -> list[str]:
    path = root / "dev" / "dev.lst"
    speakers: list[str] = []
    seen: set[str] = set()
    for n, parts in _lines(path):
        if len(parts) != 1 or not SPEAKER.fullmatch(parts[0]):
            raise InputError(path, f"expected one speaker id ('id00000') a line, got {' '.join(parts)!r}", n)
        if parts[0] in seen:
            raise InputError(path, f"speaker {parts[0]!r} listed twice", n)
        seen.add(parts[0])
        speakers.append(parts[0])
    return speakers


def train_speakers_digest(corpus_dir: str | Path) -> str | None:
    """Digest of the dev speakers ``dev/dev.lst`` names; None where the corpus is not there (yet).

    Cheap (no audio is read): the workflow calls it when it starts, for the system's name.
    """
    from spectral.train.trainset import speakers_digest

    try:
        root = find_root(corpus_dir)
    except InputError:
        return None
    return speakers_digest(read_dev_speakers(root))


def scan_dev(root: Path, speakers: list[str]) -> dict[str, Path]:
    """utt id -> audio path of every ``data/<spk>/*`` file of the dev speakers."""
    data = root / "data"
    if not data.is_dir():
        raise InputError(data, "missing audio directory")
    files: dict[str, Path] = {}
    for spk in speakers:
        d = data / spk
        if not d.is_dir():
            raise InputError(root / "dev" / "dev.lst", f"speaker {spk!r} has no directory {d}")
        n_before = len(files)
        for f in sorted(os.scandir(d), key=lambda e: e.name):
            stem, suffix = os.path.splitext(f.name)
            if suffix.lower() in AUDIO_SUFFIXES and f.is_file():
                utt = f"{spk}-{stem}"
                if utt in files:
                    raise InputError(f.path, f"duplicate utterance id {utt!r} (also from {files[utt]})")
                files[utt] = Path(f.path)
        if len(files) == n_before:
            raise InputError(d, "no .flac or .wav files")
    return files


def _read_enroll_lst(ev: Eval) -> dict[str, list[str]]:
    """enroll.lst: model -> its concatenated enroll utterances (Concat protocol)."""
    path = ev.lists / "enroll.lst"
    models: dict[str, list[str]] = {}
    for n, parts in _lines(path):
        if len(parts) != 2:
            raise InputError(path, f"expected '<model> enroll/<file>', got {' '.join(parts)!r}", n)
        model, rel = parts
        _speaker_of(model, path, n)
        utt = ev.resolve(rel, path, n)
        if utt in models.get(model, []):
            raise InputError(path, f"{rel!r} listed twice for model {model!r}", n)
        models.setdefault(model, []).append(utt)
    return models


def _read_enroll_map(ev: Eval) -> dict[str, list[str]]:
    """enroll.map: model -> the data/<spk>/ utterances its enrollment is made of (Avg protocol)."""
    path = ev.lists / "enroll.map"
    if not path.is_file():
        raise InputError(path, "missing: the cnceleb1_avg protocol averages the utterances it names per model")
    models: dict[str, list[str]] = {}
    for n, parts in _lines(path):
        if len(parts) < 2:
            raise InputError(path, f"expected '<model> <spk>/<file> [<spk>/<file> ...]', got {' '.join(parts)!r}", n)
        model, rels = parts[0], parts[1:]
        spk = _speaker_of(model, path, n)
        if model in models:
            raise InputError(path, f"model {model!r} listed twice", n)
        utts = []
        for rel in rels:
            head, sep, _ = rel.partition("/")
            if not sep or head != spk:
                raise InputError(path, f"{rel!r} is not an utterance of model {model!r}'s speaker ({spk}/<file>)", n)
            utt = ev.resolve(rel, path, n, data_spk=spk)
            if utt in utts:
                raise InputError(path, f"{rel!r} listed twice for model {model!r}", n)
            utts.append(utt)
        models[model] = utts
    return models


def read_eval(root: Path, protocols: tuple[str, ...] = ("cnceleb1_concat",)
              ) -> tuple[Eval, dict[str, dict[str, list[str]]], list[str], list[tuple[str, str, str]]]:
    """Parse the eval lists; returns (eval files, protocol -> enroll map, test utts, Kaldi trials).

    Only the enrollment of the requested ``protocols`` is read (and its audio part of the eval files).
    """
    ev = Eval(root)
    test_lst, trials_lst = ev.lists / "test.lst", ev.lists / "trials.lst"
    readers = {"cnceleb1_concat": _read_enroll_lst, "cnceleb1_avg": _read_enroll_map}
    maps = {p: readers[p](ev) for p in protocols}
    tests: list[str] = []
    for n, parts in _lines(test_lst):
        if len(parts) != 1:
            raise InputError(test_lst, f"expected one path 'test/<file>' a line, got {' '.join(parts)!r}", n)
        tests.append(ev.resolve(parts[0], test_lst, n))
    test_set = set(tests)
    trials: list[tuple[str, str, str]] = []
    for n, parts in _lines(trials_lst):
        if len(parts) != 3 or parts[2] not in ("0", "1"):
            raise InputError(trials_lst, f"expected '<model> test/<file> 1|0', got {' '.join(parts)!r}", n)
        model, rel, label = parts
        for p, models in maps.items():
            if model not in models:
                source = "enroll.map" if p == "cnceleb1_avg" else "enroll.lst"
                raise InputError(trials_lst, f"enroll model {model!r} is not in {ev.lists / source} ({p})", n)
        utt = ev.resolve(rel, trials_lst, n)
        if utt not in test_set:
            raise InputError(trials_lst, f"test file {rel!r} is not in {test_lst}", n)
        trials.append((model, utt, "target" if label == "1" else "nontarget"))
    return ev, maps, tests, trials


def _check_all(files: dict[str, Path], desc: str, progress: bool) -> dict[str, AudioInfo]:
    return {u: check_audio(p) for u, p in tqdm(files.items(), desc=desc, unit="file", disable=not progress)}


def prepare(corpus_dir: str | Path, data_dir: str | Path, dev_name: str | None = "cnceleb1_dev",
            eval_name: str | None = "cnceleb1_eval", trials: tuple[str, ...] = tuple(PROTOCOLS),
            progress: bool = True) -> dict[str, Path]:
    """Prepare CN-Celeb1's dev and eval sets; returns set name -> written directory.

    ``trials``: the protocols (:data:`PROTOCOLS`) whose trial list and enroll map are written;
    the eval set holds the test utterances and these protocols' enrollment utterances.
    Everything is read and checked (list syntax, every named file, every audio header)
    before any directory is written.
    """
    unknown = [t for t in trials if t not in PROTOCOLS]
    if unknown or not trials:
        raise ValueError(f"unknown CN-Celeb1 trial list(s) {', '.join(unknown) or '(none given)'}; "
                         f"the protocols are {', '.join(PROTOCOLS)}")
    root = find_root(corpus_dir)
    log.info("CN-Celeb1 root: %s", root)
    sets: dict[str, tuple[dict[str, Path], dict[str, AudioInfo]]] = {}
    if dev_name:
        speakers = read_dev_speakers(root)
        files = scan_dev(root, speakers)
        sets[dev_name] = (files, _check_all(files, "check dev", progress))
    if eval_name:
        ev, maps, tests, kaldi_trials = read_eval(root, tuple(trials))
        if dev_name:
            overlap = {_speaker_of(u, ev.lists) for u in ev.files} & set(speakers)
            if overlap:
                raise InputError(root / "dev" / "dev.lst", f"lists {len(overlap)} eval speakers "
                                                           f"(e.g. {sorted(overlap)[0]}): dev and eval must not share speakers")
        sets[eval_name] = (ev.files, _check_all(ev.files, "check eval", progress))
    written = {}
    for name, (files, infos) in sets.items():
        dest = Path(data_dir) / name
        utt2spk = {u: (u.split("-", 1)[0]) for u in files}
        with atomic_dir(dest) as tmp:
            write_set(tmp, {u: str(p.resolve()) for u, p in files.items()},
                      {u: i.num_samples for u, i in infos.items()}, utt2spk)
            if name == eval_name:
                (tmp / "trials").mkdir()
                (tmp / "enroll_maps").mkdir()
                n_target = sum(t[2] == "target" for t in kaldi_trials)
                for protocol, models in maps.items():
                    write_table(tmp / "enroll_maps" / protocol, {m: " ".join(us) for m, us in models.items()})
                    n = write_trials(tmp / "trials" / protocol, kaldi_trials)
                    n_enroll = sum(len(us) for us in models.values())
                    log.info("%s (%s): %d trials (%d target) of %d models (%d enrollment utterances) over %d test "
                             "utterances -> %s/trials/%s, enroll map %s/enroll_maps/%s", protocol,
                             PROTOCOLS[protocol].split(":")[0], n, n_target, len(models), n_enroll, len(tests),
                             dest, protocol, dest, protocol)
        log.info("%s: %d utterances, %d speakers -> %s", name, len(files), len(set(utt2spk.values())), dest)
        written[name] = dest
    return written


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-prepare-cnceleb1", __doc__.split("\n\n")[0], """\
spectral-prepare-cnceleb1 --corpus-dir /corpora/CN-Celeb_flac --data-dir data
spectral-prepare-cnceleb1 --corpus-dir /corpora/CN-Celeb_flac --data-dir data --trials cnceleb1_avg
""")
    p.add_argument("--corpus-dir", required=True, help="CN-Celeb1 directory (data/, dev/dev.lst, eval/)")
    p.add_argument("--data-dir", required=True, help="where data/<set>/ directories are written")
    p.add_argument("--dev-name", default="cnceleb1_dev", help="set name of the dev speakers ('' to skip; default %(default)s)")
    p.add_argument("--eval-name", default="cnceleb1_eval", help="set name of enroll+test ('' to skip; default %(default)s)")
    p.add_argument("--trials", default=",".join(PROTOCOLS), metavar="LIST[,LIST]",
                   help="comma-separated protocols to write (trials/<name> and enroll_maps/<name>): "
                        + "; ".join(f"{k} = {v}" for k, v in PROTOCOLS.items()) + " (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    trials = tuple(t for t in args.trials.split(",") if t)
    unknown = [t for t in trials if t not in PROTOCOLS]
    if unknown or not trials:
        parser.error(f"--trials: unknown list(s) {', '.join(unknown) or '(none given)'}; the protocols are {', '.join(PROTOCOLS)}")
    log_invocation("spectral-prepare-cnceleb1", args)
    return run_main("spectral-prepare-cnceleb1", lambda: prepare(
        args.corpus_dir, args.data_dir, args.dev_name or None, args.eval_name or None, trials,
        progress=not args.no_progress))


if __name__ == "__main__":
    sys.exit(main())
