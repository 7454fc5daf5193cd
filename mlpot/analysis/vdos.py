"""Vibrational density of states from MD velocities, and the harmonic quantum correction of C_V.

Classical MD gives every vibrational mode k_B of heat capacity; quantum mechanically a mode of frequency ν
gives k_B c_E(hν/k_B T), the Einstein function c_E(x) = x² eˣ/(eˣ − 1)², which falls to zero once hν ≫ k_B T.
Below the Debye temperature the classical value is far too high (copper at 100 K: about 55% above experiment).

VDOS. With x_iα(t) = √m_i v_iα(t), the mass-weighted velocity autocorrelation Σ_iα ⟨x_iα(0) x_iα(t)⟩ has the
Fourier transform g(ν) ∝ Σ_iα |x̃_iα(ν)|² (Wiener–Khinchin). For a harmonic crystal in equilibrium every
normal mode carries the same mean kinetic energy, so g(ν) is the density of normal modes, and normalising it
to 3N makes ∫ g dν = 3N mode counts. The series is multiplied by a Hann window before the transform (less
leakage of one mode's line into its neighbours), and the one-sided spectrum of each replica is averaged.
Frequencies are ordinary frequencies ν = ω/2π in THz.

Harmonic quantum correction (the usual one for MD heat capacities; e.g. Berens et al., J. Chem. Phys. 79,
2375 (1983)): C_V^QM = ∫ g(ν) c_E(hν/k_B T) dν (:func:`quantum_heat_capacity`), and the corrected MD value
C_V^MD + ∫ g(ν) [c_E(hν/k_B T) − 1] dν (:func:`quantum_correction`): anharmonicity from MD, zero-point
physics from the modes.
"""

from __future__ import annotations

import math

import numpy as np
from ase import units as _ase

from mlpot.units import KB_EV_PER_K

__all__ = ["einstein_heat_capacity", "quantum_correction", "quantum_heat_capacity", "vibrational_density_of_states"]

#: Planck's constant in eV·ps (so that h ν with ν in THz is in eV), from ase.units.
PLANCK_EV_PS: float = _ase._hplanck / _ase._e * 1e12


def _array(name: str, x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or inf")
    return a


def vibrational_density_of_states(velocities, masses_amu, sample_interval_fs: float) -> tuple[np.ndarray, np.ndarray]:
    """The VDOS from the mass-weighted velocity autocorrelation (Hann-windowed Fourier transform).

    Args:
        velocities: [n_frames, n_atoms, 3] in Å/fs, equally spaced in time along an equilibrated run; or
            [n_replicas, n_frames, n_atoms, 3] for independent runs of the same cell (their spectra are averaged).
        masses_amu: [n_atoms] masses, amu.
        sample_interval_fs: time between frames, fs (the highest frequency resolved is 1/(2·interval)).

    Returns:
        ``(frequencies_THz [n_frequencies], dos [n_frequencies])``: frequencies 0, Δν, 2Δν, … up to the Nyquist
        frequency, and the density of modes in 1/THz with Σ dos · Δν = 3N (N atoms). When the velocities carry
        no centre-of-mass motion (a run that keeps a zero total momentum), the three translations, absent from the
        spectrum, are put at ν = 0 (where they belong) and the measured spectrum is normalised to 3N − 3.
    """
    v = _array("velocities", velocities)
    if v.ndim == 3:
        v = v[None]
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"velocities must be [n_frames, n_atoms, 3] (or with a leading replica axis), got {v.shape}")
    masses = _array("masses_amu", masses_amu)
    if masses.shape != (v.shape[2],) or np.any(masses <= 0):
        raise ValueError(f"masses_amu must be [{v.shape[2]}] positive masses, got shape {masses.shape}")
    interval = float(sample_interval_fs)
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"sample_interval_fs must be positive, got {sample_interval_fs!r}")
    n_frames = v.shape[1]
    if n_frames < 16:
        raise ValueError(f"the VDOS needs at least 16 frames, got {n_frames}")
    weighted = v * np.sqrt(masses)[None, None, :, None]
    # No mean is removed: a drifting centre of mass is a (zero-frequency) mode too.
    window = np.hanning(n_frames)[None, :, None, None]
    spectrum = np.square(np.abs(np.fft.rfft(weighted * window, axis=1))).sum(axis=(0, 2, 3))
    spectrum[1:] *= 2.0  # one-sided: fold the negative frequencies in
    if n_frames % 2 == 0:
        spectrum[-1] /= 2.0  # the Nyquist bin has no negative twin
    frequencies_THz = np.fft.rfftfreq(n_frames, d=interval * 1e-3)  # interval in ps → THz
    spacing = frequencies_THz[1] - frequencies_THz[0]
    total = spectrum.sum() * spacing
    if total <= 0.0:
        raise ValueError("the velocities are all zero: no vibrational density of states")
    n_modes = 3 * v.shape[2]
    # A run that conserves a zero total momentum (NVE, Bussi) gives the three translations no kinetic energy,
    # so they are missing from the spectrum; they are zero-frequency modes, and go to ν = 0 explicitly.
    momentum = np.einsum("rfnc,n->rfc", v, masses)
    centre_of_mass_energy = np.sum(np.square(momentum)) / masses.sum()
    translations = 3 if centre_of_mass_energy < 1e-8 * np.sum(np.square(weighted)) else 0
    dos = (n_modes - translations) * spectrum / total
    dos[0] += translations / spacing
    return frequencies_THz, dos


