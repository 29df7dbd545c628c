"""Benchmark of the export stage's extractor: onnxruntime beside spectral-embed, on CPU, one thread each.

For each backbone, a randomly initialised merged speaker model (shapes are what matter for
time) is exported with :func:`spectral.export.export_extractor`, and one utterance is embedded
by the two contenders in turn, ``--rounds`` times after a warm-up:

* ``spectral-embed``: what the embed stage does per utterance (the merged SpeakerModel under
  ``torch.inference_mode`` with one torch thread, then L2 normalisation);
* ``onnxruntime``: ``extractor.onnx`` in an InferenceSession with one intra-op thread.

Backbones: the embedded default's builtin Transformer (fbank input; d_model 128, 4 layers,
ECAPA C = 64) and a WavLM-shaped model on waveform (WavLM's CNN front end, ``--wavlm-layers``
layers of hidden 256; WavLM-Base has 12 layers of 768). Prints the median seconds of audio
embedded per second of compute (real-time factor inverse) and the ratio onnxruntime /
spectral-embed. Run from the repository root:

    .venv/bin/python bench/bench_export.py                     # 8 s utterances, 5 rounds
    .venv/bin/python bench/bench_export.py --seconds 4 --rounds 3 --wavlm-layers 2   # quick look
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def builtin_model():
    from spectral.models import BackendConfig, BuiltinBackbone, BuiltinConfig, SpeakerModel

    return SpeakerModel(BuiltinBackbone(BuiltinConfig()), BackendConfig(channels=64), 100).eval(), "fbank"


def wavlm_model(layers: int):
    import transformers

    from spectral.models import BackendConfig, SpeakerModel
    from spectral.models.ssl import SSLBackbone, call_projections

    cfg = transformers.WavLMConfig(hidden_size=256, num_hidden_layers=layers, num_attention_heads=4,
                                   intermediate_size=1024, apply_spec_augment=False, layerdrop=0.0)
    model = transformers.WavLMModel(cfg).eval()
    call_projections(model)
    return SpeakerModel(SSLBackbone(model, "wavlm"), BackendConfig(channels=64), 100).eval(), "waveform"


def bench(name: str, model, kind: str, seconds: float, rounds: int) -> None:
    import onnxruntime as ort

    from spectral.export import export_extractor

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_extractor(model, kind, Path(tmp))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(paths["onnx"]), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((1, int(seconds * 100), 80)) if kind == "fbank"
         else 0.1 * rng.standard_normal((1, int(seconds * 16000)))).astype(np.float32)
    input_name = session.get_inputs()[0].name

    def ours():
        with torch.inference_mode():
            xt = torch.from_numpy(x)
            if kind == "fbank":
                xt = xt - xt.mean(dim=1, keepdim=True)
            return torch.nn.functional.normalize(model(xt), dim=-1).numpy()

    def onnx():
        return session.run(None, {input_name: x})[0]

    diff = float(np.abs(ours() - onnx()).max())  # also the warm-up
    times = {"spectral-embed": [], "onnxruntime": []}
    for _ in range(rounds):
        for label, fn in (("spectral-embed", ours), ("onnxruntime", onnx)):
            t = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{name:<28} {seconds:5.1f} s  spectral-embed {seconds / med['spectral-embed']:8.1f} s/s   "
          f"onnxruntime {seconds / med['onnxruntime']:8.1f} s/s   ratio {med['spectral-embed'] / med['onnxruntime']:.2f}x"
          f"   max |diff| {diff:.1e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0, help="utterance length (default %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default %(default)s)")
    p.add_argument("--wavlm-layers", type=int, default=4, help="layers of the WavLM-shaped model (default %(default)s)")
    args = p.parse_args()
    print("seconds of audio embedded per second of compute, one thread each (higher is faster)")
    torch.manual_seed(0)
    bench("builtin (embedded default)", *builtin_model(), args.seconds, args.rounds)
    bench(f"wavlm-shaped ({args.wavlm_layers}x256)", *wavlm_model(args.wavlm_layers), args.seconds, args.rounds)


if __name__ == "__main__":
    main()
