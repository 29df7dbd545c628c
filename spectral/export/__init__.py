"""Stage *export*: a trained system in formats other tools read (``exp/<system>/export/``).

``hf``           merged WavLM/HuBERT as a transformers directory; the back-end as safetensors
``extractor``    the whole embedding extractor as ONNX and TorchScript
``peft_format``  the adapters in peft's LoRA format, for methods whose update is exactly low-rank
``cli``          :func:`export_system` and the ``spectral-export`` entry point
"""

from spectral.export.cli import ITEMS, export_system
from spectral.export.extractor import EmbeddingExtractor, export_extractor
from spectral.export.hf import export_backend, export_hf
from spectral.export.peft_format import LOW_RANK_METHODS, NoLowRankForm, check_low_rank, export_peft

__all__ = [
    "ITEMS",
    "LOW_RANK_METHODS",
    "EmbeddingExtractor",
    "NoLowRankForm",
    "check_low_rank",
    "export_backend",
    "export_extractor",
    "export_hf",
    "export_peft",
    "export_system",
]
