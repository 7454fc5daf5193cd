"""The VMC gradient and the SR step, checked with exact sums over all states."""

import pytest
import torch

from mlpot.quantum.nqs import make_ansatz
from mlpot.quantum.sampling import enumerate_states
from mlpot.quantum.spins import local_energy, make_model
from mlpot.quantum.sr import log_derivatives, sr_direction, vmc_statistics


def exact_energy(model, ansatz, spins):
    """⟨ψ|H|ψ⟩/⟨ψ|ψ⟩ from exact sums (differentiable through ψ's parameters only via weights)."""
    with torch.no_grad():
        weights = torch.softmax(2 * ansatz(spins).real, 0)
        return float((weights * local_energy(model, ansatz, spins).real).sum())


@pytest.mark.parametrize("model,field,complex_parameters",
                         [("tfim", 0.8, False), ("heisenberg", None, False), ("heisenberg", None, True)])
def test_energy_gradient_is_twice_the_force(model, field, complex_parameters):
    spin_model = make_model(model, 6, field)
    ansatz = make_ansatz(spin_model, "rbm", alpha=1, complex_parameters=complex_parameters, seed=1)
    with torch.no_grad():  # away from the near-constant initial state
        for p in ansatz.parameters():
            p.mul_(30.0)
    spins = enumerate_states(spin_model)
    with torch.no_grad():
        weights = torch.softmax(2 * ansatz(spins).real, 0)
        e_loc = local_energy(spin_model, ansatz, spins)
    stats = vmc_statistics(e_loc, log_derivatives(ansatz, spins), weights)
    assert abs(stats.energy - exact_energy(spin_model, ansatz, spins)) < 1e-12
    flat = torch.nn.utils.parameters_to_vector(ansatz.parameters()).detach()
    step = 1e-5  # central differences: truncation ~ step² ≈ 1e-10, round-off ~ 1e-15/step = 1e-10
    for k in range(flat.numel()):
        values = []
        for sign in (1, -1):
            shifted = flat.clone()
            shifted[k] += sign * step
            torch.nn.utils.vector_to_parameters(shifted, ansatz.parameters())
            values.append(exact_energy(spin_model, ansatz, spins))
        torch.nn.utils.vector_to_parameters(flat, ansatz.parameters())
        assert abs((values[0] - values[1]) / (2 * step) - 2 * float(stats.forces[k])) < 1e-8


def test_sample_space_sr_equals_parameter_space_sr():
    # (AᵀA + ε)⁻¹F computed with a [P, P] or an [n, n] solve: equal to round-off
    spin_model = make_model("tfim", 6, 1.0)
    ansatz = make_ansatz(spin_model, "rbm_dense", alpha=2, complex_parameters=True, seed=0)  # P = 2·(6+12+72)
    generator = torch.Generator().manual_seed(0)
    few = torch.where(torch.rand(40, 6, generator=generator) < 0.5, 1.0, -1.0).double()
    many = torch.where(torch.rand(400, 6, generator=generator) < 0.5, 1.0, -1.0).double()
    for spins in (few, many):
        with torch.no_grad():
            e_loc = local_energy(spin_model, ansatz, spins)
        stats = vmc_statistics(e_loc, log_derivatives(ansatz, spins))
        direction = sr_direction(stats, 1e-3)
        dense = torch.linalg.solve(stats.metric() + 1e-3 * torch.eye(stats.forces.numel(), dtype=torch.float64),
                                   stats.forces)
        assert torch.allclose(direction, dense, rtol=1e-8, atol=1e-10 * dense.abs().max())


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="NaN"):
        vmc_statistics(torch.tensor([1.0, float("nan")], dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="rows"):
        vmc_statistics(torch.zeros(3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64))
    stats = vmc_statistics(torch.zeros(2, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="diag_shift"):
        sr_direction(stats, 0.0)
