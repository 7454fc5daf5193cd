"""Variational Monte Carlo statistics and updates: log-derivatives, energy gradient, SR and Adam.

For real parameters θ_k and a (possibly complex) log ψ, with O_k(σ) = ∂ log ψ(σ)/∂θ_k and the
centred estimators ΔO_k = O_k − ⟨O_k⟩, ΔE = E_loc − ⟨E_loc⟩ over samples of |ψ|²:

    energy gradient   ∂⟨H⟩/∂θ_k = 2 Re ⟨ΔO_k* ΔE⟩ = 2 F_k
    quantum metric    S_kl = Re ⟨ΔO_k* ΔO_l⟩

Stochastic reconfiguration (Sorella 1998; imaginary-time evolution projected on the variational
manifold) updates θ ← θ − η (S + ε 1)⁻¹ F, with the diagonal shift ε regularising the
near-singular S; Adam on the plain gradient 2F is the alternative. Samples may carry weights
(exact enumeration gives weights |ψ|²/Z), so the same code computes exact expectation values.
"""

from __future__ import annotations

import torch
from torch.func import functional_call, jacrev, vmap

__all__ = ["log_derivatives", "VMCStatistics", "vmc_statistics", "sr_direction"]


def log_derivatives(ansatz: torch.nn.Module, spins: torch.Tensor, chunk_size: int = 2048) -> torch.Tensor:
    """O_k(σ) = ∂ log ψ(σ)/∂θ_k for every sample: [n_samples, n_parameters] (complex or real).

    Parameters are flattened in ``ansatz.parameters()`` order.
    """
    names = [name for name, _ in ansatz.named_parameters()]
    params = {name: p.detach() for name, p in ansatz.named_parameters()}

    def log_psi_parts(p, one):
        value = functional_call(ansatz, p, (one[None],))[0]
        # jacrev wants real outputs: differentiate the real and imaginary parts separately
        return torch.stack([value.real, value.imag]) if value.is_complex() else value[None]

    jacobian = vmap(jacrev(log_psi_parts), in_dims=(None, 0), chunk_size=chunk_size)(params, spins)
    flat = torch.cat([jacobian[name].reshape(spins.shape[0], jacobian[name].shape[1], -1) for name in names], dim=2)
    return torch.complex(flat[:, 0], flat[:, 1]) if flat.shape[1] == 2 else flat[:, 0]


class VMCStatistics:
    """Energy, variance, gradient and metric from one set of samples.

    Attributes:
        energy: ⟨E_loc⟩ (real part).
        variance: ⟨|E_loc − ⟨E_loc⟩|²⟩.
        forces: [P] F = Re ⟨ΔO* ΔE⟩ (half the energy gradient).
        centred: [n, P] √w ΔO, so that S = Re(centred^H centred).
    """

    def __init__(self, energy: float, variance: float, forces: torch.Tensor, centred: torch.Tensor):
        self.energy, self.variance, self.forces, self.centred = energy, variance, forces, centred

    def metric(self) -> torch.Tensor:
        """S [P, P] = Re ⟨ΔO* ΔO⟩."""
        return (self.centred.conj().T @ self.centred).real


def vmc_statistics(local_energies: torch.Tensor, derivatives: torch.Tensor,
                   weights: torch.Tensor | None = None) -> VMCStatistics:
    """Centred estimators from samples.

    Args:
        local_energies: [n] E_loc(σ) (real or complex).
        derivatives: [n, P] O_k(σ).
        weights: [n] probabilities summing to 1 (exact enumeration), or None for equal weights.
    """
    n = local_energies.shape[0]
    if derivatives.shape[0] != n:
        raise ValueError(f"{n} local energies but {derivatives.shape[0]} rows of derivatives")
    if not torch.isfinite(torch.view_as_real(local_energies) if local_energies.is_complex() else local_energies).all():
        raise ValueError("local energies contain NaN or infinity (ψ vanished on a sampled configuration?)")
    w = torch.full((n,), 1.0 / n, dtype=local_energies.real.dtype) if weights is None else weights
    mean_energy = (w * local_energies).sum()
    delta_energy = local_energies - mean_energy
    delta_o = derivatives - (w[:, None] * derivatives).sum(0)
    forces = (w[:, None] * delta_o.conj() * delta_energy[:, None]).sum(0).real
    variance = float((w * delta_energy.abs() ** 2).sum())
    return VMCStatistics(float(mean_energy.real), variance, forces, delta_o * w.sqrt()[:, None])


def sr_direction(statistics: VMCStatistics, diag_shift: float) -> torch.Tensor:
    """δ = (S + ε 1)⁻¹ F, the stochastic-reconfiguration step direction [P].

    With S = AᵀA (A the [n, P] matrix of weighted centred log-derivatives, real and imaginary parts
    stacked), a Cholesky solve of the [P, P] system when n ≥ P; otherwise the [n, n] one of the
    push-through identity (AᵀA + ε)⁻¹ = (1 − Aᵀ(AAᵀ + ε)⁻¹A)/ε, cheaper when samples are few.
    """
    if diag_shift <= 0:
        raise ValueError(f"diag_shift must be positive, got {diag_shift}")
    x = statistics.centred
    if x.is_complex():  # real parameters: S = Re(XᴴX) = AᵀA with A = [Re X; Im X]
        x = torch.cat([x.real, x.imag], dim=0)
    n, p = x.shape
    if n >= p:
        matrix = x.T @ x + diag_shift * torch.eye(p, dtype=x.dtype)
        return torch.cholesky_solve(statistics.forces[:, None], torch.linalg.cholesky(matrix))[:, 0]
    small = x @ x.T + diag_shift * torch.eye(n, dtype=x.dtype)
    correction = x.T @ torch.cholesky_solve((x @ statistics.forces)[:, None], torch.linalg.cholesky(small))[:, 0]
    return (statistics.forces - correction) / diag_shift
