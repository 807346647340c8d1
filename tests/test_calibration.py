import math

import pytest
import torch

from sparsenb.train import calibration as cal
from sparsenb.train import metrics


def test_hand_made_case():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])
    # correct: yes, no, yes, yes
    assert cal.nll(probs, y) == pytest.approx(-(math.log(.9) + math.log(.4) + math.log(.7) + math.log(.8)) / 4)
    assert cal.brier(probs, y) == pytest.approx((2 * .01 + 2 * .36 + 2 * .09 + 2 * .04) / 4)
    # 2 bins: (0, .5] empty; (.5, 1]: conf mean (.9+.6+.7+.8)/4 = .75, acc .75 -> ECE 0
    assert cal.ece(probs, y, n_bins=2) == pytest.approx(0.0)
    # 10 bins: {.6}: acc 0 conf .6; {.7}: 1 vs .7; {.8}: 1 vs .8; {.9}: 1 vs .9
    assert cal.ece(probs, y, n_bins=10) == pytest.approx((.6 + .3 + .2 + .1) / 4)
    s = cal.summary(probs, y)
    assert s["acc"] == pytest.approx(75.0)


def test_overconfident_model_has_larger_ece_than_calibrated():
    g = torch.Generator().manual_seed(0)
    n = 20000
    conf = 0.5 + 0.5 * torch.rand(n, generator=g, dtype=torch.float64)
    correct = torch.rand(n, generator=g, dtype=torch.float64) < conf  # calibrated by construction
    y = torch.where(correct, 0, 1)
    calibrated = torch.stack([conf, 1 - conf], 1)
    sharp = torch.stack([torch.full_like(conf, 0.999), torch.full_like(conf, 0.001)], 1)
    assert cal.ece(calibrated, y) < 0.02
    assert cal.ece(sharp, y) > 0.2


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="softmax"):
        cal.nll(torch.tensor([[2.0, 3.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="at least one"):
        cal.ensemble_probs([])


def test_ensemble_averages_members():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    assert torch.equal(cal.ensemble_probs([a, b]), torch.tensor([[0.5, 0.5]], dtype=torch.float64))


def test_predict_probs_restores_mode():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5))
    loader = [(torch.randn(5, 3), torch.arange(5) % 4)]
    p, y = cal.predict_probs(model, loader)
    assert p.shape == (5, 4) and torch.allclose(p.sum(1), torch.ones(5, dtype=torch.float64))
    assert model.training


def test_diversity_measures():
    assert metrics.disagreement(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 0, 0])) == 0.5
    a = {"w": torch.tensor([[1, 0], [0, 1]], dtype=torch.bool)}
    b = {"w": torch.tensor([[1, 1], [0, 0]], dtype=torch.bool)}
    assert metrics.mask_distance(a, b) == 0.5
    assert metrics.mask_distance(a, a) == 0.0
    assert metrics.pairwise_mean([1, 2, 4], lambda x, y: abs(x - y)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="names differ"):
        metrics.mask_distance(a, {"v": a["w"]})
