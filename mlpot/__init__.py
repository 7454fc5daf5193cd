"""mlpot: machine-learned interatomic potentials built on Hamiltonian mechanics."""

__version__ = "0.1.0"
