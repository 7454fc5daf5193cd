"""The learned diabatic matrix: structure, save/load, sign-convention invariance, and that it trains."""

import pytest
import torch

from mlpot.nonadiabatic import adiabatic_states, systems
from mlpot.nonadiabatic.models import CoordinateDiabaticModel
from mlpot.nonadiabatic.training import diabatic_loss, phase_free_coupling_error, train_diabatic


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
