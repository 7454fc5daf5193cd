"""Tests of the generic training loop: exact resume, interruption, schedules, EMA, early stopping."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from mlpot.training.loop import (
    LoopConfig,
    TrainingInterrupted,
    fit,
    load_checkpoint,
)
from mlpot.training.schedules import learning_rate_factor


def make_problem(seed: int = 0):
    """A tiny float64 regression problem: dropout and a shuffling DataLoader exercise every RNG."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    y = torch.sin(x).sum(dim=1, keepdim=True)
    data = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    val = [(x[:16], y[:16])]
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)
    ).double()
    return model, train, val


def mse_loss(model, batch, training):
    x, y = batch
    loss = ((model(x) - y) ** 2).mean()
    return loss, {"mae": (model(x) - y).abs().mean().item()}


class InterruptAt:
    """A loss function that sends SIGINT to its own process during the given optimiser step."""

    def __init__(self, step: int, signum: int = signal.SIGINT):
        self.step, self.signum, self.count = step, signum, 0

    def __call__(self, model, batch, training):
        if training:
            self.count += 1
            if self.count == self.step:
                os.kill(os.getpid(), self.signum)
        return mse_loss(model, batch, training)


CONFIG = dict(max_epochs=4, lr=1e-2, warmup_epochs=1, schedule="cosine", ema_decay=0.9, progress=False, seed=3)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("interrupt_step", [16, 13], ids=["after-epoch-2", "mid-epoch-2"])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, interrupt_step):
    """2 epochs (8 batches each), SIGINT, resume for the rest == 4 uninterrupted epochs, bit for bit."""
    model, train, val = make_problem()
    ref = fit(model, mse_loss, train, val, LoopConfig(**CONFIG), output_dir=tmp_path / "ref")
    ref_weights = {k: v.clone() for k, v in model.state_dict().items()}

    model, train, val = make_problem()
    with pytest.raises(TrainingInterrupted) as info:
        fit(model, InterruptAt(interrupt_step), train, val, LoopConfig(**CONFIG), output_dir=tmp_path / "run")
    assert info.value.checkpoint == tmp_path / "run" / "last.pt"
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    expected = divmod(interrupt_step, 8) if interrupt_step % 8 else (interrupt_step // 8 - 1, 8)
    assert (ckpt["epoch"], ckpt["batch_in_epoch"]) == expected

    model, train, val = make_problem(seed=99)  # different initial weights: everything must come from the checkpoint
    res = fit(model, mse_loss, train, val, LoopConfig(**CONFIG), output_dir=tmp_path / "run", resume=True)
    assert_same_weights(model.state_dict(), ref_weights)
    assert_same_weights(load_checkpoint(tmp_path / "run" / "last.pt")["model"],
                        load_checkpoint(tmp_path / "ref" / "last.pt")["model"])
    strip = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]  # noqa: E731
    assert strip(res.history) == strip(ref.history)
    assert (res.best_epoch, res.best_val_loss) == (ref.best_epoch, ref.best_val_loss)


SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    from test_loop import make_problem, mse_loss, CONFIG
    from mlpot.training.loop import LoopConfig, TrainingInterrupted, fit
    torch.set_num_threads(1)
    def slow_loss(model, batch, training):
        time.sleep(0.03)
        return mse_loss(model, batch, training)
    model, train, val = make_problem()
    try:
        fit(model, slow_loss, train, val, LoopConfig(**CONFIG), output_dir=sys.argv[1], resume=len(sys.argv) > 2)
    except TrainingInterrupted:
        sys.exit(3)
    torch.save(model.state_dict(), sys.argv[1] + "/final.pt")
    """
)


def test_sigterm_to_a_training_process_then_resume(tmp_path):
    """Kill a real training process with SIGTERM after 2 epochs; resuming gives the uninterrupted weights."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = lambda *a: subprocess.run([sys.executable, str(script), *a], env=env, timeout=120)  # noqa: E731

    assert run(str(tmp_path / "ref")).returncode == 0
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run")], env=env)
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 3, "the process must checkpoint and exit through TrainingInterrupted"
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] >= 2
    assert run(str(tmp_path / "run"), "--resume").returncode == 0
    assert_same_weights(torch.load(tmp_path / "run" / "final.pt", weights_only=True),
                        torch.load(tmp_path / "ref" / "final.pt", weights_only=True))


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    model, train, val = make_problem()
    fit(model, mse_loss, train, val, LoopConfig(max_epochs=2, progress=False), output_dir=tmp_path)
    for name in ("last.pt", "best.pt"):
        state = torch.load(tmp_path / name, weights_only=True)
        for key in ("model", "optimizer", "scheduler", "ema", "rng", "epoch", "best_weights"):
            assert key in state, key
    assert not list(tmp_path.glob("*.tmp"))
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_mae", "val_loss", "val_mae", "lr", "time_s"} <= set(rows[0])


