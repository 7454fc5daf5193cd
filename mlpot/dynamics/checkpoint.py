"""MD checkpoints: what a run saves to continue bit for bit, and the checks before it resumes.

A checkpoint is a dict of plain tensors, numbers and strings (written by
:func:`mlpot.files.atomic_torch_save`, read by :func:`mlpot.files.safe_torch_load`, never pickled
objects): the state's tensors, the integrator's settings, the seed and the generator's state, the
force provider's neighbour list, the skin, the systems' sizes and a hash of the potential. A run
resumed from step k then takes exactly the steps an uninterrupted run takes.

:class:`~mlpot.dynamics.engine.Simulation` saves and loads through :func:`make_checkpoint`,
:func:`check_compatible` and :func:`changed_settings`.
"""

from __future__ import annotations

import math
import os

import torch

from mlpot.dynamics.forces import PotentialForces
from mlpot.dynamics.integrators import integrator_from_config
from mlpot.files import safe_torch_load

__all__ = [
    "CHECKPOINT_FORMAT",
    "make_checkpoint",
    "read_checkpoint",
    "restore",
    "resume",
    "check_compatible",
    "changed_settings",
]

CHECKPOINT_FORMAT = "mlpot.dynamics.checkpoint/1"


def make_checkpoint(sim) -> dict:
    """Everything needed to continue ``sim`` bit for bit: plain tensors, numbers and strings only."""
    state = {k: v.detach().cpu() for k, v in sim.state.tensors().items()}
    return {
        "format": CHECKPOINT_FORMAT,
        "step": int(sim.state.step),
        "state": state,
        "integrator": sim.integrator.config(),
        "seed": int(sim.seed),
        "rng_state": sim.generator.get_state().cpu(),
        "rng_device": str(sim.device),
        "forces_provider": sim.forces.state_dict(),
        "skin": sim.skin,
        "n_systems": sim.state.n_systems,
        "sizes": [len(a) for a in sim._template],
    }


def read_checkpoint(path: str | os.PathLike) -> dict:
    """An MD checkpoint, read safely; a truncated or foreign file is a ValueError."""
    return safe_torch_load(path, "MD checkpoint")


def restore(sim, data: dict) -> None:
    """Continue ``sim`` from the checkpoint ``data`` (:meth:`~mlpot.dynamics.engine.Simulation.load_checkpoint`).

    The checkpoint's integrator settings win over the simulation's; the state's tensors are copied
    in place, the force provider is rebuilt with the checkpoint's neighbour list, the generator
    takes the checkpoint's state, and reporters append from the checkpoint's step.

    Raises:
        ValueError: another potential, other systems, other atomic numbers or another skin.
    """
    check_compatible(data, sim._potential_fingerprint(), [len(a) for a in sim._template])
    tensors = data["state"]
    if not torch.equal(sim.state.numbers.cpu(), tensors["numbers"]):
        raise ValueError("checkpoint atomic numbers differ from this simulation's")
    if float(data.get("skin", sim.skin)) != sim.skin and isinstance(sim.forces, PotentialForces):
        raise ValueError(f"checkpoint was written with skin {data['skin']} Å, this simulation uses {sim.skin} Å")
    sim.integrator = integrator_from_config(data["integrator"])
    # In place: the force provider holds the same numbers, batch, cell and pbc tensors.
    for name, value in tensors.items():
        getattr(sim.state, name).copy_(value)
    sim.state.step = int(data["step"])
    sim.state.outputs = {"energy": sim.state.energy, "forces": sim.state.forces}
    sim.forces = sim._make_forces()
    sim.forces.load_state_dict(data.get("forces_provider", {}))
    sim.integrator.prepare(sim.state, sim.generator)
    sim._prepare_step()
    sim.seed = int(data["seed"])
    sim.generator.set_state(data["rng_state"])
    sim._observables_cache = None
    sim._have_forces = True
    sim.resumed_from_step = sim.state.step
    sim._last_report = {id(r): sim.state.step for r in sim.reporters}
    sim._started = False


def resume(simulation_class, path, atoms, potential, reporters=(), expected: dict | None = None, **kwargs):
    """:meth:`~mlpot.dynamics.engine.Simulation.from_checkpoint`: a simulation of ``simulation_class``
    built with the checkpoint's settings, after checking them against ``expected``, then restored."""
    data = read_checkpoint(path)
    cfg = data["integrator"]
    changes = changed_settings(data, expected or {})
    if changes:
        raise ValueError(f"--resume: the settings differ from those in {path}: {'; '.join(changes)}")
    sim = simulation_class(
        atoms,
        potential,
        timestep_fs=cfg["timestep_fs"],
        ensemble=cfg["ensemble"],
        temperature_K=cfg.get("temperature_K"),
        friction_per_fs=cfg.get("friction_per_fs"),
        seed=data["seed"],
        reporters=reporters,
        skin=data.get("skin", 1.0),
        **{k: v for k, v in cfg.items() if k not in ("ensemble", "timestep_fs", "temperature_K", "friction_per_fs")},
        **kwargs,
    )
    sim.load_checkpoint(data)
    return sim


def check_compatible(data: dict, fingerprint: str, sizes: list[int]) -> None:
    """Raise ValueError unless ``data`` is an MD checkpoint of systems of ``sizes`` atoms written
    with the potential of hash ``fingerprint`` (older checkpoints carry no hash: not checked)."""
    if data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not an mlpot MD checkpoint (format {data.get('format')!r})")
    saved = data.get("potential_fingerprint")
    if saved is not None and saved != fingerprint:
        raise ValueError(
            f"the checkpoint was written with another potential (hash of config and weights "
            f"{saved[:12]}, this one {fingerprint[:12]}): resume with the original model"
        )
    if list(data["sizes"]) != list(sizes):
        raise ValueError(f"checkpoint holds systems of sizes {data['sizes']}, this simulation {list(sizes)}")


def changed_settings(data: dict, expected: dict) -> list[str]:
    """``"name: X in the checkpoint, now Y"`` for each expected setting that differs from the checkpoint's.

    ``expected`` may hold ``integrator`` (keys of an integrator's ``config()``), ``skin`` (Å) and
    ``seed``; a key that is absent or None, or that the checkpoint's integrator does not have, is
    not checked (e.g. the initial temperature of an NVE run is not a setting of it).
    """
    saved = {
        **{f"integrator.{k}": v for k, v in data["integrator"].items()},
        "skin": data.get("skin"),
        "seed": data.get("seed"),
    }
    wanted = {f"integrator.{k}": v for k, v in (expected.get("integrator") or {}).items()}
    wanted.update({k: expected.get(k) for k in ("skin", "seed")})
    changes = []
    for name, value in wanted.items():
        if value is None or name not in saved:
            continue
        old = saved[name]
        if value == old:
            continue
        numbers = isinstance(value, (int, float)) and isinstance(old, (int, float))
        if numbers and math.isclose(value, old, rel_tol=1e-12):
            continue
        changes.append(f"{name.removeprefix('integrator.')}: {old!r} in the checkpoint, now {value!r}")
    return changes
