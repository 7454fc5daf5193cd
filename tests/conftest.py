"""Make tests/helpers.py importable from every test folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch

# The test systems are small: one thread avoids OpenMP start-up and oversubscription costs
# that dominate tiny tensor operations (and keeps timings of the suite predictable on CI).
torch.set_num_threads(1)
