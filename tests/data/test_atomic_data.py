"""Tests of :mod:`mlpot.data.atomic_data`: ASE round trips, labels, collation and validation."""

from __future__ import annotations

import re

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.geometry import cellpar_to_cell

from mlpot.data import atomic_data_from_atoms, atoms_from_atomic_data, collate, validate, with_neighbors
from mlpot.data import keys as K
from mlpot.neighbors import neighbor_list


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread for these tiny tensors (see tests/test_neighbors.py), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def labelled(atoms: Atoms, seed: int, stress: bool = True) -> Atoms:
    """A copy of ``atoms`` with random energy, forces and (Voigt) stress in a SinglePointCalculator."""
    atoms = atoms.copy()
    rng = np.random.default_rng(seed)
    results = {"energy": float(rng.normal()), "forces": rng.normal(size=(len(atoms), 3))}
    if stress:
        results["stress"] = rng.normal(size=6)
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def structures() -> list[Atoms]:
    """A molecule, rattled bulk, a slab with a zero non-periodic vector, and a triclinic wire."""
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True)
    crystal.rattle(0.05, seed=1)
    slab = fcc111("Al", size=(2, 2, 2), vacuum=5.0)
    cell = slab.cell.array.copy()
    cell[2] = 0.0
    slab.cell = cell
    slab.info.clear()  # fcc111's adsorbate_info is not extxyz-serialisable
    cell = cellpar_to_cell((3.3, 6.0, 4.1, 70, 115, 80))
    wire = Atoms("CNO", positions=np.random.default_rng(2).random((3, 3)) @ cell, cell=cell, pbc=[False, False, True])
    return [
        labelled(molecule("CH3CH2OH"), seed=3, stress=False),
        labelled(crystal, seed=4),
        labelled(slab, seed=5),
        labelled(wire, seed=6),
    ]


def assert_same_atoms(actual: Atoms, expected: Atoms) -> None:
    np.testing.assert_array_equal(actual.numbers, expected.numbers)
    np.testing.assert_array_equal(actual.positions, expected.positions)
    np.testing.assert_array_equal(actual.cell.array, expected.cell.array)
    np.testing.assert_array_equal(actual.pbc, expected.pbc)
    assert actual.get_potential_energy() == expected.get_potential_energy()
    np.testing.assert_array_equal(actual.get_forces(), expected.get_forces())
    if "stress" in expected.calc.results:
        np.testing.assert_array_equal(actual.get_stress(), expected.get_stress())
    else:
        assert "stress" not in actual.calc.results


# --- conversion from and to ASE ---------------------------------------------------------------


def test_keys_shapes_and_dtypes_follow_the_contract():
    atoms = structures()[1]
    n = len(atoms)
    data = atomic_data_from_atoms(atoms, cutoff=3.0)
    expected = {
        K.POSITIONS: ((n, 3), torch.float64),
        K.NUMBERS: ((n,), torch.int64),
        K.BATCH: ((n,), torch.int64),
        K.CELL: ((1, 3, 3), torch.float64),
        K.PBC: ((1, 3), torch.bool),
        K.N_ATOMS: ((1,), torch.int64),
        K.ENERGY: ((1,), torch.float64),
        K.FORCES: ((n, 3), torch.float64),
        K.STRESS: ((1, 3, 3), torch.float64),
        K.EDGE_INDEX: ((2, data[K.EDGE_SHIFT].shape[0]), torch.int64),
        K.EDGE_SHIFT: ((data[K.EDGE_INDEX].shape[1], 3), torch.int64),
    }
    assert {key: (tuple(value.shape), value.dtype) for key, value in data.items()} == expected
    assert not data[K.BATCH].any()
    assert int(data[K.N_ATOMS]) == n


