"""Shared fixtures of the Hamiltonian-layer tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Run each test with one intra-op thread, then restore the previous setting.

    These tests evaluate tiny networks thousands of times in a row. On a busy 2-core machine an
    OpenMP team of 2 threads waits for a core at every small matmul, which made them up to 100×
    slower than with one thread.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
