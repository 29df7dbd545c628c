"""The AAM margin ramp of the training loop: 0 at the first step, full from half-way on."""

import pytest

from spectral.train.loop import MARGIN_RAMP, margin_factor


def test_ramp_starts_at_zero_and_reaches_one_half_way():
    total = 400
    assert margin_factor(0, total) == 0.0
    assert margin_factor(int(MARGIN_RAMP * total) // 2, total) == pytest.approx(0.5)
    assert margin_factor(int(MARGIN_RAMP * total), total) == 1.0
    assert margin_factor(total - 1, total) == 1.0


def test_ramp_is_monotonic():
    values = [margin_factor(s, 37) for s in range(37)]
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_single_step_training_uses_the_full_margin():
    assert margin_factor(0, 1) == 1.0


def test_the_schedule_is_the_peak_times_the_ramp_and_leaves_the_head_alone():
    import torch

    from spectral.models.backend import AAMSoftmax
    from spectral.train.loop import MarginSchedule

    schedule = MarginSchedule(0.2, 100, 0.5)
    assert [schedule.at(s) for s in (0, 25, 50, 99)] == [0.0, pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.2)]
    head = AAMSoftmax(4, 3, margin=0.2, scale=30.0)
    emb, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    assert torch.equal(head(emb, labels, 0.0)[0], AAMSoftmax.forward(head, emb, labels, margin=0.0)[0])
    assert head(emb, labels, 0.0)[0] < head(emb, labels)[0] and head.margin == 0.2
