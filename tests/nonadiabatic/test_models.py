"""The learned diabatic matrix: structure, save/load, sign-convention invariance, and that it trains."""

import pytest
import torch

from mlpot.nonadiabatic import adiabatic_states, systems
from mlpot.nonadiabatic.models import CoordinateDiabaticModel
from mlpot.nonadiabatic.training import anchor_loss, diabatic_loss, phase_free_coupling_error, train_diabatic


def _data(n=64, seed=0):
    system = systems.TullySimpleAvoidedCrossing()
    generator = torch.Generator().manual_seed(seed)
    x = 8.0 * torch.rand(n, generator=generator, dtype=torch.float64) - 4.0
    return x, adiabatic_states(system.diabatic, x, gradient_fn=system.diabatic_gradient)


@pytest.mark.parametrize("n_states,n_coordinates", [(2, 1), (3, 2)])
def test_output_is_a_symmetric_matrix_per_point(n_states, n_coordinates):
    torch.manual_seed(0)
    model = CoordinateDiabaticModel(n_states, n_coordinates, hidden=(8,))
    shape = (4, 5) if n_coordinates == 1 else (4, 5, n_coordinates)
    x = torch.randn(shape, dtype=torch.float64)
    h = model(x)
    assert h.shape == (4, 5, n_states, n_states) and h.dtype == torch.float64
    assert torch.equal(h, h.transpose(-1, -2))
    # Pointwise: a point's matrix does not depend on the rest of the batch.
    assert torch.allclose(model(x[:1, :2]), h[:1, :2], atol=1e-15)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = CoordinateDiabaticModel(2, 2, hidden=(8, 8))
    x, data = torch.randn(30, 2, dtype=torch.float64), torch.randn(30, 2, dtype=torch.float64)
    model.standardise(x, data)
    model.save(tmp_path / "diabatic.pt")
    loaded = CoordinateDiabaticModel.load(tmp_path / "diabatic.pt")
    assert loaded.config() == model.config()
    assert torch.equal(loaded(x), model(x))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_states"):
        CoordinateDiabaticModel(0, 1)
    with pytest.raises(ValueError, match="hidden"):
        CoordinateDiabaticModel(2, 1, hidden=())
    model = CoordinateDiabaticModel(2, 2, hidden=(4,))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        model(torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, 2), float("nan"), dtype=torch.float64))
    x, data = _data(8)
    with pytest.raises(ValueError, match="forces"):
        train_diabatic(CoordinateDiabaticModel(2, 1, (4,)), x, data.energies, forces=torch.zeros(8, 2), epochs=1,
                       show_progress=False)


def test_losses_are_invariant_under_the_diabatic_sign_convention():
    x, data = _data(32)
    torch.manual_seed(2)
    model = CoordinateDiabaticModel(2, 1, hidden=(8,))
    model.standardise(x, data.energies)
    loss, _ = diabatic_loss(model, x, data.energies, -data.gradients, data.couplings)
    with torch.no_grad():  # flip diabat 2: the off-diagonal element (upper-triangle index 1) changes sign
        model.network[-1].weight[1] *= -1
        model.network[-1].bias[1] *= -1
    flipped, _ = diabatic_loss(model, x, data.energies, -data.gradients, data.couplings)
    assert float(flipped.detach()) == pytest.approx(float(loss.detach()), rel=1e-12)
    d = data.couplings
    assert torch.equal(phase_free_coupling_error(d, -d), torch.zeros(32, 1, dtype=torch.float64))


def test_training_fits_the_adiabatic_data():
    x, data = _data(64)
    model = CoordinateDiabaticModel(2, 1, hidden=(16, 16))
    history = train_diabatic(model, x, data.energies, -data.gradients, data.couplings, epochs=150,
                             learning_rate=1e-2, seed=0, show_progress=False)
    # Learnability: a tenfold drop of the normalised loss in 150 full-batch steps (it starts near 1:
    # each part is normalised by the variance of its target).
    assert history[-1]["loss"] < 0.1 * history[0]["loss"]
    assert set(history[-1]) == {"loss", "energy", "forces", "couplings"}


