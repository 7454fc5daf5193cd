"""Bad input raises a clear ValueError: wrong state dimension, odd-sized z, NaN trajectories."""

from __future__ import annotations

import pytest
import torch

from mlpot.hamiltonian import (
    HNN,
    DampedOscillatorNN,
    DerivativeBatches,
    MassSpring,
    NeuralODEBaseline,
    PortHamiltonianNN,
    TrajectoryData,
    integrators,
    train_vector_field,
)
from mlpot.hamiltonian.systems import finite_difference

DTYPE = torch.float64
INTEGRATORS = [integrators.rk4, integrators.leapfrog, integrators.symplectic_euler, integrators.implicit_midpoint]


def models():
    return [HNN(2, hidden=(8,)).double(), NeuralODEBaseline(2, hidden=(8,)).double(),
            PortHamiltonianNN(2, hidden=(8,)).double(), DampedOscillatorNN(2, hidden=(8,)).double()]


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_models_reject_the_wrong_state_dimension(model):
    with pytest.raises(ValueError, match=r"2\*dim = 4"):
        model.vector_field(torch.zeros(3, 6, dtype=DTYPE))
    with pytest.raises(ValueError, match=r"2\*dim = 4"):
        model.vector_field(torch.zeros(3, 3, dtype=DTYPE))
    if hasattr(model, "hamiltonian"):
        with pytest.raises(ValueError, match="last dimension"):
            model.hamiltonian(torch.zeros(5, 2, dtype=DTYPE))
    with pytest.raises(ValueError, match="torch.Tensor"):
        model.vector_field([[0.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("integrator", INTEGRATORS, ids=lambda f: f.__name__)
def test_integrators_reject_odd_states_nan_and_bad_steps(integrator):
    field = lambda z: -z  # noqa: E731
    with pytest.raises(ValueError, match="even"):
        integrator(field, torch.zeros(2, 3, dtype=DTYPE), 0.1, 5)
    with pytest.raises(ValueError, match="NaN"):
        integrator(field, torch.tensor([[0.0, float("nan")]], dtype=DTYPE), 0.1, 5)
    with pytest.raises(ValueError, match="dt"):
        integrator(field, torch.zeros(1, 2, dtype=DTYPE), 0.0, 5)
    with pytest.raises(ValueError, match="steps"):
        integrator(field, torch.zeros(1, 2, dtype=DTYPE), 0.1, -1)
    with pytest.raises(ValueError, match="cannot tell"):
        integrator(lambda z: z[:, :1], torch.zeros(1, 2, dtype=DTYPE), 0.1, 5)
    with pytest.raises(ValueError, match=r"2\*dim = 4"):  # model of the wrong size
        integrator(HNN(2, hidden=(4,)).double(), torch.zeros(1, 2, dtype=DTYPE), 0.1, 1)


def test_nan_trajectories_are_rejected():
    data = MassSpring().generate(2, seed=0)
    bad = data.z.clone()
    bad[1, 4, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        TrajectoryData(t=data.t, z=bad, dz=data.dz, z_clean=data.z_clean)
    bad_dz = data.dz.clone()
    bad_dz[0, 0, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        TrajectoryData(t=data.t, z=data.z, dz=bad_dz, z_clean=data.z_clean)
    with pytest.raises(ValueError, match="NaN"):
        DerivativeBatches(bad.reshape(-1, 2), data.dz.reshape(-1, 2))
    with pytest.raises(ValueError, match="NaN"):
        finite_difference(data.t, bad)
    with pytest.raises(ValueError, match="NaN"):
        MassSpring().generate(z0=torch.tensor([[float("nan"), 0.0]], dtype=DTYPE))


def test_data_of_the_wrong_size_for_the_model():
    data = MassSpring().generate(2, seed=0)
    with pytest.raises(ValueError, match="2\\*dim = 4"):
        train_vector_field(HNN(2, hidden=(4,)).double(), data)
    with pytest.raises(ValueError, match="even"):
        DerivativeBatches(torch.zeros(4, 3, dtype=DTYPE), torch.zeros(4, 3, dtype=DTYPE))
    with pytest.raises(ValueError, match="both be"):
        DerivativeBatches(torch.zeros(4, 2, dtype=DTYPE), torch.zeros(5, 2, dtype=DTYPE))


def test_constructor_and_control_errors():
    for bad_dim in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="dim"):
            HNN(bad_dim)
    with pytest.raises(ValueError, match="activation"):
        HNN(1, activation="relu")
    with pytest.raises(ValueError, match="dissipation"):
        PortHamiltonianNN(1, dissipation="viscous")
    with pytest.raises(ValueError, match="input_matrix"):
        PortHamiltonianNN(1, input_dim=1, input_matrix=torch.zeros(3, 1))
    z = torch.zeros(4, 2, dtype=DTYPE)
    with pytest.raises(ValueError, match="no input port"):
        HNN(1, hidden=(4,)).double().vector_field(z, u=torch.zeros(4, 1, dtype=DTYPE))
    with pytest.raises(ValueError, match="no input port"):
        PortHamiltonianNN(1, hidden=(4,)).double().vector_field(z, u=torch.zeros(4, 1, dtype=DTYPE))
    port = PortHamiltonianNN(1, hidden=(4,), input_dim=2).double()
    with pytest.raises(ValueError, match="input_dim=2"):
        port.vector_field(z, u=torch.zeros(4, 3, dtype=DTYPE))
    with pytest.raises(ValueError, match="broadcast"):
        port.vector_field(z, u=torch.zeros(5, 2, dtype=DTYPE))
    with pytest.raises(ValueError, match="pass z"):
        PortHamiltonianNN(1, hidden=(4,), dissipation="state").dissipation_matrix()
    with pytest.raises(ValueError, match="solver"):
        integrators.implicit_midpoint(lambda z: -z, torch.zeros(1, 2, dtype=DTYPE), 0.1, 1, solver="picard")


def test_non_convergence_warns():
    stiff = lambda z: -1e4 * z  # noqa: E731  fixed point diverges for this step
    with pytest.warns(RuntimeWarning, match="did not converge"):
        integrators.implicit_midpoint(stiff, torch.ones(1, 2, dtype=DTYPE), 0.1, 2, max_iter=5)
