"""Self-supervised backbones (WavLM, HuBERT) through ``transformers``, from a local directory.

The paper's backbones. :func:`load_ssl_backbone` reads a ``save_pretrained`` directory
(``config.json`` plus weights) offline — nothing reaches the network — and wraps it in
:class:`SSLBackbone`, which takes raw 16 kHz waveform (batch, samples) and returns every
hidden state (the CNN/positional output and each Transformer layer's). The ``transformers``
model sits in ``.model``; adapters go into it, so their names (``encoder.layers.N.attention.
q_proj``) are those the svd stage reads from the same directory. WavLM's attention hands its projection *weights* to
``F.multi_head_attention_forward`` instead of calling the projection modules, so a wrapped
``q_proj`` would be bypassed (its adapters would never act nor get a gradient);
:func:`call_projections` rebinds that attention to call ``q_proj``, ``k_proj``, ``v_proj``
and ``out_proj`` as modules, computing the same function. The model's own
SpecAugment and layer drop are switched off: masking is the data pipeline's job, and
dropping layers at random breaks resumable, deterministic training. With ``lengths`` (real
samples of each row of a zero-padded batch) the transformers attention mask keeps padding out
of every layer. On CPU each row is normalised and goes through the convolutional front end
over its real samples, rows of equal length together in cache-sized groups
(:attr:`SSLBackbone.front_end_samples`); elsewhere (a GPU) the padded batch goes at once, the
waveform normalised over its real samples and the group-normalised first convolution of the
Base-size models (``feat_extract_norm: group``, whose statistics span the whole time axis)
counting real frames only (:class:`LengthAwareGroupNorm`). Either way each row comes out as
it would alone. Reads the model directory only.
"""

from __future__ import annotations

import math
import os
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.errors import InputError

#: Backbone kinds this module loads, with their transformers class and config model_type.
SSL_KINDS: dict[str, tuple[str, str]] = {
    "wavlm": ("WavLMModel", "wavlm"),
    "hubert": ("HubertModel", "hubert"),
}


