"""Worker of the DDP test: train a small potential, single-process or under torchrun, save the weights.

Usage: python ddp_worker.py OUTPUT_DIR
   (or: python -m torch.distributed.run --nproc_per_node=2 ddp_worker.py OUTPUT_DIR)
"""

import sys

import torch

from mlpot.training.config import config_from_dict
from mlpot.training.distributed import init_distributed
from mlpot.training.trainer import _elements, build_model, prepare_data, train_model

torch.set_num_threads(1)
ROOT = sys.argv[2] if len(sys.argv) > 2 else "."
config = config_from_dict({
    "data": {"train": f"{ROOT}/datasets/rmd17/rmd17_ethanol_train_01.npz", "energy_unit": "kcal/mol",
             "n_train": 14, "n_val": 4, "seed": 0},
    "model": {"cutoff": 4.0, "n_radial": 4, "n_channels": 4, "l_max": 1, "hidden": [8]},
    # 14 structures, global batch 4: 3 full batches and a last one of 2, split 1 + 1 over 2 ranks.
    "trainer": {"max_epochs": 2, "batch_size": 4, "lr": 1e-2, "warmup_epochs": 1, "progress": False, "seed": 5},
})
info = init_distributed("cpu")
train, val, _, _ = prepare_data(config, config.model.cutoff, verbose=False)
torch.manual_seed(config.trainer.seed)
model = build_model(config, _elements(config, train))
result = train_model(model, train, val, config, output_dir=sys.argv[1], info=info)
if info.is_main:
    torch.save({"weights": model.state_dict(), "history": result.history}, f"{sys.argv[1]}/result.pt")
if info.initialized_here:
    torch.distributed.destroy_process_group()
