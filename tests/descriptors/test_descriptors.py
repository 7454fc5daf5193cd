"""Descriptors: symmetry (scalars even, pseudoscalars odd under mirrors), the triple-product
identity, e3nn harmonics, and the smoothness of the cutoff envelope."""

import pytest
import torch
from e3nn import o3
from helpers import ROUND_OFF, chiral_molecule, mirror, random_rotation

from mlpot.data import atomic_data_from_atoms
from mlpot.descriptors.chirality import pseudoscalars, triple_product_reference
from mlpot.descriptors.invariants import (
    bispectrum,
    bispectrum_coupling,
    coupling_paths,
    harmonics_coefficients,
    monomial_exponents,
    monomials,
    spherical_harmonics,
)
from mlpot.descriptors.radial import smooth_cutoff
from mlpot.models import DescriptorModel, describe


@pytest.fixture(
    scope="module",
    params=[(0, False), (4, False), (4, True)],
    ids=["three-body", "with-bispectrum", "bispectrum-species-channels"],
)
def model(request):
    bispectrum_channels, species_channels = request.param
    return DescriptorModel(
        ["H", "C", "F", "Cl", "Br"], cutoff=4.0, bispectrum_channels=bispectrum_channels, bispectrum_l_max=3,
        species_channels=species_channels, seed=0,
    )


def _descriptors(model, atoms):
    return describe(atomic_data_from_atoms(atoms), model=model)


def test_rotation_keeps_scalars_and_pseudoscalars(model):
    atoms = chiral_molecule()
    s, p = _descriptors(model, atoms)
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ random_rotation(1).T + 3.0
    s_rot, p_rot = _descriptors(model, rotated)
    assert torch.allclose(s_rot, s, rtol=0, atol=ROUND_OFF * float(s.abs().max()))
    assert torch.allclose(p_rot, p, rtol=0, atol=ROUND_OFF * float(p.abs().max()))


def test_mirror_keeps_scalars_and_flips_pseudoscalars(model):
    atoms = chiral_molecule()
    s, p = _descriptors(model, atoms)
    s_mir, p_mir = _descriptors(model, mirror(atoms))
    assert float(p.abs().max()) > 1e-3, "a chiral molecule must have non-zero pseudoscalars"
    assert torch.allclose(s_mir, s, rtol=0, atol=ROUND_OFF * float(s.abs().max()))
    assert torch.allclose(p_mir, -p, rtol=0, atol=ROUND_OFF * float(p.abs().max()))
    # An improper rotation (mirror then rotation) flips them as well.
    improper = mirror(atoms)
    improper.positions = improper.positions @ random_rotation(2).T
    _, p_imp = _descriptors(model, improper)
    assert torch.allclose(p_imp, -p, rtol=0, atol=ROUND_OFF * float(p.abs().max()))


def test_achiral_molecule_has_zero_pseudoscalars():
    from ase.build import molecule

    model = DescriptorModel(["H", "C"], cutoff=4.0, seed=0)
    _, p = _descriptors(model, molecule("CH4"))  # Td: contains mirror planes
    s, _ = _descriptors(model, molecule("CH4"))
    assert float(p.abs().max()) <= ROUND_OFF * float(s.abs().max())


def test_factorised_triple_product_equals_literal_triple_sum():
    """U_a·(U_b×U_c), U_k = Σ_j w_k r̂_j, equals Σ_{jkl} w_a w_b w_c r̂_j·(r̂_k×r̂_l)."""
    generator = torch.Generator().manual_seed(0)
    n_atoms, per_atom, n_channels = 3, 5, 4
    vectors = torch.randn(n_atoms * per_atom, 3, dtype=torch.float64, generator=generator)
    weights = torch.rand(n_atoms * per_atom, n_channels, dtype=torch.float64, generator=generator)
    centre = torch.arange(n_atoms).repeat_interleave(per_atom)
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    per_edge = weights[:, :, None] * unit[:, None, :]
    u = torch.zeros(n_atoms, n_channels, 3, dtype=torch.float64).index_add(0, centre, per_edge)
    literal = triple_product_reference(vectors, weights, centre, n_atoms)
    assert float(literal.abs().max()) > 1e-2
    assert torch.allclose(pseudoscalars(u), literal, rtol=0, atol=ROUND_OFF * float(literal.abs().max()))


def test_fast_harmonics_equal_e3nn():
    generator = torch.Generator().manual_seed(3)
    vectors = torch.nn.functional.normalize(torch.randn(500, 3, dtype=torch.float64, generator=generator), dim=1)
    for l_max in (1, 2, 3, 4, 6):
        reference = o3.spherical_harmonics(list(range(l_max + 1)), vectors, normalize=False, normalization="component")
        fast = spherical_harmonics(vectors, harmonics_coefficients(l_max), l_max)
        assert torch.allclose(fast, reference, rtol=0, atol=1e-11)


