"""Tests of :mod:`mlpot.neighbors`: differential against ``ase.neighborlist.neighbor_list``.

Every comparison sorts both lists canonically on (i, j, S) and requires the integer arrays to be
*equal*. Each test first checks that no pair distance lies within a small tolerance of the cutoff,
so that the expected answer does not hinge on round-off (a failing check means the test setup
must pick another cutoff, not that the neighbour list is wrong).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.geometry import cellpar_to_cell
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mlpot.neighbors import VerletList, needs_rebuild, neighbor_list, neighbor_list_brute_force
from mlpot.neighbors.cell_list import _half_stencil

#: No pair distance may lie this close to the cutoff (Å): far above float64 round-off in Å-sized
#: systems; float32 tests use FLOAT32_TIE_TOLERANCE, above float32 round-off at ~50 Å.
TIE_TOLERANCE = 1e-6
FLOAT32_TIE_TOLERANCE = 1e-4

CUTOFFS = [1.5, 3.0, 5.0, 7.5, 10.0]
#: ASE's bin count limit; it changes only ASE's speed (its default makes a 1000 Å box take seconds).
ASE_MAX_BINS = 1000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this module's many tiny lists on one thread, then restore the setting.

    Some torch CPU kernels (``repeat_interleave``) go parallel even for a handful of elements;
    on an oversubscribed CI machine each such call can then wait milliseconds for a thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- helpers ------------------------------------------------------------------------------


def canonical(edge_index, edge_shift) -> np.ndarray:
    """[E, 5] int64 rows (i, j, S0, S1, S2), sorted lexicographically on (i, j, S)."""
    index = np.asarray(edge_index, dtype=np.int64).reshape(2, -1)
    shift = np.asarray(edge_shift, dtype=np.int64).reshape(-1, 3)
    rows = np.column_stack([index.T, shift])
    return rows[np.lexsort(rows.T[::-1])]


def ase_reference(atoms: Atoms, cutoff: float, offset: int = 0, tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """ASE's full list for ``atoms``, canonical, with atom indices shifted by ``offset``.

    Also checks the test setup: no pair distance may lie within ``tolerance`` of the cutoff.
    """
    i, j, shift, distance = ase_neighbor_list("ijSd", atoms, cutoff + tolerance, max_nbins=ASE_MAX_BINS)
    closest = np.abs(distance - cutoff).min() if distance.size else np.inf
    assert closest > tolerance, f"test setup: a pair lies {closest:.2e} Å from the cutoff {cutoff}; pick another"
    keep = distance < cutoff
    return canonical(np.stack([i[keep] + offset, j[keep] + offset]), shift[keep])


def tensors(atoms: Atoms, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(atoms.positions, dtype=dtype),
        torch.tensor(atoms.cell.array, dtype=dtype),
        torch.tensor(atoms.pbc),
    )


def assert_matches_ase(atoms: Atoms, cutoff: float, dtype: torch.dtype = torch.float64, function=neighbor_list):
    """Check ``function`` (mlpot's list by default) against ASE exactly; return its raw output."""
    tolerance = FLOAT32_TIE_TOLERANCE if dtype == torch.float32 else TIE_TOLERANCE
    expected = ase_reference(atoms, cutoff, tolerance=tolerance)
    positions, cell, pbc = tensors(atoms, dtype)
    edge_index, edge_shift = function(positions, cutoff, cell, pbc)
    assert edge_index.dtype == torch.int64 and edge_shift.dtype == torch.int64
    assert edge_index.shape == (2, edge_shift.shape[0]) and edge_shift.shape[1:] == (3,)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), expected)
    return edge_index, edge_shift


def rattled(atoms: Atoms, seed: int, stdev: float = 0.05) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(stdev, seed=seed)
    return atoms


def triclinic(cellpar, n_atoms: int, seed: int, pbc=True) -> Atoms:
    cell = cellpar_to_cell(cellpar)
    fractional = np.random.default_rng(seed).random((n_atoms, 3))
    return Atoms(numbers=np.full(n_atoms, 6), positions=fractional @ cell, cell=cell, pbc=pbc)


# --- systems ------------------------------------------------------------------------------

MOLECULES = ["H2O", "CH4", "C6H6", "CH3CH2OH", "C60"]

BULK = {
    "fcc-primitive": lambda: bulk("Cu", "fcc", a=3.61),
    "fcc-cubic": lambda: rattled(bulk("Cu", "fcc", a=3.61, cubic=True), seed=1),
    "bcc-primitive": lambda: bulk("Fe", "bcc", a=2.87),
    "bcc-cubic-2x1x1": lambda: rattled(bulk("Fe", "bcc", a=2.87, cubic=True) * (2, 1, 1), seed=2),
    "hcp": lambda: rattled(bulk("Mg", "hcp", a=3.21, c=5.21), seed=3),
    "hcp-2x2x1": lambda: rattled(bulk("Mg", "hcp", a=3.21, c=5.21) * (2, 2, 1), seed=4),
}

#: Cell angles (α, β, γ) in degrees, all within 60°–120°.
TRICLINIC_ANGLES = [(60, 60, 60), (70, 80, 100), (110, 95, 65), (120, 110, 100), (90, 90, 120)]


