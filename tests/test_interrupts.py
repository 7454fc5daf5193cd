"""The shared interrupt guard: a first signal sets a flag, a second aborts, handlers come back."""

from __future__ import annotations

import os
import signal

import pytest

from mlpot.interrupts import SignalGuard


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_sets_the_flag_and_second_aborts(signum):
    before = signal.getsignal(signum)
    with SignalGuard() as guard:
        assert not guard.requested
        os.kill(os.getpid(), signum)
        assert guard.requested and guard.signum == signum
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
    assert signal.getsignal(signum) is before


def test_a_disabled_guard_installs_nothing():
    before = signal.getsignal(signal.SIGINT)
    with SignalGuard(enabled=False) as guard:
        assert signal.getsignal(signal.SIGINT) is before
        guard.request()
        assert guard.requested
