"""The fast evaluation paths give the numbers of the reference path: the fixed-topology
evaluator that MD uses (edges beyond the cutoff kept, tables prepared once), and the compiled
passes of ``compile()`` (both model families); a compiler failure falls back, with a warning."""

import shutil
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from helpers import ROUND_OFF

from mlpot.data import atomic_data_from_atoms
from mlpot.models import DescriptorModel, EquivariantModel
from mlpot.models import compile as model_compile


def _close(a, b):
    return float((a - b).abs().max()) <= ROUND_OFF * max(float(b.abs().max()), 1e-3)


def _water_box(n_molecules: int, seed: int) -> Atoms:
    n = 3 * n_molecules
    box = (n / 0.1) ** (1 / 3)
    rng = np.random.default_rng(seed)
    return Atoms("H2O" * n_molecules, positions=rng.random((n, 3)) * box, cell=[box] * 3, pbc=True)


def _systems():
    """A molecule (every atom through every network) and a periodic box (atoms grouped by element)."""
    return {"ethanol": molecule("CH3CH2OH"), "water box": _water_box(30, seed=1)}


def _assert_compiled_agrees(model, compiled):
    """Energies, atomic energies, forces, stress (periodic) and the MD evaluator of ``compiled`` agree
    with ``model``'s to round-off on every system of :func:`_systems`; a fallback to uncompiled fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for name, atoms in _systems().items():
            data = atomic_data_from_atoms(atoms, cutoff=model.cutoff + 0.5)
            stress = bool(atoms.pbc.all())
            expected, result = model(data, compute_stress=stress), compiled(data, compute_stress=stress)
            for key in ("energy", "atomic_energy", "forces") + (("stress",) if stress else ()):
                assert _close(result[key], expected[key]), (name, key)
            energy, forces = compiled.fixed_topology(data)(data["positions"])
            assert _close(energy, expected["energy"]) and _close(forces, expected["forces"]), name


#: A small equivariant model (every coupling, both parities, the ZBL prior) that compiles in seconds.
SMALL_EQUIVARIANT = {"channels": 4, "latent": 16, "hidden": (16,), "n_radial": 6, "repulsion": "zbl"}


def _model(family: str, **options):
    if family == "descriptor":
        return DescriptorModel(["H", "C", "O"], **options)
    return EquivariantModel(["H", "C", "O"], **SMALL_EQUIVARIANT, **options)


@pytest.mark.parametrize("family", ["descriptor", "equivariant"])
@pytest.mark.parametrize("name", ["ethanol", "water box"])
def test_fixed_topology_equals_forward(name, family):
    """Edges in the skin (beyond the cutoff) are kept by the evaluator and add exact zeros;
    a list in any edge order gives the same energy and forces as a plain evaluation."""
    atoms = _systems()[name]
    model = _model(family, cutoff=3.5, chirality="free", seed=3)
    data = atomic_data_from_atoms(atoms, cutoff=model.cutoff + 1.0)
    lengths = (data["positions"][data["edge_index"][1]] - data["positions"][data["edge_index"][0]]).norm(dim=1)
    assert name != "ethanol" or bool((lengths > model.cutoff).any())  # the skin holds edges: not vacuous
    order = torch.randperm(data["edge_index"].shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = {**data, "edge_index": data["edge_index"][:, order], "edge_shift": data["edge_shift"][order]}
    reference = model(atomic_data_from_atoms(atoms, cutoff=model.cutoff))
    evaluate = model.fixed_topology(shuffled)
    generator = torch.Generator().manual_seed(1)
    moved = data["positions"] + 0.05 * torch.randn(data["positions"].shape, generator=generator, dtype=torch.float64)
    for positions in (data["positions"], moved):
        expected = model({**shuffled, "positions": positions})
        energy, forces = evaluate(positions)
        assert _close(energy, expected["energy"]) and _close(forces, expected["forces"])
    assert _close(evaluate(data["positions"])[0], reference["energy"])


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler for torch.compile"
)
@pytest.mark.parametrize(
    ("threads", "hyperparameters"),
    [
        (1, {}),  # the default size, as benchmarked
        (2, {}),  # inductor generates other (parallel) code for 2 threads
        (1, {"l_max": 5, "bispectrum_channels": 4, "bispectrum_l_max": 3, "species_channels": True}),  # as rMD17
    ],
)
def test_compiled_evaluation_equals_uncompiled(threads, hyperparameters):
    """Compiled energies, forces, stress and MD evaluator agree with the uncompiled ones to
    round-off, for a molecule and a periodic system (a second shape: recompiled once)."""
    model = DescriptorModel(["H", "C", "O"], seed=2, **hyperparameters)
    compiled = DescriptorModel(["H", "C", "O"], seed=2, **hyperparameters).compile()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch._dynamo.reset()  # compile afresh for this thread count
    try:
        _assert_compiled_agrees(model, compiled)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler for torch.compile"
)
def test_compiled_equivariant_evaluation_equals_uncompiled():
    """The equivariant model compiles its forward and, through it, its backward: energies, forces,
    stress and the MD evaluator agree with the uncompiled ones to round-off (molecule, periodic box)."""
    model = _model("equivariant", seed=2)
    compiled = _model("equivariant", seed=2).compile()
    torch._dynamo.reset()
    _assert_compiled_agrees(model, compiled)


def test_compiler_failure_falls_back_with_a_warning(monkeypatch):
    def failing_compile(function, **options):
        def call(*args):
            raise RuntimeError("no compiler here")

        return call

    monkeypatch.setattr(torch, "compile", failing_compile)
    monkeypatch.setattr(model_compile, "_COMPILED", {})
    model = DescriptorModel(["H", "C", "O"], seed=0)
    data = atomic_data_from_atoms(molecule("CH3CH2OH"), cutoff=model.cutoff)
    expected = model(data)
    model.compile()
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*no compiler here"):
        result = model(data)
    assert _close(result["forces"], expected["forces"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later calls are quiet
        assert _close(model(data)["energy"], expected["energy"])


def test_compile_potential_sets_every_member_and_rejects_other_potentials():
    from mlpot import MLPotCalculator
    from mlpot.models import Committee, compile_potential
    from mlpot.models.reference import LennardJones

    committee = Committee([DescriptorModel(["H"], seed=0), DescriptorModel(["H"], seed=1)])
    assert compile_potential(committee) is committee
    assert all(member.compiled for member in committee.members)
    assert MLPotCalculator(DescriptorModel(["H"], seed=0), compile=True).model.compiled
    with pytest.raises(ValueError, match="LennardJones has no compiled evaluation"):
        compile_potential(LennardJones())
    with pytest.raises(ValueError, match="not an mlpot.models.Potential"):
        compile_potential(torch.nn.Linear(1, 1))


def test_only_prepared_passes_compile_whole_not_the_generic_forward():
    """A compiled model's prepared evaluator compiles as one graph only when it is the model's own
    fixed pass; the generic fallback for large lists (the model's forward, which branches on tensor
    values) runs uncompiled around the model's compiled passes."""
    from ase.build import bulk

    from mlpot.models.atomistic import EDGES_PER_BLOCK
    from mlpot.models.potential import evaluate_at_positions

    model = DescriptorModel(["Cu"], seed=0).compile()
    small = atomic_data_from_atoms(bulk("Cu", "fcc", a=3.61, cubic=True), cutoff=model.cutoff)
    large = atomic_data_from_atoms(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(6), cutoff=model.cutoff)
    assert small["edge_index"].shape[1] <= EDGES_PER_BLOCK < large["edge_index"].shape[1]
    prepared, generic = model.fixed_topology(small), model.fixed_topology(large)
    assert prepared.function is DescriptorModel.energy_and_forces and prepared.compiled
    assert generic.function is evaluate_at_positions and not generic.compiled
    assert not DescriptorModel(["Cu"], seed=0).fixed_topology(small).compiled  # not asked to compile
