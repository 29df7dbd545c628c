"""Stage *prepare* for VoxCeleb2-dev, optional extra training data beside VoxCeleb1-dev.

Reads, with no network access, VoxCeleb2-dev as distributed (``vox2_dev_aac``)::

    <corpus>/dev/aac/<spk>/<session>/<n>.m4a      (or <corpus>/aac/..., or <corpus>/<spk>/...)

where files may also be ``.wav`` or ``.flac`` (copies converted beforehand). ``.m4a`` (AAC)
is decoded through lhotse's audio backends — they need ffmpeg (or a torchaudio built with
it) to read AAC; where none can, the stage stops with an error naming the file. The rest of
the pipeline reads audio with libsndfile, which cannot read AAC, so decoded files are
written as 16-bit FLAC under the set's directory. Writes::

    <data>/<name>/audio/<spk>/<session>/<n>.flac          decoded .m4a files only
    <data>/<name>/{recordings,supervisions,cuts}.jsonl.gz  lhotse manifests
    <data>/<name>/{wav.scp,utt2spk,spk2utt}                Kaldi files, LC_ALL=C order

Utterance ids are ``<spk>-<session>-<n>`` as for VoxCeleb1 (VoxCeleb2 speaker ids,
``id0xxxx``, never collide with VoxCeleb1's ``id1xxxx``). VoxCeleb2 is distributed under
CC BY 4.0 (https://www.robots.ox.ac.uk/~vgg/data/voxceleb/). The set is written atomically:
a killed run leaves nothing that looks complete.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from spectral.data.audio import AudioInfo, check_audio
from spectral.corpora.manifests import write_set
from spectral.data.kaldi import atomic_dir, c_sorted
from spectral.errors import InputError
from spectral.logutil import command_parser, log_invocation, run_main
from spectral.workers import process_pool

log = logging.getLogger("spectral.prepare")

AUDIO_SUFFIXES = (".m4a", ".wav", ".flac")


def audio_root(corpus_dir: str | Path) -> Path:
    """The directory holding ``<spk>/<session>/`` folders: ``dev/aac``, ``aac`` or the corpus itself."""
    root = Path(corpus_dir)
    if not root.is_dir():
        raise InputError(root, "no such VoxCeleb2 directory")
    for sub in ("dev/aac", "aac", "dev/wav", "wav"):
        if (root / sub).is_dir():
            return root / sub
    return root


def scan(corpus_dir: str | Path) -> list[tuple[str, str, str, Path]]:
    """Every ``<spk>/<session>/<n>.{m4a,wav,flac}`` as (utt id, speaker, session, path), sorted by id."""
    root = audio_root(corpus_dir)
    found: dict[str, tuple[str, str, str, Path]] = {}
    for spk in sorted(os.scandir(root), key=lambda e: e.name):
        if not spk.is_dir() or not spk.name.startswith("id"):
            continue
        for ses in sorted(os.scandir(spk.path), key=lambda e: e.name):
            if not ses.is_dir():
                continue
            for f in sorted(os.scandir(ses.path), key=lambda e: e.name):
                stem, suffix = os.path.splitext(f.name)
                if suffix.lower() not in AUDIO_SUFFIXES:
                    continue
                utt = f"{spk.name}-{ses.name}-{stem}"
                if utt in found:
                    raise InputError(f.path, f"duplicate utterance id {utt!r} (also from {found[utt][3]})")
                found[utt] = (utt, spk.name, ses.name, Path(f.path))
    if not found:
        raise InputError(root, "no .m4a, .wav or .flac files found under <spk>/<session>/")
    return [found[u] for u in c_sorted(found)]


def decode(path: str | Path, sampling_rate: int = 16000) -> np.ndarray:
    """Decode one file through lhotse's audio backends into float32 mono samples.

    Raises InputError naming ``path`` when no backend can read it (for .m4a: ffmpeg is
    missing), or when it is not mono at ``sampling_rate`` Hz.
    """
    from lhotse import Recording

    try:
        rec = Recording.from_file(str(path))
        samples = rec.load_audio()
    except Exception as err:  # lhotse tries every backend and reports them all
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and not ln.startswith("Set LHOTSE")]
        first = " ".join(lines)[:400]
        hint = (" lhotse reads AAC (.m4a) only through ffmpeg: install ffmpeg (or a torchaudio with ffmpeg), "
                "or convert VoxCeleb2 to .wav/.flac first" if str(path).endswith(".m4a") else "")
        raise InputError(path, f"cannot decode audio with lhotse's backends ({type(err).__name__}: {first}).{hint}") from None
    if rec.sampling_rate != sampling_rate:
        raise InputError(path, f"expected {sampling_rate} Hz audio, found {rec.sampling_rate} Hz")
    if samples.ndim != 2 or samples.shape[0] != 1:
        raise InputError(path, f"expected mono audio, found {samples.shape[0]} channels")
    if samples.shape[1] == 0:
        raise InputError(path, "holds no audio samples")
    return samples[0].astype(np.float32)


def _convert(job: list[tuple[str, str, str]]) -> list[tuple[str, int]]:
    """Decode each (utt, source, destination) to 16-bit FLAC; return (utt, samples)."""
    out = []
    for utt, src, dst in job:
        samples = decode(src)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        sf.write(dst, np.clip(samples, -1.0, 32767 / 32768), 16000, subtype="PCM_16", format="FLAC")
        out.append((utt, samples.size))
    return out


def prepare(corpus_dir: str | Path, data_dir: str | Path, name: str = "vox2_dev", nj: int = 1,
            progress: bool = True) -> Path:
    """Prepare VoxCeleb2-dev into ``<data_dir>/<name>``; returns that directory."""
    files = scan(corpus_dir)
    dest = (Path(data_dir) / name).absolute()
    log.info("%s: %d files of %d speakers", corpus_dir, len(files), len({f[1] for f in files}))
    to_decode = [f for f in files if f[3].suffix.lower() == ".m4a"]
    if to_decode:  # fail on the first file rather than after a long scan
        decode(to_decode[0][3])
    infos: dict[str, AudioInfo] = {}
    with atomic_dir(dest) as tmp:
        jobs = [(utt, str(path), str(tmp / "audio" / spk / ses / f"{path.stem}.flac"))
                for utt, spk, ses, path in to_decode]
        chunks = [jobs[i:i + 200] for i in range(0, len(jobs), 200)]
        bar = tqdm(total=len(jobs), desc=f"decode {name}", unit="file", disable=not progress or not jobs)
        with process_pool(max(1, nj)) as pool:
            for done in pool.map(_convert, chunks):
                for utt, n in done:
                    infos[utt] = AudioInfo("", 16000, n, 1)
                bar.update(len(done))
        bar.close()
        paths: dict[str, str] = {}
        utt2spk: dict[str, str] = {}
        for utt, spk, ses, path in files:
            if utt in infos:
                paths[utt] = str(dest / "audio" / spk / ses / f"{path.stem}.flac")
            else:
                infos[utt] = check_audio(path)
                paths[utt] = str(path.resolve())
            utt2spk[utt] = spk
        write_set(tmp, paths, {u: i.num_samples for u, i in infos.items()}, utt2spk)
    log.info("%s: %d utterances (%d decoded to FLAC), %d speakers -> %s", name, len(files), len(to_decode),
             len(set(utt2spk.values())), dest)
    return dest


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-prepare-vox2", __doc__.split("\n\n")[0], """\
spectral-prepare-vox2 --corpus-dir /corpora/VoxCeleb2 --data-dir data --nj 8
""")
    p.add_argument("--corpus-dir", required=True, help="VoxCeleb2 directory (dev/aac/<spk>/<session>/*.m4a)")
    p.add_argument("--data-dir", required=True, help="where data/<name>/ is written")
    p.add_argument("--name", default="vox2_dev", help="set name (default %(default)s)")
    p.add_argument("--nj", type=int, default=1, help="parallel decoding processes (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_invocation("spectral-prepare-vox2", args)
    return run_main("spectral-prepare-vox2", lambda: prepare(args.corpus_dir, args.data_dir, args.name, args.nj,
                                                              progress=not args.no_progress))


if __name__ == "__main__":
    sys.exit(main())
