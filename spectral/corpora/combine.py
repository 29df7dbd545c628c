"""Stage *prepare*: several prepared sets as one training set (Kaldi's ``utils/combine_data.sh``).

Reads ``<in>/{wav.scp,utt2spk}`` (``spk2gender`` where present) and the lhotse manifests
``<in>/{recordings,supervisions}.jsonl.gz`` of every input set; writes the union into
``<out>/`` (Kaldi files in ``LC_ALL=C`` order, manifests and ``cuts.jsonl.gz``), atomically.
Used for VoxCeleb1-dev + VoxCeleb2-dev. An utterance id in two inputs, or a speaker id
shared by two inputs (two corpora would then be merged into one speaker), stops the stage
naming both files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spectral.data.kaldi import atomic_dir, read_table, write_data_dir
from spectral.errors import InputError
from spectral.logutil import command_parser, log_invocation, run_main


def combine(inputs: list[str | Path], out: str | Path) -> Path:
    """Write the union of the data directories ``inputs`` into ``out``; returns ``out``."""
    from lhotse import CutSet, RecordingSet, SupervisionSet

    if len(inputs) < 2:
        raise ValueError("combine needs at least two input sets")
    wav_scp: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    spk2gender: dict[str, str] = {}
    utt_from: dict[str, Path] = {}
    spk_from: dict[str, Path] = {}
    for d in map(Path, inputs):
        for f in ("wav.scp", "utt2spk", "recordings.jsonl.gz", "supervisions.jsonl.gz"):
            if not (d / f).is_file():
                raise InputError(d / f, "missing (run the prepare stage of this set first)")
        wavs, spks = read_table(d / "wav.scp"), read_table(d / "utt2spk")
        if set(wavs) != set(spks):
            raise InputError(d / "utt2spk", "does not list the same utterances as wav.scp")
        for utt in wavs:
            if utt in utt_from:
                raise InputError(d / "wav.scp", f"utterance {utt!r} is also in {utt_from[utt] / 'wav.scp'}")
            utt_from[utt] = d
        for spk in set(spks.values()):
            if spk in spk_from:
                raise InputError(d / "utt2spk", f"speaker {spk!r} is also in {spk_from[spk] / 'utt2spk'}")
            spk_from[spk] = d
        wav_scp.update(wavs)
        utt2spk.update(spks)
        if (d / "spk2gender").is_file():
            spk2gender.update(read_table(d / "spk2gender"))
    out = Path(out)
    with atomic_dir(out) as tmp:
        recs = RecordingSet.from_recordings(r for d in inputs for r in RecordingSet.from_file(Path(d) / "recordings.jsonl.gz"))
        sups = SupervisionSet.from_segments(s for d in inputs for s in SupervisionSet.from_file(Path(d) / "supervisions.jsonl.gz"))
        recs.to_file(tmp / "recordings.jsonl.gz")
        sups.to_file(tmp / "supervisions.jsonl.gz")
        CutSet.from_manifests(recordings=recs, supervisions=sups).to_file(tmp / "cuts.jsonl.gz")
        write_data_dir(tmp, wav_scp, utt2spk, spk2gender or None)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("spectral-combine-data", __doc__.split("\n\n")[0], """\
spectral-combine-data data/vox1_vox2_dev data/vox1_dev data/vox2_dev
""")
    p.add_argument("out", help="output data directory")
    p.add_argument("inputs", nargs="+", help="prepared data directories (two or more)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.inputs) < 2:
        parser.error("give at least two input data directories")
    log_invocation("spectral-combine-data", args)
    return run_main("spectral-combine-data", lambda: combine(args.inputs, args.out))


if __name__ == "__main__":
    sys.exit(main())