@pytest.mark.parametrize("index", range(4), ids=["molecule", "bulk", "slab", "wire"])
def test_round_trip_preserves_structure_and_labels(index):
    atoms = structures()[index]
    before = atoms.positions.copy()
    data = atomic_data_from_atoms(atoms)
    (back,) = atoms_from_atomic_data(data)
    assert_same_atoms(back, atoms)
    np.testing.assert_array_equal(atoms.positions, before)  # the input is not mutated


def test_stress_from_a_full_3x3_tensor_is_kept():
    atoms = structures()[1]
    stress = np.random.default_rng(7).normal(size=(3, 3))
    stress = stress + stress.T
    atoms.calc = SinglePointCalculator(atoms, energy=1.0, stress=stress)
    data = atomic_data_from_atoms(atoms)
    np.testing.assert_array_equal(data[K.STRESS][0].numpy(), stress)
    (back,) = atoms_from_atomic_data(data)
    np.testing.assert_array_equal(back.get_stress(voigt=False), stress)


def test_voigt_stress_becomes_the_symmetric_3x3_tensor():
    atoms = structures()[1]
    xx, yy, zz, yz, xz, xy = voigt = np.arange(1.0, 7.0)
    atoms.calc = SinglePointCalculator(atoms, stress=voigt)
    stress = atomic_data_from_atoms(atoms)[K.STRESS][0].numpy()
    np.testing.assert_array_equal(stress, [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def test_extxyz_round_trip_with_stress(tmp_path):
    originals = structures()[1:]  # periodic ones: extxyz writes stress only with a cell
    path = tmp_path / "data.extxyz"
    ase.io.write(path, originals, format="extxyz")
    read = ase.io.read(path, index=":", format="extxyz")
    assert all(a.calc is not None and "stress" in a.calc.results for a in read)
    data = [atomic_data_from_atoms(a) for a in read]
    for d, atoms, original in zip(data, read, originals):
        # mlpot keeps exactly what ASE read; ASE's text keeps 8 decimals of forces and positions.
        assert float(d[K.ENERGY]) == atoms.get_potential_energy()
        np.testing.assert_array_equal(d[K.FORCES].numpy(), atoms.get_forces())
        np.testing.assert_array_equal(d[K.STRESS][0].numpy(), atoms.get_stress(voigt=False))
        np.testing.assert_array_equal(d[K.POSITIONS].numpy(), atoms.positions)
        assert float(d[K.ENERGY]) == pytest.approx(original.get_potential_energy(), rel=1e-14)
        np.testing.assert_allclose(d[K.FORCES].numpy(), original.get_forces(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(d[K.STRESS][0].numpy(), original.get_stress(voigt=False), rtol=1e-14, atol=0)
    # And back out through mlpot and extxyz again: nothing changes.
    again = tmp_path / "again.extxyz"
    ase.io.write(again, atoms_from_atomic_data(collate(data)), format="extxyz")
    for back, atoms in zip(ase.io.read(again, index=":", format="extxyz"), read):
        np.testing.assert_array_equal(back.numbers, atoms.numbers)
        np.testing.assert_array_equal(back.positions, atoms.positions)
        np.testing.assert_array_equal(back.cell.array, atoms.cell.array)
        np.testing.assert_array_equal(back.pbc, atoms.pbc)
        assert back.get_potential_energy() == atoms.get_potential_energy()
        np.testing.assert_array_equal(back.get_forces(), atoms.get_forces())
        np.testing.assert_array_equal(back.get_stress(), atoms.get_stress())


def test_labels_are_read_never_computed():
    atoms = bulk("Cu", "fcc", a=3.61)
    atoms.calc = EMT()
    data = atomic_data_from_atoms(atoms)
    assert not set(data) & K.LABEL_KEYS  # nothing computed yet, so no labels
    energy = atoms.get_potential_energy()
    assert float(atomic_data_from_atoms(atoms)[K.ENERGY]) == energy
    assert not set(atomic_data_from_atoms(atoms, labels=False)) & K.LABEL_KEYS


def test_float32_conversion():
    atoms = structures()[2]
    data = atomic_data_from_atoms(atoms, cutoff=3.0, dtype=torch.float32)
    for key in (K.POSITIONS, K.CELL, K.ENERGY, K.FORCES, K.STRESS):
        assert data[key].dtype == torch.float32
    assert data[K.EDGE_INDEX].dtype == torch.int64
    (back,) = atoms_from_atomic_data(data)
    np.testing.assert_allclose(back.positions, atoms.positions, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("index", range(4), ids=["molecule", "bulk", "slab", "wire"])
def test_cutoff_adds_the_neighbour_list(index):
    atoms = structures()[index]
    data = atomic_data_from_atoms(atoms, cutoff=4.0)
    edge_index, edge_shift = neighbor_list(data[K.POSITIONS], 4.0, data[K.CELL], data[K.PBC])
    assert torch.equal(data[K.EDGE_INDEX], edge_index) and torch.equal(data[K.EDGE_SHIFT], edge_shift)
    without = atomic_data_from_atoms(atoms)
    assert K.EDGE_INDEX not in without
    assert set(with_neighbors(without, 4.0)) == set(data)
    assert K.EDGE_INDEX not in without  # with_neighbors returns a new dict


# --- collation --------------------------------------------------------------------------------


def test_collate_then_back_gives_the_originals():
    originals = structures()
    batch = collate([atomic_data_from_atoms(a) for a in originals])
    validate(batch)
    sizes = [len(a) for a in originals]
    assert torch.equal(batch[K.BATCH], torch.repeat_interleave(torch.arange(4), torch.tensor(sizes)))
    assert batch[K.N_ATOMS].tolist() == sizes
    assert batch[K.CELL].shape == (4, 3, 3) and batch[K.PBC].shape == (4, 3)
    assert K.STRESS not in batch  # the molecule has none: a label is kept only if all have it
    back = atoms_from_atomic_data(batch)
    assert len(back) == len(originals)
    for atoms, original in zip(back, originals):
        energy, forces = original.get_potential_energy(), original.get_forces()
        original = original.copy()
        original.calc = SinglePointCalculator(original, energy=energy, forces=forces)
        assert_same_atoms(atoms, original)


def test_collate_keeps_stress_when_every_structure_has_it():
    originals = structures()[1:]
    back = atoms_from_atomic_data(collate([atomic_data_from_atoms(a) for a in originals]))
    for atoms, original in zip(back, originals):
        assert_same_atoms(atoms, original)


def test_collate_offsets_edges():
    cutoff = 4.0
    singles = [atomic_data_from_atoms(a, cutoff=cutoff) for a in structures()]
    batch = collate(singles)
    offsets = np.cumsum([0] + [len(d[K.POSITIONS]) for d in singles])
    expected_index = torch.cat([d[K.EDGE_INDEX] + int(o) for d, o in zip(singles, offsets)], dim=1)
    assert torch.equal(batch[K.EDGE_INDEX], expected_index)
    assert torch.equal(batch[K.EDGE_SHIFT], torch.cat([d[K.EDGE_SHIFT] for d in singles]))
    # Each edge stays inside its system, and a list built on the batch has the same edges.
    assert torch.equal(batch[K.BATCH][batch[K.EDGE_INDEX][0]], batch[K.BATCH][batch[K.EDGE_INDEX][1]])
    rebuilt = with_neighbors({k: v for k, v in batch.items() if k not in K.EDGE_KEYS}, cutoff)
    assert edge_set(rebuilt) == edge_set(batch)
    # Vectors from the batched list equal the per-system vectors.
    assert torch.equal(edge_vectors(batch), torch.cat([edge_vectors(d) for d in singles]))


def edge_set(data) -> set[tuple[int, ...]]:
    rows = torch.cat([data[K.EDGE_INDEX].T, data[K.EDGE_SHIFT]], dim=1)
    assert len({tuple(r) for r in rows.tolist()}) == rows.shape[0]
    return {tuple(r) for r in rows.tolist()}


def edge_vectors(data) -> torch.Tensor:
    i, j = data[K.EDGE_INDEX]
    cell = data[K.CELL][data[K.BATCH][i]]
    return data[K.POSITIONS][j] - data[K.POSITIONS][i] + torch.einsum("ek,ekl->el", data[K.EDGE_SHIFT].double(), cell)


def test_collate_of_batches_equals_one_collate():
    singles = [atomic_data_from_atoms(a, cutoff=3.0) for a in structures()]
    nested = collate([collate(singles[:2]), singles[2], collate(singles[3:])])
    flat = collate(singles)
    assert set(nested) == set(flat)
    for key in flat:
        assert torch.equal(nested[key], flat[key]), key


def test_collate_needs_a_structure():
    with pytest.raises(ValueError):
        collate([])


# --- validation -------------------------------------------------------------------------------


def valid_data() -> dict[str, torch.Tensor]:
    return atomic_data_from_atoms(structures()[1], cutoff=3.0)


def two_systems(data):
    """The 4-atom crystal split into two 2-atom systems, with every system key consistent."""
    return {
        **data,
        K.BATCH: torch.tensor([0, 0, 1, 1]),
        K.CELL: data[K.CELL].expand(2, 3, 3),
        K.PBC: data[K.PBC].expand(2, 3),
        K.ENERGY: data[K.ENERGY].expand(2),
        K.STRESS: data[K.STRESS].expand(2, 3, 3),
    }


def replaced(key, function):
    return lambda d: {**d, key: function(d[key])}


def set_entry(index, value):
    def change(x):
        x = x.clone()
        x[index] = value
        return x

    return change


INVALID = {
    # case: (field the message must name, change to valid data)
    "nan-positions": ("positions", replaced(K.POSITIONS, set_entry((1, 2), float("nan")))),
    "inf-positions": ("positions", replaced(K.POSITIONS, set_entry((0, 0), float("inf")))),
    "positions-shape": ("positions", replaced(K.POSITIONS, lambda x: x[:, :2])),
    "integer-positions": ("positions", replaced(K.POSITIONS, lambda x: x.long())),
    "missing-numbers": ("numbers", lambda d: {k: v for k, v in d.items() if k != K.NUMBERS}),
    "float-numbers": ("numbers", replaced(K.NUMBERS, lambda x: x.double())),
    "numbers-shape": ("numbers", replaced(K.NUMBERS, lambda x: x[:-1])),
    "atomic-number-0": ("numbers", replaced(K.NUMBERS, set_entry(0, 0))),
    "atomic-number-119": ("numbers", replaced(K.NUMBERS, set_entry(2, 119))),
    "singular-cell": ("cell", replaced(K.CELL, set_entry((0, 1), torch.tensor([3.61, 0.0, 0.0])))),
    "singular-periodic-part": (
        "cell",
        lambda d: {**d, K.CELL: set_entry((0, 1), torch.tensor([-7.22, 0.0, 0.0]))(d[K.CELL]),
                   K.PBC: torch.tensor([[True, True, False]])},
    ),
    "nan-cell": ("cell", replaced(K.CELL, set_entry((0, 2, 2), float("nan")))),
    "cell-shape": ("cell", replaced(K.CELL, lambda x: x[0])),
    "pbc-shape": ("pbc", replaced(K.PBC, lambda x: x[0])),
    "pbc-dtype": ("pbc", replaced(K.PBC, lambda x: x.long())),
    "cell-systems": ("cell", lambda d: {**two_systems(d), K.CELL: d[K.CELL]}),
    "pbc-systems": ("pbc", lambda d: {**two_systems(d), K.PBC: d[K.PBC]}),
    "unsorted-batch": ("batch", replaced(K.BATCH, lambda x: torch.tensor([1, 1, 0, 0]))),
    "float-batch": ("batch", replaced(K.BATCH, lambda x: x.double())),
    "batch-shape": ("batch", replaced(K.BATCH, lambda x: x[:-1])),
    "negative-batch": ("batch", lambda d: {**two_systems(d), K.BATCH: torch.tensor([-1, -1, 0, 0])}),
    "forces-shape": ("forces", replaced(K.FORCES, lambda x: x[:, :2])),
    "energy-shape": ("energy", replaced(K.ENERGY, lambda x: x.expand(2))),
    "stress-shape": ("stress", replaced(K.STRESS, lambda x: x[0])),
    "edge-index-shape": ("edge_index", replaced(K.EDGE_INDEX, lambda x: x[:1])),
    "edge-index-range": ("edge_index", replaced(K.EDGE_INDEX, set_entry((1, 0), 4))),
    "edge-shift-shape": ("edge_shift", replaced(K.EDGE_SHIFT, lambda x: x[1:])),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_validate_raises_value_error_naming_the_field(case):
    field, change = INVALID[case]
    data = valid_data()
    validate(data)
    validate(two_systems(data))
    with pytest.raises(ValueError, match=re.escape(f"'{field}'")):
        validate(change(data))


def atoms_with(**changes) -> Atoms:
    positions = [[0.0, 0.0, 0.0], [1.8, 1.8, 0.0], [0.0, 1.8, 1.8]]
    atoms = Atoms("Cu3", positions=positions, cell=np.eye(3) * 3.61, pbc=True)
    for name, value in changes.items():
        setattr(atoms, name, value)
    return atoms


def nan_positions():
    atoms = atoms_with()
    atoms.positions[1, 0] = np.nan
    return atoms


def inf_positions():
    atoms = atoms_with()
    atoms.positions[2, 2] = -np.inf
    return atoms


def wrong_forces():
    atoms = atoms_with()
    atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((3, 2)))
    return atoms


INVALID_ATOMS = {
    "nan-positions": ("positions", nan_positions, None),
    "inf-positions": ("positions", inf_positions, None),
    "atomic-number-0": ("numbers", lambda: atoms_with(numbers=[29, 0, 29]), None),
    "atomic-number-119": ("numbers", lambda: atoms_with(numbers=[29, 29, 119]), None),
    "singular-cell": ("cell", lambda: atoms_with(cell=[[3.61, 0, 0], [3.61, 0, 0], [0, 0, 3.61]]), None),
    "singular-cell-with-cutoff": ("cell", lambda: atoms_with(cell=[[3.61, 0, 0], [0, 0, 0], [0, 0, 3.61]]), 2.0),
    "forces-shape": ("forces", wrong_forces, None),
    "negative-cutoff": ("cutoff", atoms_with, -2.0),
}


@pytest.mark.parametrize("case", list(INVALID_ATOMS))
def test_atomic_data_from_atoms_raises_value_error_naming_the_field(case):
    field, make, cutoff = INVALID_ATOMS[case]
    with pytest.raises(ValueError, match=field):
        atomic_data_from_atoms(make(), cutoff=cutoff)


def test_zero_vector_on_a_non_periodic_axis_is_valid():
    atoms = atoms_with(cell=[[3.61, 0, 0], [0, 3.61, 0], [0, 0, 0]], pbc=[True, True, False])
    data = atomic_data_from_atoms(atoms, cutoff=3.0)
    validate(data)
    assert not data[K.EDGE_SHIFT][:, 2].any()
    molecule_data = atomic_data_from_atoms(molecule("H2O"), cutoff=3.0)
    assert not molecule_data[K.CELL].any() and not molecule_data[K.PBC].any()
    validate(molecule_data)


def test_non_atoms_input_is_a_type_error():
    with pytest.raises(TypeError):
        atomic_data_from_atoms({"positions": np.zeros((1, 3))})