class SSLBackbone(nn.Module):
    """waveform (batch, samples) at 16 kHz -> list of num_hidden_layers + 1 hidden states."""

    input_kind = "waveform"

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_hidden_states(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Hidden-state frames of inputs of ``lengths`` samples (the convolutional front end's arithmetic)."""
        out = lengths
        for kernel, stride in zip(self.model.config.conv_kernel, self.model.config.conv_stride):
            out = torch.div(out - kernel, stride, rounding_mode="floor") + 1
        return out

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> list[Tensor]:
        """waveform (batch, samples); ``lengths``: real samples of each row of a zero-padded batch."""
        if wave.dim() != 2:
            raise ValueError(f"expected waveform of shape (batch, samples), got {tuple(wave.shape)}")
        if lengths is None:
            out = self.model(_normalise(wave), output_hidden_states=True, return_dict=True)
            return list(out.hidden_states)
        lengths = lengths.to(wave.device)
        group = self.front_end_samples if wave.device.type == "cpu" else None
        if group is not None:
            features = self._front_end_by_rows(wave, lengths, group)
            frames = torch.arange(features.shape[2], device=wave.device)[None, :] < self.frame_lengths(lengths)[:, None]
            # the transformers model takes these features and their frame mask as they are (its
            # own would scan a (batch, samples) int64 mask, a few % of a small model's time)
            model, extractor = self.model, self.model.feature_extractor
            extractor.forward = lambda input_values: features
            model._get_feature_vector_attention_mask = lambda length, attention_mask, add_adapter=None: frames
            try:
                out = model(wave, attention_mask=lengths[:, None], output_hidden_states=True, return_dict=True)
            finally:
                del extractor.forward, model._get_feature_vector_attention_mask
            return list(out.hidden_states)
        real = torch.arange(wave.shape[1], device=wave.device)[None, :] < lengths[:, None]
        m = real.to(wave.dtype)
        n = lengths.to(wave.dtype)[:, None]
        mean = (wave * m).sum(dim=1, keepdim=True) / n
        var = (((wave - mean) * m) ** 2).sum(dim=1, keepdim=True) / (n - 1).clamp(min=1)
        wave = (wave - mean) / torch.sqrt(var + 1e-7) * m
        norms = [mod for mod in self.model.modules() if isinstance(mod, LengthAwareGroupNorm)]
        first = self.model.config.conv_kernel[0], self.model.config.conv_stride[0]
        for norm in norms:
            norm.lengths = torch.div(lengths - first[0], first[1], rounding_mode="floor") + 1
        try:
            out = self.model(wave, attention_mask=real.long(), output_hidden_states=True, return_dict=True)
        finally:
            for norm in norms:
                norm.lengths = None
        return list(out.hidden_states)

    #: On CPU, the rows of a padded batch go through the convolutional front end on their real
    #: samples only, rows of equal length together up to this many samples a call (None: the
    #: whole padded batch at once, with masked statistics, as on a GPU). The front end is half
    #: of a small model's cost and its first layers' activations are 3200 frames a second wide.
    #: On bench/bench_realpath.py's set (tiny WavLM, one thread, CPU time) the front end took
    #: 0.75 s as padded 60 s batches with masked statistics, 0.44-0.47 s on the real samples
    #: with all rows of a length at once (20 crops: 25 MB a layer, out of a core's 2 MB L2),
    #: 0.32-0.34 s in groups of 6 s, and 0.42 s in groups of 2 s (more, smaller calls).
    front_end_samples: int | None = 6 * 16000

    def _front_end_by_rows(self, wave: Tensor, lengths: Tensor, group: int) -> Tensor:
        """The front end's output (batch, channels, frames of the padded length), zero past each row's frames.

        Each row is normalised and convolved over its real samples, exactly as it is alone;
        padded frames are zero (the transformers encoder masks them out of every layer)."""
        n_rows = wave.shape[0]
        by_length: dict[int, list[int]] = {}
        for row, n in enumerate(lengths.tolist()):
            by_length.setdefault(int(n), []).append(row)
        frames = self.frame_lengths(torch.tensor([wave.shape[1]] + sorted(by_length))).tolist()
        total, frames_of = frames[0], dict(zip(sorted(by_length), frames[1:]))
        out: Tensor | None = None
        extractor = self.model.feature_extractor
        for n, rows in by_length.items():
            if frames_of[n] < 1:
                raise ValueError(f"a row of {n} samples is shorter than the front end's receptive field")
            step = max(1, group // n)
            for i in range(0, len(rows), step):
                chunk = rows[i : i + step]
                index = torch.tensor(chunk, device=wave.device)
                feats = extractor(_normalise(wave[:, :n].index_select(0, index)))  # (rows, channels, frames)
                if out is None:
                    out = feats.new_zeros(n_rows, feats.shape[1], total)
                out[index, :, : feats.shape[2]] = feats
        assert out is not None
        return out


def _normalise(wave: Tensor) -> Tensor:
    """Zero mean, unit variance per row, as Wav2Vec2FeatureExtractor(do_normalize=True)."""
    return (wave - wave.mean(dim=1, keepdim=True)) / torch.sqrt(wave.var(dim=1, keepdim=True) + 1e-7)


class LengthAwareGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` over (batch, channels, frames) whose statistics, while ``lengths`` is set,
    span each row's first ``lengths[row]`` frames only (the rest is padding); same parameters."""

    lengths: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.lengths is None:
            return super().forward(x)
        b, c, t = x.shape
        g = self.num_groups
        means, rstds = [], []
        for row, n in enumerate(self.lengths.tolist()):  # statistics of each row's real frames, natively
            var, mean = torch.var_mean(x[row, :, : int(n)].reshape(g, -1), dim=1, unbiased=False)
            means.append(mean)
            rstds.append(torch.rsqrt(var + self.eps))
        mean = torch.stack(means).repeat_interleave(c // g, dim=1)  # (b, c)
        scale = torch.stack(rstds).repeat_interleave(c // g, dim=1)
        if self.affine:
            scale = scale * self.weight[None, :]
            shift = self.bias[None, :] - mean * scale
        else:
            shift = -mean * scale
        return torch.addcmul(shift[:, :, None], x, scale[:, :, None])  # one pass: x * scale + shift


def _length_aware_group_norms(model: nn.Module) -> int:
    """Turn every ``nn.GroupNorm`` of ``model`` into a :class:`LengthAwareGroupNorm` (same weights)."""
    changed = 0
    for module in model.modules():
        if isinstance(module, nn.GroupNorm) and not isinstance(module, LengthAwareGroupNorm):
            module.__class__ = LengthAwareGroupNorm
            changed += 1
    return changed


def _attention_through_modules(
    self: nn.Module, hidden_states: Tensor, attention_mask: Tensor | None, gated_position_bias: Tensor
) -> tuple[Tensor, Tensor]:
    """WavLMAttention.torch_multi_head_self_attention, calling the projections as modules."""
    b, t, d = hidden_states.shape
    h = self.num_heads
    hd = d // h

    def heads(y: Tensor) -> Tensor:
        return y.view(b, t, h, hd).transpose(1, 2)

    q, k, v = heads(self.q_proj(hidden_states)), heads(self.k_proj(hidden_states)), heads(self.v_proj(hidden_states))
    bias = gated_position_bias.view(b, h, t, t)
    if attention_mask is not None:
        bias = bias.masked_fill(attention_mask.ne(1)[:, None, None, :], float("-inf"))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + bias
    weights = torch.softmax(scores, dim=-1)
    out = torch.matmul(F.dropout(weights, p=self.dropout, training=self.training), v)
    return self.out_proj(out.transpose(1, 2).reshape(b, t, d)), weights


def call_projections(model: nn.Module) -> int:
    """Make every WavLM attention of ``model`` call its projection modules; return how many were changed.

    Without this, adapters wrapped around WavLM's ``q_proj``/``k_proj``/``v_proj``/``out_proj``
    are silently bypassed (transformers reads their ``.weight`` directly).
    """
    changed = 0
    for module in model.modules():
        if hasattr(module, "torch_multi_head_self_attention") and hasattr(module, "q_proj"):
            module.torch_multi_head_self_attention = types.MethodType(_attention_through_modules, module)
            changed += 1
    return changed


def load_ssl_backbone(path: str | Path, kind: str) -> SSLBackbone:
    """Load a WavLM or HuBERT ``save_pretrained`` directory offline; return the wrapped backbone.

    Raises InputError naming the path when it is missing, lacks ``config.json``, holds
    another kind of model, or cannot be loaded; ValueError for an unknown ``kind``.
    """
    if kind not in SSL_KINDS:
        raise ValueError(f"unknown SSL backbone {kind!r}; expected one of {', '.join(SSL_KINDS)}")
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, f"no such {kind} model directory (a transformers save_pretrained directory is needed; nothing is downloaded)")
    if not (path / "config.json").is_file():
        raise InputError(path, "the model directory has no config.json (transformers save_pretrained layout expected)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise InputError(path, "loading a WavLM/HuBERT directory needs the 'transformers' package (pip install .[ssl])") from None
    class_name, model_type = SSL_KINDS[kind]
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as err:
        raise InputError(path / "config.json", f"cannot read the model config ({type(err).__name__}: {err})") from None
    if getattr(config, "model_type", None) != model_type:
        raise InputError(path / "config.json", f"holds a {getattr(config, 'model_type', '?')!r} model, but the backbone is configured as {kind!r}")
    config.apply_spec_augment = False
    config.layerdrop = 0.0
    try:
        model = getattr(transformers, class_name).from_pretrained(str(path), config=config, local_files_only=True)
    except Exception as err:
        raise InputError(path, f"cannot load the {kind} model ({type(err).__name__}: {err})") from None
    call_projections(model)
    _length_aware_group_norms(model)
    return SSLBackbone(model, kind)


def ssl_backbone_from_config(config: dict, kind: str) -> SSLBackbone:
    """A randomly initialised backbone from a transformers config dict (for rebuilding from final.pt)."""
    import transformers

    class_name, model_type = SSL_KINDS[kind]
    cfg_class = transformers.AutoConfig.for_model(model_type).__class__
    cfg = cfg_class.from_dict(config)
    cfg.apply_spec_augment = False
    cfg.layerdrop = 0.0
    model = getattr(transformers, class_name)(cfg)
    call_projections(model)
    _length_aware_group_norms(model)
    return SSLBackbone(model, kind)