# --- differential tests against ASE ---------------------------------------------------------


@pytest.mark.parametrize("cutoff", CUTOFFS)
@pytest.mark.parametrize("name", MOLECULES)
def test_molecule_matches_ase(name, cutoff):
    assert_matches_ase(molecule(name), cutoff)


def test_molecule_without_cell_or_pbc_matches_ase():
    atoms = molecule("CH3CH2OH")
    edge_index, edge_shift = neighbor_list(torch.tensor(atoms.positions), 2.5)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), ase_reference(atoms, 2.5))
    assert not edge_shift.any()


@pytest.mark.parametrize("cutoff", CUTOFFS)
@pytest.mark.parametrize("name", list(BULK))
def test_bulk_matches_ase(name, cutoff):
    assert_matches_ase(BULK[name](), cutoff)


@pytest.mark.parametrize("cutoff", CUTOFFS)
@pytest.mark.parametrize("angles", TRICLINIC_ANGLES, ids=lambda a: "-".join(map(str, a)))
def test_triclinic_matches_ase(angles, cutoff):
    assert_matches_ase(triclinic((3.1, 4.3, 5.2, *angles), n_atoms=6, seed=sum(angles)), cutoff)


@pytest.mark.parametrize("cutoff", [2.0, 4.0, 7.5])
@pytest.mark.parametrize("pbc", [tuple(bool(int(b)) for b in f"{k:03b}") for k in range(8)], ids=str)
def test_every_pbc_pattern_on_a_triclinic_cell_matches_ase(pbc, cutoff):
    assert_matches_ase(triclinic((4.05, 5.1, 3.55, 75, 105, 65), n_atoms=6, seed=7, pbc=pbc), cutoff)


@pytest.mark.parametrize("cutoff", [2.0, 4.0, 7.5])
def test_slab_matches_ase(cutoff):
    slab = rattled(fcc111("Cu", size=(2, 2, 3), a=3.61, vacuum=6.0), seed=5)
    assert list(slab.pbc) == [True, True, False]
    edge_index, edge_shift = assert_matches_ase(slab, cutoff)
    assert not edge_shift[:, 2].any()


@pytest.mark.parametrize("cutoff", [2.0, 4.0, 7.5])
def test_slab_with_zero_vector_on_its_non_periodic_axis_matches_ase(cutoff):
    slab = rattled(fcc111("Cu", size=(2, 2, 3), a=3.61, vacuum=6.0), seed=5)
    cell = slab.cell.array.copy()
    cell[2] = 0.0
    slab.cell = cell
    assert_matches_ase(slab, cutoff)


@pytest.mark.parametrize("cutoff", [2.0, 4.0, 7.5])
def test_wire_matches_ase(cutoff):
    rng = np.random.default_rng(8)
    cell = np.diag([12.0, 12.0, 2.45])
    wire = Atoms("C5", positions=rng.random((5, 3)) * [3.0, 3.0, 2.45] + [4.5, 4.5, 0.0], cell=cell, pbc=[0, 0, 1])
    edge_index, edge_shift = assert_matches_ase(wire, cutoff)
    assert not edge_shift[:, :2].any()


@pytest.mark.parametrize("cutoff", [2.0, 4.0, 7.5])
def test_mixed_pbc_with_non_orthogonal_cell_matches_ase(cutoff):
    atoms = triclinic((3.3, 6.0, 4.1, 70, 115, 80), n_atoms=5, seed=9, pbc=[True, False, True])
    edge_index, edge_shift = assert_matches_ase(atoms, cutoff)
    assert not edge_shift[:, 1].any()


SMALL_CELLS = {
    # name: (atoms, cutoff); the cutoff is several times the cell.
    "1-atom-cubic": (Atoms("Ar", positions=[[0.3, 0.2, 0.1]], cell=np.eye(3) * 1.1, pbc=True), 3.5),
    "1-atom-triclinic": (triclinic((1.03, 1.21, 0.93, 70, 100, 110), n_atoms=1, seed=10), 4.0),
    "2-atom-triclinic": (triclinic((1.3, 1.1, 1.6, 80, 95, 115), n_atoms=2, seed=11), 5.0),
    "1-atom-wire": (Atoms("Ar", positions=[[1.0, 2.0, 0.3]], cell=np.diag([5.0, 5.0, 0.8]), pbc=[0, 0, 1]), 3.0),
    "2-atom-slab": (triclinic((1.0, 1.2, 7.0, 90, 90, 75), n_atoms=2, seed=12, pbc=[1, 1, 0]), 3.3),
}


@pytest.mark.parametrize("name", list(SMALL_CELLS))
def test_cell_smaller_than_cutoff_matches_ase(name):
    atoms, cutoff = SMALL_CELLS[name]
    edge_index, edge_shift = assert_matches_ase(atoms, cutoff)
    pairs = canonical(edge_index, edge_shift)[:, :2]
    assert (pairs[:, 0] == pairs[:, 1]).any(), "expected self-images"
    assert len(np.unique(pairs, axis=0)) < len(pairs), "expected several images of the same pair"


