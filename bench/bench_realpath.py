"""The real data path of the paper's experiment: batched vs one-at-a-time extraction, crops/s vs a GPU step's need.

Every figure is printed beside its alternative, as a ratio from the same run:

1. **Extraction throughput** (CPU, ``--threads`` torch threads, default 1): ``spectral-embed``'s
   library call on a synthetic set (utterances of 1-8 s, VoxCeleb1-like; whole utterance plus
   ``--crops`` crops of 3 s, as the paper scores), one utterance at a time (``--batch-seconds 0``,
   the path before batching) against batched (utterances and crops sorted by length, padded
   with masks), in seconds of audio per second, with the largest difference between the two
   sets of embeddings; the ratio also in CPU time of the process (``time.process_time``). Models: a tiny saved WavLM (WavLM's 7-convolution front end at 50
   frames/s, 32 channels, 2 layers of width 32; written with ``save_pretrained`` and loaded
   through the real offline path) and the built-in backbone of
   ``conf/config.yaml`` (d = 128, 4 layers, ECAPA C = 64) on fbank; with ``--wider`` also a WavLM of
   4x the width (128 channels, 4 layers of 256), whose compute outweighs the per-call overhead
   that batching removes on a CPU, as a real backbone's does.
2. **Data path** (CPU): training crops per second of :func:`spectral.train.loader.make_batch`
   with the paper's augmentation (3 s waveform crops, noise p = 0.6, reverberation p = 0.3) in
   the training process and through DataLoader workers, against the crops per second one GPU
   step consumes at the paper's batch of 128: 35 TFLOP a step (the README's FLOP estimate) at an
   assumed sustained 12 TFLOP/s (A100, FP32) and 45 TFLOP/s (A100, bf16); those two rates are
   assumptions, not measurements, and say how many worker cores keep the GPU busy.
3. **GPU** (only where CUDA is available): step time and peak memory of the paper's model shape
   (WavLM-Large-shaped, randomly initialised; SpectralFT on q/k of 24 layers, k = 256, r = 16;
   ECAPA C = 1024; SGD) at batch ``--gpu-batch`` x 3 s in fp32 against bf16, and extraction
   throughput batched vs one at a time in bf16.

    python bench/bench_realpath.py [--utts 24] [--crops 5] [--threads 1] [--wider] [--workers 1] [--gpu-batch 128]

Prints markdown tables and the machine load (``uptime``) before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: WavLM's own front end (7 convolutions, 320 samples = 20 ms a frame, 50 frames/s) at small widths:
#: a tiny model with the real frame rate (the test suite's 2-layer front end runs at 800 frames/s).
TINY_WAVLM = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
    conv_dim=(32,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_buckets=32, max_bucket_distance=160,
)
#: ``--wider``: the same front end and depth pattern at 4x the width (128 channels, 4 layers of 256), a
#: model whose compute outweighs its per-call overhead, as real backbones do (not the issue's setting).
WIDER_WAVLM = dict(TINY_WAVLM, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                   conv_dim=(128,) * 7)
STEP_TFLOP = 35.0  # README: one paper step, 128 x 3 s, forward + backward through 24 adapted layers
ASSUMED_TFLOPS = {"A100 fp32": 12.0, "A100 bf16": 45.0}  # README: 10-14 TFLOP/s FP32; bf16 3-5x that (AMP's usual gain)
PAPER_BATCH = 128


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "uptime unavailable"


def _speaker_model(kind: str, root: Path):
    """A SpeakerModel (eval mode, settled batch norms) and its final.pt under ``root``."""
    import torch

    from spectral.models import BackendConfig, BuiltinBackbone, ModelConfig, SpeakerModel, load_ssl_backbone
    from spectral.models.speaker import CHECKPOINT_FORMAT
    from spectral.train.config import resolve_config

    torch.manual_seed(0)
    cfg = resolve_config({})
    if kind in ("wavlm", "wider"):
        import transformers

        shape, backend = (TINY_WAVLM, BackendConfig(channels=16, scale=4, se_bottleneck=8, attention_channels=8, embed_dim=8)) \
            if kind == "wavlm" else (WIDER_WAVLM, cfg.backend)
        transformers.WavLMModel(transformers.WavLMConfig(**shape)).save_pretrained(str(root / kind))
        model = SpeakerModel(load_ssl_backbone(root / kind, "wavlm"), backend, 3)
        model_cfg = ModelConfig(backbone="wavlm", path=str(root / kind))
        ssl_config = model.backbone.model.config.to_dict()
        probe = torch.randn(4, 16000)
    else:
        backend = cfg.backend
        model = SpeakerModel(BuiltinBackbone(cfg.model.builtin), backend, 3)
        model_cfg, ssl_config = cfg.model, None
        probe = torch.randn(4, 200, 80)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(probe)
    path = root / f"{kind}.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.eval().state_dict(),
                "config": {"model": model_cfg.to_dict(), "backend": backend.to_dict(), "ssl_config": ssl_config},
                "speakers": ["a", "b", "c"], "system": "bench"}, path)
    return path


def _synthetic_set(root: Path, n: int, fbank: bool) -> tuple[Path, float]:
    """A data directory of ``n`` utterances of 1-8 s (wav.scp, utt2spk; feats.scp with ``fbank``); total seconds."""
    import numpy as np
    import soundfile as sf

    from spectral.data.kaldi import write_table

    rng = np.random.default_rng(0)
    data = root / ("data_fbank" if fbank else "data_wave")
    (data / "wav").mkdir(parents=True)
    wavs, utt2spk, total = {}, {}, 0.0
    for i in range(n):
        seconds = float(rng.uniform(1.0, 8.0))
        total += seconds
        utt = f"spk{i % 6}-{i:04d}"
        t = np.arange(int(seconds * 16000)) / 16000
        x = 0.1 * np.sin(2 * np.pi * (120 + 10 * (i % 6)) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(data / "wav" / f"{utt}.wav", x.astype(np.float32), 16000)
        wavs[utt], utt2spk[utt] = str(data / "wav" / f"{utt}.wav"), f"spk{i % 6}"
    write_table(data / "wav.scp", wavs)
    write_table(data / "utt2spk", utt2spk)
    if fbank:
        from spectral.features import compute_fbank

        compute_fbank(data, nj=1, progress=False)
    return data, total


def bench_extraction(args, root: Path) -> list[dict]:
    import kaldiio
    import numpy as np

    from spectral.embed import embed_set

    rows = []
    for kind in ("wavlm", "builtin") + (("wider",) if args.wider else ()):
        ckpt = _speaker_model(kind, root)
        data, seconds = _synthetic_set(root / kind, args.utts, fbank=kind == "builtin")
        audio = seconds + args.utts * args.crops * 3.0  # every part is computed
        times = {"one": [], "batched": []}
        cpu = {"one": [], "batched": []}
        outs = {}
        for rep in range(args.repeats):
            for path, batch_seconds in (("one", 0.0), ("batched", args.batch_seconds)):
                start, start_cpu = time.perf_counter(), time.process_time()
                scp = embed_set(ckpt, data, root / kind / f"emb_{path}_{rep}", max_seconds=20.0, crops=args.crops,
                                crop_seconds=3.0, threads=args.threads, progress=False, batch_seconds=batch_seconds)
                times[path].append(time.perf_counter() - start)
                cpu[path].append(time.process_time() - start_cpu)
                outs[path] = dict(kaldiio.load_scp(str(scp)))
        diff = max(float(np.abs(outs["one"][u] - outs["batched"][u]).max()) for u in outs["one"])
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        med_cpu = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
        label = {"wavlm": "tiny WavLM (saved, waveform)", "builtin": "builtin (default, fbank)",
                 "wider": "wider WavLM (--wider: 128 channels, 4 layers of 256, ECAPA C = 64; not the issue's setting)"}[kind]
        rows.append({"model": label,
                     "audio": audio, "one": audio / med["one"], "batched": audio / med["batched"],
                     "ratio": med["one"] / med["batched"], "cpu_ratio": med_cpu["one"] / med_cpu["batched"],
                     "diff": diff})
        print(f"{kind}: one at a time {audio / med['one']:.0f} s/s, batched {audio / med['batched']:.0f} s/s",
              file=sys.stderr, flush=True)
    return rows


def bench_data_path(args, root: Path) -> list[dict]:
    import numpy as np
    import soundfile as sf

    from spectral.train.config import AugmentConfig, TrainConfig
    from spectral.train.data import SpeakerData
    from spectral.train.loader import BatchStream

    data, _ = _synthetic_set(root / "crops", max(args.utts, 24), fbank=False)
    rng = np.random.default_rng(1)
    (root / "noise").mkdir()
    (root / "rir").mkdir()
    for i in range(4):
        sf.write(root / "noise" / f"n{i}.wav", (0.1 * rng.standard_normal(16000 * 10)).astype(np.float32), 16000)
        rir = np.exp(-np.arange(8000) / 1200.0) * rng.standard_normal(8000)
        rir[0] = 1.0
        sf.write(root / "rir" / f"r{i}.wav", (0.5 * rir / np.abs(rir).max()).astype(np.float32), 16000)
    aug = AugmentConfig(noise_prob=0.6, reverb_prob=0.3, snr_min=0.0, snr_max=15.0)
    speaker_data = SpeakerData(data, "waveform", 3.0, aug, noise=root / "noise", rir=root / "rir")
    rows = []
    batch, steps = 32, args.data_steps
    for workers in sorted({0, args.workers}):
        tcfg = TrainConfig(batch_size=batch, crop_seconds=3.0, num_workers=workers)
        stream = BatchStream(speaker_data, tcfg, epoch=0, first=0, steps=steps + 1)
        stream.next(0)  # workers started, first batch in
        start = time.perf_counter()
        for step in range(1, steps + 1):
            stream.next(step)
        elapsed = time.perf_counter() - start
        stream.close()
        rows.append({"workers": workers, "crops_s": batch * steps / elapsed})
        print(f"data path, {workers} workers: {batch * steps / elapsed:.0f} crops/s", file=sys.stderr, flush=True)
    return rows


#: WavLM-Large's shape (the paper's backbone), and a small one for checking the GPU part on CPU.
LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, top_k=256, rank=16,
             channels=1024, utts=32)
CHECK = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, top_k=16, rank=2,
             channels=32, utts=3)


def bench_gpu(args, device: str = "cuda", shape: dict = LARGE) -> list[str]:
    """Paper-shaped step time and memory, fp32 vs bf16, and bf16 extraction, on CUDA.

    ``device="cpu"`` with ``shape=CHECK`` runs the same code small on CPU (``--check-gpu-part``),
    so the GPU part is known to run before a GPU is spent on it.
    """
    import torch
    import transformers

    from spectral.adapters import AdapterConfig, apply_adapters
    from spectral.models import BackendConfig, SpeakerModel
    from spectral.models.ssl import SSLBackbone, _length_aware_group_norms, call_projections
    from spectral.train.precision import Precision, autocast

    dev = torch.device(device)
    cuda = dev.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    name = torch.cuda.get_device_name(0) if cuda else "CPU (check of the GPU part, small shape)"
    lines = [f"GPU part on {name}: batch {args.gpu_batch} x 3 s, WavLM-{shape['hidden_size']} x {shape['num_hidden_layers']} "
             f"layers, SpectralFT q/k k={shape['top_k']} r={shape['rank']}, ECAPA C={shape['channels']}"]
    large = transformers.WavLMConfig(hidden_size=shape["hidden_size"], num_hidden_layers=shape["num_hidden_layers"],
                                     num_attention_heads=shape["num_attention_heads"], intermediate_size=shape["intermediate_size"],
                                     feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                                     apply_spec_augment=False, layerdrop=0.0)

    def build():
        torch.manual_seed(0)
        raw = transformers.WavLMModel(large)
        call_projections(raw)
        _length_aware_group_norms(raw)
        backend = BackendConfig(channels=shape["channels"], embed_dim=192, scale=8, se_bottleneck=128, attention_channels=128,
                                margin=0.3, loss_scale=32.0)
        model = SpeakerModel(SSLBackbone(raw, "wavlm"), backend, 1211)
        apply_adapters(model.backbone.model, AdapterConfig(method="spectralft", targets=["q_proj", "k_proj"],
                                                           rank=shape["rank"], top_k=shape["top_k"]))
        return model.to(dev)

    step_rows = {}
    for precision in ("fp32", "bf16"):
        model = build()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-4)
        prec = Precision(precision, dev)
        x = torch.randn(args.gpu_batch, 48000, device=dev)
        y = torch.randint(0, 1211, (args.gpu_batch,), device=dev)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(args.gpu_steps + 2):
            sync()
            start = time.perf_counter()
            with prec.autocast():
                loss, _ = model.head(model(x), y)
            opt.zero_grad(set_to_none=True)
            prec.backward(loss.float())
            prec.step(opt, params, 5.0)
            sync()
            if i >= 2:
                times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        step_rows[precision] = (sorted(times)[len(times) // 2], peak)
        del model, opt, x
        if cuda:
            torch.cuda.empty_cache()
    f32, b16 = step_rows["fp32"], step_rows["bf16"]
    lines += ["", "| precision | s/step | crops/s needed | peak GPU memory GiB | vs fp32 |", "|---|---:|---:|---:|---:|"]
    for name, (t, mem) in step_rows.items():
        lines.append(f"| {name} | {t:.2f} | {args.gpu_batch / t:.0f} | {mem:.1f} | {f32[0] / t:.2f}x |")
    # extraction: 32 utterances of 1-8 s (+5 crops each), bf16, batched vs one at a time
    model = build().eval()
    gen = torch.Generator().manual_seed(0)
    lengths = [int(16000 * (1 + 7 * float(torch.rand(1, generator=gen)))) for _ in range(shape["utts"])]
    parts = [torch.randn(n) for n in lengths] + [torch.randn(48000) for _ in range(shape["utts"] * 5)]
    audio = sum(p.numel() for p in parts) / 16000
    from spectral.embed import plan_batches

    with torch.inference_mode(), autocast(dev, "bf16"):
        sync()
        start = time.perf_counter()
        for p in parts:
            model(p[None].to(dev))
        sync()
        one = time.perf_counter() - start
        start = time.perf_counter()
        for batch in plan_batches([p.numel() for p in parts], 240 * 16000):
            longest = parts[batch[0]].numel()
            xb = torch.zeros(len(batch), longest)
            for r, i in enumerate(batch):
                xb[r, : parts[i].numel()] = parts[i]
            model(xb.to(dev), torch.tensor([parts[i].numel() for i in batch]))
        sync()
        batched = time.perf_counter() - start
    lines += ["", "| extraction, bf16 | s of audio / s |", "|---|---:|",
              f"| one at a time | {audio / one:.0f} |", f"| batched (240 s per batch) | {audio / batched:.0f} ({one / batched:.1f}x) |"]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=24, help="utterances of 1-8 s per extraction set (default %(default)s)")
    parser.add_argument("--crops", type=int, default=5, help="3 s crops per utterance, as the paper (default %(default)s)")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="padded audio per batch (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats, median reported (default %(default)s)")
    parser.add_argument("--wider", action="store_true",
                        help="also a WavLM of 4x the width, whose compute outweighs its per-call overhead (about 1 min more)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers beside the in-process data path (default %(default)s)")
    parser.add_argument("--data-steps", type=int, default=6, help="timed batches of 32 crops (default %(default)s)")
    parser.add_argument("--gpu-batch", type=int, default=PAPER_BATCH, help="GPU part: batch of 3 s crops (default %(default)s)")
    parser.add_argument("--gpu-steps", type=int, default=5, help="GPU part: timed steps per precision (default %(default)s)")
    parser.add_argument("--skip-gpu", action="store_true", help="leave out the GPU part even where CUDA is available")
    parser.add_argument("--check-gpu-part", action="store_true",
                        help="only run the GPU part's code on CPU with a small shape (to check it before a GPU is spent)")
    args = parser.parse_args()
    import torch

    if args.check_gpu_part:
        torch.set_num_threads(args.threads)
        print("\n".join(bench_gpu(args, "cpu", CHECK)))
        return 0

    torch.set_num_threads(args.threads)
    before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        extraction = bench_extraction(args, root)
        data_path = bench_data_path(args, root)
    after = uptime()
    print(f"\nload before: {before}\nload after:  {after}\n")
    print(f"Extraction, CPU, {args.threads} thread(s), {args.utts} utterances of 1-8 s + {args.crops} crops of 3 s each, "
          f"median of {args.repeats} (batched: {args.batch_seconds:g} s of padded input per batch)\n")
    print("| model | audio s | one at a time, s audio/s | batched, s audio/s | batched vs one | same, in CPU time | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in extraction:
        print(f"| {r['model']} | {r['audio']:.0f} | {r['one']:.0f} | {r['batched']:.0f} | {r['ratio']:.2f}x | "
              f"{r['cpu_ratio']:.2f}x | {r['diff']:.1e} |")
    base = data_path[0]["crops_s"]
    print(f"\nData path, CPU: batches of 32 waveform crops of 3 s, noise p 0.6, reverb p 0.3\n")
    print("| data path | crops/s | vs in-process |")
    print("|---|---:|---:|")
    for r in data_path:
        label = "in the training process" if r["workers"] == 0 else f"{r['workers']} DataLoader worker(s)"
        print(f"| {label} | {r['crops_s']:.0f} | {r['crops_s'] / base:.2f}x |")
    print(f"\nOne GPU step's need at batch {PAPER_BATCH} ({STEP_TFLOP:g} TFLOP a step, README estimate; sustained rates assumed)\n")
    print("| GPU, assumed sustained | s/step | crops/s needed | in-process data path covers | cores at the in-process rate |")
    print("|---|---:|---:|---:|---:|")
    for name, tflops in ASSUMED_TFLOPS.items():
        step = STEP_TFLOP / tflops
        need = PAPER_BATCH / step
        print(f"| {name}, {tflops:g} TFLOP/s | {step:.2f} | {need:.0f} | {base / need:.2f}x | {need / base:.1f} |")
    if torch.cuda.is_available() and not args.skip_gpu:
        print()
        print("\n".join(bench_gpu(args)))
    else:
        print("\nGPU part: not run (no CUDA device here).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
