"""Neural-quantum-state ground states by variational Monte Carlo (Carleo & Troyer, Science 2017).

:func:`ground_state` builds a spin model (:mod:`mlpot.quantum.spins`), an ansatz
(:mod:`mlpot.quantum.ansatz`), a sampler (:mod:`mlpot.quantum.sampling`) and minimises
⟨H⟩ = ⟨E_loc⟩_{|ψ|²} by stochastic reconfiguration or Adam (:mod:`mlpot.quantum.sr`). The
variational principle bounds the exact energy ⟨H⟩ ≥ E₀, so a reported energy lower than E₀ by
more than its error bar signals a bug or an under-estimated error.

The final energy comes from a fresh, longer Monte Carlo run with the trained ψ; its error bar
is the blocking estimate (autocorrelation included) of the chain-averaged series.

Ansätze (``ansatz=``):
    ``"rbm"``      the RBM; on periodic lattices the translation-symmetric RBM of Carleo & Troyer
                   (α filters), otherwise dense.
    ``"rbm_dense"`` the dense RBM (α·N hidden units) on any lattice.
    ``"ffnn"``     the two-layer feed-forward network.
For the Heisenberg model on a bipartite lattice the Marshall sign is applied by default and ψ is
otherwise positive; elsewhere (a frustrated lattice) pass ``complex_parameters=True``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mlpot.files import atomic_torch_save, safe_torch_load
from mlpot.progress import progress as progress_reporter
from mlpot.quantum.ansatz import RBM, FeedForward, lattice_translations
from mlpot.quantum.sampling import MetropolisSampler, blocking_error, enumerate_states
from mlpot.quantum.spins import SpinModel, local_energy, make_model
from mlpot.quantum.sr import log_derivatives, sr_direction, vmc_statistics

__all__ = ["GroundStateResult", "ground_state", "make_ansatz", "estimate_energy", "save_checkpoint"]

ANSATZE = ("rbm", "rbm_dense", "ffnn")
OPTIMIZERS = ("sr", "adam")


@dataclass
class GroundStateResult:
    """The outcome of :func:`ground_state` (energies in units of J).

    Attributes:
        energy: final ⟨H⟩ estimate.
        error: its 1σ error bar (blocking, autocorrelation included; 0 for exact sums).
        variance: ⟨(H − ⟨H⟩)²⟩ of the final ψ (0 for an eigenstate).
        n_sites, n_parameters: system and ansatz size.
        history: per iteration, the training estimate of the energy and its variance.
        acceptance: Metropolis acceptance rate over the run (None for exact sums).
        wall_time_s: training plus final evaluation.
        settings: every argument that determined the run.
        ansatz: the trained wavefunction (a torch module returning log ψ).
    """

    energy: float
    error: float
    variance: float
    n_sites: int
    n_parameters: int
    history: dict = field(repr=False)
    acceptance: float | None
    wall_time_s: float
    settings: dict = field(repr=False)
    ansatz: torch.nn.Module = field(repr=False)

    @property
    def energy_per_site(self) -> float:
        return self.energy / self.n_sites


def make_ansatz(model: SpinModel, ansatz: str = "rbm", alpha: int = 2, complex_parameters: bool = False,
                marshall_sign: bool | None = None, seed: int = 0) -> torch.nn.Module:
    """The wavefunction for a model (see the module docstring for the choices)."""
    if ansatz not in ANSATZE:
        raise ValueError(f"unknown ansatz {ansatz!r}; expected one of {ANSATZE}")
    if marshall_sign is None:
        marshall_sign = model.name == "heisenberg" and model.sublattice is not None and not complex_parameters
    if marshall_sign and model.sublattice is None:
        raise ValueError("the Marshall sign rule needs a bipartite lattice (this one is not)")
    sublattice = model.sublattice if marshall_sign else None
    if ansatz == "ffnn":
        if complex_parameters:
            raise ValueError("the feed-forward ansatz is real (with an optional Marshall sign)")
        return FeedForward(model.n_sites, alpha, sublattice=sublattice, seed=seed)
    translations = lattice_translations(model.shape) if ansatz == "rbm" and model.periodic else None
    return RBM(model.n_sites, alpha, translations, complex_parameters, sublattice, seed=seed)


def estimate_energy(model: SpinModel, ansatz: torch.nn.Module, sampler: MetropolisSampler | None,
                    n_samples: int, chunk: int = 4096) -> tuple[float, float, float]:
    """(energy, 1σ error, variance) of ⟨H⟩ for a fixed ψ: Monte Carlo with blocking, or exact.

    With ``sampler=None`` the sum over all states is exact (error 0).
    """
    with torch.no_grad():
        if sampler is None:
            spins = enumerate_states(model)
            log_psi = ansatz(spins)
            weights = torch.softmax(2.0 * log_psi.real, 0)
            e_loc = torch.cat([local_energy(model, ansatz, part) for part in spins.split(chunk)])
            energy = float((weights * e_loc.real).sum())
            return energy, 0.0, float((weights * (e_loc - energy).abs() ** 2).sum())
        samples = sampler.sample(ansatz, n_samples)  # [T, C, N]
        t, c, n = samples.shape
        e_loc = torch.cat([local_energy(model, ansatz, part) for part in samples.reshape(-1, n).split(chunk)])
        e_loc = e_loc.real.reshape(t, c).numpy()
        series = e_loc.mean(1)  # chain-averaged: correlations left only along the chains' time
        error = blocking_error(series) if t >= 2 else float(e_loc.std() / math.sqrt(e_loc.size))
        return float(e_loc.mean()), error, float(e_loc.var())


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (:func:`mlpot.files.atomic_torch_save`): a crash mid-write leaves
    the previous checkpoint intact, never a truncated one."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(state, path)


def ground_state(model: str, n_sites, field: float | None = None, periodic: bool = True, ansatz: str = "rbm",
                 alpha: int = 2, n_samples: int = 4096, n_iterations: int = 600, seed: int = 0, *,
                 optimizer: str = "sr", learning_rate: float | None = None, diag_shift: float = 1e-2,
                 n_chains: int | None = None, n_final_samples: int | None = None, exact_sum: bool = False,
                 complex_parameters: bool = False, marshall_sign: bool | None = None,
                 checkpoint: str | Path | None = None, checkpoint_every: int = 50, show_progress: bool = True,
                 ) -> GroundStateResult:
    """Variational ground state of a spin model with a neural quantum state.

    Args:
        model: ``"tfim"`` (H = −Σσᶻσᶻ − hΣσˣ) or ``"heisenberg"`` (H = Σ S·S).
        n_sites: N (chain) or (Lx, Ly) (square lattice).
        field: TFIM transverse field h (None for Heisenberg).
        periodic: periodic boundaries.
        ansatz: ``"rbm"``, ``"rbm_dense"`` or ``"ffnn"`` (module docstring).
        alpha: hidden-unit density.
        n_samples: Monte Carlo samples per iteration.
        n_iterations: optimisation steps.
        seed: seeds the initial weights and the Markov chains.
        optimizer: ``"sr"`` (stochastic reconfiguration) or ``"adam"``.
        learning_rate: step size (default 0.05 for SR, 0.01 for Adam).
        diag_shift: SR diagonal shift ε added to S.
        n_chains: parallel Markov chains (default min(n_samples, 512)).
        n_final_samples: samples of the final energy estimate (default 4 × n_samples).
        exact_sum: replace sampling by the exact sum over all states (N ≤ 24; for tests).
        complex_parameters: complex RBM weights.
        marshall_sign: apply the Marshall sign (default: Heisenberg on bipartite lattices).
        checkpoint: file to save (atomically, every ``checkpoint_every`` iterations) and to resume from.
        show_progress: progress bar / log lines.

    Returns:
        :class:`GroundStateResult` with ``.energy``, ``.error`` (1σ) and ``.variance``.
    """
    settings = {key: value for key, value in locals().items() if key not in ("checkpoint",)}
    spin_model = make_model(model, n_sites, field, periodic)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    for name in ("n_samples", "n_iterations"):
        if int(settings[name]) < (1 if name == "n_samples" else 0):
            raise ValueError(f"{name} must be positive, got {settings[name]}")
    learning_rate = (0.05 if optimizer == "sr" else 0.01) if learning_rate is None else float(learning_rate)
    n_chains = n_chains or min(int(n_samples), 512)
    settings.update(learning_rate=learning_rate, n_chains=n_chains,
                    n_final_samples=n_final_samples or 4 * int(n_samples))
    start = time.perf_counter()
    psi = make_ansatz(spin_model, ansatz, alpha, complex_parameters, marshall_sign, seed)
    parameters = list(psi.parameters())
    adam = torch.optim.Adam(parameters, lr=learning_rate) if optimizer == "adam" else None
    sampler = None if exact_sum else MetropolisSampler(spin_model, n_chains, seed)
    all_states = enumerate_states(spin_model) if exact_sum else None
    history = {"energy": [], "variance": []}
    first = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = safe_torch_load(checkpoint, "NQS checkpoint")
        psi.load_state_dict(state["ansatz"])
        if adam is not None and "adam" in state:
            adam.load_state_dict(state["adam"])
        if sampler is not None:
            sampler.spins = state["chains"]
            sampler.generator.set_state(state["rng"])
        history, first = state["history"], int(state["iteration"])

    with progress_reporter(total=n_iterations, desc=f"NQS {model} N={spin_model.n_sites}", unit="it",
                           enabled=show_progress, initial=first) as bar:
        for iteration in range(first, n_iterations):
            with torch.no_grad():
                if exact_sum:
                    spins = all_states
                    weights = torch.softmax(2.0 * psi(spins).real, 0)
                else:
                    spins, weights = sampler.sample(psi, n_samples).reshape(-1, spin_model.n_sites), None
                e_loc = local_energy(spin_model, psi, spins)
            stats = vmc_statistics(e_loc, log_derivatives(psi, spins), weights)
            if optimizer == "sr":
                step = learning_rate * sr_direction(stats, diag_shift)
                with torch.no_grad():
                    offset = 0
                    for parameter in parameters:
                        parameter -= step[offset:offset + parameter.numel()].view_as(parameter)
                        offset += parameter.numel()
            else:
                offset = 0
                for parameter in parameters:
                    parameter.grad = 2.0 * stats.forces[offset:offset + parameter.numel()].view_as(parameter)
                    offset += parameter.numel()
                adam.step()
            history["energy"].append(stats.energy)
            history["variance"].append(stats.variance)
            bar.update(1, E=f"{stats.energy:.6f}", var=f"{stats.variance:.2e}")
            done = iteration + 1
            if checkpoint is not None and (done % checkpoint_every == 0 or done == n_iterations):
                state = {"ansatz": psi.state_dict(), "history": history, "iteration": done}
                if adam is not None:
                    state["adam"] = adam.state_dict()
                if sampler is not None:  # chains and random state: a resumed run continues identically
                    state["chains"], state["rng"] = sampler.spins, sampler.generator.get_state()
                save_checkpoint(Path(checkpoint), state)

    energy, error, variance = estimate_energy(spin_model, psi, sampler, settings["n_final_samples"])
    return GroundStateResult(
        energy=energy, error=error, variance=variance, n_sites=spin_model.n_sites,
        n_parameters=sum(p.numel() for p in parameters), history=history,
        acceptance=None if sampler is None else sampler.acceptance,
        wall_time_s=time.perf_counter() - start, settings=settings, ansatz=psi,
    )