def test_monomials_are_the_distinct_products_named_by_their_exponents():
    vectors = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    exponents = monomial_exponents(4)
    assert len(exponents) == 1 + sum((l + 1) * (l + 2) // 2 for l in range(1, 5))
    assert len(set(exponents)) == len(exponents)  # each monomial once
    x, y, z = vectors.unbind(1)
    literal = torch.stack([x**a * y**b * z**c for a, b, c in exponents[1:]], dim=1)
    assert torch.allclose(monomials(vectors, 4), literal, rtol=1e-14, atol=0)


def test_envelope_value_and_two_derivatives_vanish_at_cutoff():
    cutoff = 4.0
    r = torch.tensor([cutoff], dtype=torch.float64, requires_grad=True)
    value = smooth_cutoff(r, cutoff)
    (first,) = torch.autograd.grad(value.sum(), r, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), r)
    assert float(value) == 0.0 and abs(float(first)) < 1e-15 and abs(float(second)) < 1e-14
    inside = torch.linspace(0, cutoff, 50, dtype=torch.float64)
    assert bool((smooth_cutoff(inside[:-1], cutoff) > 0).all())
    assert float(smooth_cutoff(torch.tensor([0.0, 5.0, 9.0]), cutoff)[1:].abs().max()) == 0.0


def test_descriptor_shapes_follow_hyperparameters():
    from ase.build import molecule

    model = DescriptorModel(["H", "C", "O"], n_channels=5, l_max=2, seed=0)
    s, p = _descriptors(model, molecule("CH3CH2OH"))
    assert s.shape == (9, 5 + 3 * 15) and p.shape == (9, 10)
    with pytest.raises(ValueError, match="l_max"):
        DescriptorModel(["H"], l_max=0)
    # Bispectrum paths (l1 ≤ l2 ≤ l3 ≤ 2, even sum): 000, 011, 022, 112, 222.
    model = DescriptorModel(["H", "C", "O"], n_channels=5, l_max=2, bispectrum_channels=3, seed=0)
    s, _ = _descriptors(model, molecule("CH3CH2OH"))
    assert s.shape == (9, 5 + 3 * 15 + 3 * 5)
    with pytest.raises(ValueError, match="bispectrum_l_max"):
        DescriptorModel(["H"], l_max=2, bispectrum_channels=2, bispectrum_l_max=3)


def test_coupling_paths_are_the_even_triangle_triples():
    assert coupling_paths(2) == [(0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 1, 2), (2, 2, 2)]
    assert coupling_paths(3) == [(0, 0, 0), (0, 1, 1), (0, 2, 2), (0, 3, 3), (1, 1, 2), (1, 2, 3), (2, 2, 2), (2, 3, 3)]


@pytest.mark.parametrize("l_max", [2, 3])
def test_bispectrum_is_the_wigner_3j_contraction(l_max):
    """b_{k,path} ∝ Σ_{m1 m2 m3} W^{l1 l2 l3}_{m1 m2 m3} c_{k l1 m1} c_{k l2 m2} c_{k l3 m3} with e3nn's
    wigner_3j W, one constant factor per path (the Gaunt normalisation), for random channels.
    e3nn tabulates W to about 8 digits: hence the tolerance, not round-off."""
    generator = torch.Generator().manual_seed(4)
    n_atoms, n_channels = 4, 3
    channels = torch.randn(n_atoms, n_channels, (l_max + 1) ** 2, dtype=torch.float64, generator=generator)
    fast = bispectrum(channels, *bispectrum_coupling(l_max))[0].view(n_atoms * n_channels, -1)
    for p, (l1, l2, l3) in enumerate(coupling_paths(l_max)):
        c1, c2, c3 = (channels[:, :, l * l : (l + 1) ** 2] for l in (l1, l2, l3))
        wigner = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
        literal = torch.einsum("abc,nka,nkb,nkc->nk", wigner, c1, c2, c3).flatten()
        assert float(literal.abs().max()) > 1e-2  # every path contributes
        factor = float(fast[:, p] @ literal / (literal @ literal))  # least-squares constant
        assert abs(factor) > 1e-3
        assert torch.allclose(fast[:, p], factor * literal, rtol=0, atol=1e-6 * float(fast[:, p].abs().max()))


def test_describe_moved_to_models_and_the_old_name_still_works():
    """``describe`` lives in :mod:`mlpot.models` (descriptors sit below models); the old
    ``mlpot.descriptors.describe`` returns the same function with a DeprecationWarning."""
    import mlpot.descriptors

    with pytest.warns(DeprecationWarning, match="use mlpot.models.describe"):
        old = mlpot.descriptors.describe
    assert old is describe
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlpot.descriptors.nope  # noqa: B018 - the attribute access is the test