@pytest.mark.parametrize("cutoff", [1.5, 5.0])
@pytest.mark.parametrize(
    "cellpar", [(1000, 1000, 1000, 90, 90, 90), (1000, 900, 1100, 80, 100, 70)], ids=["cubic", "triclinic"]
)
def test_huge_cell_matches_ase(cellpar, cutoff):
    cell = cellpar_to_cell(cellpar)
    fractional = np.array(
        [[5e-4, 5e-4, 5e-4], [0.9995, 5e-4, 1e-3], [0.5, 0.5, 0.5], [0.5021, 0.5009, 0.4994], [2e-4, 0.9999, 0.9989]]
    )
    atoms = Atoms("C5", positions=fractional @ cell, cell=cell, pbc=True)
    edge_index, edge_shift = assert_matches_ase(atoms, cutoff)
    assert edge_shift.any(), "expected pairs across the periodic boundary"


@pytest.mark.parametrize("cutoff", [3.0, 7.5])
@pytest.mark.parametrize("name", ["fcc-cubic", "hcp", "triclinic", "slab"])
def test_positions_far_outside_the_cell_match_ase(name, cutoff):
    atoms = {
        "fcc-cubic": BULK["fcc-cubic"],
        "hcp": BULK["hcp"],
        "triclinic": lambda: triclinic((3.1, 4.3, 5.2, 70, 80, 100), n_atoms=6, seed=13),
        "slab": lambda: rattled(fcc111("Cu", size=(2, 2, 2), a=3.61, vacuum=5.0), seed=14),
    }[name]()
    # The whole system shifted by -7.3 lattice vectors along a, and every atom by its own
    # integer translation along periodic axes on top (positions unwrapped across many cells).
    translations = np.random.default_rng(15).integers(-4, 5, size=(len(atoms), 3))
    translations[:, ~atoms.pbc] = 0  # only periodic translations leave the system unchanged
    shift = np.array([-7.3, 2.6, -11.9]) + translations
    moved = atoms.copy()
    moved.positions = atoms.positions + shift @ atoms.cell.array
    moved_list = canonical(*assert_matches_ase(moved, cutoff))
    # Same pairs as the wrapped system, with shifts that undo the per-atom translations:
    # S' = S + T_j - T_i (the common -7.3 a shifts both atoms alike).
    positions, cell, pbc = tensors(atoms)
    original = canonical(*neighbor_list(positions, cutoff, cell, pbc))
    i, j = original[:, 0], original[:, 1]
    expected = original.copy()
    expected[:, 2:] -= translations[j] - translations[i]
    np.testing.assert_array_equal(moved_list, canonical(expected[:, :2].T, expected[:, 2:]))


def test_molecule_at_large_negative_coordinates_matches_ase():
    atoms = molecule("C6H6")
    atoms.positions += [-1234.5, -0.7, -987.6]
    assert_matches_ase(atoms, 3.0)


@pytest.mark.parametrize(
    "atoms, cutoff, n_edges",
    [
        (Atoms("Cu", positions=[[0.1, -0.2, 0.3]]), 4.5, 0),
        (Atoms("Cu", positions=[[0.1, -0.2, 0.3]], cell=np.eye(3) * 4.0, pbc=True), 3.0, 0),
        (Atoms("Cu", [[5.1, -9.2, 0.3]], cell=cellpar_to_cell((2.0, 2.2, 2.5, 75, 85, 95)), pbc=True), 4.5, None),
    ],
    ids=["isolated", "periodic-no-image", "periodic-self-images"],
)
def test_single_atom_matches_ase(atoms, cutoff, n_edges):
    edge_index, _ = assert_matches_ase(atoms, cutoff)
    if n_edges is not None:
        assert edge_index.shape == (2, n_edges)
    else:
        assert edge_index.shape[1] > 0 and bool((edge_index == 0).all())


@pytest.mark.parametrize("pbc", [False, True])
def test_no_neighbours_gives_empty_int64_arrays(pbc):
    atoms = Atoms("H2", positions=[[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]], cell=np.eye(3) * 10.0, pbc=pbc)
    edge_index, edge_shift = assert_matches_ase(atoms, 3.0)
    assert edge_index.shape == (2, 0) and edge_shift.shape == (0, 3)
    assert edge_index.dtype == torch.int64 and edge_shift.dtype == torch.int64


def test_no_atoms_gives_empty_int64_arrays():
    edge_index, edge_shift = neighbor_list(torch.zeros(0, 3, dtype=torch.float64), 3.0, torch.eye(3) * 5, [True] * 3)
    assert edge_index.shape == (2, 0) and edge_shift.shape == (0, 3)
    assert edge_index.dtype == torch.int64 and edge_shift.dtype == torch.int64


# --- batches ------------------------------------------------------------------------------


def mixed_systems() -> list[Atoms]:
    """A molecule, bulk, a slab, a 1-atom small cell, a lone atom, and a triclinic wire."""
    lone = Atoms("Ne", positions=[[100.0, -3.0, 7.0]])
    return [
        molecule("CH3CH2OH"),
        BULK["fcc-cubic"](),
        rattled(fcc111("Cu", size=(2, 2, 2), a=3.61, vacuum=5.0), seed=16),
        SMALL_CELLS["1-atom-triclinic"][0],
        lone,
        triclinic((3.3, 6.0, 4.1, 70, 115, 80), n_atoms=4, seed=17, pbc=[False, False, True]),
    ]


