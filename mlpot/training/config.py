"""The configuration of ``mlpot train``: YAML validated into dataclasses.

A config file has four sections, each a dataclass below: ``data`` (:class:`DataConfig`),
``model`` (:class:`ModelConfig`), ``trainer`` (:class:`TrainerConfig`, which extends the generic
:class:`~mlpot.training.loop.LoopConfig`) and ``output`` (a directory). Validation is strict: an
unknown key or a value of the wrong type is an error that names the key (``trainer.lrr``), so a
typo can never silently fall back to a default. ``--set section.key=value`` overrides any key.

The Markdown reference of ``docs/training.md`` is generated from these dataclasses (their types,
defaults and :func:`field_help` texts) by ``scripts/render_config_docs.py``, and a test checks that
the document matches it.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlpot.training.loop import LoopConfig

__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainerConfig",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "field_help",
    "type_name",
    "render_reference",
]


def _f(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:  # noqa: A002
    """A dataclass field with a help text (rendered into docs/training.md)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class DataConfig:
    """Where the data are, their units, and how they are split."""

    train: str = _f(help="Training file: extxyz, ASE db, any `ase.io` format, or MD17/rMD17-style npz.")
    test: str | None = _f(None, help="Separate test file, evaluated once after training (null: none).")
    format: str | None = _f(None, help="`ase.io` format name (null: guessed from the file name).")
    energy_unit: str | None = _f(
        None, help="Energy unit of the files: eV, meV, kcal/mol, kJ/mol, Hartree, Ha, Ry (null: eV; required for npz)."
    )
    length_unit: str = _f("Angstrom", help="Length unit of the files: Angstrom, Bohr, nm.")
    n_train: int | None = _f(None, help="Training structures drawn from `train` (null: all not used for validation).")
    n_val: int = _f(50, help="Validation structures drawn from `train` (early stopping, best checkpoint).")
    seed: int = _f(0, help="Seed of the random train/validation split.")
    split_file: str | None = _f(
        None, help="JSON or npz index file with `train`/`val` indices; overrides n_train/n_val/seed."
    )
    energy_key: str | None = _f(
        None, help="Explicit energy key in `atoms.info` (e.g. REF_energy); null: the calculator's energy."
    )
    forces_key: str | None = _f(None, help="Explicit forces key in `atoms.arrays` (e.g. REF_forces).")
    stress_key: str | None = _f(None, help="Explicit stress key in `atoms.info` (e.g. REF_stress).")
    npz_keys: dict[str, str] | None = _f(
        None, help="npz array names, e.g. {numbers: z, positions: R, energy: E, forces: F} (null: detected)."
    )
    allow_unusual_units: bool = _f(
        False,
        help="Train although the labels look implausible for the units (median force per atom outside "
        "0.1–15 eV/Å, or energies per atom spread by more than 10 eV/atom); same as `--allow-unusual-units`.",
    )


@dataclass
class ModelConfig:
    """The potential. Keys other than those below are hyper-parameters passed to the model class and
    checked against its constructor (an unknown one is an error)."""

    name: str = _f(
        "descriptor",
        help="Registered model name (`mlpot.models.registry`): `descriptor` (mlpot.models.DescriptorModel), "
        "`equivariant` (mlpot.models.EquivariantModel), or one registered by your own code. `type` is a synonym.",
    )
    cutoff: float = _f(5.0, help="Cutoff radius, Å.")
    chirality: str = _f(
        "even", help="even (mirror images have equal energy), augment (mirror images added in training) or free."
    )
    elements: list[str] | None = _f(None, help="Element symbols the model covers (null: those in the training data).")
    hyperparameters: dict[str, Any] = _f({}, help="Further model keys (any other key in this section lands here).")


@dataclass
class TrainerConfig(LoopConfig):
    """Optimisation. The generic loop's settings plus the potential-specific ones."""

    lr: float = _f(5e-3, help="Peak learning rate of AdamW.")
    warmup_epochs: int = _f(2, help="Linear learning-rate warm-up, in epochs.")
    batch_size: int = _f(8, help="Structures per optimiser step (global batch, split over DDP ranks).")
    val_batch_size: int = _f(64, help="Structures per validation batch.")
    loss: str = _f("huber", help="Per-component loss: huber or mse (errors are first divided by the force scale).")
    huber_delta: float = _f(0.01, help="Huber transition, in units of the fitted force scale.")
    energy_weight: float = _f(1.0, help="Weight of the per-atom energy term.")
    forces_weight: float = _f(10.0, help="Weight of the force term.")
    stress_weight: float = _f(1.0, help="Weight of the stress term (stress × volume per atom, i.e. eV/atom).")
    couplings_weight: float = _f(
        1.0, help="Weight of the phase-free non-adiabatic coupling term (multistate models such as `type: diabatic`)."
    )
    ensemble: int = _f(1, help="Train this many models with seeds seed, seed+1, ...; saved as a Committee.")
    dtype: str = _f("float64", help="float64 or float32: dtype of the model and the data.")
    device: str = _f(
        "auto", help="cpu, cuda, cuda:N or auto (cuda when available; under torchrun the local rank's GPU)."
    )
    fit_statistics: bool = _f(
        True, help="Fit per-element reference energies and the force scale on the training set first."
    )
    resume: bool = _f(
        False,
        help="Continue from OUTPUT/last.pt (or OUTPUT/member_K/last.pt) when it exists; the model and the settings "
        "must be those of the checkpoint (same as `--resume`).",
    )


