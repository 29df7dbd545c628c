"""Mixed precision of the pretrain, finetune and embed stages: autocast, the fp16 gradient scaler.

``precision`` is one of :data:`PRECISIONS`:

``fp32``  everything in float32 (the default; no autocast, no scaler);
``bf16``  the backbone and back-end run under ``torch.autocast`` in bfloat16 (matrix products,
          convolutions; reductions, norms and the loss stay float32 as autocast decides).
          bfloat16 has float32's range, so no loss scaling is needed;
``fp16``  the same in float16, with a :class:`torch.amp.GradScaler`: the loss is multiplied
          by the scale before backward, the gradients are unscaled before clipping, and a
          step whose gradients overflow (inf/NaN) is skipped and logged, the scale halved.

The trainable and frozen weights stay float32 (autocast casts copies per operation), and the
adapters form their SVD factors and adapted weight in float32 whatever the autocast state
(:mod:`spectral.adapters.base`). The scaler's state goes into ``checkpoints/last.pt``, so a
resumed fp16 run continues with the scale it had. Reads and writes no files.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

log = logging.getLogger("spectral.train")

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: Starting loss scale of fp16 training (GradScaler's default, 2**16).
INIT_SCALE = 2.0**16


def check_precision(value: str, where: str) -> None:
    """ValueError naming ``where`` and the bad value unless it is one of :data:`PRECISIONS`."""
    if value not in PRECISIONS:
        raise ValueError(f"{where} must be one of {', '.join(PRECISIONS)}, got {value!r}")


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (a no-op context for fp32)."""
    check_precision(precision, "precision")
    if precision == "fp32":
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=DTYPES[precision])


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Switch off any active autocast (CPU or CUDA) inside the block: what runs there is float32."""
    with contextlib.ExitStack() as stack:
        for device_type in ("cpu", "cuda"):
            if torch.is_autocast_enabled(device_type):
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
        yield


def check_device(precision: str, device: torch.device | str) -> None:
    """ValueError when ``device`` cannot run ``precision`` (bf16 on a CUDA GPU older than Ampere)."""
    check_precision(precision, "precision")
    if precision == "bf16" and torch.device(device).type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("precision bf16 needs a GPU with bfloat16 support (Ampere or newer); use fp16 (with its "
                         "gradient scaler) or fp32 on this one")


class Precision:
    """Autocast and (fp16) loss scaling of one training run.

    ``backward(loss)`` then ``step(optimizer, params, grad_clip, where)``: the step returns
    False, logging a warning, when the fp16 scaler found an overflow and skipped it.
    """

    def __init__(self, precision: str, device: torch.device | str) -> None:
        check_device(precision, device)
        self.precision = precision
        self.device = torch.device(device)
        self.scaler = torch.amp.GradScaler(self.device.type, init_scale=INIT_SCALE, enabled=precision == "fp16")
        self.skipped = 0

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.precision)

    def backward(self, loss: Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter], grad_clip: float = 0.0,
             where: str = "") -> bool:
        """Unscale, clip (``grad_clip`` > 0), apply; False (and a warning) when an overflow skipped the step."""
        if not self.scaler.is_enabled():
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(list(params), grad_clip)
            optimizer.step()
            return True
        self.scaler.unscale_(optimizer)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(params), grad_clip)
        scale = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        applied = self.scaler.get_scale() >= scale
        if not applied:
            self.skipped += 1
            log.warning("fp16: gradient overflow%s: step skipped, loss scale %g -> %g (%d skipped so far)",
                        f" at {where}" if where else "", scale, self.scaler.get_scale(), self.skipped)
        return applied

    def state_dict(self) -> dict:
        """What last.pt keeps: the scaler's state (empty unless fp16) and the skipped-step count."""
        return {"precision": self.precision, "scaler": self.scaler.state_dict(), "skipped": self.skipped}

    def load_state_dict(self, state: dict | None) -> None:
        if not state:
            return
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.skipped = int(state.get("skipped", 0))
