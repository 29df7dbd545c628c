"""Stage *export*: the whole embedding extractor as TorchScript (``extractor.pt``) and ONNX (``extractor.onnx``).

Reads a ``final.pt`` (adapters merged) and writes two files that need neither this package
nor its configuration to run:

    extractor.pt     TorchScript (``torch.jit.load``), traced once
    extractor.onnx   the same graph for onnxruntime (opset 17)

Both map the embed stage's input to the L2-normalised speaker embedding of the whole
utterance, with a dynamic time axis:

    builtin backbone   ``feats``  (1, frames, 80) float32 fbank as in feats.scp; the extractor
                       subtracts the per-utterance mean (CMN) itself, as spectral-embed does
    WavLM / HuBERT     ``wave``   (1, samples) float32 16 kHz waveform in [-1, 1]; the extractor
                       normalises it to zero mean and unit variance itself
    output             ``embedding`` (1, embed_dim), unit length

This is spectral-embed with ``--crops 0`` on an utterance no longer than ``--max-seconds``
(default 20 s). One utterance per call: there is no padding mask, so a batch must hold
utterances of one length.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger("spectral.export")

#: ONNX opset of extractor.onnx.
OPSET = 17
#: Length of the example the extractor is traced with: 4 s of audio or 400 fbank frames.
TRACE_SECONDS = 4.0


class EmbeddingExtractor(nn.Module):
    """Stage input (fbank or waveform, batch first) -> L2-normalised embedding (batch, embed_dim).

    Wraps a merged :class:`~spectral.models.SpeakerModel` (its AAM head is left out).
    """

    def __init__(self, model: nn.Module, input_kind: str) -> None:
        super().__init__()
        if input_kind not in ("fbank", "waveform"):
            raise ValueError(f"input_kind must be 'fbank' or 'waveform', got {input_kind!r}")
        self.backbone = model.backbone
        self.backend = model.backend
        self.cmn = input_kind == "fbank"

    def forward(self, x: Tensor) -> Tensor:
        if self.cmn:
            x = x - x.mean(dim=1, keepdim=True)
        return F.normalize(self.backend(self.backbone(x)), dim=-1)


def example_input(input_kind: str, n_mels: int = 80, seconds: float = TRACE_SECONDS, seed: int = 0) -> Tensor:
    """A deterministic random example of the extractor's input, ``seconds`` long."""
    gen = torch.Generator().manual_seed(seed)
    if input_kind == "fbank":
        return torch.randn(1, int(seconds * 100), n_mels, generator=gen)
    return 0.1 * torch.randn(1, int(seconds * 16000), generator=gen)


def trace_extractor(extractor: EmbeddingExtractor, example: Tensor) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of ``extractor`` (eval mode, no gradient) on ``example``.

    The tracer's warnings about Python values taken from shapes are silenced: the tests check
    that the traced graph gives spectral-embed's output at other lengths than the example's.
    """
    extractor = extractor.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(extractor, (example,), check_trace=False)
    return traced


def export_extractor(model: nn.Module, input_kind: str, out_dir: str | Path, n_mels: int = 80) -> dict[str, Path]:
    """Write ``extractor.pt`` and ``extractor.onnx`` of a merged SpeakerModel into ``out_dir``.

    Each is written under a temporary name and renamed when complete. Returns
    {"torchscript": path, "onnx": path}. The ONNX input is named ``feats`` or ``wave``
    (axis 1 dynamic, axis 0 too), the output ``embedding``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extractor = EmbeddingExtractor(model, input_kind).eval()
    example = example_input(input_kind, n_mels)
    traced = trace_extractor(extractor, example)
    pt = out_dir / "extractor.pt"
    tmp = out_dir / ".extractor.pt.tmp"
    traced.save(str(tmp))
    tmp.replace(pt)
    onnx_path = out_dir / "extractor.onnx"
    tmp = out_dir / ".extractor.onnx.tmp"
    name = "feats" if input_kind == "fbank" else "wave"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            extractor, (example,), str(tmp), dynamo=False, input_names=[name], output_names=["embedding"],
            dynamic_axes={name: {0: "batch", 1: "time"}, "embedding": {0: "batch"}}, opset_version=OPSET,
        )
    tmp.replace(onnx_path)
    log.info("wrote %s and %s (input %r, %s)", pt, onnx_path, name, input_kind)
    return {"torchscript": pt, "onnx": onnx_path}
