"""Phonons through phonopy with EMT copper; against the VDOS of mlpot's MD (issue 19, point 5).

phonopy is an optional dependency (``mlpot[phonons]``), so these tests skip without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT

pytest.importorskip("phonopy")

from mlpot.analysis import quantum_heat_capacity, vibrational_density_of_states  # noqa: E402
from mlpot.analysis.phonons import compute_phonons  # noqa: E402


def conventional():
    return bulk("Cu", "fcc", a=3.61, cubic=True)


def test_harmonic_limits_of_copper():
    result = compute_phonons(conventional(), EMT(), supercell=2, mesh=2, temperatures_K=[20.0, 100.0, 5000.0])
    n_modes = 3 * len(conventional()) * 8  # the 2×2×2 supercell's modes, per conventional cell: 32 atoms' worth
    # Per input cell: 12 modes at each of the 8 commensurate q-points; the three acoustic modes at Γ have ν = 0
    # and phonopy leaves them out of the sums, so the classical limit is (96 − 3)/8 k_B per cell.
    assert result.heat_capacity_kB[-1] == pytest.approx((n_modes - 3) / 8, rel=2e-3)
    assert np.all(np.diff(result.heat_capacity_kB) > 0)  # C_V rises with T
    # Entropy grows with T and the free energy falls (F = E − TS, S > 0).
    assert np.all(np.diff(result.entropy_kB) > 0) and np.all(np.diff(result.free_energy_eV) < 0)
    assert result.frequencies_THz.max() < 10.0  # copper's phonons end near 7.5 THz


def test_phonons_command(tmp_path, capsys):
    from mlpot.cli import main

    structure = tmp_path / "cu.extxyz"
    bulk("Cu", "fcc", a=3.61).write(structure)
    out = tmp_path / "ph"
    argv = ["phonons", "--reference", "emt", str(structure), "--supercell", "2", "2", "2", "--mesh", "8", "8", "8",
            "--temperatures", "100", "300", "--primitive", "--out", str(out)]
    assert main(argv) == 0
    saved = json.loads((out / "phonons.json").read_text())
    assert saved["temperatures_K"] == [100.0, 300.0]
    assert 0 < saved["heat_capacity_kB_per_atom"][0] < saved["heat_capacity_kB_per_atom"][1] < 3
    for name in ("phonon_bands.png", "phonon_dos.png"):
        assert (out / name).stat().st_size > 5_000
    assert "C_V (k_B/atom)" in capsys.readouterr().out
    assert main(argv) == 2  # the earlier results stay unless --overwrite
    assert f"{out} holds an earlier run's results ({out / 'phonons.json'}): pass --overwrite" in capsys.readouterr().err
    assert json.loads((out / "phonons.json").read_text()) == saved


@pytest.mark.slow
def test_vdos_quantum_heat_capacity_matches_phonopy_at_100K():
    """EMT Cu, 32 atoms, 100 K: the VDOS of MD gives a quantum C_V within 2% of phonopy's harmonic one on the same
    supercell's modes (mesh = supercell).

    The VDOS comes from short NVE segments started from canonical states of a Langevin run: a thermostat left on
    during sampling broadens each line into a Lorentzian whose tails put ~2γ/(πω) of the weight at frequencies
    far above the phonon band (a −5% error in C_V measured with γ = 0.002/fs), so the thermostat only prepares
    the states. Each mode's weight is its kinetic energy averaged over the segments.
    """
    import warnings

    from mlpot.dynamics import Simulation, ThermoRecorder

    atoms = conventional().repeat(2)
    masses = atoms.get_masses()
    state = atoms
    segments = []
    for k in range(6):
        thermostat = Simulation(state, EMT(), 4.0, ensemble="langevin", temperature_K=100.0, friction_per_fs=0.05,
                                seed=k)
        thermostat.run(400 if k == 0 else 100)  # 1.6 ps to equilibrate, then 0.4 ps ≫ 1/γ between segments
        state = thermostat.atoms()[0]
        recorder = ThermoRecorder(interval=1, positions=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NVE removes the net momentum the Langevin state carries
            Simulation(state, EMT(), 4.0, ensemble="nve", reporters=[recorder]).run(767)
        segments.append(recorder.arrays()["momenta"] / masses[None, :, None] * units.fs)
    nu, dos = vibrational_density_of_states(np.stack(segments), masses, 4.0)
    md_quantum = quantum_heat_capacity(nu, dos, 100.0)
    phonons = compute_phonons(conventional(), EMT(), supercell=2, mesh=2, temperatures_K=[100.0])
    # phonopy leaves out the three zero modes at Γ (each worth 1 k_B classically and quantum mechanically); the VDOS
    # puts the translations, absent from NVE velocities, at ν = 0.
    harmonic = phonons.heat_capacity_kB[0] * 8 + 3
    print(f"C_V(100 K): VDOS {md_quantum:.2f} k_B, phonopy {harmonic:.2f} k_B per 32 atoms")
    assert md_quantum == pytest.approx(harmonic, rel=0.02)
