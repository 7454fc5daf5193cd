"""The potential contract as a type: every registered model class, the committee and the analytic
reference potentials are :class:`mlpot.models.Potential` subclasses and pass
``tests/helpers.py::assert_model_contract`` (issue 20, point 1).

A model registered later (:func:`mlpot.models.register`) is picked up here without an edit.
"""

from __future__ import annotations

import pytest
import torch
from ase.build import molecule
from helpers import _close, assert_model_contract, contract_structures, evaluate

from mlpot.data import atomic_data_from_atoms
from mlpot.data import keys as K
from mlpot.models import Committee, DescriptorModel, Potential, registry
from mlpot.models.potential import FixedTopology
from mlpot.models.reference import HarmonicSprings, LennardJones

ELEMENTS = ["H", "C", "O"]


def build_registered(name: str) -> Potential:
    """A float64 instance of the class registered under ``name``, with its default hyper-parameters."""
    torch.manual_seed(0)
    return registry.get(name)(ELEMENTS, cutoff=4.0, dtype=torch.float64)


#: Single-surface models. A multistate model (``training_labels = "multistate"``: the diabatic matrix of
#: mlpot.nonadiabatic) reports its lowest adiabatic state as ``energy``, and eigenvalues of a sum are not
#: sums of eigenvalues, so "E(A far from B) = E(A) + E(B)" holds for its matrix elements instead:
#: tests/nonadiabatic/test_diabatic_atomistic.py checks that, element by element.
SINGLE_SURFACE = [name for name in registry.names()
                  if getattr(registry.get(name), "training_labels", None) != "multistate"]


