"""Speaker models: backbones (built-in Transformer, WavLM, HuBERT), the speaker back-end, checkpoints.

``builtin``  the small fbank Transformer the pipeline pre-trains itself (WavLM's module names);
``ssl``      WavLM / HuBERT from a local transformers directory, on raw waveform;
``backend``  weighted sum of hidden states, ECAPA-TDNN, 192-d embedding, AAM-softmax;
``speaker``  :class:`ModelConfig`, the assembled :class:`SpeakerModel`, final.pt reading/writing.
"""

from spectral.models.backend import AAMSoftmax, BackendConfig, ECAPATDNN, LayerWeightedSum, SpeakerBackend
from spectral.models.builtin import BuiltinBackbone, BuiltinConfig
from spectral.models.speaker import (
    BACKBONES,
    ModelConfig,
    SpeakerModel,
    adapter_root,
    build_backbone,
    load_model_checkpoint,
    read_checkpoint,
)
from spectral.models.ssl import SSLBackbone, load_ssl_backbone

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
