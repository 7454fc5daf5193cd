"""Structure that holds by construction, for random untrained weights (float64).

* HNN: dH/dt along its own vector field vanishes.
* Port-HNN: dH/dt ≤ 0 without input, R is PSD, J is skew, and the energy balance
  dH/dt = −∇HᵀR∇H + ∇HᵀGu holds with input.
"""

from __future__ import annotations

import pytest
import torch

from mlpot.hamiltonian import HNN, DampedOscillatorNN, NeuralODEBaseline, PortHamiltonianNN
from mlpot.hamiltonian.hnn import hamiltonian_gradient
from mlpot.hamiltonian.port import DISSIPATION_MODES

DTYPE = torch.float64


def random_states(n, dim, seed=0, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, 2 * dim, generator=gen, dtype=DTYPE)


def perturb(model, seed=0, scale=0.5):
    """Move every parameter away from its (structured) initial value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


@pytest.mark.parametrize("dim", [1, 2, 4])
@pytest.mark.parametrize("separable", [False, True])
def test_hnn_energy_is_conserved_by_its_own_vector_field(dim, separable):
    torch.manual_seed(dim)
    model = HNN(dim, hidden=(32, 32), separable=separable).double()
    z = random_states(64, dim, seed=dim)
    grad = hamiltonian_gradient(model.hamiltonian, z, create_graph=False)
    zdot = model.vector_field(z)
    dh_dt = (grad * zdot).sum(-1)
    scale = grad.norm(dim=-1) * zdot.norm(dim=-1)
    assert (dh_dt.abs() <= 1e-10 * scale + 1e-300).all()
    # the vector field is J∇H = (∂H/∂p, −∂H/∂q)
    torch.testing.assert_close(zdot, torch.cat([grad[:, dim:], -grad[:, :dim]], -1), rtol=1e-12, atol=1e-14)


def test_hnn_shapes_and_hand_written_gradient_match_autograd():
    for activation in ("tanh", "softplus", "silu", "gelu"):
        for separable in (False, True):
            torch.manual_seed(0)
            model = HNN(3, hidden=(16, 8), activation=activation, separable=separable).double()
            z = random_states(10, 3)
            assert model.hamiltonian(z).shape == (10,)
            assert model.vector_field(z).shape == (10, 6)
            fast = model.gradient(z, create_graph=False)
            reference = hamiltonian_gradient(model.hamiltonian, z, create_graph=False)
            torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-14)


def test_unbatched_states_work():
    for separable in (False, True):
        model = HNN(2, hidden=(8,), separable=separable).double()
        z = random_states(1, 2)[0]  # [2*dim], no batch axis
        assert model.hamiltonian(z).shape == ()
        with torch.no_grad():
            torch.testing.assert_close(model.vector_field(z), model.vector_field(z[None])[0])
    port = PortHamiltonianNN(2, hidden=(8,), input_dim=1).double()
    assert port.vector_field(z, u=torch.tensor([0.5], dtype=DTYPE)).shape == (4,)


def test_hnn_vector_field_is_trainable_and_differentiable_in_z():
    model = HNN(1, hidden=(8,)).double()
    z = random_states(5, 1)
    loss = model.vector_field(z).pow(2).sum()  # training mode: graph kept
    loss.backward()
    # every parameter but the output bias (a constant offset of H, invisible in ∇H) gets a gradient
    no_grad = [name for name, p in model.named_parameters() if p.grad is None]
    assert no_grad == ["net.2.bias"]
    zr = z.clone().requires_grad_(True)
    model.eval()
    (jac_row,) = torch.autograd.grad(model.vector_field(zr)[:, 0].sum(), zr)
    assert torch.isfinite(jac_row).all()


@pytest.mark.parametrize("dissipation", DISSIPATION_MODES)
@pytest.mark.parametrize("learn_structure", [False, True])
def test_port_hnn_never_gains_energy_without_input(dissipation, learn_structure):
    torch.manual_seed(1)
    model = PortHamiltonianNN(2, hidden=(32, 32), dissipation=dissipation, learn_structure=learn_structure).double()
    perturb(model, seed=2)
    z = random_states(128, 2, seed=3)
    dh_dt = model.energy_rate(z)
    assert dh_dt.shape == (128,)
    assert (dh_dt <= 1e-12).all(), float(dh_dt.max())
    # and it equals −∇HᵀR∇H
    grad = hamiltonian_gradient(model.hamiltonian, z, create_graph=False)
    R = model.dissipation_matrix(z) if dissipation == "state" else model.dissipation_matrix().expand(128, 4, 4)
    expected = -torch.einsum("bi,bij,bj->b", grad, R, grad)
    torch.testing.assert_close(dh_dt, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dissipation", DISSIPATION_MODES)
def test_port_hnn_R_is_psd_and_J_is_skew(dissipation):
    torch.manual_seed(4)
    model = PortHamiltonianNN(3, hidden=(16,), dissipation=dissipation, learn_structure=True).double()
    perturb(model, seed=5, scale=1.0)
    z = random_states(32, 3, seed=6)
    R = model.dissipation_matrix(z if dissipation == "state" else None)
    torch.testing.assert_close(R, R.transpose(-1, -2), rtol=0, atol=1e-14)
    assert torch.linalg.eigvalsh(R).min() >= -1e-12
    J = model.structure_matrix()
    assert torch.equal(J, -J.T)
    canonical = PortHamiltonianNN(3, hidden=(16,)).double().structure_matrix()
    assert torch.equal(canonical, -canonical.T)
    assert torch.equal(canonical @ canonical, -torch.eye(6, dtype=DTYPE))


def test_port_hnn_energy_balance_with_input():
    torch.manual_seed(7)
    model = PortHamiltonianNN(2, hidden=(16, 16), input_dim=3).double()
    perturb(model, seed=8)
    z = random_states(20, 2, seed=9)
    u = torch.randn(20, 3, dtype=DTYPE)
    grad = hamiltonian_gradient(model.hamiltonian, z, create_graph=False)
    R, G = model.dissipation_matrix(), model.input_matrix()
    expected = -torch.einsum("bi,ij,bj->b", grad, R, grad) + torch.einsum("bi,ij,bj->b", grad, G, u)
    torch.testing.assert_close(model.energy_rate(z, u), expected, rtol=1e-9, atol=1e-12)
    # a fixed, known G is used as given
    fixed = PortHamiltonianNN(1, hidden=(8,), input_dim=1, input_matrix=torch.tensor([[0.0], [1.0]])).double()
    assert not any(p is fixed.input_matrix() for p in fixed.parameters())
    zz = random_states(4, 1)
    diff = fixed.vector_field(zz, u=torch.full((4, 1), 2.0, dtype=DTYPE)) - fixed.vector_field(zz)
    torch.testing.assert_close(diff, torch.tensor([[0.0, 2.0]] * 4, dtype=DTYPE))


def test_damped_oscillator_damping_is_positive_by_construction():
    model = DampedOscillatorNN(1, hidden=(8,), initial_damping=0.3).double()
    torch.testing.assert_close(model.damping, torch.tensor([0.3], dtype=DTYPE))
    with torch.no_grad():
        model.dissipation_raw.fill_(-50.0)
    assert (model.damping > 0).all()
    # friction acts on the momentum only: q̇ = ∂H/∂p exactly
    z = random_states(6, 1)
    grad = hamiltonian_gradient(model.hamiltonian, z, create_graph=False)
    torch.testing.assert_close(model.vector_field(z)[:, 0], grad[:, 1])


def test_baseline_has_no_conservation_law():
    """Control: the same check that HNNs pass fails for an unconstrained field."""
    torch.manual_seed(0)
    model = NeuralODEBaseline(1, hidden=(16, 16)).double()
    z = random_states(64, 1)
    zdot = model.vector_field(z)
    h = 0.5 * (z**2).sum(-1)  # any candidate energy: its rate is not zero
    assert (torch.autograd.functional.jacobian(lambda x: 0.5 * (x**2).sum(), z) * zdot).sum(-1).abs().max() > 1e-3
    assert h.shape == (64,)