@pytest.mark.parametrize("name", SINGLE_SURFACE)
def test_every_registered_model_is_a_potential_and_obeys_the_contract(name):
    model = build_registered(name)
    assert isinstance(model, Potential)
    assert_model_contract(model)


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_model_rebuilds_from_its_config(name):
    """``cls(**model.config())`` plus the weights gives the same model: what model files rely on."""
    model = build_registered(name)
    rebuilt = type(model)(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    water = molecule("H2O")
    assert torch.equal(evaluate(rebuilt, water)["energy"], evaluate(model, water)["energy"])


def test_committee_obeys_the_contract():
    members = [DescriptorModel(ELEMENTS, cutoff=4.0, seed=s, n_channels=4, hidden=(8,)) for s in (0, 1)]
    committee = Committee(members)
    assert isinstance(committee, Potential)
    assert_model_contract(committee, contract_structures(ELEMENTS))


def test_committee_mean_is_the_potential_of_the_mean_atomic_energies():
    """The committee's outputs equal :class:`Potential`'s generic forward over its
    ``atomic_energies`` (the members' mean; members with different cutoffs see their own edges),
    on both derivative paths, and its spread keys are declared in ``mlpot.data.keys``."""
    members = [
        DescriptorModel(ELEMENTS, cutoff=3.0, seed=0, n_channels=4, hidden=(8,)),
        DescriptorModel(ELEMENTS, cutoff=4.0, seed=1, n_channels=4, hidden=(8,)),
    ]
    committee = Committee(members)
    crystal = contract_structures(ELEMENTS)["crystal"]
    data = atomic_data_from_atoms(crystal, cutoff=committee.cutoff + 0.5)  # a skin: edges beyond both cutoffs
    out = committee(data, compute_stress=True)
    for training in (False, True):
        generic = Potential.forward(committee, data, compute_stress=True, training=training)
        for key in (K.ENERGY, K.ATOMIC_ENERGY, K.FORCES, K.STRESS):
            assert _close(generic[key].detach(), out[key]), (key, training)
    members_out = [m(data) for m in members]
    spread = torch.stack([o[K.ENERGY] for o in members_out]).std(dim=0, unbiased=False)
    assert _close(out[K.ENERGY_STD], spread) and float(spread[0]) > 0
    assert out[K.FORCES_STD].shape == out[K.FORCES].shape
    assert K.ENERGY_STD in K.SYSTEM_KEYS and K.FORCES_STD in K.ATOM_KEYS


def test_committee_rejects_members_that_are_not_potentials():
    with pytest.raises(TypeError, match="committee member 1 is a Linear, not an mlpot.models.Potential"):
        Committee([DescriptorModel(ELEMENTS, seed=0), torch.nn.Linear(1, 1)])
    # A module with the forward contract but no Potential type: deprecated, forward only.
    reference = LennardJones(sigma=1.1, epsilon=0.05, rc=3.3, smooth=True)

    class PlainPair(torch.nn.Module):
        """The same pair potential behind the forward contract only."""

        cutoff = reference.cutoff

        def forward(self, data, **options):
            return reference(data, **options)

    with pytest.warns(DeprecationWarning, match="member 1 is a PlainPair.*subclass mlpot.models.Potential"):
        committee = Committee([reference, PlainPair()])
    water = molecule("H2O")
    assert _close(evaluate(committee, water)[K.ENERGY], evaluate(reference, water)[K.ENERGY])
    data = atomic_data_from_atoms(water, cutoff=3.3)
    with pytest.raises(TypeError, match="member 1 is a PlainPair.*only the committee's forward"):
        committee.atomic_energies(data, data[K.EDGE_INDEX], torch.zeros(data[K.EDGE_INDEX].shape[1], 3))
    with pytest.raises(ValueError, match="at least 2 members"):
        Committee([DescriptorModel(ELEMENTS, seed=0)])


@pytest.mark.parametrize("smooth", [True, False])
def test_lennard_jones_obeys_the_contract(smooth):
    # σ and r_c chosen so that the crystal's pairs are not within a finite-difference step of r_c
    # (the unsmoothed force jumps there).
    model = LennardJones(sigma=1.1, epsilon=0.05, rc=3.3, smooth=smooth)
    assert isinstance(model, Potential) and model.dtype == torch.float64
    assert_model_contract(model, contract_structures(ELEMENTS))


def test_lennard_jones_matches_ase():
    """Energy and forces of ASE's own Lennard-Jones calculator (same σ, ε, r_c, smoothing)."""
    from ase.calculators.lj import LennardJones as AseLennardJones

    atoms = contract_structures(ELEMENTS)["crystal"]
    for smooth in (False, True):
        model = LennardJones(sigma=1.1, epsilon=0.05, rc=3.3, smooth=smooth)
        atoms.calc = AseLennardJones(sigma=1.1, epsilon=0.05, rc=3.3, smooth=smooth)
        out = evaluate(model, atoms, stress=True)
        assert _close(out[K.ENERGY][0], torch.tensor(atoms.get_potential_energy()))
        assert _close(out[K.FORCES], torch.tensor(atoms.get_forces()))


def test_harmonic_springs_are_a_potential_with_exact_forces():
    """The springs act on a fixed bond graph, so the full contract (permutations, supercells)
    does not apply; they are a Potential whose written-out forces equal autograd of their
    atomic energies, and whose evaluator for MD is the generic one."""
    crystal = contract_structures(["Cu"])["crystal"]
    springs = HarmonicSprings.from_atoms(crystal, bond_cutoff=2.8, disorder=(0.5, 1.5, 0))
    assert isinstance(springs, Potential)
    moved = crystal.copy()
    moved.rattle(0.1, seed=3)
    data = atomic_data_from_atoms(moved)
    positions = data[K.POSITIONS].clone().requires_grad_(True)
    no_edges = torch.zeros(2, 0, dtype=torch.int64)
    energies = springs.atomic_energies({**data, K.POSITIONS: positions}, no_edges, torch.zeros(0, 3))
    (gradient,) = torch.autograd.grad(energies.sum(), positions)
    out = springs(data)
    assert _close(out[K.FORCES], -gradient) and float(out[K.FORCES].abs().max()) > 0
    prepared = {**data, K.EDGE_INDEX: no_edges, K.EDGE_SHIFT: torch.zeros(0, 3, dtype=torch.int64)}
    assert isinstance(springs.fixed_topology(prepared), FixedTopology)
