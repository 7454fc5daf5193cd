"""Degrees of freedom and initial momenta: 3N − 6 for an isolated molecule (3N − 5 if linear),
3N − 3 for a periodic cell, 3N under Langevin; drawn momenta carry no net or angular momentum,
and given momenta that do lose it with a warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from mlpot.dynamics import Simulation
from mlpot.dynamics.momenta import (
    degrees_of_freedom,
    maxwell_boltzmann_momenta,
    net_motion,
    remove_net_motion,
    rigid_rotations,
)
from mlpot.models.reference import HarmonicSprings
from mlpot.units import KB_EV_PER_K


def _springs(atoms):
    return HarmonicSprings.from_atoms(atoms, bond_cutoff=3.0, spring_constant=1.0)


def _tensors(atoms):
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    masses = torch.as_tensor(atoms.get_masses(), dtype=torch.float64)
    batch = torch.zeros(len(atoms), dtype=torch.int64)
    pbc = torch.as_tensor(atoms.pbc)[None]
    return positions, masses, batch, pbc


@pytest.mark.parametrize(
    ("atoms", "rotations"),
    [
        (molecule("CH3CH2OH"), 3),
        (molecule("CO2"), 2),
        (Atoms("Ar"), 0),
        (bulk("Cu", "fcc", a=3.6, cubic=True), 0),
    ],
)
def test_rigid_rotations(atoms, rotations):
    positions, masses, batch, pbc = _tensors(atoms)
    assert int(rigid_rotations(positions, masses, batch, 1, pbc)[0]) == rotations


@pytest.mark.parametrize(
    ("atoms", "ensemble", "n_dof"),
    [
        (molecule("CH3CH2OH"), "nve", 21),  # 3·9 − 6
        (molecule("CO2"), "nve", 4),  # 3·3 − 5
        (molecule("CH3CH2OH"), "bussi", 21),
        (molecule("CH3CH2OH"), "langevin", 27),
        (bulk("Cu", "fcc", a=3.6, cubic=True), "nve", 9),  # 3·4 − 3
    ],
)
def test_simulation_counts_degrees_of_freedom(atoms, ensemble, n_dof):
    sim = Simulation(atoms, _springs(atoms), 1.0, ensemble=ensemble, temperature_K=300, seed=0)
    assert int(sim.state.n_dof[0]) == n_dof


def test_drawn_momenta_have_no_net_motion_and_equipartition_with_3n_minus_6():
    """Maxwell–Boltzmann momenta with P = L = 0, drawn for 4,000 ethanol replicas: the mean
    kinetic energy is (3N − 6)/2 k_B T within 4σ (σ from the χ² spread), which 3N − 3 misses by 14%."""
    atoms = molecule("CH3CH2OH")
    n_systems, n_atoms, temperature_K = 4000, len(atoms), 300.0
    positions = torch.as_tensor(np.tile(atoms.positions, (n_systems, 1)), dtype=torch.float64)
    masses = torch.as_tensor(np.tile(atoms.get_masses(), n_systems), dtype=torch.float64)
    batch = torch.arange(n_systems).repeat_interleave(n_atoms)
    pbc = torch.zeros(n_systems, 3, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    rotations = rigid_rotations(positions, masses, batch, n_systems, pbc)
    drawn = maxwell_boltzmann_momenta(masses, batch, n_systems, temperature_K, generator)
    momenta = remove_net_motion(positions, drawn, masses, batch, n_systems, rotations)
    total, angular = net_motion(positions, momenta, masses, batch, n_systems)
    assert float(total.abs().max()) < 1e-12 and float(angular.abs().max()) < 1e-11
    kinetic = torch.zeros(n_systems, dtype=torch.float64).index_add(0, batch, 0.5 * momenta.square().sum(1) / masses)
    f = float(degrees_of_freedom(torch.tensor([n_atoms]), True, rotations[:1])[0])
    assert f == 21
    expected = 0.5 * f * KB_EV_PER_K * temperature_K
    sigma_of_mean = expected * np.sqrt(2.0 / f) / np.sqrt(n_systems)
    assert abs(float(kinetic.mean()) - expected) < 4 * sigma_of_mean


def test_given_momenta_with_net_motion_are_cleaned_with_a_warning():
    atoms = molecule("CH3CH2OH")
    atoms.set_momenta(np.random.default_rng(0).normal(size=(len(atoms), 3)))
    with pytest.warns(UserWarning, match="net momentum and net angular momentum"):
        sim = Simulation(atoms, _springs(atoms), 1.0)
    total, angular = net_motion(sim.state.positions, sim.state.momenta, sim.state.masses, sim.state.batch, 1)
    assert float(total.abs().max()) < 1e-12 and float(angular.abs().max()) < 1e-11
    # Clean momenta (an earlier run's, say) pass without a word.
    clean = atoms.copy()
    clean.set_momenta(sim.state.momenta.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = Simulation(clean, _springs(clean), 1.0)
    assert torch.equal(again.state.momenta, sim.state.momenta)


def test_periodic_cells_keep_their_rotation_and_langevin_keeps_everything():
    """A periodic cell conserves no angular momentum (nothing to remove), and Langevin conserves
    neither (momenta are taken as given)."""
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    momenta, masses = np.random.default_rng(1).normal(size=(len(crystal), 3)), crystal.get_masses()[:, None]
    crystal.set_momenta(momenta - masses * momenta.sum(axis=0) / masses.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim = Simulation(crystal, _springs(crystal), 1.0)
    assert np.allclose(sim.state.momenta.numpy(), crystal.get_momenta(), rtol=0, atol=1e-14)
    mol = molecule("CH3CH2OH")
    mol.set_momenta(np.ones((len(mol), 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim = Simulation(mol, _springs(mol), 1.0, ensemble="langevin", temperature_K=300, seed=0)
    assert np.array_equal(sim.state.momenta.numpy(), mol.get_momenta())
