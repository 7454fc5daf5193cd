"""The reference's heat capacity from a model's samples, by reweighting; a committee's uncertainty likewise.

MD with a model samples the model's canonical distribution p_model(x) ∝ exp(−β U_model). With the reference
energy U_ref (DFT, EMT, any ASE calculator) on some of those frames, the reference's canonical averages are

    ⟨A⟩_ref = ⟨A w⟩_model / ⟨w⟩_model,   w = exp(−β δ),   δ = U_ref − U_model,

exactly (the momenta are Maxwellian in both ensembles and cancel). The canonical heat capacity of the
reference is then the weighted variance of its total energy E_ref = K + U_ref:

    C_V[ref]/k_B = Var_w(E_ref)/(k_B T)².

The weights are normalised after subtracting max(−βδ), so no exponential overflows. Their spread sets the
*effective sample size* (Kish): ESS = (Σw)²/Σw². When the model is poor, few frames carry all the weight
and the estimate is noise: below ``min_effective_samples`` (default 50) :class:`InsufficientOverlapError`
is raised, saying to sample more frames or improve the model.

Errors come from a moving-block bootstrap over the frames (blocks as long as the measured statistical
inefficiency of E_ref, one frame when the frames are decorrelated, as the caller should ensure by taking
every k-th frame). The whole estimator, normalisation and ESS included, is recomputed on each resample.

Beside it, the second-order cumulant estimator: if (E_model, δ) were jointly Gaussian on the model's
samples, the tilt exp(−βδ) would shift means but leave covariances unchanged, so Var_ref(E_ref) equals the
plain Var(E_ref) on the model's frames. It needs no weights (no ESS problem) but is biased when the
distribution of δ is skewed; its assumption travels with the result.

Committee (:func:`heat_capacity_committee`): the same frames are reweighted to each member; the result's
``value`` is the members' mean, ``error`` its statistical error (bootstrap of the mean, members resampled
together), and ``model_spread`` the standard deviation over members: the model uncertainty, kept separate.

Units: energies in eV per simulation cell; heat capacities in k_B per cell.
"""

from __future__ import annotations

import math

import numpy as np

from mlpot.analysis.blocking import InsufficientSamplingError, integrated_autocorrelation_time
from mlpot.analysis.reweighting_results import (
    CommitteeHeatCapacity,
    ReweightedHeatCapacity,
)
from mlpot.analysis.thermo import _check_atoms, _check_temperature
from mlpot.units import KB_EV_PER_K

__all__ = [
    "CommitteeHeatCapacity",
    "InsufficientOverlapError",
    "ReweightedHeatCapacity",
    "effective_sample_size",
    "heat_capacity_committee",
    "heat_capacity_reweighted",
    "reweighting_weights",
]

#: Default smallest effective sample size accepted.
MIN_EFFECTIVE_SAMPLES = 50
#: Fewest frames a reweighted estimate accepts.
MIN_FRAMES = 20

class InsufficientOverlapError(ValueError):
    """Too few frames carry the reweighting: the model's and the reference's distributions barely overlap."""


def reweighting_weights(model_potential_eV, reference_potential_eV, temperature_K: float) -> np.ndarray:
    """Normalised weights w ∝ exp(−β(U_ref − U_model)) of the frames, [n], summing to one."""
    beta = 1.0 / (KB_EV_PER_K * _check_temperature(temperature_K))
    log_w = -beta * (np.asarray(reference_potential_eV, float) - np.asarray(model_potential_eV, float))
    log_w = log_w - log_w.max(axis=-1, keepdims=True)  # the largest weight is 1: no overflow
    w = np.exp(log_w)
    return w / w.sum(axis=-1, keepdims=True)


def effective_sample_size(weights) -> float:
    """Kish's effective sample size (Σw)²/Σw² of (unnormalised or normalised) weights."""
    w = np.asarray(weights, float)
    return float(w.sum() ** 2 / np.square(w).sum())


def _frames(name: str, x, n: int | None = None) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per frame), got shape {a.shape}")
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} frames, kinetic_energy_eV has {n}: the arrays must match frame by frame")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or inf at frames {np.flatnonzero(~np.isfinite(a))[:10].tolist()}")
    return a


