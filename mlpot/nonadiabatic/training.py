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

**The gauge freedom, and anchors.** Energies and forces alone do not fix the diabatic basis: any
coordinate-dependent rotation U(x) of it, H_d → U H_d Uᵀ, leaves the eigenvalues (hence energies
and forces) unchanged and adds its own rate of rotation to every derivative coupling. In one
dimension the data therefore carry *no* information on d_01 at all, and a network fitted to them
picks a rotation by accident: on Tully's simple avoided crossing it turns the basis slowly over
the whole sampled range (∫|d_01| dx ≈ π instead of the exact π/2: a spurious background
coupling of ~0.09/Bohr where the exact one vanishes), which biases surface hopping. Couplings in
the data fix the rotation. Without them, the physical input that fixes it is where the diabatic
states are known, as in asymptote- or symmetry-based diabatisation: at **anchor** geometries
(reaction asymptotes, where the states no longer interact, or a symmetry plane, where symmetry
forbids the coupling) the diabatic matrix is diagonal and each diabat is a known adiabatic
state (by its electronic character: left of an avoided crossing diabat 0 is the lower state,
right of it the upper one). With σ(i) the adiabatic state of diabat i at an anchor, the term is

    w_a ⟨Σ_{i<j} H_ij² + Σ_i (H_ii − E_σ(i))²⟩_anchors / var(E_ref),