def batched(systems: list[Atoms], dtype: torch.dtype = torch.float64):
    positions = torch.tensor(np.concatenate([a.positions for a in systems]), dtype=dtype)
    cell = torch.tensor(np.stack([a.cell.array for a in systems]), dtype=dtype)
    pbc = torch.tensor(np.stack([a.pbc for a in systems]))
    batch = torch.cat([torch.full((len(a),), s, dtype=torch.int64) for s, a in enumerate(systems)])
    return positions, cell, pbc, batch


def batched_ase_reference(systems: list[Atoms], cutoff: float, tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    offsets = np.cumsum([0] + [len(a) for a in systems])
    rows = np.concatenate([ase_reference(a, cutoff, offset, tolerance) for a, offset in zip(systems, offsets)])
    return canonical(rows[:, :2].T, rows[:, 2:])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cutoff", [2.0, 4.5, 7.0])
def test_batch_of_mixed_systems_matches_ase_per_system(cutoff, dtype):
    systems = mixed_systems()
    tolerance = FLOAT32_TIE_TOLERANCE if dtype == torch.float32 else TIE_TOLERANCE
    positions, cell, pbc, batch = batched(systems, dtype)
    edge_index, edge_shift = neighbor_list(positions, cutoff, cell, pbc, batch)
    assert edge_index.dtype == torch.int64 and edge_shift.dtype == torch.int64
    expected = batched_ase_reference(systems, cutoff, tolerance)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), expected)
    assert bool((batch[edge_index[0]] == batch[edge_index[1]]).all()), "edges must not cross systems"


def test_batch_of_molecules_and_periodic_systems_with_zero_molecule_cells():
    # Regression: a molecule's all-zero cell in a batch with a periodic system made the
    # batched cell inversion fail.
    systems = [molecule("H2O"), BULK["hcp"](), molecule("CH4"), BULK["bcc-primitive"]()]
    positions, cell, pbc, batch = batched(systems)
    assert not cell[0].any()
    edge_index, edge_shift = neighbor_list(positions, 4.0, cell, pbc, batch)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), batched_ase_reference(systems, 4.0))


def test_batch_with_one_shared_cell():
    # Regression: in a batch of periodic systems, the images kept after the padded-cell
    # test were translated with the cells of the wrong systems (a shape error).
    systems = [BULK["fcc-cubic"](), rattled(BULK["fcc-cubic"](), seed=18)]
    positions, _, _, batch = batched(systems)
    cell = torch.tensor(systems[0].cell.array)
    edge_index, edge_shift = neighbor_list(positions, 4.0, cell, torch.tensor([True] * 3), batch)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), batched_ase_reference(systems, 4.0))


# --- float32 --------------------------------------------------------------------------------

FLOAT32_CASES = {
    "molecule": lambda: molecule("C60"),
    "fcc-cubic": BULK["fcc-cubic"],
    "hcp-2x2x1": BULK["hcp-2x2x1"],
    "triclinic": lambda: triclinic((3.1, 4.3, 5.2, 110, 95, 65), n_atoms=6, seed=19),
    "slab": lambda: rattled(fcc111("Cu", size=(2, 2, 3), a=3.61, vacuum=6.0), seed=20),
    "small-cell": lambda: SMALL_CELLS["2-atom-triclinic"][0],
}


@pytest.mark.parametrize("cutoff", [3.0, 7.5])
@pytest.mark.parametrize("name", list(FLOAT32_CASES))
def test_float32_inputs_match_ase(name, cutoff):
    assert_matches_ase(FLOAT32_CASES[name](), cutoff, dtype=torch.float32)


def test_float32_positions_far_outside_the_cell_match_ase():
    atoms = BULK["hcp-2x2x1"]()
    atoms.positions += np.array([-7.3, 3.2, -2.1]) @ atoms.cell.array
    assert_matches_ase(atoms, 5.0, dtype=torch.float32)


# --- many atoms: several bins per axis, the half stencil and its pruning -------------------------

#: Random liquids of a few hundred atoms: cells several cutoffs wide, so that each axis holds many
#: bins and every part of the stencil (its own column, pruned corners, wrapped images) is used.
LIQUIDS = {
    "cubic": ((16.0, 16.0, 16.0, 90, 90, 90), True, 400),
    "orthorhombic": ((12.0, 17.5, 21.0, 90, 90, 90), True, 420),
    "triclinic": ((14.0, 16.0, 18.0, 75, 100, 110), True, 380),
    "slab": ((15.0, 13.0, 40.0, 90, 90, 60), [True, True, False], 300),
    "wire": ((30.0, 30.0, 14.0, 90, 90, 90), [False, False, True], 250),
}


@pytest.mark.parametrize("cutoff", [3.1, 5.2])
@pytest.mark.parametrize("name", list(LIQUIDS))
def test_random_liquids_match_ase(name, cutoff):
    cellpar, pbc, n_atoms = LIQUIDS[name]
    atoms = triclinic(cellpar, n_atoms=n_atoms, seed=30, pbc=pbc)
    edge_index, _ = assert_matches_ase(atoms, cutoff)
    assert bool((edge_index[0, 1:] >= edge_index[0, :-1]).all()), "edges must be grouped by centre"


