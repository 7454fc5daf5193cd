"""Symbolic Hamiltonian discovery: exact laws from clean flows, robust laws from noisy trajectories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mlpot.hamiltonian.discovery import (
    Term,
    build_library,
    discover,
    discover_from_model,
    estimate_derivatives,
    stlsq,
)
from mlpot.hamiltonian.reference_problems import REFERENCE_PROBLEMS, add_noise


@pytest.fixture(scope="module")
def trajectories():
    """Exact trajectories of every reference problem (simulated once per module)."""
    return {name: problem.simulate(substeps=2) for name, problem in REFERENCE_PROBLEMS.items()}


def test_library_names_follow_the_documented_convention():
    assert [t.name for t in build_library("poly2", 1)] == ["q", "p", "q^2", "q*p", "p^2"]
    names = [t.name for t in build_library("poly3+trig", 2)]
    assert {"q1", "p2", "q1^2*q2", "p1*p2^2", "cos(q1)", "sin(q2)"} <= set(names)
    assert len(names) == len(set(names)) == 4 + 10 + 20 + 4  # monomials of degree 1..3 in 4 variables, 2×2 trig
    assert "1" not in names  # a constant has no gradient: it is never a candidate


def test_the_inverse_r_library_item_is_one_over_the_norm_of_q():
    (term,) = build_library("1/r", 2)
    q = torch.tensor([[3.0, 4.0], [0.6, -0.8]], dtype=torch.float64)
    value = term.func(q, torch.zeros_like(q))
    torch.testing.assert_close(value, torch.tensor([0.2, 1.0], dtype=torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("bad", ["poly0", "cubic", ["poly2", 3]])
def test_unknown_library_items_are_rejected(bad):
    with pytest.raises(ValueError):
        build_library(bad, 1)


def test_stlsq_recovers_a_sparse_linear_model_exactly():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((200, 8))
    truth = np.array([0.0, 2.0, 0.0, 0.0, -0.5, 0.0, 0.0, 1e-3 * 0])
    coef = stlsq(A, A @ truth, threshold=1e-3)
    np.testing.assert_allclose(coef, truth, atol=1e-12)


@pytest.mark.parametrize("name", list(REFERENCE_PROBLEMS))
def test_clean_flow_gives_the_exact_law(name, trajectories):
    problem = REFERENCE_PROBLEMS[name]
    q, p, dq, dp = trajectories[name]
    result = discover(q, p, dq, dp, library=problem.library, n_bootstrap=20)
    assert set(result.terms) == set(problem.true_terms), result.formula()
    # The flow data are exact, so least squares returns the coefficients to round-off times the
    # conditioning of the library; 1e-6 is far above that and far below the 1 %.
    for term, value in problem.true_terms.items():
        assert result.terms[term] == pytest.approx(value, rel=1e-6)
    # the recovered H equals the true one up to the unidentifiable constant
    qf, pf = q.reshape(-1, q.shape[-1]), p.reshape(-1, p.shape[-1])
    difference = result.hamiltonian(qf, pf) - problem.hamiltonian(torch.tensor(qf), torch.tensor(pf)).numpy()
    assert np.ptp(difference) < 1e-6


@pytest.mark.parametrize("name", list(REFERENCE_PROBLEMS))
def test_one_percent_noise_keeps_the_terms_and_coefficients_within_five_percent(name, trajectories):
    problem = REFERENCE_PROBLEMS[name]
    q, p, _, _ = trajectories[name]
    rng = np.random.default_rng(1)
    result = discover(add_noise(q, 0.01, rng), add_noise(p, 0.01, rng), dt=problem.dt, library=problem.library,
                      n_bootstrap=50)
    assert set(result.terms) == set(problem.true_terms), result.formula()
    for term, value in problem.true_terms.items():
        assert result.terms[term] == pytest.approx(value, rel=0.05)
        assert 0 < result.errors[term] < 0.05 * abs(value)  # the bootstrap sees the noise, and it is small


def test_savitzky_golay_derivative_of_a_sinusoid():
    dt, omega = 0.01, 2.0
    t = np.arange(2000) * dt
    x = np.stack([np.sin(omega * t), np.cos(omega * t)], -1)[None]
    smooth, deriv = estimate_derivatives(x, dt)
    exact = omega * np.stack([np.cos(omega * t), -np.sin(omega * t)], -1)
    half = 26  # the automatic window: a sixth of the period π/ω, 52 samples
    # A degree-5 local fit leaves a truncation error of order (ω h)^6 / 6! with h = half·dt:
    # 0.52^6/720 ≈ 3e-5 of the amplitude; the fit is centred in the interior (smaller) and
    # extrapolated over a whole window at the edges (mode="interp": larger, ~2^6 times).
    truncation = (omega * half * dt) ** 6 / 720
    interior = slice(half, -half)
    assert np.abs(deriv[0, interior] - exact[interior]).max() < truncation * omega
    assert np.abs(smooth[0, interior] - x[0, interior]).max() < truncation
    assert np.abs(deriv[0] - exact).max() < 64 * truncation * omega


def test_a_user_supplied_constant_term_is_never_selected(trajectories):
    q, p, dq, dp = trajectories["pendulum"]
    library = ["poly2", "trig", Term("1", lambda q, p: torch.ones_like(q[:, 0]))]
    result = discover(q, p, dq, dp, library=library, n_bootstrap=0)
    assert set(result.terms) == {"p^2", "cos(q)"}
    assert "1" in result.library


class _ExactPendulum(nn.Module):
    """A stand-in for a trained HNN whose flow is exactly the pendulum's."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def vector_field(self, z):
        return torch.cat([z[:, 1:], -torch.sin(z[:, :1])], -1)


