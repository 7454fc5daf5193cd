"""Communities as ground states of the modularity Hamiltonian, found by a graph neural network.

* :func:`modularity` — Newman's Q of a partition (weighted, resolution γ; edges listed once or both ways).
* :func:`communities` — the GNN (torch-geometric) trained on the relaxed Potts energy, then refined
  to a local optimum of Q.
* :mod:`~mlpot.networks.modularity` — the modularity matrix as a sparse operator, the Potts/Ising
  Hamiltonians and their relaxation; :mod:`~mlpot.networks.refine` — single-node moves, merges;
  :mod:`~mlpot.networks.spectral` — Newman's spectral bisection; :mod:`~mlpot.networks.io` —
  networkx / edge lists / ``Data`` in, JSON out; :mod:`~mlpot.networks.generators` — karate, LFR
  and planted-partition benchmark graphs; :func:`normalized_mutual_information`.

See ``docs/networks.md``.
"""

from mlpot.networks.gnn import communities
from mlpot.networks.modularity import modularity
from mlpot.networks.scores import normalized_mutual_information
from mlpot.networks.spectral import spectral_bisection

__all__ = ["modularity", "communities", "normalized_mutual_information", "spectral_bisection"]