@pytest.mark.parametrize("name", ["cubic", "triclinic"])
def test_float32_random_liquid_matches_ase(name):
    cellpar, pbc, _ = LIQUIDS[name]
    assert_matches_ase(triclinic(cellpar, n_atoms=60, seed=31, pbc=pbc), 4.3, dtype=torch.float32)


def test_batch_of_a_liquid_and_a_cell_much_thinner_than_the_cutoff():
    # The thin cell needs a wider stencil than the liquid; the liquid must not be searched wider
    # (it would still be right, only slower) nor narrower.
    systems = [triclinic(LIQUIDS["triclinic"][0], n_atoms=200, seed=32), SMALL_CELLS["1-atom-cubic"][0]]
    positions, cell, pbc, batch = batched(systems)
    edge_index, edge_shift = neighbor_list(positions, 3.5, cell, pbc, batch)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), batched_ase_reference(systems, 3.5))


@pytest.mark.parametrize(
    "cellpar",
    [(16, 16, 16, 90, 90, 90), (9, 14, 21, 90, 90, 90), (14, 16, 18, 75, 100, 110), (10, 11, 30, 60, 60, 60)],
    ids=["cubic", "orthorhombic", "triclinic", "skewed"],
)
def test_half_stencil_searches_every_bin_a_pair_can_reach(cellpar):
    # Pruning must be conservative: a bin offset d holding any vector shorter than the distance
    # (w = d + v - u in bin units, u and v anywhere in their bins: w in the box [d-1, d+1]) must
    # be searched, as d or as -d. Samples: the box's point nearest the origin in bin units, and
    # random points of the box.
    distance = 5.0
    cell = torch.tensor(cellpar_to_cell(cellpar))[None]
    reciprocal_norm = torch.linalg.inv(cell).norm(dim=1)
    scale = torch.floor(3 / (distance * reciprocal_norm)).clamp(min=1)
    reach = torch.ceil(distance * reciprocal_norm * scale).to(torch.int64)
    span = int(reach.max())
    columns, z_reach = _half_stencil(span, distance, cell, scale, reach)
    searched = set()
    for (dx, dy), z in zip(columns.tolist(), z_reach[0].tolist()):
        for dz in range(0 if (dx, dy) == (0, 0) else -z, z + 1):
            searched |= {(dx, dy, dz), (-dx, -dy, -dz)}
    edges = (cell[0] / scale[0][:, None]).numpy()  # bin edge vectors as rows
    rng = np.random.default_rng(34)
    steps = range(-span - 1, span + 2)
    offsets = np.array([d for d in itertools.product(steps, steps, steps)])
    for d in offsets:
        samples = np.concatenate([np.clip(0, d - 1, d + 1)[None], d + rng.uniform(-1, 1, size=(4000, 3))])
        if np.linalg.norm(samples @ edges, axis=1).min() < distance:
            assert tuple(d) in searched, f"offset {tuple(d)} holds pairs closer than {distance} but is pruned"


@pytest.mark.parametrize(
    "atoms, cutoff",
    [(BULK["hcp-2x2x1"](), 5.0), (triclinic(LIQUIDS["slab"][0], n_atoms=100, seed=33, pbc=[True, True, False]), 4.0)],
    ids=["bulk", "slab"],
)
def test_edges_are_grouped_by_centre_with_both_directions(atoms, cutoff):
    positions, cell, pbc = tensors(atoms)
    edge_index, edge_shift = neighbor_list(positions, cutoff, cell, pbc)
    assert bool((edge_index[0, 1:] >= edge_index[0, :-1]).all())
    forward = canonical(edge_index, edge_shift)
    backward = canonical(edge_index.flip(0), -edge_shift)
    np.testing.assert_array_equal(forward, backward)


# --- the brute-force reference and the vectors -----------------------------------------------


@pytest.mark.parametrize(
    "atoms, cutoff",
    [
        (molecule("CH3CH2OH"), 2.5),
        (SMALL_CELLS["2-atom-triclinic"][0], 5.0),
        (SMALL_CELLS["2-atom-slab"][0], 3.3),
        (triclinic((4.05, 5.1, 3.55, 75, 105, 65), n_atoms=6, seed=7, pbc=[True, False, True]), 4.0),
        (BULK["hcp"](), 5.0),
    ],
    ids=["molecule", "small-cell", "small-slab", "mixed-pbc", "hcp"],
)
def test_brute_force_reference_matches_ase(atoms, cutoff):
    assert_matches_ase(atoms, cutoff, function=neighbor_list_brute_force)
    moved = atoms.copy()  # and unwrapped positions
    moved.positions += np.array([-7.3, 2.0, 1.5]) @ (atoms.cell.array if atoms.pbc.any() else np.eye(3))
    assert_matches_ase(moved, cutoff, function=neighbor_list_brute_force)


def test_brute_force_reference_matches_ase_on_a_batch():
    systems = mixed_systems()
    positions, cell, pbc, batch = batched(systems)
    edge_index, edge_shift = neighbor_list_brute_force(positions, 4.5, cell, pbc, batch)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), batched_ase_reference(systems, 4.5))


