"""The speaker back-end: weighted sum of hidden states, ECAPA-TDNN, 192-d embedding, AAM-softmax.

As in the paper: a learnable softmax-weighted sum of every hidden state of the backbone
feeds an ECAPA-TDNN (Desplanques et al., 2020: SE-Res2Net blocks with dilations 2, 3, 4,
multi-layer feature aggregation, attentive statistics pooling) that ends in the speaker
embedding; training uses an additive angular margin softmax (Deng et al., 2019) over the
training speakers. ``channels`` is C (1024 in the paper preset). Every frame-level module
takes an optional ``mask`` (batch, 1, frames; 1 on real frames, 0 on padding): padded frames
are held at zero before every convolution, the squeeze-excitation mean and the attentive
statistics count real frames only, so an utterance padded in a batch gets the embedding it
gets alone (batched extraction, :mod:`spectral.embed`). Batch normalisation
synchronises its statistics over processes under DistributedDataParallel, so two processes
compute what one process computes on the whole batch. Reads and writes no files.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from spectral.models.config import BackendConfig


class BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics span every process of a distributed run.

    In a single process it is ``nn.BatchNorm1d``. Under ``torch.distributed`` (any backend,
    gloo included) the per-channel sums are all-reduced with the differentiable
    ``torch.distributed.nn`` collective, so the result equals one process on the whole batch.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        import warnings

        from torch.distributed.nn.functional import all_reduce  # differentiable; its successor is private

        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor([float(x.numel() // x.shape[1])], device=x.device, dtype=x.dtype)
        stats = torch.cat([count, x.sum(dim=dims), (x * x).sum(dim=dims)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            stats = all_reduce(stats)
        n = stats[0]
        mean = stats[1 : 1 + x.shape[1]] / n
        var = stats[1 + x.shape[1] :] / n - mean * mean
        with torch.no_grad():
            self.num_batches_tracked += 1
            # momentum None: the cumulative average, as nn.BatchNorm1d keeps it
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp(min=1))
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


class LayerWeightedSum(nn.Module):
    """Softmax-weighted sum of the backbone's hidden states (weights start equal)."""

    def __init__(self, num_states: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_states))

    def forward(self, states: list[Tensor]) -> Tensor:
        if len(states) != self.weights.numel():
            raise ValueError(f"expected {self.weights.numel()} hidden states, got {len(states)}")
        w = torch.softmax(self.weights, dim=0)
        return sum(wi * s for wi, s in zip(w, states))


