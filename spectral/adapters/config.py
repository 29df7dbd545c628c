"""Adapter configuration: which layers to adapt, with which method, at which rank.

Used by the finetune stage (through :func:`spectral.adapters.apply_adapters`) and by the
svd stage (the target patterns).  Reads and writes no files.

Target patterns follow Hugging Face ``peft``'s ``target_modules``: a pattern matches a
module whose qualified name equals it or ends with ``"." + pattern`` (so ``q_proj``
matches ``encoder.layers.3.attention.q_proj``); any other pattern is tried as a regular
expression against the whole name (``re.fullmatch``), e.g. ``encoder\\.layers\\.(1|2)\\..*``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from spectral.settings import Settings, help_meta as _meta

#: Every adapter method, in the order results tables list them.
METHODS: tuple[str, ...] = (
    "spectralft",
    "spectralft_rot",
    "lora",
    "pissa",
    "milora",
    "dora",
    "full",
    "frozen",
)

#: Initialisations of spectralft's factors (``AdapterConfig.init``).
INITS: tuple[str, ...] = ("paper", "lora")

#: Methods whose principal subspace is the top-k singular triplets (``top_k`` applies).
SPECTRAL_METHODS: tuple[str, ...] = ("spectralft", "spectralft_rot")

#: Methods that start from the svd stage's factors.pt (their initial adapter is read from it).
USES_FACTORS: frozenset[str] = frozenset({"spectralft", "spectralft_rot", "pissa", "milora"})

#: Methods whose drift is measured against their own top_k subspaces (others: DEFAULT_DRIFT_TOP_K).
TOP_K_METHODS: tuple[str, ...] = SPECTRAL_METHODS
#: k of the drift stage for methods without a top_k, by backbone.
DEFAULT_DRIFT_TOP_K: dict[str, int] = {"builtin": 64, "wavlm": 256, "hubert": 256}


def svd_factors_needed(method: str, top_k: int, rank: int) -> tuple[int, int] | None:
    """(top k, bottom b) of the svd stage's factors.pt that ``method`` starts from, or None when it
    reads none: the top_k triplets, and for milora also its bottom ``rank`` (its adapter's start)."""
    if method not in USES_FACTORS:
        return None
    return top_k, rank if method == "milora" else 0


def drift_top_k(method: str, top_k: int, backbone: str, configured: int | None = None) -> int:
    """k of a system's drift: its adapter ``top_k`` (the spectral methods), else ``configured``
    (drift.top_k), else :data:`DEFAULT_DRIFT_TOP_K` of its backbone."""
    if method in TOP_K_METHODS:
        return top_k
    return configured or DEFAULT_DRIFT_TOP_K[backbone]


#: Fields a method does not read at all, so that system names can leave them out (only
#: ``full`` is listed: leaving fields out of other methods' names would rename their systems).
IGNORED_FIELDS: dict[str, tuple[str, ...]] = {"full": ("targets", "rank", "top_k", "alpha", "dropout")}


def matches_target(name: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether the qualified module ``name`` is selected by any of ``patterns``.

    Takes a dotted module name and the target patterns (module-name suffixes or regular
    expressions, see the module docstring); returns True when one of them matches.
    """
    for pattern in patterns:
        if name == pattern or name.endswith("." + pattern):
            return True
        if re.fullmatch(pattern, name) is not None:
            return True
    return False


@dataclass
class AdapterConfig(Settings):
    """How the backbone's linear layers are adapted; every field carries its help text.

    ``AdapterConfig(method="spectralft", rank=16, top_k=256)`` is the paper's setting.
    ``field_help()`` returns the help of every field (for command lines and the schema).
    """

    SECTION = "adapter config"

    method: str = field(
        default="spectralft",
        metadata=_meta(
            "Adapter method: spectralft (additive low-rank corrections of the top-k singular "
            "vectors), spectralft_rot (Cayley-parameterised orthogonal rotations of them), "
            "lora, pissa (adapter from the top-r triplets, residual frozen), milora (from the "
            "bottom-r triplets), dora (magnitude/direction), full (full fine-tuning: every "
            "backbone parameter is trained and targets, rank, top_k, alpha and dropout are "
            "ignored), frozen (nothing in the backbone is trained)."
        ),
    )
    targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj"],
        metadata=_meta(
            "Module-name patterns of the nn.Linear layers to adapt: a name suffix after a dot "
            "(peft style) or a regular expression matched against the whole qualified name. "
            "Ignored by full, which trains the whole backbone."
        ),
    )
    rank: int = field(
        default=16,
        metadata=_meta(
            "Adapter rank r: inner dimension of every B A product (for pissa and milora, the "
            "number of singular triplets moved into the adapter). Ignored by spectralft_rot, "
            "full and frozen."
        ),
    )
    top_k: int = field(
        default=256,
        metadata=_meta(
            "Number k of leading singular triplets forming the principal part "
            "W_p = U_k S_k V_k^T (spectralft, spectralft_rot); must not exceed min(m, n) of "
            "any adapted matrix."
        ),
    )
    alpha: float | None = field(
        default=None,
        metadata=_meta(
            "Scale numerator: every B A product is multiplied by alpha / rank, as in LoRA. "
            "None means alpha = rank (scale 1), which is the paper's formula."
        ),
    )
    dropout: float = field(
        default=0.0,
        metadata=_meta(
            "Dropout probability on the input of the adapter branch during training "
            "(the frozen path always sees the clean input); 0 disables it."
        ),
    )
    keep_residual: bool = field(
        default=True,
        metadata=_meta(
            "spectralft and spectralft_rot: keep the residual W_m = W - W_p, so the adapted "
            "model equals the pre-trained one at initialisation. False reproduces the paper's "
            "released code, which drops W_m (the model is truncated to rank k before "
            "training); for comparison only."
        ),
    )

    init: str = field(
        default="paper",
        metadata=_meta(
            "spectralft: initialisation of the factors (W' = W at the start either way). paper, as "
            "the released code: B_U and A_V Kaiming-uniform (a = 0, fan-in r, bound sqrt(6/r)), "
            "A_U and B_V zero. lora: B_U and B_V zero, A_U and A_V Kaiming-uniform as LoRA's A "
            "(a = sqrt(5), fan-in k, bound 1/sqrt(k)), this project's choice before."
        ),
    )

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.method not in METHODS:
            raise ValueError(f"unknown adapter method {self.method!r}; expected one of {', '.join(METHODS)}")
        if isinstance(self.targets, str):
            raise ValueError(
                f"targets must be a list of patterns, got the string {self.targets!r} "
                f"(write [{self.targets!r}])"
            )
        self.targets = list(self.targets)
        if not self.targets:
            raise ValueError("targets is empty: at least one module-name pattern is needed")
        for pattern in self.targets:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"every target pattern must be a non-empty string, got {pattern!r}")
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"target pattern {pattern!r} is not a valid regular expression: {err}") from None
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"rank must be an integer >= 1, got {self.rank!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {self.top_k!r}")
        if self.alpha is not None:
            if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)):
                raise ValueError(f"alpha must be a positive number or None, got {self.alpha!r}")
            if not math.isfinite(self.alpha) or self.alpha <= 0:
                raise ValueError(f"alpha must be a positive finite number or None, got {self.alpha!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.keep_residual, bool):
            raise ValueError(f"keep_residual must be true or false, got {self.keep_residual!r}")
        if not self.keep_residual and self.method not in SPECTRAL_METHODS:
            raise ValueError(
                f"keep_residual=False only applies to {' and '.join(SPECTRAL_METHODS)}, "
                f"not to method {self.method!r}"
            )

    @property
    def scaling(self) -> float:
        """The factor alpha / rank multiplying every B A product."""
        alpha = float(self.rank) if self.alpha is None else float(self.alpha)
        return alpha / self.rank

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """The help text of every field, keyed by field name."""
        return {f.name: f.metadata["help"] for f in fields(cls)}
