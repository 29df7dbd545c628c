"""Stage augment: lhotse recording manifests of the noise and room impulse responses (RIRs) for augmentation.

Reads one local directory per kind, never the network (lhotse's ``download_musan`` and
``download_rir_noise`` are not called; the ``prepare_*`` recipes used here only read
headers of local files):

``noise``  a MUSAN tree (openslr.org/17, CC BY 4.0: ``music/``, ``speech/``, ``noise/``
           below the directory) through ``lhotse.recipes.prepare_musan``, the parts in
           ``augment.musan_parts``; or any other directory (the embedded corpus's ``noise/``);
``rir``    a RIRS_NOISES tree (openslr.org/28, Apache 2.0: ``simulated_rirs/``,
           ``real_rirs_isotropic_noises/``) through ``lhotse.recipes.prepare_rir_noise``, the
           parts in ``augment.rirs_parts``; or any other directory (the embedded corpus's ``rir/``).

A directory of neither layout contributes every ``.wav`` and ``.flac`` file below it, in
``sorted(pathlib.Path)`` order, with the path relative to the directory as recording id ('/' -> '-').
Writes ``--manifest`` (e.g. ``data/augment/noise_recordings.jsonl.gz``): a lhotse
RecordingSet, written to a temporary name and renamed when complete. An empty directory,
an unreadable or empty audio file, or a layout that does not fit the kind stops the stage
with a message naming the path.

The training stages read a manifest back (or prepare a directory in memory) with
:class:`RecordingPool`, which loads audio through lhotse, refuses recordings that are not
local files, and resamples to 16 kHz where a file has another rate. Command line:
``python -m spectral.augment``; shell stage: ``steps/make_augment_manifest.sh``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spectral.errors import InputError
from spectral.atomic import atomic_path
from spectral.logutil import command_parser, log_invocation, run_main

log = logging.getLogger("spectral.augment")

SAMPLE_RATE = 16000
KINDS = ("noise", "rir")
#: MUSAN parts (sub-directories) that lhotse's prepare_musan knows.
MUSAN_PARTS = ("music", "speech", "noise")
#: RIRS_NOISES parts of lhotse's prepare_rir_noise that hold impulse responses, and their folders.
RIRS_PARTS = {"sim_rir": "simulated_rirs", "real_rir": "real_rirs_isotropic_noises"}
AUDIO_SUFFIXES = (".wav", ".flac")

EXAMPLE = """\
python -m spectral.augment --kind noise --source-dir /corpora/musan --musan-parts music,noise \\
    --manifest data/augment/noise_recordings.jsonl.gz
python -m spectral.augment --kind rir --source-dir /corpora/RIRS_NOISES --rirs-parts sim_rir \\
    --manifest data/augment/rir_recordings.jsonl.gz