@pytest.mark.parametrize("name", ["triclinic", "small-cell", "slab"])
def test_vectors_from_shifts_equal_ase_distance_vectors(name):
    atoms = {
        "triclinic": triclinic((3.1, 4.3, 5.2, 120, 110, 100), n_atoms=6, seed=21),
        "small-cell": SMALL_CELLS["1-atom-triclinic"][0],
        "slab": rattled(fcc111("Cu", size=(2, 2, 2), a=3.61, vacuum=5.0), seed=22),
    }[name]
    atoms.positions += np.array([-7.3, 4.1, 2.2]) @ atoms.cell.array  # unwrapped, as users pass them
    cutoff = 5.0
    positions, cell, pbc = tensors(atoms)
    edge_index, edge_shift = neighbor_list(positions, cutoff, cell, pbc)
    r_ij = positions[edge_index[1]] - positions[edge_index[0]] + edge_shift.to(cell.dtype) @ cell
    order = np.lexsort(np.column_stack([edge_index.T.numpy(), edge_shift.numpy()]).T[::-1])
    i, j, shift, vectors = ase_neighbor_list("ijSD", atoms, cutoff, max_nbins=ASE_MAX_BINS)
    ase_order = np.lexsort(np.column_stack([i, j, shift]).T[::-1])
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), canonical(np.stack([i, j]), shift))
    np.testing.assert_allclose(r_ij.numpy()[order], vectors[ase_order], rtol=0, atol=1e-10)
    assert float(r_ij.norm(dim=1).max()) < cutoff


# --- skin and rebuild ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, epsilon", [(torch.float64, 1e-9), (torch.float32, 1e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("direction", [(1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (1.0, -2.0, 2.0)], ids=str)
def test_needs_rebuild_switches_at_half_the_skin(direction, dtype, epsilon):
    skin = 0.8
    reference = torch.tensor(np.random.default_rng(23).random((10, 3)) * 4.0, dtype=dtype)
    unit = torch.tensor(direction, dtype=dtype) / torch.tensor(direction, dtype=dtype).norm()
    below, above = reference.clone(), reference.clone()
    below[4] += (skin / 2 - epsilon) * unit
    above[4] += (skin / 2 + epsilon) * unit
    assert needs_rebuild(reference, reference, skin) is False
    assert needs_rebuild(below, reference, skin) is False
    assert needs_rebuild(above, reference, skin) is True


def random_periodic_system(n_atoms: int, seed: int) -> Atoms:
    """Random (ideal-gas) atoms at 0.05 atoms/Å³ in a triclinic periodic cell."""
    cell = cellpar_to_cell((7.0, 8.0, 6.5, 80, 105, 95))
    cell *= (n_atoms / 0.05 / abs(np.linalg.det(cell))) ** (1 / 3)
    rng = np.random.default_rng(seed)
    atoms = Atoms(numbers=np.ones(n_atoms, dtype=int), positions=rng.random((n_atoms, 3)) @ cell, cell=cell, pbc=True)
    return atoms


