"""Stage *embed*: a speaker embedding for every utterance of a data set, into Kaldi ark/scp.

Reads ``exp/<system>/final.pt`` (adapters merged) and ``data/<set>/`` (``feats.scp`` for the
built-in fbank backbone, ``wav.scp`` for WavLM/HuBERT), and writes::

    <out>/xvector.{ark,scp}       float32 embedding per utterance (kaldiio)
    <out>/spk_xvector.{ark,scp}   per-speaker means, with --speaker-means (cohorts, enrollment)

Each embedding comes from the whole utterance (capped at ``--max-seconds``, taken from its
middle) and, with ``--crops N``, is averaged with the embeddings of N fixed crops of
``--crop-seconds`` spread evenly over the utterance (the paper: full utterance + five 3 s
crops). Every part is length-normalised before averaging, so no part dominates by norm.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from spectral.data.kaldi import c_sorted, read_table
from spectral.errors import InputError
from spectral.logutil import log_invocation, run_main

log = logging.getLogger("spectral.embed")

FRAMES_PER_SECOND = 100
SAMPLE_RATE = 16000


def crop_starts(length: int, crop: int, n: int) -> list[int]:
    """Start offsets of ``n`` crops of ``crop`` units spread evenly over ``length`` units."""
    if n <= 0 or crop >= length:
        return [0] * max(n, 0)
    return [int(round(i * (length - crop) / max(n - 1, 1))) for i in range(n)] if n > 1 else [(length - crop) // 2]


def _parts(x: np.ndarray, max_len: int, crop_len: int, crops: int) -> list[np.ndarray]:
    """The whole (centre-capped) utterance and its fixed crops, along axis 0."""
    n = x.shape[0]
    full = x if n <= max_len else x[(n - max_len) // 2 : (n - max_len) // 2 + max_len]
    parts = [full]
    for start in crop_starts(n, crop_len, crops):
        parts.append(x[start : start + crop_len])
    return parts


def embed_set(
    checkpoint: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    max_seconds: float = 20.0,
    crops: int = 0,
    crop_seconds: float = 3.0,
    speaker_means: bool = False,
    threads: int = 2,
    progress: bool = True,
    device: str = "cpu",
) -> Path:
    """Embed every utterance of ``data_dir`` with the model of ``checkpoint``; returns xvector.scp.

    ``device``: cpu, cuda, or auto (cuda when available); a missing CUDA device is an error.
    """
    import torch
    from tqdm import tqdm

    from spectral.data.audio import read_audio
    from spectral.features import load_feats
    from spectral.models.speaker import ModelConfig, load_model_checkpoint
    from spectral.scoring.embeddings import write_embeddings, write_speaker_means

    torch.set_num_threads(threads)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if speaker_means:  # checked before any work, so nothing is written for a run that cannot finish
        if not (data_dir / "utt2spk").is_file():
            raise InputError(data_dir / "utt2spk", "missing: --speaker-means needs the data set's utt2spk")
        utt2spk = read_table(data_dir / "utt2spk")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "is 'cuda' but no CUDA device is available")
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    model, ckpt = load_model_checkpoint(checkpoint)
    model = model.to(dev)
    kind = ModelConfig.from_dict(ckpt["config"]["model"]).input_kind
    table_name = "feats.scp" if kind == "fbank" else "wav.scp"
    if not (data_dir / table_name).is_file():
        raise InputError(data_dir / table_name, "missing (run the prepare and features stages first)")
    table = read_table(data_dir / table_name)
    if not table:
        raise InputError(data_dir / table_name, "holds no utterances")
    if speaker_means:
        unmapped, extra = sorted(set(table) - set(utt2spk)), sorted(set(utt2spk) - set(table))
        if unmapped:
            raise InputError(data_dir / "utt2spk", f"has no speaker for {len(unmapped)} utterance(s) of "
                                                   f"{table_name}, e.g. {unmapped[0]!r}")
        if extra:
            raise InputError(data_dir / "utt2spk", f"lists {len(extra)} utterance(s) that {table_name} lacks, "
                                                   f"e.g. {extra[0]!r}; the speaker means need an embedding of each")
    line_of = {utt: n for n, utt in enumerate(table, 1)}
    rate = FRAMES_PER_SECOND if kind == "fbank" else SAMPLE_RATE
    max_len, crop_len = int(max_seconds * rate), int(crop_seconds * rate)
    vectors: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for utt in tqdm(c_sorted(table), desc=f"embed {data_dir.name}", unit="utt", disable=not progress):
            try:
                if kind == "fbank":
                    x = load_feats(table[utt], cmn=True)
                else:
                    x = read_audio(table[utt], SAMPLE_RATE, scale="unit")
            except InputError as err:
                raise InputError(data_dir / table_name, f"{utt}: {err}", line_of[utt]) from None
            parts = _parts(x, max_len, crop_len, crops)
            embs = [model(torch.from_numpy(np.ascontiguousarray(parts[0]))[None].to(dev))[0]]
            if len(parts) > 1:
                embs.extend(model(torch.from_numpy(np.stack(parts[1:])).to(dev)))
            e = torch.nn.functional.normalize(torch.stack(embs), dim=-1).mean(0).cpu()
            if not torch.isfinite(e).all():
                raise InputError(table[utt], f"embedding of {utt} is not finite")
            vectors[utt] = e.numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    scp = out_dir / "xvector.scp"
    write_embeddings(vectors, out_dir / "xvector.ark", scp)
    log.info("%d embeddings of dimension %d -> %s", len(vectors), next(iter(vectors.values())).size, scp)
    if speaker_means:
        write_speaker_means(scp, out_dir, utt2spk=data_dir / "utt2spk")
    return scp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spectral-embed",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  spectral-embed --crops 5 exp/SYSTEM/final.pt data/vox1_test exp/SYSTEM/embeddings/vox1_test",
    )
    p.add_argument("checkpoint", help="final.pt of the pretrain or finetune stage")
    p.add_argument("data_dir", help="Kaldi data directory (feats.scp or wav.scp, utt2spk)")
    p.add_argument("out_dir", help="where xvector.{ark,scp} go")
    p.add_argument("--max-seconds", type=float, default=20.0, help="cap on the whole-utterance part (default %(default)s)")
    p.add_argument("--crops", type=int, default=0, help="fixed crops averaged with the whole utterance (paper: 5; default %(default)s)")
    p.add_argument("--crop-seconds", type=float, default=3.0, help="length of each crop (default %(default)s)")
    p.add_argument("--speaker-means", action="store_true", help="also write spk_xvector.{ark,scp} from utt2spk")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="where the model runs: cpu, cuda, or auto (cuda when available; default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("max_seconds", "crop_seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.crops < 0:
        parser.error(f"--crops must be 0 or more, got {args.crops}")
    log_invocation("spectral-embed", args)
    return run_main(
        "spectral-embed",
        lambda: embed_set(args.checkpoint, args.data_dir, args.out_dir, args.max_seconds, args.crops,
                          args.crop_seconds, args.speaker_means, args.threads, not args.no_progress, args.device),
    )


if __name__ == "__main__":
    sys.exit(main())
