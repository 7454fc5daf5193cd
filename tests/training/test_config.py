"""The YAML config: strict validation naming the key, --set overrides, and the generated docs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlpot.training.config import apply_overrides, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "scripts" / "configs" / "rmd17_ethanol.yaml"
DOC = ROOT / "docs" / "training.md"


def test_example_config_is_valid_and_overrides_apply():
    config = load_config(EXAMPLE, ["trainer.max_epochs=3", "model.hidden=[16, 16]", "trainer.lr=1e-4", "output=x"])
    assert config.data.energy_unit == "kcal/mol" and (config.data.n_train, config.data.n_val) == (950, 50)
    assert config.trainer.max_epochs == 3 and config.trainer.lr == 1e-4  # YAML 1.1 reads 1e-4 as text
    assert config.model.hyperparameters["hidden"] == [16, 16] and config.output == "x"


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.lrr=0.1", "unknown key 'trainer.lrr'"),
        ("data.n_trian=5", "unknown key 'data.n_trian'"),
        ("model.n_radiall=4", "unknown key 'model.n_radiall'"),
        ("foo.bar=1", "unknown key 'foo'"),
        ("trainer.lr=fast", "trainer.lr: expected float, got str 'fast'"),
        ("trainer.max_epochs=1.5", "trainer.max_epochs: expected int, got float 1.5"),
        ("trainer.progress=3", "trainer.progress: expected bool"),
        ("data.n_train=many", "data.n_train: expected int or null|data.n_train: expected int | null"),
        ("model.hidden=64", "model.hidden: expected list"),
        ("model.n_radial=2.5", "model.n_radial: expected int"),
        ("trainer.schedule=linear", "schedule: expected one of 'cosine', 'cosine_time', 'plateau', 'constant'"),
        ("model.chirality=left", "model.chirality: expected even, augment or free"),
        ("data=3", "data: expected a mapping"),
    ],
)
def test_invalid_keys_and_types_are_errors_naming_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(EXAMPLE, [override])


def test_example_config_is_the_accuracy_benchmark_recipe():
    """scripts/configs/rmd17_ethanol.yaml and scripts/bench_accuracy.py train the same model the same way."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_accuracy

    config = load_config(EXAMPLE, [])
    defaults = bench_accuracy.build_parser().parse_args([])
    assert {k: config.model.hyperparameters[k] for k in bench_accuracy.RMD17_MODEL} == bench_accuracy.RMD17_MODEL
    t = config.trainer
    assert (t.lr, t.batch_size, t.weight_decay, t.dtype, t.loss, t.energy_weight, t.forces_weight, t.ema_decay) == (
        defaults.lr, defaults.batch_size, defaults.weight_decay, defaults.dtype, defaults.loss,
        defaults.energy_weight, defaults.forces_weight, defaults.ema_decay,
    )


def test_missing_required_key_and_bad_override_syntax():
    with pytest.raises(ValueError, match="missing required key 'data.train'"):
        config_from_dict({"data": {"energy_unit": "eV"}})
    with pytest.raises(ValueError, match="expected section.key=value"):
        apply_overrides({}, ["trainer.lr"])


def load_renderer():
    sys.path.insert(0, str(ROOT / "scripts"))
    import render_config_docs

    return render_config_docs


def test_docs_config_reference_matches_the_dataclasses():
    renderer = load_renderer()
    text = DOC.read_text()
    start, end = text.index(renderer.BEGIN_MARKER) + len(renderer.BEGIN_MARKER), text.index(renderer.END_MARKER)
    assert text[start:end].strip() == renderer.render_reference().strip(), (
        "docs/training.md is stale: run `python scripts/render_config_docs.py docs/training.md`"
    )


def test_deprecated_render_reference_warns_and_renders_the_same():
    from mlpot.training.config import render_reference

    with pytest.warns(DeprecationWarning, match="scripts/render_config_docs.py"):
        text = render_reference()
    assert text == load_renderer().render_reference()