@dataclass
class TrainConfig:
    """A whole ``mlpot train`` configuration."""

    data: DataConfig = _f(help="Data section.")
    model: ModelConfig = _f(help="Model section.")
    trainer: TrainerConfig = _f(help="Trainer section.")
    output: str = _f("runs/mlpot", help="Output directory: model.pt, split.json, metrics.csv, checkpoints.")


# The LoopConfig fields are documented with comments in loop.py; their help texts live here.
_LOOP_HELP = {
    "max_epochs": "Passes over the training set.",
    "max_minutes": "Wall-clock budget in minutes, checked after each epoch (null: none).",
    "lr": "Peak learning rate of AdamW.",
    "weight_decay": "Decoupled weight decay of AdamW.",
    "warmup_epochs": "Linear learning-rate warm-up, in epochs.",
    "schedule": ("cosine (ends at max_epochs), cosine_time (ends at max_epochs or max_minutes, whichever comes "
                 "first), plateau or constant."),
    "ema_decay": ("Decay per optimiser step of the EMA of the weights used for evaluation; it averages over "
                  "~1/(1 − decay) steps, so a small training set (few steps per epoch) wants a lower value "
                  "(null: no EMA)."),
    "grad_clip": "Gradient-norm clipping (null: none).",
    "patience": "Early stopping after this many epochs without a better validation loss (null: never).",
    "seed": "Seed of initialisation and shuffling (ensemble member k uses seed + k).",
    "progress": "Progress output (a bar on a terminal, a plain line every 5% in a log) and one line per epoch.",
    "checkpoint_every": "Write last.pt (and best.pt, if the validation loss improved since) every this many epochs.",
    "min_lr_factor": "Final learning rate of the cosine schedule, as a fraction of lr.",
    "plateau_factor": "plateau schedule: factor applied to the learning rate ...",
    "plateau_patience": "... after this many epochs without improvement.",
}
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "trainer": TrainerConfig}


