"""Standardised descriptors: what every model built on :class:`mlpot.descriptors.Descriptor` shares.

Networks train best on inputs of unit spread, so such a model standardises its descriptors with
statistics of the training data, fitted once before training (:meth:`fit_descriptor_statistics`)
and then frozen in buffers, so that they are saved with the model:

* scalars s → (s − mean) / std, per feature;
* pseudoscalars χ → χ / rms, per feature, scaled but never shifted, so that the mirror χ → −χ
  stays exactly a mirror of the standardised features too.

A model mixes in :class:`StandardisedDescriptors` (before
:class:`~mlpot.models.potential.Potential`), builds ``self.descriptor`` and then calls
:meth:`register_standardisation` in its constructor. The buffers are ``scalar_mean``,
``scalar_std`` [n_s] and ``pseudoscalar_std`` [n_p]; their names are part of saved model files.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.models.potential import edge_vectors

__all__ = ["StandardisedDescriptors"]


class StandardisedDescriptors:
    """Mixin: raw descriptors of a structure, their fitted standardisation, and its application."""

    def register_standardisation(self) -> None:
        """Identity statistics (mean 0, spread 1) as buffers, sized by ``self.descriptor``."""
        self.register_buffer("scalar_mean", torch.zeros(self.descriptor.n_scalars))
        self.register_buffer("scalar_std", torch.ones(self.descriptor.n_scalars))
        self.register_buffer("pseudoscalar_std", torch.ones(self.descriptor.n_pseudoscalars))

    def descriptors(self, data: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Raw scalars [n_atoms, n_s] and pseudoscalars [n_atoms, n_p] of ``data`` (no gradient)."""
        positions, batch, _, cell = self._inputs(data)
        edge_index, edge_shift = self._edges(data, positions, cell, batch)
        vectors = edge_vectors(positions, edge_index, edge_shift, cell, batch)
        edge_index, vectors = self._within_cutoff(edge_index, vectors)
        species = self.species(data[K.NUMBERS])
        with torch.no_grad():
            scalars, pseudo, _ = self.descriptor.evaluate(vectors, self.descriptor.tables(edge_index, species), species)
        return scalars, pseudo

    @torch.no_grad()
    def fit_descriptor_statistics(self, data: dict[str, Tensor]) -> None:
        """Standardise the descriptors with their mean and spread over the atoms of ``data`` (a training batch)."""
        scalars, pseudo = self.descriptors(data)
        self.scalar_mean.copy_(scalars.mean(dim=0))
        # A floor keeps near-constant features from being blown up into noise.
        spread = scalars.std(dim=0) if scalars.shape[0] > 1 else torch.ones_like(self.scalar_std)
        self.scalar_std.copy_(spread.clamp(min=1e-3 * float(spread.max().clamp(min=1e-12))))
        rms = pseudo.square().mean(dim=0).sqrt()
        self.pseudoscalar_std.copy_(rms.clamp(min=1e-3 * float(rms.max().clamp(min=1e-12))))

    def standardise(self, scalars: Tensor, pseudo: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised scalars [n, n_s] and pseudoscalars [n, n_p] from raw ones of the same shapes."""
        return (scalars - self.scalar_mean) / self.scalar_std, pseudo / self.pseudoscalar_std
