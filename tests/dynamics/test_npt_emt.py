"""NPT on ASE's EMT copper (32 atoms, 300 K, 0 GPa) through mlpot's engine: the three checks of issue 19.

* κ_T from the volume fluctuations of NPT agrees with −(1/V) ΔV/ΔP from the mean pressures of two NVT runs at
  ±1% volume;
* C_P − C_V = T V α²/κ_T, with C_P, α, κ_T from the NPT run and C_V from an NVT run at its mean volume;
* the mean volume agrees with ASE's own NPT driver (``ase.md.langevinbaoab.LangevinBAOAB``, hydrostatic).

EMT costs about 15 ms a step for 32 atoms here, so these are slow tests (minutes): ``pytest -m slow``.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

from mlpot.analysis import heat_capacity_canonical, mean_error
from mlpot.analysis.npt import (
    heat_capacity_difference,
    heat_capacity_isobaric,
    isothermal_compressibility,
    thermal_expansion,
)
from mlpot.dynamics import Simulation, ThermoRecorder
from mlpot.dynamics.barostat import NPTRecorder

pytestmark = pytest.mark.slow

T = 300.0
DT_FS = 5.0
SAMPLE = 5


def copper(volume_A3: float | None = None):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    if volume_A3 is not None:
        atoms.set_cell(atoms.cell * (volume_A3 / atoms.get_volume()) ** (1 / 3), scale_atoms=True)
    return atoms


@pytest.fixture(scope="module")
def npt_run():
    recorder = NPTRecorder(interval=SAMPLE)
    sim = Simulation(copper(), EMT(), DT_FS, ensemble="npt", temperature_K=T, friction_per_fs=0.02, seed=7,
                     reporters=[recorder], pressure_GPa=0.0, barostat_time_fs=100.0, compressibility_per_GPa=0.0075)
    sim.run(7000)
    arrays = recorder.arrays()
    keep = arrays["step"] > 600
    return {k: v[keep, 0] for k, v in arrays.items() if k not in ("step", "cell")}


def nvt_pressure_and_energy(volume_A3: float, steps: int, seed: int):
    """Mean pressure (GPa, with error) and the total-energy series of an NVT Langevin run at ``volume_A3``."""
    atoms = copper(volume_A3)
    recorder = ThermoRecorder(interval=SAMPLE, positions=True)
    sim = Simulation(atoms, EMT(), DT_FS, ensemble="langevin", temperature_K=T, friction_per_fs=0.02, seed=seed,
                     reporters=[recorder])
    sim.run(steps)
    arrays = recorder.arrays()
    keep = arrays["step"] > 400
    frames = arrays["positions"][keep][::2]  # every 10 steps: the virial's correlation time is a few steps
    kinetic = arrays["E_kin"][keep][::2, 0]
    calc_atoms = atoms.copy()
    calc_atoms.calc = EMT()
    pressures = []
    for positions, k in zip(frames, kinetic):
        calc_atoms.positions = positions
        virial = -np.trace(calc_atoms.get_stress(voigt=False, include_ideal_gas=False)) / 3.0
        pressures.append((virial + 2.0 * k / (3.0 * volume_A3)) / units.GPa)
    energy = (arrays["E_pot"] + arrays["E_kin"])[keep, 0]
    return mean_error(np.asarray(pressures), name="pressure"), energy


def test_compressibility_from_volume_fluctuations_matches_the_pressure_slope(npt_run):
    kappa = isothermal_compressibility(npt_run["volume_A3"], T)
    volume = float(np.mean(npt_run["volume_A3"]))
    (p_minus, _), (p_plus, _) = (nvt_pressure_and_energy(volume * f, 3400, seed) for f, seed in ((0.99, 1), (1.01, 2)))
    slope = -(0.02 * volume) / (p_plus.mean - p_minus.mean) / volume  # −(1/V) ΔV/ΔP, 1/GPa
    slope_error = abs(slope) * np.hypot(p_plus.error, p_minus.error) / abs(p_plus.mean - p_minus.mean)
    print(f"κ_T: fluctuations {kappa} 1/GPa, pressure slope {slope:.5f} ± {slope_error:.5f} 1/GPa")
    assert abs(kappa.value - slope) < 2 * np.hypot(kappa.error, slope_error)


def test_cp_minus_cv_identity(npt_run):
    volume = mean_error(npt_run["volume_A3"], name="volume")
    cp = heat_capacity_isobaric(npt_run["enthalpy_eV"], T)
    alpha = thermal_expansion(npt_run["volume_A3"], npt_run["enthalpy_eV"], T)
    kappa = isothermal_compressibility(npt_run["volume_A3"], T)
    _, energy = nvt_pressure_and_energy(volume.mean, 5400, 3)
    cv = heat_capacity_canonical(energy, T)
    difference = heat_capacity_difference(T, volume.mean, alpha, kappa)
    print(f"C_P {cp.value:.2f} ± {cp.error:.2f}, C_V {cv.value:.2f} ± {cv.error:.2f}, "
          f"T V α²/κ_T {difference}, α {alpha} 1/K, κ_T {kappa} 1/GPa")
    assert abs((cp.value - cv.value) - difference.value) < 2 * np.sqrt(cp.error**2 + cv.error**2 + difference.error**2)


def test_mean_volume_matches_ase_npt_driver(npt_run):
    """ASE's Langevin BAOAB with a hydrostatic Langevin–Hoover barostat (ase.md.langevinbaoab).

    (ASE's IsotropicMTKNPT with tdamp = 100 fs, pdamp = 1 ps gave 375.90 ± 0.12 Å³ here, against 376.79 ± 0.08 Å³
    from LangevinBAOAB and 376.7 ± 0.1 Å³ where the mean pressure of an NVT run crosses zero; the MTK run disagrees
    with both, not investigated further, so the Langevin driver is the reference here.)
    """
    from ase.md.langevinbaoab import LangevinBAOAB
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = copper()
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=T, rng=np.random.default_rng(0))
    driver = LangevinBAOAB(atoms, DT_FS * units.fs, temperature_K=T, externalstress=0.0, hydrostatic=True,
                           T_tau=50 * units.fs, P_tau=500 * units.fs, rng=np.random.default_rng(1))
    volumes = []
    driver.attach(lambda: volumes.append(atoms.get_volume()), interval=SAMPLE)
    driver.run(6000)
    theirs = mean_error(np.asarray(volumes[120:]), name="ASE volume")
    ours = mean_error(npt_run["volume_A3"], name="volume")
    print(
        f"⟨V⟩ mlpot {ours.mean:.3f} ± {ours.error:.3f} Å³, "
        f"ASE LangevinBAOAB {theirs.mean:.3f} ± {theirs.error:.3f} Å³"
    )
    assert abs(ours.mean - theirs.mean) < 2 * np.hypot(ours.error, theirs.error)