def test_hnn_first_route_regresses_the_model_flow():
    rng = np.random.default_rng(2)
    q, p = rng.uniform(-2.5, 2.5, (500, 1)), rng.uniform(-2, 2, (500, 1))
    result = discover_from_model(_ExactPendulum(), q, p, n_bootstrap=0)
    assert set(result.terms) == {"p^2", "cos(q)"}
    assert result.terms["cos(q)"] == pytest.approx(-1.0, rel=1e-9)


def test_bad_input_is_rejected():
    q = np.zeros((50, 1))
    with pytest.raises(ValueError, match="dt"):
        discover(q, q)  # neither derivatives nor dt
    with pytest.raises(ValueError, match="both"):
        discover(q, q, dq_dt=q)
    with pytest.raises(ValueError, match="NaN"):
        discover(np.full((50, 1), np.nan), q, q, q)
    with pytest.raises(ValueError, match="same shape"):
        discover(q, np.zeros((50, 2)), dt=0.1)
    with pytest.raises(ValueError, match="dt"):
        discover(q, q, dt=-1.0)


def test_hnn_first_route_reads_the_law_off_a_trained_hnn(trajectories):
    from mlpot.hamiltonian import HNN
    from mlpot.hamiltonian.training import DerivativeBatches, train_vector_field
    from mlpot.training.loop import LoopConfig

    q, p, dq, dp = trajectories["pendulum"]
    z = torch.tensor(np.concatenate([q, p], -1).reshape(-1, 2)[::4])
    dz = torch.tensor(np.concatenate([dq, dp], -1).reshape(-1, 2)[::4])
    torch.manual_seed(0)
    model = HNN(1, hidden=(32, 32)).double()
    config = LoopConfig(max_epochs=400, lr=1e-2, schedule="cosine", ema_decay=None, grad_clip=None, progress=False,
                        checkpoint_every=10**9)
    train_vector_field(model, DerivativeBatches(z, dz), config=config)
    result = discover_from_model(model, z[:, :1].numpy(), z[:, 1:].numpy(), n_bootstrap=20)
    assert set(result.terms) == {"p^2", "cos(q)"}, result.formula()
    # a short fit (400 epochs) of a 32×32 network: its flow is good to ~0.1 %, the noisy
    # target (5 %) is ample
    assert result.terms["p^2"] == pytest.approx(0.5, rel=0.05)
    assert result.terms["cos(q)"] == pytest.approx(-1.0, rel=0.05)