python -m spectral.augment --kind noise --source-dir corpus/embedded/vox1/noise --manifest data/augment/noise_recordings.jsonl.gz
"""


def layout(directory: str | Path) -> str:
    """"musan", "rirs_noises" or "plain": which tree ``directory`` holds, from its sub-directories."""
    directory = Path(directory)
    if any((directory / folder).is_dir() for folder in RIRS_PARTS.values()):
        return "rirs_noises"
    if any((directory / part).is_dir() for part in MUSAN_PARTS):
        return "musan"
    return "plain"


def _audio_files(directory: Path) -> list[Path]:
    files = [p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()]
    return sorted(files)  # component by component, as the training stages always listed them


def _recording(path: Path, recording_id: str):
    from lhotse import Recording

    if path.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    try:
        rec = Recording.from_file(path, recording_id=recording_id)
    except Exception as err:
        raise InputError(path, f"cannot read audio ({type(err).__name__}: {err})") from None
    if rec.num_samples <= 0:
        raise InputError(path, "holds no audio samples")
    return rec


def _find_culprit(files: list[Path], err: Exception, where: Path) -> InputError:
    """The InputError naming the first of ``files`` that cannot be read, after a recipe failed with ``err``."""
    for path in files:
        try:
            _recording(path, path.stem)
        except InputError as bad:
            return bad
    return InputError(where, f"lhotse could not prepare it ({type(err).__name__}: {err})")


def _plain(directory: Path, kind: str) -> list:
    files = _audio_files(directory)
    if not files:
        raise InputError(directory, f"holds no .wav or .flac files to use as {kind}")
    recs = [_recording(p, p.relative_to(directory).with_suffix("").as_posix().replace("/", "-")) for p in files]
    return recs


def _musan(directory: Path, parts: Sequence[str]) -> list:
    from lhotse.recipes import prepare_musan

    for part in parts:
        folder = directory / part
        if not folder.is_dir() or not _audio_files(folder):
            raise InputError(folder, f"no MUSAN {part} audio here (augment.musan_parts asks for {list(parts)})")
    try:
        manifests = prepare_musan(directory, parts=list(parts))
    except Exception as err:
        raise _find_culprit([p for part in parts for p in _audio_files(directory / part)], err, directory) from None
    return [rec for part in parts for rec in manifests[part]["recordings"]]


def _rirs_noises(directory: Path, parts: Sequence[str]) -> list:
    from lhotse.recipes import prepare_rir_noise

    for part in parts:
        folder = directory / RIRS_PARTS[part]
        if not folder.is_dir() or not _audio_files(folder):
            raise InputError(folder, f"no RIRS_NOISES {part} audio here (augment.rirs_parts asks for {list(parts)})")
    try:
        manifests = prepare_rir_noise(directory, parts=list(parts))
    except Exception as err:
        files = [p for part in parts for p in _audio_files(directory / RIRS_PARTS[part])]
        raise _find_culprit(files, err, directory) from None
    recs = [rec for part in parts for rec in manifests[part]["recordings"]]
    if not recs:
        raise InputError(directory, f"lhotse found no impulse responses of parts {list(parts)} here")
    return recs


def prepare_recordings(
    directory: str | Path,
    kind: str,
    musan_parts: Sequence[str] = ("music", "noise"),
    rirs_parts: Sequence[str] = ("sim_rir",),
):
    """The lhotse RecordingSet of a noise or RIR ``directory`` (layouts in the module docstring).

    Recordings of a MUSAN or RIRS_NOISES tree are in C order of their ids, those of any other
    directory in ``sorted(pathlib.Path)`` order of their files. Raises InputError naming the directory or file at fault.
    """
    from lhotse import RecordingSet

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, f"no such {kind} directory")
    tree = layout(directory)
    if tree == "musan" and kind == "rir":
        raise InputError(directory, "is a MUSAN tree (music/ speech/ noise/): set it as augment.noise_dir, not rir_dir")
    if tree == "rirs_noises" and kind == "noise":
        raise InputError(directory, "is a RIRS_NOISES tree: set it as augment.rir_dir, not noise_dir")
    if tree == "musan":
        recs = _musan(directory, musan_parts)
    elif tree == "rirs_noises":
        recs = _rirs_noises(directory, rirs_parts)
    else:
        recs = _plain(directory, kind)
    if tree != "plain":
        recs = sorted(recs, key=lambda r: r.id.encode())
        for rec in recs:
            if rec.num_samples <= 0:
                raise InputError(rec.sources[0].source, "holds no audio samples")
    ids = [r.id for r in recs]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise InputError(directory, f"two files give the recording id {dup!r}")
    log.info("%s: %d %s recordings (%s layout), %.1f h", directory, len(recs), kind, tree,
             sum(r.duration for r in recs) / 3600)
    return RecordingSet.from_recordings(recs)


def write_manifest(recordings, path: str | Path) -> Path:
    """Write a RecordingSet to ``path`` (``.jsonl.gz``) through a temporary name; return the path."""
    path = Path(path)
    if not path.name.endswith(".jsonl.gz"):
        raise ValueError(f"the manifest name must end in .jsonl.gz, got {path.name!r}")
    with atomic_path(path, suffix=".jsonl.gz") as tmp:  # lhotse picks the format by the name
        recordings.to_file(tmp)
    return path


def load_manifest(path: str | Path) -> list:
    """The recordings of a manifest this stage wrote, checked to be local, existing, non-empty files."""
    from lhotse import RecordingSet

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such recordings manifest (run the augment stage first)")
    try:
        recs = list(RecordingSet.from_file(path))
    except Exception as err:
        raise InputError(path, f"not a lhotse recordings manifest ({type(err).__name__}: {err})") from None
    if not recs:
        raise InputError(path, "holds no recordings")
    for n, rec in enumerate(recs, 1):
        for source in rec.sources:
            if source.type != "file":
                raise InputError(path, f"recording {rec.id!r} reads from a {source.type!r} source; only local files "
                                       "are allowed (nothing is fetched at run time)", n)
            if not Path(source.source).is_file():
                raise InputError(path, f"recording {rec.id!r}: {source.source} does not exist", n)
        if rec.num_samples <= 0:
            raise InputError(path, f"recording {rec.id!r} holds no audio samples", n)
    return recs


class RecordingPool:
    """Noise or RIR recordings, read through lhotse on demand as mono float32 at 16 kHz.

    ``source`` is a manifest written by this stage or a directory (prepared in memory with
    :func:`prepare_recordings`). Noise is read segment by segment, so a corpus of any size
    costs no memory; whole recordings (RIRs) are kept in a small least-recently-used cache.
    Multi-channel noise is averaged over channels; a multi-channel RIR gives its first
    channel (averaging microphones at other positions would smear the response).
    """

    def __init__(self, source: str | Path, kind: str, musan_parts: Sequence[str] = ("music", "noise"),
                 rirs_parts: Sequence[str] = ("sim_rir",), cache_size: int = 512) -> None:
        source = Path(source)
        if source.is_dir():
            recs = list(prepare_recordings(source, kind, musan_parts, rirs_parts))
        elif source.is_file():
            recs = load_manifest(source)
        else:
            raise InputError(source, f"no such {kind} manifest or directory")
        self.source = source
        self.kind = kind
        self.recordings = [r if r.sampling_rate == SAMPLE_RATE else r.resample(SAMPLE_RATE) for r in recs]
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def __len__(self) -> int:
        return len(self.recordings)

    def num_samples(self, index: int) -> int:
        """Length of recording ``index`` in samples at 16 kHz."""
        return int(self.recordings[index].num_samples)

    def read(self, index: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Samples ``start`` to ``start + length`` (default: to the end) of recording ``index``, mono."""
        rec = self.recordings[index]
        n = self.num_samples(index)
        length = n - start if length is None else length
        if start < 0 or length <= 0 or start + length > n:
            raise ValueError(f"samples {start}..{start + length} lie outside recording {rec.id!r} of {n} samples")
        try:
            if start == 0 and length == n:
                audio = rec.load_audio()
            else:
                audio = rec.load_audio(offset=start / SAMPLE_RATE, duration=length / SAMPLE_RATE)
        except Exception as err:
            raise InputError(rec.sources[0].source, f"cannot read audio ({type(err).__name__}: {err})") from None
        audio = np.asarray(audio, dtype=np.float32)
        mono = audio[0] if self.kind == "rir" else audio.mean(axis=0)
        if mono.shape[0] != length:  # lhotse rounds offsets to samples; keep the exact length
            mono = np.resize(mono, length) if mono.shape[0] else np.zeros(length, np.float32)
        return np.ascontiguousarray(mono, dtype=np.float32)

    def whole(self, index: int) -> np.ndarray:
        """All of recording ``index`` (cached)."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        audio = self.read(index)
        self._cache[index] = audio
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return audio


def _parts(value: str, known: Sequence[str], option: str) -> list[str]:
    parts = [p for p in value.split(",") if p]
    bad = [p for p in parts if p not in known]
    if not parts or bad:
        raise argparse.ArgumentTypeError(f"{option} takes a comma-separated subset of {','.join(known)}, got {value!r}")
    return parts


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m spectral.augment", __doc__.split("\n\n")[0], EXAMPLE)
    parser.add_argument("--kind", required=True, choices=KINDS, help="noise (MUSAN or any directory) or rir (RIRS_NOISES or any directory)")
    parser.add_argument("--source-dir", required=True, help="the local directory to list")
    parser.add_argument("--manifest", required=True, help="output RecordingSet, e.g. data/augment/noise_recordings.jsonl.gz")
    parser.add_argument("--musan-parts", default="music,noise",
                        type=lambda v: _parts(v, MUSAN_PARTS, "--musan-parts"),
                        help="MUSAN tree: comma-separated parts of music,speech,noise (default music,noise)")
    parser.add_argument("--rirs-parts", default="sim_rir",
                        type=lambda v: _parts(v, tuple(RIRS_PARTS), "--rirs-parts"),
                        help="RIRS_NOISES tree: comma-separated parts of sim_rir,real_rir (default sim_rir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m spectral.augment``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_invocation("spectral.augment", args)

    def work() -> None:
        recs = prepare_recordings(args.source_dir, args.kind, args.musan_parts, args.rirs_parts)
        log.info("wrote %s", write_manifest(recs, args.manifest))

    return run_main("spectral.augment", work)


if __name__ == "__main__":
    sys.exit(main())