@pytest.mark.parametrize("seed", range(6))
def test_list_with_skin_stays_complete_until_rebuild(seed):
    """A list built with cutoff + skin holds every pair within cutoff after moves below skin/2."""
    cutoff, skin = 3.0, 1.0
    atoms = random_periodic_system(60, seed)
    positions, cell, pbc = tensors(atoms)
    edge_index, edge_shift = neighbor_list(positions, cutoff + skin, cell, pbc)
    # Random directions; lengths just below skin/2 for most atoms, the worst case for the skin.
    rng = np.random.default_rng(100 + seed)
    directions = rng.normal(size=(len(atoms), 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    lengths = skin / 2 * rng.uniform(0.9, 1.0 - 1e-9, size=(len(atoms), 1))
    moved = positions + torch.tensor(directions * lengths)
    assert not needs_rebuild(moved, positions, skin)
    r_ij = moved[edge_index[1]] - moved[edge_index[0]] + edge_shift.to(cell.dtype) @ cell
    within = r_ij.norm(dim=1) < cutoff
    moved_atoms = atoms.copy()
    moved_atoms.positions = moved.numpy()
    np.testing.assert_array_equal(
        canonical(edge_index[:, within], edge_shift[within]), ase_reference(moved_atoms, cutoff)
    )


def test_skin_half_is_tight_for_two_approaching_atoms():
    """Two atoms just outside cutoff + skin, each moving just over skin/2 towards the other,
    end up within the cutoff: the old list misses them, and needs_rebuild says so."""
    cutoff, skin, excess = 3.0, 1.0, 1e-3
    reference = torch.tensor([[0.0, 0.0, 0.0], [cutoff + skin + excess, 0.0, 0.0]], dtype=torch.float64)
    edge_index, _ = neighbor_list(reference, cutoff + skin)
    assert edge_index.shape[1] == 0
    step = skin / 2 + excess
    moved = reference + torch.tensor([[step, 0.0, 0.0], [-step, 0.0, 0.0]], dtype=torch.float64)
    assert neighbor_list(moved, cutoff)[0].shape[1] == 2
    assert needs_rebuild(moved, reference, skin)
    # Just under skin/2 each, the pair starting just inside cutoff + skin is already listed.
    reference[1, 0] = cutoff + skin - excess
    edge_index, _ = neighbor_list(reference, cutoff + skin)
    assert edge_index.shape[1] == 2
    assert not needs_rebuild(reference + torch.tensor([[skin / 2 - excess / 4, 0, 0], [0, 0, 0]]), reference, skin)


def test_verlet_list_reuses_until_half_the_skin_then_matches_a_fresh_list():
    """VerletList returns its cached list below skin/2 and a rebuilt one, equal to a fresh cell
    list with cutoff + skin, beyond it."""
    cutoff, skin = 3.0, 1.0
    atoms = random_periodic_system(40, 0)
    positions, cell, pbc = tensors(atoms)
    numbers = torch.ones(len(atoms), dtype=torch.int64)
    verlet = VerletList(cutoff, skin)
    edge_index, edge_shift, rebuilt = verlet.get(positions, cell, pbc, numbers)
    assert rebuilt and verlet.n_rebuilds == 1
    np.testing.assert_array_equal(
        canonical(edge_index, edge_shift), canonical(*neighbor_list(positions, cutoff + skin, cell, pbc))
    )
    nudged = positions.clone()
    nudged[0, 0] += 0.49 * skin
    again_index, again_shift, rebuilt = verlet.get(nudged, cell, pbc, numbers)
    assert not rebuilt and again_index is edge_index and again_shift is edge_shift
    nudged[0, 0] += 0.02 * skin  # now 0.51 skin from the build
    fresh_index, fresh_shift, rebuilt = verlet.get(nudged, cell, pbc, numbers)
    assert rebuilt and verlet.n_rebuilds == 2
    np.testing.assert_array_equal(
        canonical(fresh_index, fresh_shift), canonical(*neighbor_list(nudged, cutoff + skin, cell, pbc))
    )


@pytest.mark.parametrize("change", ["cell", "pbc", "numbers", "n_atoms"])
def test_verlet_list_rebuilds_when_cell_pbc_species_or_size_change(change):
    cutoff, skin = 3.0, 1.0
    atoms = random_periodic_system(30, 1)
    positions, cell, pbc = tensors(atoms)
    numbers = torch.ones(len(atoms), dtype=torch.int64)
    verlet = VerletList(cutoff, skin)
    verlet.get(positions, cell, pbc, numbers)
    if change == "cell":
        cell = cell * 1.001
    elif change == "pbc":
        pbc = torch.tensor([True, True, False])
    elif change == "numbers":
        numbers = numbers.clone()
        numbers[3] = 8
    else:
        positions, numbers = positions[:-1], numbers[:-1]
    *_, rebuilt = verlet.get(positions, cell, pbc, numbers)
    assert rebuilt


def test_verlet_list_is_not_fooled_by_in_place_updates():
    """An integrator updates its tensors in place: the list must compare against a copy."""
    verlet = VerletList(3.0, 1.0)
    positions = torch.tensor([[0.0, 0.0, 0.0], [3.5, 0.0, 0.0], [10.0, 0.0, 0.0]], dtype=torch.float64)
    verlet.get(positions)
    positions[2, 0] = 6.0  # in place: 4 Å, far beyond skin/2
    edge_index, _, rebuilt = verlet.get(positions)
    assert rebuilt
    assert edge_index.shape[1] == 4  # pairs (0, 1) and (1, 2), both directions


def test_complete_molecular_list_is_never_rebuilt_for_displacement():
    """A non-periodic list holding every pair cannot miss a neighbour, however far atoms move."""
    verlet = VerletList(5.0, 1.0)
    positions = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.2, 0.0]], dtype=torch.float64)
    edge_index, _, _ = verlet.get(positions)
    assert verlet.complete and edge_index.shape[1] == 6
    *_, rebuilt = verlet.get(positions + torch.tensor([[2.0, 0.0, 0.0], [0, 0, 0], [0, 0, 0]]))
    assert not rebuilt


@pytest.mark.parametrize(("cutoff", "skin"), [(0.0, 1.0), (-1.0, 1.0), (3.0, -0.1)])
def test_verlet_list_rejects_bad_cutoff_or_skin(cutoff, skin):
    with pytest.raises(ValueError, match="cutoff|skin"):
        VerletList(cutoff, skin)


# --- gradients ------------------------------------------------------------------------------


def test_list_is_built_without_grad_and_vectors_carry_it():
    atoms = triclinic((3.1, 4.3, 5.2, 70, 80, 100), n_atoms=5, seed=24)
    positions, cell, pbc = tensors(atoms)
    positions.requires_grad_(True)
    cell.requires_grad_(True)
    before = positions.detach().clone()
    edge_index, edge_shift = neighbor_list(positions, 4.0, cell, pbc)
    assert not edge_index.requires_grad and not edge_shift.requires_grad
    assert edge_index.grad_fn is None and edge_shift.grad_fn is None
    assert torch.equal(positions.detach(), before)
    # E = ½ Σ_edges |r_ij|² with r_ij = x_j − x_i + S·cell; over a full list,
    # ∂E/∂x_k = Σ_{j=k} r − Σ_{i=k} r and ∂E/∂cell = Σ_e S_e ⊗ r_e.
    i, j = edge_index
    shift = edge_shift.to(cell.dtype)
    r_ij = positions[j] - positions[i] + shift @ cell
    energy = 0.5 * r_ij.square().sum()
    grad_positions, grad_cell = torch.autograd.grad(energy, (positions, cell))
    r = r_ij.detach()
    expected = torch.zeros_like(before).index_add_(0, j, r).index_add_(0, i, -r)
    torch.testing.assert_close(grad_positions, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_cell, shift.T @ r, rtol=1e-12, atol=1e-12)


