"""Make tests/helpers.py importable from every test folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import pytest
import torch

# The test systems are small: one thread avoids OpenMP start-up and oversubscription costs
# that dominate tiny tensor operations (and keeps timings of the suite predictable on CI).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _cli_errors_as_one_line(monkeypatch):
    """`mlpot` prints one line for a user error unless MLPOT_DEBUG is set in the shell that runs the
    suite; the tests check the one line, so they start without it (a test may set it again)."""
    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