def einstein_heat_capacity(frequencies_THz, temperature_K: float) -> np.ndarray:
    """c_E(hν/k_B T) = x² eˣ/(eˣ − 1)² per mode, in k_B (1 at ν = 0, the classical limit)."""
    temperature = float(temperature_K)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature_K must be positive, got {temperature_K!r}")
    x = PLANCK_EV_PS * np.abs(np.asarray(frequencies_THz, dtype=np.float64)) / (KB_EV_PER_K * temperature)
    out = np.ones_like(x)
    small = x < 1e-6
    big = x > 700.0  # e^x overflows: c_E is 0 to double precision
    mid = ~small & ~big
    # x² eˣ/(eˣ − 1)² = (x / (2 sinh(x/2)))², stable for every x.
    out[mid] = np.square(x[mid] / (2.0 * np.sinh(0.5 * x[mid])))
    out[big] = 0.0
    return out


def _check_dos(frequencies_THz, dos) -> tuple[np.ndarray, np.ndarray, float]:
    nu = _array("frequencies_THz", frequencies_THz)
    g = _array("dos", dos)
    if nu.ndim != 1 or g.shape != nu.shape or nu.size < 2:
        raise ValueError(f"frequencies_THz and dos must be 1-D of one length ≥ 2, got {nu.shape} and {g.shape}")
    spacing = np.diff(nu)
    if not np.allclose(spacing, spacing[0], rtol=1e-6, atol=0):
        raise ValueError("frequencies_THz must be an evenly spaced grid (as vibrational_density_of_states returns)")
    return nu, g, float(spacing[0])


def quantum_heat_capacity(frequencies_THz, dos, temperature_K: float) -> float:
    """Harmonic quantum C_V = Σ dos(ν) c_E(hν/k_B T) Δν, in k_B per cell.

    Args:
        frequencies_THz: [n] evenly spaced frequencies, THz (as from :func:`vibrational_density_of_states`).
        dos: [n] density of modes, 1/THz (Σ dos Δν = number of modes, 3N).
        temperature_K: temperature, K.
    """
    nu, g, spacing = _check_dos(frequencies_THz, dos)
    return float(np.sum(g * einstein_heat_capacity(nu, temperature_K)) * spacing)


def quantum_correction(classical_heat_capacity: float, frequencies_THz, dos, temperature_K: float) -> float:
    """The MD heat capacity with the harmonic quantum correction: C_V^MD + Σ dos (c_E − 1) Δν, in k_B per cell.

    Args:
        classical_heat_capacity: C_V from classical MD (k_B per cell), e.g. ``result.value``.
        frequencies_THz, dos: the VDOS of the same cell.
        temperature_K: temperature, K.
    """
    nu, g, spacing = _check_dos(frequencies_THz, dos)
    correction = np.sum(g * (einstein_heat_capacity(nu, temperature_K) - 1.0)) * spacing
    return float(classical_heat_capacity) + float(correction)