def _asymptote_anchors(x):
    """Tully I's asymptotes |x| ≥ 4 Bohr: diabat 0 is the lower state on the left, the upper on the right."""
    far = x[x.abs() >= 4.0]
    return far, torch.where((far < 0)[:, None], torch.tensor([0, 1]), torch.tensor([1, 0]))


def test_anchor_loss_vanishes_for_the_exact_diabats_and_not_for_the_wrong_order():
    system = systems.TullySimpleAvoidedCrossing()
    x = torch.linspace(-8.0, 8.0, 161, dtype=torch.float64)
    positions, states = _asymptote_anchors(x)
    variance = torch.tensor(1e-4, dtype=torch.float64)
    # Exact diabats: diagonal at |x| ≥ 4 up to C e^{-16} ≈ 6e-10 Hartree, and in the stated order.
    assert float(anchor_loss(system, positions, states, variance)) < 1e-12
    # Swapping the order on one side costs (2 × the gap)² / var there: the term detects a non-crossing basis.
    wrong = states.clone()
    wrong[positions > 0] = torch.tensor([0, 1])
    assert float(anchor_loss(system, positions, wrong, variance)) > 1.0
    # Flipping the sign of a diabat changes nothing (the off-diagonal enters squared).
    def flipped(q):
        return system.diabatic(q) * torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)

    assert float(anchor_loss(flipped, positions, states, variance)) == pytest.approx(
        float(anchor_loss(system, positions, states, variance)), abs=1e-18)


def test_bad_anchors_raise():
    x, data = _data(8)
    model = CoordinateDiabaticModel(2, 1, (4,))
    with pytest.raises(ValueError, match="permutation"):
        train_diabatic(model, x, data.energies, anchor_positions=x[:2], anchor_states=torch.tensor([[0, 0], [1, 0]]),
                       epochs=1, show_progress=False)
    with pytest.raises(ValueError, match="needs anchor_positions"):
        train_diabatic(model, x, data.energies, anchor_states=torch.tensor([[0, 1]]), epochs=1, show_progress=False)
    with pytest.raises(ValueError, match="anchor_positions"):
        train_diabatic(model, x, data.energies, anchor_positions=torch.zeros(2, 3, dtype=torch.float64), epochs=1,
                       show_progress=False)


def test_asymptotic_anchors_fix_the_gauge_of_an_energy_only_fit():
    """Energies and forces leave the diabatic rotation free; anchoring the asymptotes fixes it.

    The signed integral of d_01 across the domain is the change of the model's mixing angle between
    the two ends. The exact diabats exchange once: π/2. Anchors that hold the basis diagonal, in the
    exact order, at both asymptotes force that value whatever the network does in between; the test
    allows 0.1 rad (a residual off-diagonal of ~10% of the gap at the anchors).
    """
    system = systems.TullySimpleAvoidedCrossing()
    generator = torch.Generator().manual_seed(3)
    x = 16.0 * torch.rand(96, generator=generator, dtype=torch.float64) - 8.0
    data = adiabatic_states(system.diabatic, x, gradient_fn=system.diabatic_gradient)
    positions, states = _asymptote_anchors(x)
    model = CoordinateDiabaticModel(2, 1, hidden=(16, 16))
    train_diabatic(model, x, data.energies, -data.gradients, epochs=400, learning_rate=1e-2, seed=0,
                   show_progress=False, anchor_positions=positions, anchor_states=states)
    model.requires_grad_(False)
    grid = torch.linspace(-8.0, 8.0, 1601, dtype=torch.float64)
    exact = adiabatic_states(system.diabatic, grid, gradient_fn=system.diabatic_gradient).couplings[:, 0, 1, 0]
    learned = adiabatic_states(model, grid).couplings[:, 0, 1, 0]
    step = float(grid[1] - grid[0])
    assert abs(float(exact.sum()) * step) == pytest.approx(torch.pi / 2, abs=1e-3)  # the quadrature itself
    assert abs(float(learned.sum()) * step) == pytest.approx(torch.pi / 2, abs=0.1)