def _bootstrap_indices(n: int, block_length: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """[n_bootstrap, n] frame indices of a moving-block bootstrap (blocks of ``block_length`` frames)."""
    n_blocks = -(-n // block_length)
    starts = rng.integers(0, n - block_length + 1, size=(n_bootstrap, n_blocks))
    return (starts[:, :, None] + np.arange(block_length)).reshape(n_bootstrap, -1)[:, :n]


def _weighted_variance(energy: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Variance of ``energy`` [..., n] under normalised ``weights`` [..., n], with the reliability-weight
    correction 1/(1 − Σw²) (n/(n − 1) for equal weights)."""
    mean = np.sum(weights * energy, axis=-1, keepdims=True)
    biased = np.sum(weights * np.square(energy - mean), axis=-1)
    return biased / (1.0 - np.sum(np.square(weights), axis=-1))


def _block_length(series: np.ndarray) -> int:
    """Frames per bootstrap block: the statistical inefficiency of the series (1 when decorrelated)."""
    try:
        g = integrated_autocorrelation_time(series).statistical_inefficiency
    except (InsufficientSamplingError, ValueError):
        return 1
    return max(1, int(math.ceil(g - 1e-9)))


def _reweighted_estimates(kinetic, model, references, temperature_K, block_length, n_bootstrap, seed,
                          n_dof_kinetic=None):
    """Central values and bootstrap replicates of every estimator, for one or several references [M, n].

    With ``n_dof_kinetic`` f, the configurational estimators f/2 + Var(U)/(k_B T)²; else the total-energy
    ones Var(K + U)/(k_B T)².
    """
    kT = KB_EV_PER_K * temperature_K
    n = kinetic.size
    if n_dof_kinetic is None:
        kinetic_part, exact_kinetic = kinetic, 0.0
    else:  # the momenta are Maxwellian and independent of the positions: their share is exactly f/2
        kinetic_part, exact_kinetic = np.zeros_like(kinetic), 0.5 * n_dof_kinetic
    if block_length is None:
        block_length = min(_block_length(kinetic_part + references.mean(axis=0)), max(1, n // 4))
    block_length = int(block_length)
    if not 1 <= block_length <= n // 4:
        raise ValueError(f"block_length must be in [1, n_frames/4] = [1, {n // 4}], got {block_length}")
    index = np.concatenate([np.arange(n)[None],
                            _bootstrap_indices(n, block_length, n_bootstrap, np.random.default_rng(seed))])

    def estimates(idx):  # idx [B, n] → dict of [B, M] (or [B]) arrays
        k, u = kinetic_part[idx], model[idx]
        refs = references[:, idx].transpose(1, 0, 2)  # [B, M, n]
        weights = reweighting_weights(u[:, None, :], refs, temperature_K)
        reference_energy = k[:, None, :] + refs
        return {
            "reweighted": exact_kinetic + _weighted_variance(reference_energy, weights) / kT**2,
            "cumulant": exact_kinetic + np.var(reference_energy, axis=-1, ddof=1) / kT**2,
            "model": exact_kinetic + np.var(k + u, axis=-1, ddof=1) / kT**2,
            "ess": 1.0 / np.sum(np.square(weights), axis=-1),
        }

    chunks = [estimates(index[i : i + 256]) for i in range(0, index.shape[0], 256)]
    result = {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
    return result, block_length


def _check_overlap(ess: float, n: int, minimum: float, who: str) -> None:
    if ess < minimum:
        raise InsufficientOverlapError(
            f"{who}: the reweighting's effective sample size is {ess:.1f} of {n} frames, below {minimum:g}: the "
            "reference's Boltzmann distribution overlaps the model's too little for exp(−βδ) weights to be "
            "trusted. Evaluate the reference on more decorrelated frames, or improve the model (lower error δ "
            "= U_ref − U_model); min_effective_samples lowers the threshold at your own risk"
        )


def heat_capacity_reweighted(
    kinetic_energy_eV,
    model_potential_eV,
    reference_potential_eV,
    temperature_K: float,
    *,
    n_atoms: int | None = None,
    min_effective_samples: float = MIN_EFFECTIVE_SAMPLES,
    block_length: int | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    n_dof_kinetic: int | None = None,
) -> ReweightedHeatCapacity:
    """Canonical C_V of the *reference* from frames sampled with the model, by reweighting with exp(−βδ).

    Args:
        kinetic_energy_eV: [n] kinetic energy K of the cell on each frame, eV.
        model_potential_eV: [n] U_model of the cell (the potential that drove the MD), eV.
        reference_potential_eV: [n] U_ref of the same frames, eV (any constant offset cancels).
        temperature_K: the thermostat's temperature, K.
        n_atoms: atoms in the cell, for per-atom values.
        min_effective_samples: raise :class:`InsufficientOverlapError` below this Kish ESS (50).
        block_length: frames per bootstrap block (default: the measured statistical inefficiency of E_ref,
            1 for decorrelated frames). The frames are assumed decorrelated by the caller.
        n_bootstrap: bootstrap resamples.
        seed: seed of the bootstrap.
        n_dof_kinetic: f, the run's kinetic degrees of freedom (``sim.state.n_dof``). Given, every estimate
            is configurational, f/2 + Var(U)/(k_B T)² (weighted for the reference): in the canonical ensemble
            the momenta are Maxwellian and independent of the positions, so the kinetic share is exactly
            f/2, and leaving the sampled K out removes its noise and the integrator's O(dt²) correlation
            of K with U at the end of a step. Without it, Var(K + U)/(k_B T)².
            The workflow always passes it.

    Returns:
        :class:`ReweightedHeatCapacity`: ``value``/``error`` in k_B per cell of the reference, the ESS, the
        model's own C_V on the same frames, the cumulant estimate, and the measured Var(δ), Cov(δ, U).

    Raises:
        ValueError: arrays of different lengths, NaN/inf, T ≤ 0, fewer than 20 frames.
        InsufficientOverlapError: ESS below ``min_effective_samples``.
    """
    temperature = _check_temperature(temperature_K)
    kinetic = _frames("kinetic_energy_eV", kinetic_energy_eV)
    n = kinetic.size
    model = _frames("model_potential_eV", model_potential_eV, n)
    reference = _frames("reference_potential_eV", reference_potential_eV, n)
    if n < MIN_FRAMES:
        raise ValueError(f"reweighting needs at least {MIN_FRAMES} frames, got {n}")
    if n_bootstrap < 50:
        raise ValueError(f"n_bootstrap must be at least 50, got {n_bootstrap}")
    return _single(kinetic, model, reference, temperature, n_atoms, min_effective_samples, block_length,
                   n_bootstrap, seed, "heat_capacity_reweighted", n_dof_kinetic=_check_dof(n_dof_kinetic))


def _check_dof(n_dof_kinetic) -> int | None:
    if n_dof_kinetic is None:
        return None
    if int(n_dof_kinetic) != n_dof_kinetic or n_dof_kinetic < 1:
        raise ValueError(f"n_dof_kinetic must be a positive integer, got {n_dof_kinetic!r}")
    return int(n_dof_kinetic)


def _single(kinetic, model, reference, temperature, n_atoms, min_ess, block_length, n_bootstrap, seed, who,
            replicates=None, n_dof_kinetic=None):
    if replicates is None:
        replicates, block_length = _reweighted_estimates(
            kinetic, model, reference[None], temperature, block_length, n_bootstrap, seed, n_dof_kinetic
        )
        replicates = {k: v[:, 0] if v.ndim == 2 else v for k, v in replicates.items()}
    n = kinetic.size
    ess = float(replicates["ess"][0])
    _check_overlap(ess, n, min_ess, who)
    kT = KB_EV_PER_K * temperature
    delta = reference - model
    covariance = np.cov(delta, model)
    boot = {k: v[1:] for k, v in replicates.items()}
    return ReweightedHeatCapacity(
        value=float(replicates["reweighted"][0]),
        error=float(np.std(boot["reweighted"], ddof=1)),
        effective_sample_size=ess,
        n_frames=n,
        temperature_K=temperature,
        model_value=float(replicates["model"][0]),
        model_error=float(np.std(boot["model"], ddof=1)),
        cumulant_value=float(replicates["cumulant"][0]),
        cumulant_error=float(np.std(boot["cumulant"], ddof=1)),
        error_mean_eV=float(delta.mean()),
        error_variance_eV2=float(covariance[0, 0]),
        error_energy_covariance_eV2=float(covariance[0, 1]),
        white_noise_value=float(
            (np.var(model if n_dof_kinetic else kinetic + model, ddof=1) - covariance[0, 0]) / kT**2
            + (0.5 * n_dof_kinetic if n_dof_kinetic else 0.0)
        ),
        block_length=int(block_length),
        n_bootstrap=int(boot["reweighted"].shape[0]),
        n_atoms=None if n_atoms is None else _check_atoms(n_atoms),
        model_potential_variance_eV2=float(covariance[1, 1]),
        n_dof_kinetic=n_dof_kinetic,
    )


def heat_capacity_committee(
    kinetic_energy_eV,
    model_potential_eV,
    member_potential_eV,
    temperature_K: float,
    *,
    n_atoms: int | None = None,
    min_effective_samples: float = MIN_EFFECTIVE_SAMPLES,
    block_length: int | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    n_dof_kinetic: int | None = None,
) -> CommitteeHeatCapacity:
    """Per-member C_V of a committee by reweighting the same frames; mean, statistical error and model spread.

    Args:
        kinetic_energy_eV: [n] K per frame, eV.
        model_potential_eV: [n] energy of the potential that drove the MD (usually the committee mean), eV.
        member_potential_eV: [n_members ≥ 2, n] each member's energy on the same frames, eV.
        temperature_K, n_atoms, min_effective_samples, block_length, n_bootstrap, seed, n_dof_kinetic: as in
            :func:`heat_capacity_reweighted` (the ESS check applies to every member).

    Returns:
        :class:`CommitteeHeatCapacity`.
    """
    temperature = _check_temperature(temperature_K)
    kinetic = _frames("kinetic_energy_eV", kinetic_energy_eV)
    n = kinetic.size
    model = _frames("model_potential_eV", model_potential_eV, n)
    if hasattr(member_potential_eV, "detach"):
        member_potential_eV = member_potential_eV.detach().cpu().numpy()
    members = np.asarray(member_potential_eV, dtype=np.float64)
    if members.ndim != 2 or members.shape[0] < 2 or members.shape[1] != n:
        raise ValueError(f"member_potential_eV must be [n_members ≥ 2, {n}], got shape {members.shape}")
    if not np.isfinite(members).all():
        raise ValueError("member_potential_eV holds NaN or inf")
    if n < MIN_FRAMES:
        raise ValueError(f"reweighting needs at least {MIN_FRAMES} frames, got {n}")
    n_dof_kinetic = _check_dof(n_dof_kinetic)
    replicates, block_length = _reweighted_estimates(
        kinetic, model, members, temperature, block_length, n_bootstrap, seed, n_dof_kinetic
    )
    results = tuple(
        _single(kinetic, model, members[m], temperature, n_atoms, min_effective_samples, block_length, n_bootstrap,
                seed, f"heat_capacity_committee, member {m}",
                replicates={k: v[:, m] if v.ndim == 2 else v for k, v in replicates.items()},
                n_dof_kinetic=n_dof_kinetic)
        for m in range(members.shape[0])
    )
    mean_over_members = replicates["reweighted"].mean(axis=1)  # [1 + B]
    values = np.array([r.value for r in results])
    return CommitteeHeatCapacity(
        value=float(mean_over_members[0]),
        error=float(np.std(mean_over_members[1:], ddof=1)),
        model_spread=float(np.std(values, ddof=1)),
        members=results,
        model_value=results[0].model_value,
        model_error=results[0].model_error,
        effective_sample_size=float(min(r.effective_sample_size for r in results)),
    )