E being the model's own eigenvalues there, so it needs no electronic-structure data at the
anchors (and costs none of the data budget); with σ unknown only the off-diagonal part is used,
which is weaker: it leaves the order of the diabats, crossing or not, to chance. Like the rest of
the loss it is invariant under the sign convention of each diabat.
"""

from __future__ import annotations

import math

import torch

from mlpot.data.multistate import sign_free_squared_errors
from mlpot.nonadiabatic.adiabatic import adiabatic_states, eigh
from mlpot.nonadiabatic.models import CoordinateDiabaticModel
from mlpot.progress import progress

__all__ = ["train_diabatic", "diabatic_loss", "anchor_loss", "phase_free_coupling_error"]


def phase_free_coupling_error(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """min(|d − d_ref|², |d + d_ref|²) for every state pair i < j, summed over coordinates.

    Args:
        predicted, reference: ``[..., n, n, dim]`` couplings.

    Returns:
        ``[..., n(n−1)/2]`` squared errors.
    """
    n = predicted.shape[-2]
    i, j = torch.triu_indices(n, n, offset=1)
    return sign_free_squared_errors(predicted[..., i, j, :], reference[..., i, j, :])[0]


def _check(name: str, value, shape: tuple) -> torch.Tensor | None:
    if value is None:
        return None
    value = torch.as_tensor(value, dtype=torch.float64)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return value


def anchor_loss(model: CoordinateDiabaticModel, anchor_positions: torch.Tensor,
                anchor_states: torch.Tensor | None, energy_variance: torch.Tensor) -> torch.Tensor:
    """⟨Σ_{i<j} H_ij² + Σ_i (H_ii − E_σ(i))²⟩ over the anchors, divided by ``energy_variance``.

    Args:
        model: the diabatic model.
        anchor_positions: ``[m]`` or ``[m, dim]`` geometries where H_d is known to be diagonal.
        anchor_states: ``[m, n]`` integers, σ(i): the adiabatic state (0 = lowest) that diabat i
            is at each anchor (a permutation per row); None requires only vanishing off-diagonal
            elements.
        energy_variance: the variance of the reference energies (makes the loss dimensionless).
    """
    h = model(anchor_positions)
    n = h.shape[-1]
    i, j = torch.triu_indices(n, n, offset=1)
    squared = (h[..., i, j] ** 2).sum(-1)
    if anchor_states is not None:
        energies = eigh(h)[0]
        target = energies.gather(-1, anchor_states)
        squared = squared + ((torch.diagonal(h, dim1=-2, dim2=-1) - target) ** 2).sum(-1)
    return squared.mean() / energy_variance.clamp(min=1e-30)


def diabatic_loss(model: CoordinateDiabaticModel, positions: torch.Tensor, energies: torch.Tensor,
                  forces: torch.Tensor | None = None, couplings: torch.Tensor | None = None,
                  force_weight: float = 1.0, coupling_weight: float = 1.0,
                  anchor_positions: torch.Tensor | None = None, anchor_states: torch.Tensor | None = None,
                  anchor_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """The training loss of the module docstring and its parts (floats), differentiable in the weights."""
    states = adiabatic_states(model, positions, create_graph=True, regularization=None, min_gap=0.0)
    parts = {"energy": ((states.energies - energies) ** 2).mean() / energies.var().clamp(min=1e-30)}
    if forces is not None:
        predicted = -states.gradients
        parts["forces"] = force_weight * ((predicted - forces) ** 2).sum(-1).mean() / (forces**2).sum(-1).mean()
    if couplings is not None:
        scale = phase_free_coupling_error(torch.zeros_like(couplings), couplings).mean().clamp(min=1e-30)
        parts["couplings"] = coupling_weight * phase_free_coupling_error(states.couplings, couplings).mean() / scale
    if anchor_positions is not None:
        parts["anchors"] = anchor_weight * anchor_loss(model, anchor_positions, anchor_states, energies.var())
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
    anchor_positions=None,
    anchor_states=None,
    anchor_weight: float = 1.0,
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
        anchor_positions: ``[m]`` or ``[m, dim]`` geometries where the diabatic matrix is known to
            be diagonal (see the module docstring), or None.
        anchor_states: ``[m, n]`` integers: the adiabatic state each diabat is at each anchor, or
            None (off-diagonal elements only).
        anchor_weight: w_a of the anchor term.
    """
    x = torch.as_tensor(positions, dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("positions contain NaN or inf")
    n_samples, n, dim = x.shape[0], model.n_states, model.n_coordinates
    energies = _check("energies", energies, (n_samples, n))
    forces = _check("forces", forces, (n_samples, n, dim))
    couplings = _check("couplings", couplings, (n_samples, n, n, dim))
    if anchor_positions is not None:
        anchor_positions = torch.as_tensor(anchor_positions, dtype=torch.float64)
        if not bool(torch.isfinite(anchor_positions).all()):
            raise ValueError("anchor_positions contain NaN or inf")
        if anchor_positions.shape[1:] != x.shape[1:] or anchor_positions.shape[0] < 1:
            raise ValueError(f"anchor_positions must be [m{', ' + str(dim) if x.ndim > 1 else ''}] like positions; "
                             f"got {tuple(anchor_positions.shape)}")
        if anchor_states is not None:
            anchor_states = torch.as_tensor(anchor_states)
            expected = torch.arange(n).expand(anchor_positions.shape[0], n)
            if (tuple(anchor_states.shape) != (anchor_positions.shape[0], n) or anchor_states.is_floating_point()
                    or not torch.equal(anchor_states.sort(-1).values, expected)):
                raise ValueError(f"anchor_states must be [{anchor_positions.shape[0]}, {n}] integers, each row a "
                                 f"permutation of 0…{n - 1}; got {tuple(anchor_states.shape)} {anchor_states.dtype}")
            anchor_states = anchor_states.long()
    elif anchor_states is not None:
        raise ValueError("anchor_states needs anchor_positions")
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
            loss, parts = diabatic_loss(model, x, energies, forces, couplings, force_weight, coupling_weight,
                                        anchor_positions, anchor_states, anchor_weight)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"the training loss became {float(loss.detach())} (parts {parts})")
            loss.backward()
            optimiser.step()
            schedule.step()
            history.append({"loss": float(loss.detach()), **parts})
            bar.update(1, loss=f"{history[-1]['loss']:.2e}")
    return history
