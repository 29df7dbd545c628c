"""Masked-prediction pre-training of the builtin backbone (pretrain stage, ``pretrain.objective: masked``).

The paper's backbones (WavLM, HuBERT) are self-supervised masked-prediction models: they
were not trained to tell speakers apart, and predicting masked audio from its context needs
attention. This objective gives the builtin backbone the same kind of pre-training: time
spans of the (mean-normalised) input fbank are replaced by a learned mask vector, the
backbone runs, and a linear head predicts the original fbank at every masked frame from the
last hidden state. One hidden step covers ``model.builtin.subsample`` input frames, so the
head maps d_model to subsample x n_mels. The loss is the mean absolute error over the
masked frames only.

Masks are drawn from torch's CPU random generator, which the training loop seeds for every
step (``_step_seed`` in :mod:`spectral.train.loop`) and :func:`spectral.train.loop.validate`
seeds per batch: a resumed run masks exactly as an uninterrupted one, on any device.

Reads and writes no files; the pretrain stage stores the head in ``final.pt`` under
``"pretext"`` (:mod:`spectral.train.pretrain`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spectral.models.builtin import BuiltinConfig


def span_mask(batch: int, frames: int, prob: float, span: int, generator: torch.Generator | None = None) -> Tensor:
    """Boolean (batch, frames) mask: per row round(prob x frames / span) non-overlapping spans of ``span`` frames.

    Spans are placed uniformly among all non-overlapping placements (they may touch), drawn
    from ``generator`` (torch's default CPU generator when None); at least one span, and at
    least one frame left visible. Raises ValueError when ``frames`` cannot hold a span and a
    visible frame.
    """
    if frames <= span:
        raise ValueError(f"a crop of {frames} frames is too short for masked spans of {span} frames "
                         "(raise crop_seconds or lower mask_span)")
    n = min(max(1, round(prob * frames / span)), (frames - 1) // span)
    slots = frames - n * span + n  # placing n spans = choosing n of these slots
    chosen = torch.rand(batch, slots, generator=generator).argsort(dim=1)[:, :n].sort(dim=1).values
    starts = chosen + torch.arange(n) * (span - 1)
    index = (starts[:, :, None] + torch.arange(span)).reshape(batch, -1)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    return mask.scatter_(1, index, True)


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(loss, hits): mean absolute error of ``pred`` against ``target`` (batch, frames, bins) over masked frames.

    ``hits`` (batch,) is each utterance's share of masked frames whose prediction is nearer
    (mean absolute error over bins) to the target than the mean of that utterance's visible
    frames is: a baseline that needs no context beyond the crop's average spectrum.
    """
    m = mask.to(pred.dtype)
    err = (pred - target).abs().mean(dim=-1)  # (batch, frames)
    loss = (err * m).sum() / m.sum().clamp(min=1.0)
    visible = 1.0 - m
    baseline = (target * visible[..., None]).sum(dim=1, keepdim=True) / visible.sum(dim=1).clamp(min=1.0)[:, None, None]
    base_err = (baseline - target).abs().mean(dim=-1)
    hits = ((err < base_err).to(pred.dtype) * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
    return loss, hits.detach()


class MaskedPredictionHead(nn.Module):
    """The learned mask vector (n_mels, zero at the start: the utterance mean) and the frame predictor."""

    def __init__(self, cfg: BuiltinConfig) -> None:
        super().__init__()
        self.subsample = cfg.subsample
        self.mask_embed = nn.Parameter(torch.zeros(cfg.n_mels))
        self.predictor = nn.Linear(cfg.d_model, cfg.subsample * cfg.n_mels)

    def forward(self, hidden: Tensor, frames: int) -> Tensor:
        """Last hidden state (batch, steps, d_model) -> predicted fbank (batch, frames, n_mels)."""
        b, t, _ = hidden.shape
        return self.predictor(hidden).view(b, t * self.subsample, -1)[:, :frames]


class MaskedObjective(nn.Module):
    """Loss module of ``pretrain.objective: masked``: ``(fbank, labels) -> (loss, hits)``, labels unused.

    ``model`` is a SpeakerModel whose ``pretext`` attribute is a :class:`MaskedPredictionHead`;
    only its backbone and that head take part (the back-end and speaker head get no gradient).
    """

    def __init__(self, model: nn.Module, mask_prob: float, mask_span: int) -> None:
        super().__init__()
        if not isinstance(getattr(model, "pretext", None), MaskedPredictionHead):
            raise ValueError("the masked objective needs model.pretext, a MaskedPredictionHead")
        self.model = model
        self.mask_prob = mask_prob
        self.mask_span = mask_span

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, t, _ = x.shape
        mask = span_mask(b, t, self.mask_prob, self.mask_span).to(x.device)
        head = self.model.pretext
        masked = torch.where(mask[..., None], head.mask_embed.to(x.dtype), x)
        pred = head(self.model.backbone(masked)[-1], t)
        return masked_l1(pred, x, mask)
