"""Speaker models: backbones (built-in Transformer, WavLM, HuBERT), the speaker back-end, checkpoints.

``builtin``  the small fbank Transformer the pipeline pre-trains itself (WavLM's module names);
``ssl``      WavLM / HuBERT from a local transformers directory, on raw waveform;
``backend``  weighted sum of hidden states, ECAPA-TDNN, 192-d embedding, AAM-softmax;
``config``   the settings, without torch (:class:`ModelConfig`, :class:`BuiltinConfig`, :class:`BackendConfig`);
``speaker``  the assembled :class:`SpeakerModel`, final.pt reading/writing.
"""

from spectral import lazy_exports

# Every name is imported on first use (PEP 562), so that importing the torch-free settings
# (spectral.models.config) does not import torch through this package.
_WHERE = {
    "BACKBONES": "config", "BackendConfig": "config", "BuiltinConfig": "config", "ModelConfig": "config",
    "AAMSoftmax": "backend", "ECAPATDNN": "backend", "LayerWeightedSum": "backend", "SpeakerBackend": "backend",
    "BuiltinBackbone": "builtin",
    "SpeakerModel": "speaker", "adapter_root": "speaker", "build_backbone": "speaker",
    "load_model_checkpoint": "speaker", "read_checkpoint": "speaker",
    "SSLBackbone": "ssl", "load_ssl_backbone": "ssl",
}


__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = [
    "AAMSoftmax",
    "BACKBONES",
    "BackendConfig",
    "BuiltinBackbone",
    "BuiltinConfig",
    "ECAPATDNN",
    "LayerWeightedSum",
    "ModelConfig",
    "SSLBackbone",
    "SpeakerBackend",
    "SpeakerModel",
    "adapter_root",
    "build_backbone",
    "load_model_checkpoint",
    "load_ssl_backbone",
    "read_checkpoint",
]