def test_training_lowers_the_loss_and_returns_best_ema_weights():
    model, train, val = make_problem()
    res = fit(model, mse_loss, train, val, LoopConfig(max_epochs=30, lr=1e-2, progress=False))
    assert res.history[-1]["val_loss"] < 0.2 * res.history[0]["val_loss"]
    # the model now holds the weights of the best epoch: re-evaluating gives the best loss
    model.eval()
    with torch.no_grad():
        loss = float(((model(val[0][0]) - val[0][1]) ** 2).mean())
    assert loss == pytest.approx(res.best_val_loss, rel=1e-12)


def test_on_epoch_receives_every_epoch_row():
    model, train, val = make_problem()
    rows = []
    res = fit(model, mse_loss, train, val, LoopConfig(max_epochs=3, progress=False), on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(r["max_epochs"] == 3 for r in rows)
    assert [r["val_loss"] for r in rows] == [h["val_loss"] for h in res.history]


def test_early_stopping_and_max_minutes():
    model, train, val = make_problem()
    flat = lambda m, b, t: mse_loss(m, b, t) if t else (torch.tensor(1.0), {})  # noqa: E731
    res = fit(model, flat, train, val, LoopConfig(max_epochs=50, patience=2, progress=False))
    assert res.stopped == "early_stopping" and len(res.history) == 3 and res.best_epoch == 1
    res = fit(model, mse_loss, train, val, LoopConfig(max_epochs=50, max_minutes=1e-9, progress=False))
    assert res.stopped == "max_minutes" and len(res.history) == 1


def test_non_finite_loss_raises():
    model, train, _ = make_problem()
    bad = lambda m, b, t: (mse_loss(m, b, t)[0] * math.nan, {})  # noqa: E731
    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        fit(model, bad, train, config=LoopConfig(max_epochs=1, progress=False))


def test_learning_rate_schedules():
    cfg = LoopConfig(max_epochs=10, warmup_epochs=2, schedule="cosine", min_lr_factor=0.1)
    assert learning_rate_factor(cfg, 1.0, 1.0) == pytest.approx(0.5)  # half-way through warm-up
    assert learning_rate_factor(cfg, 2.0, 1.0) == pytest.approx(1.0)  # peak
    assert learning_rate_factor(cfg, 6.0, 1.0) == pytest.approx(0.55)  # half-way through the cosine
    assert learning_rate_factor(cfg, 10.0, 1.0) == pytest.approx(0.1)  # end
    assert learning_rate_factor(LoopConfig(schedule="constant"), 7.0, 1.0) == 1.0
    assert learning_rate_factor(LoopConfig(schedule="plateau"), 7.0, 0.25) == 0.25
    with pytest.raises(ValueError, match="schedule"):
        LoopConfig(schedule="linear")


def test_cosine_time_ends_with_the_time_budget():
    """The clock ends the cosine when it runs ahead of the epochs, and only then."""
    cfg = LoopConfig(max_epochs=10, max_minutes=1.0, schedule="cosine_time", min_lr_factor=0.1)
    epochs_only = LoopConfig(max_epochs=10, schedule="cosine", min_lr_factor=0.1)
    # epochs ahead of the clock
    assert learning_rate_factor(cfg, 5.0, 1.0, elapsed_s=0.0) == learning_rate_factor(epochs_only, 5.0, 1.0)
    assert learning_rate_factor(cfg, 1.0, 1.0, elapsed_s=30.0) == pytest.approx(0.55)  # half the budget: half-way
    assert learning_rate_factor(cfg, 1.0, 1.0, elapsed_s=90.0) == pytest.approx(0.1)  # past the budget: the floor
    with pytest.raises(ValueError, match="needs max_minutes"):
        LoopConfig(schedule="cosine_time")


def test_cosine_time_run_stopped_by_the_clock_has_annealed(monkeypatch):
    """A budget that allows far fewer epochs than max_epochs still ends at the minimum learning rate."""
    import mlpot.training.loop as loop

    class Clock:  # every reading advances 0.1 s: the run's timing, free of the machine's load
        now = 0.0

        @classmethod
        def monotonic(cls):
            cls.now += 0.1
            return cls.now

    monkeypatch.setattr(loop, "time", Clock)
    model, train, val = make_problem()
    cfg = LoopConfig(max_epochs=10_000, max_minutes=1.0, schedule="cosine_time", min_lr_factor=0.01, progress=False)
    res = fit(model, mse_loss, train, val, cfg)
    assert res.stopped == "max_minutes" and 50 < len(res.history) < 1000
    lrs = [h["lr"] for h in res.history]
    assert lrs[-1] < 0.02 * cfg.lr and lrs[0] > 0.99 * cfg.lr and all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_plateau_schedule_reduces_the_learning_rate():
    model, train, val = make_problem()
    cfg = LoopConfig(max_epochs=6, schedule="plateau", plateau_patience=1, plateau_factor=0.5, progress=False)
    flat = lambda m, b, t: mse_loss(m, b, t) if t else (torch.tensor(1.0), {})  # noqa: E731
    res = fit(model, flat, train, val, cfg)
    lrs = [r["lr"] for r in res.history]
    assert lrs[-1] < lrs[0]


def test_fit_takes_exactly_the_adamw_steps_of_a_plain_loop():
    """With a constant schedule, no EMA, no clipping and fixed batches, ``fit`` is AdamW step for step:
    the weights are bitwise those of a plain loop over the same batches (written here, not recorded)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(24, 3, generator=g, dtype=torch.float64)
    batches = [(x[i : i + 8], torch.sin(x[i : i + 8]).sum(dim=1, keepdim=True)) for i in range(0, 24, 8)]
    config = LoopConfig(max_epochs=3, lr=3e-3, weight_decay=1e-2, schedule="constant", ema_decay=None,
                        grad_clip=None, progress=False)

    def network():
        torch.manual_seed(5)
        return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()

    trained = network()
    fit(trained, mse_loss, batches, None, config)
    plain = network()
    optimizer = torch.optim.AdamW(plain.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.max_epochs):
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            mse_loss(plain, batch, True)[0].backward()
            optimizer.step()
    assert_same_weights(trained.state_dict(), plain.state_dict())
    assert not torch.equal(trained[0].weight, network()[0].weight)  # it did train


def test_seeded_runs_through_fit_and_train_are_bitwise_reproducible(tmp_path):
    """Two seeded runs give identical weights: through ``fit`` (dropout, shuffling, EMA, warm-up,
    cosine) and through ``mlpot.training.trainer.train`` (data split, statistics, checkpoints)."""
    from mlpot.training.config import config_from_dict
    from mlpot.training.trainer import train

    weights = []
    for _ in range(2):
        model, batches, val = make_problem()
        fit(model, mse_loss, batches, val, LoopConfig(**CONFIG))
        weights.append(model.state_dict())
    assert_same_weights(*weights)

    ethanol = Path(__file__).resolve().parents[2] / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"
    models = []
    for run in ("a", "b"):
        config = config_from_dict({
            "data": {"train": str(ethanol), "energy_unit": "kcal/mol", "n_train": 6, "n_val": 2},
            "model": {"cutoff": 4.0, "n_radial": 4, "n_channels": 4, "l_max": 1, "hidden": [8]},
            "trainer": {"max_epochs": 2, "batch_size": 3, "progress": False},
            "output": str(tmp_path / run),
        })
        models.append(train(config).model.state_dict())
    assert_same_weights(*models)