# --- invalid inputs ---------------------------------------------------------------------------


def valid_inputs() -> dict:
    positions, cell, pbc = tensors(BULK["hcp"]())
    return {"positions": positions, "cutoff": 3.0, "cell": cell, "pbc": pbc, "batch": torch.zeros(2, dtype=torch.int64)}


def with_nan(x):
    x = x.clone()
    x[1, 2] = float("nan")
    return x


def with_inf(x):
    x = x.clone()
    x[0, 0] = -float("inf")
    return x


INVALID = {
    # case: (field that the message must name, change to the valid inputs)
    "nan-positions": ("positions", lambda d: {**d, "positions": with_nan(d["positions"])}),
    "inf-positions": ("positions", lambda d: {**d, "positions": with_inf(d["positions"])}),
    "positions-shape": ("positions", lambda d: {**d, "positions": d["positions"][:, :2]}),
    "positions-1d": ("positions", lambda d: {**d, "positions": d["positions"].flatten()}),
    "integer-positions": ("positions", lambda d: {**d, "positions": d["positions"].to(torch.int64)}),
    "singular-cell": ("cell", lambda d: {**d, "cell": torch.tensor([[3.0, 0, 0], [3.0, 0, 0], [0, 0, 5.0]])}),
    "singular-periodic-part-of-slab": (
        "cell",
        lambda d: {
            **d,
            "cell": torch.tensor([[3.0, 0, 0], [-6.0, 0, 0], [0, 0, 5.0]]),
            "pbc": torch.tensor([1, 1, 0]) > 0,
        },
    ),
    "cell-shape": ("cell", lambda d: {**d, "cell": d["cell"][:2]}),
    "cell-systems": ("cell", lambda d: {**d, "cell": d["cell"].expand(2, 3, 3), "batch": torch.tensor([0, 2])}),
    "pbc-shape": ("pbc", lambda d: {**d, "pbc": d["pbc"][:2]}),
    "pbc-without-cell": ("cell", lambda d: {**d, "cell": None}),
    "unsorted-batch": ("batch", lambda d: {**d, "batch": torch.tensor([1, 0]), "cell": d["cell"].expand(2, 3, 3)}),
    "batch-shape": ("batch", lambda d: {**d, "batch": torch.zeros(3, dtype=torch.int64)}),
    "negative-batch": ("batch", lambda d: {**d, "batch": torch.tensor([-1, 0]), "cell": d["cell"].expand(2, 3, 3)}),
    "negative-cutoff": ("cutoff", lambda d: {**d, "cutoff": -1.0}),
    "zero-cutoff": ("cutoff", lambda d: {**d, "cutoff": 0.0}),
    "nan-cutoff": ("cutoff", lambda d: {**d, "cutoff": float("nan")}),
}


@pytest.mark.parametrize(
    "function, case",
    [(neighbor_list, case) for case in INVALID]
    # The test-only reference shares the input checks, except the cutoff's.
    + [(neighbor_list_brute_force, case) for case, (field, _) in INVALID.items() if field != "cutoff"],
    ids=lambda x: x if isinstance(x, str) else x.__name__,
)
def test_invalid_input_raises_value_error_naming_the_field(function, case):
    field, change = INVALID[case]
    inputs = change(valid_inputs())
    with pytest.raises(ValueError, match=field):
        function(inputs.pop("positions"), inputs.pop("cutoff"), **inputs)


def test_zero_and_dependent_vectors_on_non_periodic_axes_are_fine():
    positions = torch.tensor([[0.1, 0.2, 0.0], [1.6, 1.4, 1.0], [0.4, 2.9, -1.0]], dtype=torch.float64)
    pbc = torch.tensor([True, True, False])
    cell = [[3.0, 0, 0], [0, 3.0, 0], [0, 0, 0]]
    atoms = Atoms("C3", positions=positions.numpy(), cell=cell, pbc=pbc.numpy())
    expected = ase_reference(atoms, 2.5)
    edge_index, edge_shift = neighbor_list(positions, 2.5, torch.tensor(cell), pbc)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), expected)
    # The non-periodic vector parallel to a periodic one (ASE itself fails on this cell).
    dependent = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [3.0, 0, 0]])
    edge_index, edge_shift = neighbor_list(positions, 2.5, dependent, pbc)
    np.testing.assert_array_equal(canonical(edge_index, edge_shift), expected)
    # A molecule with no cell at all, passed with explicit zero cell and pbc False.
    edge_index, _ = neighbor_list(positions, 2.5, torch.zeros(3, 3), torch.zeros(3, dtype=torch.bool))
    assert edge_index.shape[1] == 2
