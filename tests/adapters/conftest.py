"""The adapter tests use tiny matrices: one torch thread is faster for them and immune to
OpenMP threads spinning on cores that other jobs share."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
