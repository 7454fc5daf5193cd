"""Fitting a :class:`~mlpot.nonadiabatic.models.CoordinateDiabaticModel` to adiabatic data.

The data are what electronic-structure codes give for excited states: per sample the adiabatic
energies E_i (``[n_samples, n]``), per-state forces F_i = −∇E_i (``[n_samples, n, dim]``) and,
when available, derivative couplings d_ij (``[n_samples, n, n, dim]``). The model predicts a
diabatic matrix; its eigenvalues, Hellmann–Feynman gradients and couplings
(:func:`~mlpot.nonadiabatic.adiabatic.adiabatic_states`, with the autograd graph kept) are compared
with the data. The loss is

    L = ⟨(E − E_ref)²⟩/var(E_ref) + w_F ⟨|F − F_ref|²⟩/⟨|F_ref|²⟩ + w_d ⟨min_± |d ± d_ref|²⟩/⟨|d_ref|²⟩,

where the coupling term is **phase-free**: each coupling vector is compared with the reference up
to its overall sign, which no calculation fixes (eigenvector signs are arbitrary).

Energies and forces alone do not fix the diabatic basis: any coordinate-dependent rotation of
it gives the same eigenvalues. In one dimension even "diagonal = adiabatic energies, no
coupling" fits them; what selects the physical diabats is smoothness (the true diabatic
elements are smoother than the sharply curved adiabats near an avoided crossing) and, decisively,
couplings in the data. The benchmark reports both cases.
"""

from __future__ import annotations

import math

import torch

from mlpot.nonadiabatic.adiabatic import adiabatic_states
from mlpot.nonadiabatic.models import CoordinateDiabaticModel
from mlpot.progress import progress

__all__ = ["train_diabatic", "diabatic_loss", "phase_free_coupling_error"]


def phase_free_coupling_error(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """min(|d − d_ref|², |d + d_ref|²) for every state pair i < j, summed over coordinates.

    Args:
        predicted, reference: ``[..., n, n, dim]`` couplings.

    Returns:
        ``[..., n(n−1)/2]`` squared errors.
    """
    n = predicted.shape[-2]
    i, j = torch.triu_indices(n, n, offset=1)
    d, r = predicted[..., i, j, :], reference[..., i, j, :]
    return torch.minimum(((d - r) ** 2).sum(-1), ((d + r) ** 2).sum(-1))


def _check(name: str, value, shape: tuple) -> torch.Tensor | None:
    if value is None:
        return None
    value = torch.as_tensor(value, dtype=torch.float64)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return value


def diabatic_loss(model: CoordinateDiabaticModel, positions: torch.Tensor, energies: torch.Tensor,
                  forces: torch.Tensor | None = None, couplings: torch.Tensor | None = None,
                  force_weight: float = 1.0, coupling_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """The training loss of the module docstring and its parts (floats), differentiable in the weights."""
    states = adiabatic_states(model, positions, create_graph=True, regularization=None, min_gap=0.0)
    parts = {"energy": ((states.energies - energies) ** 2).mean() / energies.var().clamp(min=1e-30)}
    if forces is not None:
        predicted = -states.gradients
        parts["forces"] = force_weight * ((predicted - forces) ** 2).sum(-1).mean() / (forces**2).sum(-1).mean()
    if couplings is not None:
        scale = phase_free_coupling_error(torch.zeros_like(couplings), couplings).mean().clamp(min=1e-30)
        parts["couplings"] = coupling_weight * phase_free_coupling_error(states.couplings, couplings).mean() / scale
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def train_diabatic(
    model: CoordinateDiabaticModel,
    positions,
    energies,
    forces=None,
    couplings=None,
    epochs: int = 3000,
    learning_rate: float = 3e-3,
    force_weight: float = 1.0,
    coupling_weight: float = 1.0,
    seed: int = 0,
    show_progress: bool = True,
) -> list[dict]:
    """Full-batch Adam with cosine learning-rate decay; returns the loss history (one dict per epoch).

    Args:
        model: the model to train (its standardisation is set from the data first).
        positions: ``[n_samples]`` or ``[n_samples, dim]`` coordinates.
        energies: ``[n_samples, n]`` adiabatic energies, ascending per sample.
        forces: ``[n_samples, n, dim]`` per-state forces −∇E_i, or None.
        couplings: ``[n_samples, n, n, dim]`` derivative couplings (any signs), or None.
        epochs, learning_rate: optimiser settings.
        force_weight, coupling_weight: w_F and w_d of the loss.
        seed: seeds the weight initialisation (the network is re-initialised).
        show_progress: progress lines/bar over epochs.
    """
    x = torch.as_tensor(positions, dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("positions contain NaN or inf")
    n_samples, n, dim = x.shape[0], model.n_states, model.n_coordinates
    energies = _check("energies", energies, (n_samples, n))
    forces = _check("forces", forces, (n_samples, n, dim))
    couplings = _check("couplings", couplings, (n_samples, n, n, dim))
    if int(epochs) < 1 or not learning_rate > 0:
        raise ValueError("epochs must be ≥ 1 and learning_rate positive")
    torch.manual_seed(int(seed))
    for layer in model.network:
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    model.standardise(x, energies)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=int(epochs), eta_min=learning_rate / 100)
    history = []
    with progress(total=int(epochs), desc="diabatic fit", unit="epoch", enabled=show_progress) as bar:
        for _ in range(int(epochs)):
            optimiser.zero_grad()
            loss, parts = diabatic_loss(model, x, energies, forces, couplings, force_weight, coupling_weight)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"the training loss became {float(loss.detach())} (parts {parts})")
            loss.backward()
            optimiser.step()
            schedule.step()
            history.append({"loss": float(loss.detach()), **parts})
            bar.update(1, loss=f"{history[-1]['loss']:.2e}")
    return history