class TDNNBlock(nn.Sequential):
    """Conv1d, ReLU, BatchNorm; with ``mask``, padded frames of the output are zero."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv1d(cin, cout, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
            nn.ReLU(),
            BatchNorm1d(cout),
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        y = super().forward(x)
        return y if mask is None else y * mask


class Res2Conv(nn.Module):
    """Res2Net's hierarchical convolution over ``scale`` channel groups."""

    def __init__(self, channels: int, kernel: int, dilation: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        width = channels // scale
        self.blocks = nn.ModuleList(TDNNBlock(width, width, kernel, dilation) for _ in range(scale - 1))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        parts = torch.chunk(x, self.scale, dim=1)
        out = [parts[0]]
        y = None
        for i, block in enumerate(self.blocks):
            y = block(parts[i + 1] if y is None else parts[i + 1] + y, mask)
            out.append(y)
        return torch.cat(out, dim=1)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Conv1d(channels, bottleneck, 1)
        self.up = nn.Conv1d(bottleneck, channels, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            mean = x.mean(dim=2, keepdim=True)
        else:
            mean = (x * mask).sum(dim=2, keepdim=True) / mask.sum(dim=2, keepdim=True)
        s = torch.sigmoid(self.up(F.relu(self.down(mean))))
        return x * s


class SERes2Block(nn.Module):
    """1x1 TDNN, Res2 dilated convolution, 1x1 TDNN, squeeze-excitation, residual."""

    def __init__(self, channels: int, kernel: int, dilation: int, scale: int, se_bottleneck: int) -> None:
        super().__init__()
        self.tdnn1 = TDNNBlock(channels, channels)
        self.res2 = Res2Conv(channels, kernel, dilation, scale)
        self.tdnn2 = TDNNBlock(channels, channels)
        self.se = SqueezeExcite(channels, se_bottleneck)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return x + self.se(self.tdnn2(self.res2(self.tdnn1(x, mask), mask), mask), mask)


class AttentiveStatsPool(nn.Module):
    """Channel- and context-dependent attentive statistics pooling: (B, C, T) -> (B, 2C)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.tdnn = TDNNBlock(3 * channels, hidden)
        self.attention = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        t = x.shape[2]
        if mask is None:
            mean = x.mean(dim=2, keepdim=True)
            std = torch.sqrt(x.var(dim=2, keepdim=True, unbiased=False).clamp(min=1e-6))
        else:
            n = mask.sum(dim=2, keepdim=True)
            mean = (x * mask).sum(dim=2, keepdim=True) / n
            std = torch.sqrt(((((x - mean) * mask) ** 2).sum(dim=2, keepdim=True) / n).clamp(min=1e-6))
        context = torch.cat([x, mean.expand(-1, -1, t), std.expand(-1, -1, t)], dim=1)
        scores = self.attention(torch.tanh(self.tdnn(context, mask)))
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        alpha = torch.softmax(scores, dim=2)
        mu = (alpha * x).sum(dim=2)
        sigma = torch.sqrt(((alpha * x * x).sum(dim=2) - mu * mu).clamp(min=1e-6))
        return torch.cat([mu, sigma], dim=1)


class ECAPATDNN(nn.Module):
    """ECAPA-TDNN: (B, T, input_dim) features -> (B, embed_dim) speaker embeddings."""

    def __init__(self, input_dim: int, cfg: BackendConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.conv = TDNNBlock(input_dim, c, kernel=5)
        self.blocks = nn.ModuleList(SERes2Block(c, 3, d, cfg.scale, cfg.se_bottleneck) for d in (2, 3, 4))
        self.mfa = TDNNBlock(3 * c, 3 * c)
        self.pool = AttentiveStatsPool(3 * c, cfg.attention_channels)
        self.pool_norm = BatchNorm1d(6 * c)
        self.embedding = nn.Linear(6 * c, cfg.embed_dim)
        self.embedding_norm = BatchNorm1d(cfg.embed_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` (B, T, input_dim); ``mask`` (B, 1, T) marks real frames (None: all are)."""
        x = x.transpose(1, 2)
        if mask is not None:
            mask = mask.to(x.dtype)
            x = x * mask
        x = self.conv(x, mask)
        outs = []
        for block in self.blocks:
            x = block(x, mask)
            outs.append(x)
        x = self.mfa(torch.cat(outs, dim=1), mask)
        return self.embedding_norm(self.embedding(self.pool_norm(self.pool(x, mask))))


class SpeakerBackend(nn.Module):
    """Hidden states -> speaker embedding: :class:`LayerWeightedSum` then :class:`ECAPATDNN`."""

    def __init__(self, num_states: int, hidden_size: int, cfg: BackendConfig) -> None:
        super().__init__()
        if cfg.first_state >= num_states:
            raise ValueError(f"backend.first_state ({cfg.first_state}) must be below the backbone's "
                             f"{num_states} hidden states")
        self.first_state = cfg.first_state
        self.layer_weights = LayerWeightedSum(num_states - cfg.first_state)
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False)
        self.ecapa = ECAPATDNN(hidden_size, cfg)

    def forward(self, states: list[Tensor], mask: Tensor | None = None) -> Tensor:
        """Hidden states (each B, T, hidden) -> (B, embed_dim); ``mask`` (B, 1, T) marks real frames."""
        return self.ecapa(self.norm(self.layer_weights(list(states)[self.first_state:])), mask)


class AAMSoftmax(nn.Module):
    """Additive angular margin softmax: cos(theta + m) for the true class, all logits times s.

    ``forward(emb, labels, margin=None)`` returns (loss, cosine logits); ``margin`` is the step's
    (the training loop ramps it up, :class:`spectral.train.loop.MarginSchedule`), None the
    head's own. Accuracy is judged on the plain cosines (no margin). Where theta + m would pass pi, the logit continues as
    cos(theta) - m sin(m) (the usual monotonic extension).
    """

    def __init__(self, embed_dim: int, num_classes: int, margin: float, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        nn.init.xavier_normal_(self.weight)
        self.margin = float(margin)
        self.scale = float(scale)

    def cosine(self, emb: Tensor) -> Tensor:
        return F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1))

    def forward(self, emb: Tensor, labels: Tensor, margin: float | None = None) -> tuple[Tensor, Tensor]:
        cos = self.cosine(emb)
        m = self.margin if margin is None else margin
        sin = torch.sqrt((1.0 - cos * cos).clamp(min=1e-7))
        phi = cos * math.cos(m) - sin * math.sin(m)
        phi = torch.where(cos > math.cos(math.pi - m), phi, cos - m * math.sin(m))
        onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        logits = self.scale * (onehot * phi + (1.0 - onehot) * cos)
        return F.cross_entropy(logits, labels), cos
