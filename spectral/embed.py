"""Stage *embed*: a speaker embedding for every utterance of a data set, into Kaldi ark/scp.

Reads ``exp/<system>/final.pt`` (adapters merged) and ``data/<set>/`` (``feats.scp`` for the
built-in fbank backbone, ``wav.scp`` for WavLM/HuBERT), and writes::

    <out>/xvector.{ark,scp}       float32 embedding per utterance (kaldiio)
    <out>/spk_xvector.{ark,scp}   per-speaker means, with --speaker-means (cohorts, enrollment)

Each embedding comes from the whole utterance (capped at ``--max-seconds``, taken from its
middle) and, with ``--crops N``, is averaged with the embeddings of N fixed crops of
``--crop-seconds`` spread evenly over the utterance (the paper: full utterance + five 3 s
crops). Every part is length-normalised before averaging, so no part dominates by norm.

Extraction is batched: the parts of every utterance (whole utterances and crops alike) are
sorted by length and packed into batches of at most ``--batch-seconds`` of padded input; the
model is told each row's real length (attention masks in the backbone, masked convolutions
and pooling in the back-end), so an embedding does not depend on what it was batched with
(equal to the one-at-a-time path, ``--batch-seconds 0``, within float rounding). A part
that occurs twice in an utterance (one no longer than a crop is its whole part and every
crop) is computed once. Utterances are read in windows of similar length, so memory stays
bounded on any set.

``--reuse DIR`` takes the embeddings of utterances already embedded into DIR (another set's
output of the same checkpoint and settings, e.g. ``vox1_dev`` inside ``vox1_all``) instead of
embedding them again; ``embed_info.json`` beside ``xvector.scp`` records what an output was
made from, so only utterances with the same source entry are reused. ``--subset N`` embeds N
utterances spread over the speakers (a cohort or mean-subtraction subset of a training set).
``--precision bf16|fp16`` runs the model under autocast; embeddings are written in float32.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from spectral.atomic import atomic_write_text
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


def _spans(n: int, max_len: int, crop_len: int, crops: int) -> list[tuple[int, int]]:
    """(start, length) of the whole (centre-capped) utterance of ``n`` units and of its fixed crops."""
    full = (0, n) if n <= max_len else ((n - max_len) // 2, max_len)
    return [full] + [(start, min(crop_len, n - start)) for start in crop_starts(n, crop_len, crops)]


def _parts(x: np.ndarray, max_len: int, crop_len: int, crops: int) -> list[np.ndarray]:
    """The whole (centre-capped) utterance and its fixed crops, along axis 0."""
    return [x[start : start + length] for start, length in _spans(x.shape[0], max_len, crop_len, crops)]


def plan_batches(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices of ``lengths``, longest first, grouped so that rows x longest row <= ``budget``.

    A part longer than the budget forms a batch of its own. Ties keep index order, so the
    plan is a function of the lengths alone.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[current[0]] > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pick_subset(utt2spk: dict[str, str], n: int, seed: int = 0) -> list[str]:
    """``n`` utterances spread evenly over the speakers (round robin, random within a speaker), C-sorted."""
    rng = np.random.default_rng([seed, 4409])
    by_spk: dict[str, list[str]] = {}
    for utt in c_sorted(utt2spk):
        by_spk.setdefault(utt2spk[utt], []).append(utt)
    queues = [list(np.array(us)[rng.permutation(len(us))]) for _, us in sorted(by_spk.items(), key=lambda kv: kv[0].encode())]
    picked: list[str] = []
    while len(picked) < min(n, len(utt2spk)):
        for q in queues:
            if q and len(picked) < n:
                picked.append(str(q.pop(0)))
    return c_sorted(picked)


def _checkpoint_id(checkpoint: Path) -> dict:
    st = checkpoint.stat()
    return {"path": str(checkpoint.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _reusable(reuse: Path, info: dict, table: dict[str, str]) -> dict[str, np.ndarray]:
    """Embeddings in ``reuse`` made with the same checkpoint and settings from the same sources as ``table``."""
    import json

    from spectral.scoring.embeddings import read_embeddings

    info_path = reuse / "embed_info.json"
    if not info_path.is_file() or not (reuse / "xvector.scp").is_file():
        raise InputError(reuse, "holds no embed output (xvector.scp and embed_info.json) to reuse")
    other = json.loads(info_path.read_text(encoding="utf-8"))
    if other.get("checkpoint") != info["checkpoint"] or other.get("settings") != info["settings"]:
        log.warning("%s was embedded with another checkpoint or settings: nothing reused", reuse)
        return {}
    same = {u for u, src in other.get("sources", {}).items() if table.get(u) == src}
    return read_embeddings(reuse / "xvector.scp", keys=same) if same else {}


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
    batch_seconds: float = 60.0,
    precision: str = "fp32",
    reuse: str | Path | None = None,
    subset: int | None = None,
    train_data_dir: str | Path | None = None,
) -> Path:
    """Embed every utterance of ``data_dir`` with the model of ``checkpoint``; returns xvector.scp.

    ``device``: cpu, cuda, or auto (cuda when available); a missing CUDA device is an error.
    ``batch_seconds``: padded input per batch (0: one utterance at a time, the reference path).
    ``precision``: fp32, bf16 or fp16 autocast. ``reuse``: an embed output directory whose
    matching embeddings are copied. ``subset``: embed only that many utterances (spread over speakers).
    ``train_data_dir``: the configured training set; a checkpoint trained on another is refused
    (:func:`spectral.train.trainset.check_trained_on`).
    """
    import json

    import torch

    from spectral.models.speaker import ModelConfig, load_model_checkpoint
    from spectral.scoring.embeddings import write_embeddings, write_speaker_means
    from spectral.train.precision import PRECISIONS, autocast

    if precision not in PRECISIONS:
        raise InputError("--precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    torch.set_num_threads(threads)
    checkpoint = Path(checkpoint)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    dev = _device(device, precision)
    if train_data_dir is not None:
        from spectral.train.trainset import check_trained_on, read_checkpoint_record

        check_trained_on(read_checkpoint_record(checkpoint), checkpoint, train_data_dir)
    model, ckpt = load_model_checkpoint(checkpoint)
    model = model.to(dev)
    kind = ModelConfig.from_dict(ckpt["config"]["model"]).input_kind
    table_name = "feats.scp" if kind == "fbank" else "wav.scp"
    table = _utterances(data_dir, table_name, subset)
    if speaker_means:  # checked before any work, so nothing is written for a run that cannot finish
        _check_speaker_map(data_dir, table, table_name)
    rate = FRAMES_PER_SECOND if kind == "fbank" else SAMPLE_RATE
    max_len, crop_len = int(max_seconds * rate), int(crop_seconds * rate)
    info = {"checkpoint": _checkpoint_id(checkpoint),
            "settings": {"max_seconds": max_seconds, "crops": crops, "crop_seconds": crop_seconds, "precision": precision},
            "sources": dict(table)}
    vectors: dict[str, np.ndarray] = _reusable(Path(reuse), info, table) if reuse else {}
    if reuse:
        log.info("%d of %d embeddings reused from %s", len(vectors), len(table), reuse)
    todo = [u for u in c_sorted(table) if u not in vectors]
    reader = _Reader(table, kind, data_dir)
    with torch.inference_mode(), autocast(dev, precision):
        if batch_seconds <= 0:
            vectors.update(_embed_one_by_one(model, reader, todo, max_len, crop_len, crops, dev, progress, data_dir.name))
        else:
            vectors.update(_embed_batched(model, reader, todo, max_len, crop_len, crops, dev, progress, data_dir.name,
                                          budget=int(batch_seconds * rate)))
    out_dir.mkdir(parents=True, exist_ok=True)
    scp = out_dir / "xvector.scp"
    vectors = {u: vectors[u] for u in c_sorted(table)}
    write_embeddings(vectors, out_dir / "xvector.ark", scp)
    atomic_write_text(out_dir / "embed_info.json", json.dumps(info, sort_keys=True))
    log.info("%d embeddings of dimension %d -> %s", len(vectors), next(iter(vectors.values())).size, scp)
    if speaker_means:
        write_speaker_means(scp, out_dir, utt2spk=data_dir / "utt2spk")
    return scp


def _device(device: str, precision: str):
    """The torch device of ``--device`` (cpu, cuda, auto), checked against ``--precision``."""
    import torch

    from spectral.train.precision import check_device

    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "is 'cuda' but no CUDA device is available")
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    try:
        check_device(precision, dev)
    except ValueError as err:
        raise InputError("--precision", str(err)) from None
    return dev


def _utterances(data_dir: Path, table_name: str, subset: int | None) -> dict[str, str]:
    """utt -> source of ``data_dir/table_name`` (feats.scp or wav.scp), or ``subset`` of them spread over speakers."""
    if not (data_dir / table_name).is_file():
        raise InputError(data_dir / table_name, "missing (run the prepare and features stages first)")
    table = read_table(data_dir / table_name)
    if not table:
        raise InputError(data_dir / table_name, "holds no utterances")
    if subset is not None:
        if not (data_dir / "utt2spk").is_file():
            raise InputError(data_dir / "utt2spk", "missing (--subset spreads the utterances over speakers)")
        utt2spk = {u: s for u, s in read_table(data_dir / "utt2spk").items() if u in table}
        table = {u: table[u] for u in pick_subset(utt2spk, subset)}
    return table


def _check_speaker_map(data_dir: Path, table: dict[str, str], table_name: str) -> None:
    """--speaker-means needs an utt2spk that names the speaker of every utterance embedded, and no other."""
    if not (data_dir / "utt2spk").is_file():
        raise InputError(data_dir / "utt2spk", "missing: --speaker-means needs the data set's utt2spk")
    utt2spk = read_table(data_dir / "utt2spk")
    unmapped, extra = sorted(set(table) - set(utt2spk)), sorted(set(utt2spk) - set(table))
    if unmapped:
        raise InputError(data_dir / "utt2spk", f"has no speaker for {len(unmapped)} utterance(s) of "
                                               f"{table_name}, e.g. {unmapped[0]!r}")
    if extra:
        raise InputError(data_dir / "utt2spk", f"lists {len(extra)} utterance(s) that are not embedded "
                                               f"(not in {table_name}, or left out by --subset), e.g. {extra[0]!r}; "
                                               f"the speaker means need an embedding of each")


class _Reader:
    """An utterance's input (mean-normalised fbank or float waveform) and its length, by name.

    Audio goes through :func:`spectral.data.audio.read_audio` (every subtype on the [-1, 1]
    scale; truncated files refused); a bad entry is an InputError naming the table and line."""

    def __init__(self, table: dict[str, str], kind: str, data_dir: Path) -> None:
        self.table, self.kind = table, kind
        self.table_path = data_dir / ("feats.scp" if kind == "fbank" else "wav.scp")
        self.line_of = {utt: n for n, utt in enumerate(read_table(self.table_path), 1)} if self.table_path.is_file() else {}
        frames = data_dir / "utt2num_frames"
        self.known = {u: int(n) for u, n in read_table(frames).items()} if kind == "fbank" and frames.is_file() else {}

    def load(self, utt: str) -> np.ndarray:
        from spectral.data.audio import read_audio
        from spectral.features import load_feats

        try:
            if self.kind == "fbank":
                return load_feats(self.table[utt], cmn=True)
            return read_audio(self.table[utt], SAMPLE_RATE, scale="unit")
        except InputError as err:
            raise InputError(self.table_path, f"{utt}: {err}", self.line_of.get(utt)) from None

    def length(self, utt: str) -> int:
        if utt in self.known:
            return self.known[utt]
        if self.kind == "fbank":
            return int(self.load(utt).shape[0])
        from spectral.data.audio import check_audio

        try:
            return check_audio(self.table[utt], SAMPLE_RATE).num_samples
        except InputError as err:
            raise InputError(self.table_path, f"{utt}: {err}", self.line_of.get(utt)) from None


def _combine(utt: str, embs, source: str) -> np.ndarray:
    """The mean of the length-normalised part embeddings of ``utt``, float32; InputError when not finite."""
    import torch

    e = torch.nn.functional.normalize(torch.stack(list(embs)).float(), dim=-1).mean(0).cpu()
    if not torch.isfinite(e).all():
        raise InputError(source, f"embedding of {utt} is not finite")
    return e.numpy()


def _embed_one_by_one(model, reader: _Reader, utts: list[str], max_len: int, crop_len: int, crops: int,
                      dev, progress: bool, name: str) -> dict[str, np.ndarray]:
    """The reference path: each utterance alone, its crops as one batch of equal lengths."""
    import torch
    from tqdm import tqdm

    vectors = {}
    for utt in tqdm(utts, desc=f"embed {name}", unit="utt", disable=not progress):
        parts = _parts(reader.load(utt), max_len, crop_len, crops)
        embs = [model(torch.from_numpy(np.ascontiguousarray(parts[0]))[None].to(dev))[0]]
        if len(parts) > 1:
            embs.extend(model(torch.from_numpy(np.stack(parts[1:])).to(dev)))
        vectors[utt] = _combine(utt, embs, reader.table[utt])
    return vectors


#: Batches of padded input read per window of similar-length utterances (bounds memory).
WINDOW_BATCHES = 16


def _embed_batched(model, reader: _Reader, utts: list[str], max_len: int, crop_len: int, crops: int,
                   dev, progress: bool, name: str, budget: int) -> dict[str, np.ndarray]:
    """Every part of every utterance, sorted by length and packed into padded batches of <= ``budget``."""
    import torch
    from tqdm import tqdm

    lengths = {u: reader.length(u) for u in utts}
    order = sorted(utts, key=lambda u: (-lengths[u], u.encode()))
    vectors: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(utts), desc=f"embed {name}", unit="utt", disable=not progress)
    start = 0
    while start < len(order):
        window, audio = [], 0
        while start < len(order) and (not window or audio + min(lengths[order[start]], max_len) <= WINDOW_BATCHES * budget):
            window.append(order[start])
            audio += min(lengths[order[start]], max_len) + crops * crop_len
            start += 1
        # distinct parts only: an utterance no longer than a crop is its own whole part and every
        # crop of it, and crops of one barely longer may coincide; each is computed once
        parts: list[np.ndarray] = []
        uses: dict[str, list[int]] = {}
        for utt in window:
            x, seen = reader.load(utt), {}
            for span in _spans(x.shape[0], max_len, crop_len, crops):
                if span not in seen:
                    seen[span] = len(parts)
                    parts.append(x[span[0] : span[0] + span[1]])
                uses.setdefault(utt, []).append(seen[span])
        out: list = [None] * len(parts)
        for batch in plan_batches([p.shape[0] for p in parts], budget):
            longest = parts[batch[0]].shape[0]
            x = np.zeros((len(batch), longest) + parts[batch[0]].shape[1:], dtype=np.float32)
            for row, i in enumerate(batch):
                x[row, : parts[i].shape[0]] = parts[i]
            # lengths even when all are equal: the backbone's CPU front end then takes the rows
            # in cache-sized groups (SSLBackbone.front_end_samples), not the whole batch at once
            embs = model(torch.from_numpy(x).to(dev), torch.tensor([parts[i].shape[0] for i in batch]))
            for row, i in enumerate(batch):
                out[i] = embs[row]
        for utt in window:
            vectors[utt] = _combine(utt, [out[i] for i in uses[utt]], reader.table[utt])
        bar.update(len(window))
    bar.close()
    return vectors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spectral-embed",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  spectral-embed --crops 5 --train-data-dir data/vox1_dev exp/SYSTEM/final.pt data/vox1_test "
               "exp/SYSTEM/embeddings/vox1_test",
    )
    p.add_argument("checkpoint", help="final.pt of the pretrain or finetune stage")
    p.add_argument("data_dir", help="Kaldi data directory (feats.scp or wav.scp, utt2spk)")
    p.add_argument("out_dir", help="where xvector.{ark,scp} go")
    p.add_argument("--max-seconds", type=float, default=20.0, help="cap on the whole-utterance part (default %(default)s)")
    p.add_argument("--crops", type=int, default=0, help="fixed crops averaged with the whole utterance (paper: 5; default %(default)s)")
    p.add_argument("--crop-seconds", type=float, default=3.0, help="length of each crop (default %(default)s)")
    p.add_argument("--speaker-means", action="store_true", help="also write spk_xvector.{ark,scp} from utt2spk")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="where the model runs: cpu, cuda, or auto (cuda when available; default %(default)s)")
    p.add_argument("--batch-seconds", type=float, default=60.0,
                   help="padded input per batch, seconds; parts sorted by length (0: one utterance at a time; default %(default)s)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="autocast precision of the model (embeddings are written as float32; default %(default)s)")
    p.add_argument("--reuse", default=None, metavar="DIR",
                   help="another set's embed output of the same checkpoint and settings: its utterances are not embedded again")
    p.add_argument("--subset", type=int, default=None, metavar="N",
                   help="embed only N utterances spread over the speakers (e.g. a cohort); default: all")
    p.add_argument("--train-data-dir", default=None,
                   help="Kaldi directory of the configured training set (data/<train set>): refuse a checkpoint "
                        "trained on another set or other speakers (its final.pt records which)")
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
    if args.batch_seconds < 0:
        parser.error(f"--batch-seconds must be 0 or more, got {args.batch_seconds}")
    if args.subset is not None and args.subset < 1:
        parser.error(f"--subset must be 1 or more, got {args.subset}")
    log_invocation("spectral-embed", args)
    return run_main(
        "spectral-embed",
        lambda: embed_set(args.checkpoint, args.data_dir, args.out_dir, args.max_seconds, args.crops,
                          args.crop_seconds, args.speaker_means, args.threads, not args.no_progress, args.device,
                          args.batch_seconds, args.precision, args.reuse, args.subset,
                          args.train_data_dir),
    )


if __name__ == "__main__":
    sys.exit(main())
