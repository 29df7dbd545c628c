"""Stage *export*: the merged backbone as a transformers directory (``hf/``) and the back-end as safetensors.

Reads a merged :class:`~spectral.models.SpeakerModel` (from ``final.pt``) and writes::

    hf/                    WavLM/HuBERT with the adapters merged, ``save_pretrained`` layout
                           (config.json, model.safetensors, preprocessor_config.json); load it
                           with ``transformers.WavLMModel.from_pretrained`` (or HubertModel),
                           no import of this package needed
    backend.safetensors    the back-end: layer weights of the hidden-state sum, ECAPA-TDNN
                           (batch-norm statistics included); the AAM head is left out
    backend.json           its shape (BackendConfig), the number and width of the hidden
                           states it reads, and how to apply it

The built-in fbank backbone is this package's own module, so it gets no ``hf/``; its
backend files are written all the same. Everything is written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spectral.atomic import atomic_dir, atomic_path, atomic_write_text

log = logging.getLogger("spectral.export")

BACKEND_FORMAT = "spectral-backend/1"


def export_hf(model: nn.Module, out_dir: str | Path) -> Path:
    """Save the transformers model inside a merged SSL SpeakerModel to ``out_dir`` (save_pretrained); return it.

    Raises ValueError for the builtin backbone (it has no transformers form) and when
    adapters are still wrapped (merge them first: ``load_model_checkpoint`` returns a merged model).
    """
    from spectral.adapters import adapter_layers

    backbone = model.backbone
    if not hasattr(backbone, "model"):
        raise ValueError("hf/: the builtin backbone is this package's own module and has no transformers form; "
                         "use extractor.onnx / extractor.pt or the peft/ adapter instead")
    if adapter_layers(backbone.model):
        raise ValueError("hf/: the model still holds adapter wrappers; merge them first (merge_adapters)")
    import transformers

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:  # beside the old one, swapped in when complete
        hf_model = backbone.model
        # The loaded model had SpecAugment and layer drop switched off for training; a user of
        # the directory gets the same (inference is unaffected either way).
        hf_model.save_pretrained(str(tmp), safe_serialization=True)
        # the waveform normalisation our backbone applies (zero mean, unit variance per utterance)
        transformers.Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False,
        ).save_pretrained(str(tmp))
    log.info("wrote %s (%s, %d layers, merged)", out_dir, type(hf_model).__name__, hf_model.config.num_hidden_layers)
    return out_dir


def backend_config(model: nn.Module, input_kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The JSON description of the back-end of ``model`` (shape ``cfg``, a BackendConfig dict) written beside backend.safetensors."""
    backend = model.backend
    weights = torch.softmax(backend.layer_weights.weights.detach(), dim=0)
    return {
        "format": BACKEND_FORMAT,
        "backend": dict(cfg),
        # every hidden state of the backbone; the sum reads those from first_state on
        "num_hidden_states": int(backend.layer_weights.weights.numel()) + int(getattr(backend, "first_state", 0)),
        "first_state": int(getattr(backend, "first_state", 0)),
        "hidden_size": int(backend.norm.normalized_shape[0]),
        "input_kind": input_kind,
        "layer_weights_softmax": [round(float(w), 6) for w in weights],
        "apply": (
            "embedding = normalize(ECAPA(LayerNorm_noaffine(sum_i softmax(layer_weights.weights)_i * h_(first_state+i)))), "
            "h the backbone's hidden states (hf/: output_hidden_states=True, all of them, on the waveform "
            "normalised to zero mean and unit variance); keys: spectral.models.backend.SpeakerBackend"
        ),
    }


def export_backend(model: nn.Module, input_kind: str, cfg: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write backend.safetensors and backend.json of ``model`` (``cfg``: its BackendConfig dict) into ``out_dir``; return both paths."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.backend.state_dict().items()}
    st, js = out_dir / "backend.safetensors", out_dir / "backend.json"
    with atomic_path(st) as tmp:
        save_file(tensors, str(tmp), metadata={"format": BACKEND_FORMAT})
    atomic_write_text(js, json.dumps(backend_config(model, input_kind, cfg), indent=2) + "\n")
    log.info("wrote %s (%d tensors) and %s", st, len(tensors), js)
    return st, js