# --------------------------------------------------------------------------------------- validation
def type_name(tp: Any) -> str:
    """A config annotation as the docs and error messages spell it: ``int | null``, ``list[str]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in typing.get_args(tp))}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float, numeric strings too)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, where)
            except ValueError as exc:
                errors.append(exc)
        raise ValueError(f"{where}: expected {type_name(tp)}, got {type(value).__name__} {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item,) = typing.get_args(tp)
            return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            k_tp, v_tp = typing.get_args(tp)
            return {_coerce(k, k_tp, where): _coerce(v, v_tp, f"{where}.{k}") for k, v in value.items()}
    raise ValueError(f"{where}: expected {type_name(tp)}, got {type(value).__name__} {value!r}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of keys, got {type(values).__name__} {values!r}")
    if cls is ModelConfig:
        values = _model_type_as_name(values, where)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    extra = {k: v for k, v in values.items() if k not in names}
    kwargs: dict[str, Any] = {}
    if cls is ModelConfig:  # unknown keys are model hyper-parameters, checked against the model class
        hyper = dict(values.get("hyperparameters") or {})
        hyper.update(extra)
        extra = {}
        kwargs["hyperparameters"] = hyper
    if extra:
        key = sorted(extra)[0]
        raise ValueError(f"unknown key '{where}.{key}'; valid keys of '{where}': {', '.join(names)}")
    for f in dataclasses.fields(cls):
        if f.name in values and f.name not in kwargs:
            kwargs[f.name] = _coerce(values[f.name], hints[f.name], f"{where}.{f.name}")
    missing = [
        f.name for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"missing required key '{where}.{missing[0]}'")
    try:
        obj = cls(**kwargs)
    except ValueError as exc:  # LoopConfig.__post_init__ names the field
        raise ValueError(f"{where}.{exc}") from None
    if cls is ModelConfig:
        check_model_hyperparameters(obj)
    return obj


def _model_type_as_name(values: dict[str, Any], where: str) -> dict[str, Any]:
    """``model: {type: NAME}`` is ``model: {name: NAME}`` (both given: they must agree)."""
    if "type" not in values:
        return values
    values = dict(values)
    kind = values.pop("type")
    if "name" in values and values["name"] != kind:
        raise ValueError(f"{where}.type ({kind!r}) and {where}.name ({values['name']!r}) disagree; give one of them")
    values["name"] = kind
    return values


def check_model_hyperparameters(model: ModelConfig) -> None:
    """Check ``model.hyperparameters`` against the registered model class's constructor (names and types)."""
    from mlpot.models import registry

    if model.name not in registry.names():
        raise ValueError(f"model.name: unknown model {model.name!r}; known: {', '.join(registry.names())}")
    if model.chirality not in ("even", "augment", "free"):
        raise ValueError(f"model.chirality: expected even, augment or free, got {model.chirality!r}")
    signature = inspect.signature(registry.get(model.name).__init__)
    params = signature.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    reserved = {"self", "elements", "cutoff", "chirality", "dtype", "seed"}
    for key, value in model.hyperparameters.items():
        if key in reserved:
            raise ValueError(f"model.{key}: not a model hyper-parameter here (dtype and seed are trainer keys)")
        if key not in params:
            if accepts_any:
                continue
            valid = ", ".join(
                sorted(k for k in params if k not in reserved and params[k].kind.name != "VAR_POSITIONAL")
            )
            raise ValueError(f"unknown key 'model.{key}'; the model's hyper-parameters are: {valid}")
        default = params[key].default
        if default is not inspect.Parameter.empty and default is not None and value is not None:
            expected = type(default)
            widened = expected is float and isinstance(value, int) and not isinstance(value, bool)
            ok = isinstance(value, expected) or widened
            if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
                ok = True
            if isinstance(value, bool) != isinstance(default, bool):
                ok = False
            if not ok:
                kind = "list" if isinstance(default, (list, tuple)) else expected.__name__
                raise ValueError(
                    f"model.{key}: expected {kind} (default {default!r}), got {type(value).__name__} {value!r}"
                )


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Validate a nested dict (as read from YAML) into a :class:`TrainConfig`."""
    if not isinstance(values, dict):
        raise ValueError(
            f"config: expected a mapping with sections data, model, trainer, output; got {type(values).__name__}"
        )
    allowed = {"data", "model", "trainer", "output"}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}'; valid top-level keys: data, model, trainer, output")
    if "data" not in values:
        raise ValueError("missing required key 'data'")
    sections = {name: _build(cls, values.get(name) or {}, name) for name, cls in _SECTIONS.items()}
    output = _coerce(values.get("output", "runs/mlpot"), str, "output")
    return TrainConfig(output=output, **sections)


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a config dict (values parsed as YAML)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected section.key=value")
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else None
        parts = dotted.strip().split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ValueError(f"--set {dotted}: '{part}' is not a section")
            else:
                child = node[part] = dict(child)
            node = child
        node[parts[-1]] = value
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config, apply ``--set`` overrides and validate it.

    Relative data paths are resolved against the current directory (as on the command line).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: YAML syntax error, unknown key or wrong type (the message names the key).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc
    return config_from_dict(apply_overrides(values, overrides or []))


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data (for YAML/JSON), model hyper-parameters flattened into ``model``."""
    out = dataclasses.asdict(config)
    hyper = out["model"].pop("hyperparameters")
    out["model"].update(hyper)
    return out


# --------------------------------------------------------------------------------------- help texts
def field_help(f: dataclasses.Field) -> str:
    """The help text of a config field (rendered into docs/training.md by scripts/render_config_docs.py)."""
    return f.metadata.get("help") or _LOOP_HELP.get(f.name, "")


def render_reference() -> str:
    """Deprecated: the Markdown config reference; use ``scripts/render_config_docs.py`` (same output)."""
    import importlib.util
    import warnings

    warnings.warn(
        "mlpot.training.config.render_reference moved to scripts/render_config_docs.py "
        "(run `python scripts/render_config_docs.py docs/training.md`)",
        DeprecationWarning,
        stacklevel=2,
    )
    script = Path(__file__).resolve().parents[2] / "scripts" / "render_config_docs.py"
    if not script.is_file():
        raise ImportError(f"render_reference needs {script}, which ships with the source tree, not with the package")
    spec = importlib.util.spec_from_file_location("render_config_docs", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render_reference()
