"""Stage *prepare* for any VoxCeleb1-layout directory: the embedded corpus or a real VoxCeleb1.

Reads, with no network access (lhotse's ``prepare_voxceleb`` downloads the trial list;
this module reads trial lists from the corpus directory instead)::

    <corpus>/vox1_meta.csv                 tab-separated, VoxCeleb1's header, five columns
    <corpus>/wav/<spk>/<session>/<n>.wav   16 kHz mono
    <corpus>/veri_test2.txt ...            trial lists, lines '1 id10270/x6uYqmx31kE/00001.wav id10270/...'

and writes, per split of the ``Set`` column (``dev`` -> ``--dev-name``, ``test`` -> ``--test-name``)::

    <data>/<set>/{recordings,supervisions,cuts}.jsonl.gz   lhotse manifests
    <data>/<set>/{wav.scp,utt2spk,spk2utt,spk2gender}      Kaldi files, LC_ALL=C order
    <data>/<test-name>/trials/<name>                       'enroll test target|nontarget'

Utterance ids are ``<spk>-<session>-<nnnnn>`` as Kaldi's and lhotse's VoxCeleb recipes
name them. Every input is checked before anything is written; bad input stops the stage
with a message naming the file and line. VoxCeleb1 is distributed under CC BY 4.0
(https://www.robots.ox.ac.uk/~vgg/data/voxceleb/).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from spectral.data.audio import AudioInfo, check_audio
from spectral.data.kaldi import atomic_dir, c_sorted, write_data_dir, write_trials
from spectral.errors import InputError, read_utf8
from spectral.logutil import command_parser, log_invocation, run_main

log = logging.getLogger("spectral.prepare")

TAB = "\t"
META_HEADER = ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"]

#: Trial lists of VoxCeleb1 (and of the embedded corpus) and the Kaldi names they get.
TRIAL_LISTS = {
    "veri_test2.txt": "vox1_O",
    "list_test_all2.txt": "vox1_E",
    "list_test_hard2.txt": "vox1_H",
    "veri_test.txt": "vox1_O_orig",
    "list_test_all.txt": "vox1_E_orig",
    "list_test_hard.txt": "vox1_H_orig",
}


@dataclass
class Speaker:
    id: str
    name: str
    gender: str
    nationality: str
    split: str


@dataclass
class Corpus:
    """A scanned VoxCeleb1-layout directory."""

    root: Path
    speakers: dict[str, Speaker]
    audio: dict[str, AudioInfo] = field(default_factory=dict)  # utt id -> header info
    utt2spk: dict[str, str] = field(default_factory=dict)
    relpath2utt: dict[str, str] = field(default_factory=dict)  # 'spk/session/n.wav' -> utt id


def utterance_id(spk: str, session: str, stem: str) -> str:
    """The id Kaldi and lhotse give ``wav/<spk>/<session>/<stem>.wav``."""
    return f"{spk}-{session}-{stem}"


def read_meta(path: str | Path) -> dict[str, Speaker]:
    """Parse ``vox1_meta.csv``: VoxCeleb1's header, then five tab-separated columns a row."""
    speakers: dict[str, Speaker] = {}
    lines = read_utf8(path).splitlines()
    if not lines:
        raise InputError(path, "empty meta file", 1)
    header = [c.strip() for c in lines[0].split("\t")]
    if header != META_HEADER:
        raise InputError(path, f"expected VoxCeleb1's header {TAB.join(META_HEADER)!r}, got {lines[0]!r}", 1)
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) != 5:
            raise InputError(path, f"expected 5 tab-separated columns, got {len(cols)}: {line!r}", n)
        spk, name, gender, nationality, split = cols
        if gender not in ("m", "f"):
            raise InputError(path, f"gender must be 'm' or 'f', got {gender!r}", n)
        if split not in ("dev", "test"):
            raise InputError(path, f"set must be 'dev' or 'test', got {split!r}", n)
        if spk in speakers:
            raise InputError(path, f"speaker {spk!r} listed twice", n)
        speakers[spk] = Speaker(spk, name, gender, nationality, split)
    if not speakers:
        raise InputError(path, "no speakers listed")
    return speakers


