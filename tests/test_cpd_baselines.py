"""ruptures baselines and the TCPDBench protocols (sparsenb.cpd.baselines)."""
import math

import numpy as np
import pytest

from sparsenb.cpd import baselines as cb


@pytest.fixture
def step():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(0, 0.1, 60), rng.normal(3, 0.1, 60)][:, None]


@pytest.mark.parametrize("method", cb.METHODS)
def test_default_setting_finds_a_clean_step(step, method):
    cps = cb.detect_ruptures(step, method, **cb.default_setting(step, method))
    assert cps == [60]  # the first index of the new segment; ruptures' trailing n is dropped


def test_bic_penalty_and_grid(step):
    assert cb.bic_penalty(step) == pytest.approx(2 * math.log(120))  # (d + 1) log n, d = 1
    assert len(cb.oracle_grid(step, "pelt")) == 2 * len(cb.PEN_FACTORS)
    widths = {s["width"] for s in cb.oracle_grid(step, "window")}
    assert widths == {10, 20, 50, 60}  # widths capped at n // 2
    assert cb.zero(step) == []


def test_unknown_method(step):
    with pytest.raises(ValueError, match="unknown method"):
        cb.detect_ruptures(step, "kcpa")
