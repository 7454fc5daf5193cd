"""The shipped training configurations load, build their model, and carry the ZBL repulsion prior
(so that MD with the models they train cannot collapse two atoms)."""

from pathlib import Path

import pytest

from mlpot.models import registry
from mlpot.training.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "scripts" / "configs").glob("*.yaml"))


def test_there_are_shipped_configs():
    assert {path.name for path in CONFIGS} >= {"rmd17_ethanol.yaml", "mlearn_si.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_builds_a_model_with_repulsion(path):
    config = load_config(path, [])
    assert config.model.hyperparameters["repulsion"] == "zbl"
    model = registry.get(config.model.name)(["Si"], cutoff=config.model.cutoff, chirality=config.model.chirality,
                                            **config.model.hyperparameters)
    assert model.repulsion is not None and model.config()["repulsion"] == "zbl"