def train_speakers_digest(root: str | Path, vox2_root: str | Path | None = None) -> str | None:
    """Digest of the training speakers as the corpus lists them: Set=dev in ``vox1_meta.csv`` (plus
    VoxCeleb2-dev's ``dev/aac/<spk>/`` directories); None where those are not there (yet).

    Cheap (no audio is read): the workflow calls it when it starts, for the system's name.
    """
    from spectral.train.trainset import speakers_digest

    meta = Path(root) / "vox1_meta.csv"
    if not meta.is_file():
        return None
    speakers = [s.id for s in read_meta(meta).values() if s.split == "dev"]
    if vox2_root is not None:
        aac = Path(vox2_root) / "dev" / "aac"
        if not aac.is_dir():
            return None
        speakers += [e.name for e in os.scandir(aac) if e.is_dir()]
    return speakers_digest(speakers)


def scan_corpus(root: str | Path, sampling_rate: int = 16000, progress: bool = True,
                skip_missing_speakers: bool = False) -> Corpus:
    """Read the meta file and check every ``wav/<spk>/<session>/*.wav`` header.

    A speaker the meta file lists without any audio (a partial extraction) is refused,
    naming the meta line, unless ``skip_missing_speakers``: then it is left out and the
    count logged."""
    root = Path(root)
    meta = root / "vox1_meta.csv"
    if not meta.is_file():
        raise InputError(meta, "missing: not a VoxCeleb1-layout directory")
    corpus = Corpus(root, read_meta(meta))
    wav_root = root / "wav"
    if not wav_root.is_dir():
        raise InputError(wav_root, "missing audio directory")
    files: list[tuple[str, str, str]] = []
    for spk_entry in sorted(os.scandir(wav_root), key=lambda e: e.name):
        if not spk_entry.is_dir():
            continue
        if spk_entry.name not in corpus.speakers:
            raise InputError(spk_entry.path, f"speaker directory not listed in {meta}")
        for ses_entry in sorted(os.scandir(spk_entry.path), key=lambda e: e.name):
            if not ses_entry.is_dir():
                continue
            for f in sorted(os.scandir(ses_entry.path), key=lambda e: e.name):
                if f.name.endswith(".wav"):
                    files.append((spk_entry.name, ses_entry.name, f.name))
    if not files:
        raise InputError(wav_root, "no .wav files found under <spk>/<session>/")
    with_audio = {spk for spk, _, _ in files}
    missing = [spk for spk in corpus.speakers if spk not in with_audio]
    if missing and not skip_missing_speakers:
        line = next(n for n, text in enumerate(read_utf8(meta).splitlines(), 1) if text.split("\t")[0].strip() == missing[0])
        raise InputError(meta, f"{len(missing)} listed speaker(s) have no audio under {wav_root}, e.g. {missing[0]!r} "
                               f"(a partial extraction?); pass --skip-missing-speakers to leave them out", line)
    if missing:
        log.warning("%s: %d listed speaker(s) have no audio and are left out (--skip-missing-speakers): %s",
                    meta, len(missing), " ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
        for spk in missing:
            del corpus.speakers[spk]
    seen: dict[str, str] = {}
    for spk, session, fname in tqdm(files, desc=f"check {root.name}", unit="file", disable=not progress):
        path = wav_root / spk / session / fname
        utt = utterance_id(spk, session, fname[: -len(".wav")])
        if utt in seen:
            raise InputError(path, f"duplicate utterance id {utt!r} (also from {seen[utt]})")
        seen[utt] = str(path)
        corpus.audio[utt] = check_audio(path, sampling_rate)
        corpus.utt2spk[utt] = spk
        corpus.relpath2utt[f"{spk}/{session}/{fname}"] = utt
    return corpus


def convert_trials(path: str | Path, corpus: Corpus) -> list[tuple[str, str, str]]:
    """Read a VoxCeleb trial list (``1|0 <spk/ses/n.wav> <spk/ses/n.wav>``) into Kaldi trials."""
    out = []
    for n, line in enumerate(read_utf8(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise InputError(path, f"expected '1|0 <enroll.wav> <test.wav>', got {line.rstrip()!r}", n)
        utts = []
        for rel in parts[1:]:
            utt = corpus.relpath2utt.get(rel)
            if utt is None:
                raise InputError(path, f"names {rel!r}, which is not in {corpus.root / 'wav'}", n)
            utts.append(utt)
        out.append((utts[0], utts[1], "target" if parts[0] == "1" else "nontarget"))
    if not out:
        raise InputError(path, "no trials")
    return out


def _write_set(out: Path, corpus: Corpus, utts: list[str]) -> None:
    """Write lhotse manifests and Kaldi files for ``utts`` into the directory ``out``."""
    from lhotse import AudioSource, CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recordings, supervisions = [], []
    for utt in utts:
        info = corpus.audio[utt]
        spk = corpus.speakers[corpus.utt2spk[utt]]
        recordings.append(
            Recording(
                id=utt,
                sources=[AudioSource(type="file", channels=[0], source=str(Path(info.path).resolve()))],
                sampling_rate=info.sampling_rate,
                num_samples=info.num_samples,
                duration=info.duration,
            )
        )
        supervisions.append(
            SupervisionSegment(
                id=utt, recording_id=utt, start=0.0, duration=info.duration, channel=0,
                speaker=spk.id, gender=spk.gender,
            )
        )
    recs, sups = RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)
    recs.to_file(out / "recordings.jsonl.gz")
    sups.to_file(out / "supervisions.jsonl.gz")
    CutSet.from_manifests(recordings=recs, supervisions=sups).to_file(out / "cuts.jsonl.gz")
    write_data_dir(
        out,
        {u: str(Path(corpus.audio[u].path).resolve()) for u in utts},
        {u: corpus.utt2spk[u] for u in utts},
        {s.id: s.gender for s in corpus.speakers.values()},
    )


def _check_configured_lists(corpus_dir: str | Path, trials: tuple[str, ...] | None, test_name: str | None,
                            all_name: str | None) -> None:
    """Refuse configured ``trials`` that are no VoxCeleb1 list, have no set to go to, or are missing."""
    if trials is None:
        return
    unknown = [t for t in trials if t not in TRIAL_LISTS.values()]
    if unknown:
        raise ValueError(f"unknown trial list(s) {', '.join(unknown)}; VoxCeleb1 lists: {', '.join(TRIAL_LISTS.values())}")
    if trials and not (test_name or all_name):
        raise ValueError("trials need a test or all set to hold them")
    for fname, kaldi_name in TRIAL_LISTS.items():
        if kaldi_name in trials and not (Path(corpus_dir) / fname).is_file():
            raise InputError(Path(corpus_dir) / fname, f"missing: trial list {kaldi_name} is configured and read from this file")


def _place_trials(corpus_dir: str | Path, corpus, test_utts: set[str], trials: tuple[str, ...] | None,
                  test_name: str | None, all_name: str | None, all_trials: tuple[str, ...]) -> dict[str, tuple[str, list]]:
    """Kaldi name -> (set name, converted trials) of every list to convert (see :func:`prepare`)."""
    converted_lists: dict[str, tuple[str, list]] = {}
    for fname, kaldi_name in TRIAL_LISTS.items():
        path = Path(corpus_dir) / fname
        if not path.is_file() or not (test_name or all_name):
            continue
        if trials is not None and kaldi_name not in trials:
            log.info("%s (%s): not among the configured trial lists (%s), ignored", path, kaldi_name,
                     ", ".join(trials) or "none")
            continue
        converted = convert_trials(path, corpus)
        dev_spks = {corpus.utt2spk[u] for e, t, _ in converted for u in (e, t) if u not in test_utts}
        if dev_spks:
            log.warning(
                "%s (%s) names utterances of %d dev speakers: it overlaps the training set (Set=dev), so a model "
                "trained on it has heard those speakers and the list's error rates are optimistic",
                path, kaldi_name, len(dev_spks),
            )
        if kaldi_name in all_trials:
            converted_lists[kaldi_name] = (all_name, converted)
        elif test_name and all(e in test_utts and t in test_utts for e, t, _ in converted):
            converted_lists[kaldi_name] = (test_name, converted)
        elif all_name:
            converted_lists[kaldi_name] = (all_name, converted)
        else:
            raise InputError(path, "names utterances outside the test set; prepare with --all-name to hold them")
    return converted_lists


def prepare(
    corpus_dir: str | Path,
    data_dir: str | Path,
    dev_name: str | None = "vox1_dev",
    test_name: str | None = "vox1_test",
    all_name: str | None = None,
    progress: bool = True,
    all_trials: tuple[str, ...] = (),
    skip_missing_speakers: bool = False,
    trials: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Prepare every split of a VoxCeleb1-layout directory; returns set name -> written directory.

    ``trials`` (Kaldi names, e.g. ``("vox1_O",)``) are the lists to convert: each must be in
    ``corpus_dir``, and every other list found there is left alone with a log line (a real
    VoxCeleb1 holds all six, and E/H need ``all_name``). ``None`` converts every list found.
    Converted lists go to ``<test_name>/trials/`` when they name only
    test utterances, otherwise to ``<all_name>/trials/`` (a set holding dev and test, for
    VoxCeleb1-E/H); without ``all_name`` such a list is refused. Lists named in
    ``all_trials`` (Kaldi names, e.g. ``vox1_E``) go to ``<all_name>/trials/`` whatever they
    name, so a workflow knows where to find them before reading them. A list that names
    utterances of dev speakers is logged as a warning: a model trained on the dev set has
    heard those speakers, so the list's error rates are optimistic.
    """
    corpus = scan_corpus(corpus_dir, progress=progress, skip_missing_speakers=skip_missing_speakers)
    by_split: dict[str, list[str]] = {"dev": [], "test": []}
    for utt in c_sorted(corpus.utt2spk):
        by_split[corpus.speakers[corpus.utt2spk[utt]].split].append(utt)
    names = {"dev": dev_name, "test": test_name}
    test_utts = set(by_split["test"])
    if all_trials and not all_name:
        raise ValueError("all_trials needs all_name")
    _check_configured_lists(corpus_dir, trials, test_name, all_name)
    converted_lists = _place_trials(corpus_dir, corpus, test_utts, trials, test_name, all_name, all_trials)
    sets: dict[str, list[str]] = {}
    for split, name in names.items():
        if name and by_split[split]:
            sets[name] = by_split[split]
    if all_name:
        sets[all_name] = c_sorted(corpus.utt2spk)
    written = {}
    for name, utts in sets.items():
        dest = Path(data_dir) / name
        with atomic_dir(dest) as tmp:
            _write_set(tmp, corpus, utts)
            for kaldi_name, (set_name, tr) in converted_lists.items():
                if set_name == name:
                    (tmp / "trials").mkdir(exist_ok=True)
                    n = write_trials(tmp / "trials" / kaldi_name, tr)
                    log.info("%s: %d trials -> %s/trials/%s", kaldi_name, n, dest, kaldi_name)
        log.info("%s: %d utterances, %d speakers -> %s", name, len(utts), len({corpus.utt2spk[u] for u in utts}), dest)
        written[name] = dest
    return written


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-prepare-vox1", __doc__.split("\n\n")[0], """\
spectral-prepare-vox1 --corpus-dir corpus/embedded/vox1 --data-dir data
spectral-prepare-vox1 --corpus-dir /corpora/VoxCeleb1 --data-dir data --trials vox1_O
spectral-prepare-vox1 --corpus-dir corpus/embedded/pretrain --data-dir data --dev-name pretrain --test-name ''
""")
    p.add_argument("--corpus-dir", required=True, help="VoxCeleb1-layout directory (vox1_meta.csv, wav/, trial lists)")
    p.add_argument("--data-dir", required=True, help="where data/<set>/ directories are written")
    p.add_argument("--dev-name", default="vox1_dev", help="set name for Set=dev speakers ('' to skip; default %(default)s)")
    p.add_argument("--test-name", default="vox1_test", help="set name for Set=test speakers ('' to skip; default %(default)s)")
    p.add_argument("--all-name", default="", help="also write a set of all utterances (needed by VoxCeleb1-E/H lists)")
    p.add_argument("--all-trials", default="",
                   help="comma-separated Kaldi names of lists always written to the --all-name set (e.g. vox1_E,vox1_H)")
    p.add_argument("--skip-missing-speakers", action="store_true",
                   help="leave out speakers vox1_meta.csv lists without audio (count logged) instead of refusing them")
    p.add_argument("--trials", default=None, metavar="LIST[,LIST...]",
                   help="comma-separated Kaldi names of the trial lists to convert (vox1_O, vox1_E, vox1_H, vox1_O_orig, "
                        "vox1_E_orig, vox1_H_orig); each must be in the corpus directory, other lists found there are "
                        "ignored with a log line; '' converts none; default: every list found")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_invocation("spectral-prepare-vox1", args)
    all_trials = tuple(t for t in args.all_trials.split(",") if t)
    if all_trials and not args.all_name:
        build_parser().error("--all-trials needs --all-name")
    trials = None if args.trials is None else tuple(t for t in args.trials.split(",") if t)
    unknown = [t for t in trials or () if t not in TRIAL_LISTS.values()]
    if unknown:
        build_parser().error(f"--trials: unknown list(s) {', '.join(unknown)}; VoxCeleb1 lists: {', '.join(TRIAL_LISTS.values())}")
    return run_main(
        "spectral-prepare-vox1",
        lambda: prepare(
            args.corpus_dir, args.data_dir, args.dev_name or None, args.test_name or None,
            args.all_name or None, progress=not args.no_progress, all_trials=all_trials, trials=trials,
            skip_missing_speakers=args.skip_missing_speakers,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
