"""Tests for sparsenb.experiments.pruning_fraction (Yang et al. 2023's signal-noise patch model).

* the data generator: shapes, the signal patch is exactly y*mu, the noise is orthogonal
  to mu with the stated variance, labels are balanced;
* the pruning mask: every neuron keeps exactly round((1-p) d) coordinates, and the
  mask holds through gradient descent;
* the network: F_{+1} - F_{-1} computed by hand on a tiny case; signal/noise quantities;
* training: the logistic loss decreases on a tiny case; the MLP check runs.
"""
import math

import pytest
import torch

from sparsenb.data import TensorData
from sparsenb.core.masks import Masking
from sparsenb.experiments.pruning_fraction import log_steps, mlp_prune_run, train_gd
from sparsenb.models.patchnet import PatchNet, make_patch_data, neuron_masks, signal_noise


def test_patch_data_shapes_and_signal_patch():
    data = make_patch_data(64, 10, mu_norm=3.0, sigma_p=1.0, generator=torch.Generator().manual_seed(0))
    assert data.X.shape == (64, 2, 10) and data.y.shape == (64,) and data.mu.shape == (10,)
    assert set(data.y.tolist()) <= {-1.0, 1.0}
    assert torch.equal(data.mu, torch.tensor([3.0] + [0.0] * 9))
    assert torch.equal(data.X[:, 0], data.y[:, None] * data.mu)


def test_patch_noise_statistics():
    gen = torch.Generator().manual_seed(1)
    data = make_patch_data(20000, 8, mu_norm=1.0, sigma_p=2.0, generator=gen)
    xi = data.xi
    assert torch.all(xi[:, 0] == 0), "noise must be orthogonal to mu = ||mu|| e_1"
    assert torch.all(xi @ data.mu == 0)
    var = xi[:, 1:].var(dim=0)
    assert torch.allclose(var, torch.full_like(var, 4.0), rtol=0.05)
    assert xi[:, 1:].mean().abs() < 0.03
    assert abs(float((data.y > 0).float().mean()) - 0.5) < 0.02


@pytest.mark.parametrize("p", [0.0, 0.3, 0.9, 0.99])
def test_neuron_masks_keep_exactly(p):
    d, m = 200, 7
    mask = neuron_masks(d, m, p, torch.Generator().manual_seed(0))
    assert mask.shape == (2, m, d) and mask.dtype == torch.bool
    assert torch.all(mask.sum(-1) == round((1 - p) * d))


def test_neuron_masks_rejects_bad_fractions():
    with pytest.raises(ValueError):
        neuron_masks(10, 2, 1.0)
    with pytest.raises(ValueError):
        neuron_masks(10, 2, 0.99)  # keeps round(0.1) = 0 coordinates


def test_patchnet_forward_by_hand():
    net = PatchNet(d=3, m=2, q=2.0, sigma_0=1.0)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[[1.0, 0, 0], [0, 1, 0]],     # class +1
                                       [[0, 0, 1.0], [-1, 0, 0]]]))  # class -1
    X = torch.tensor([[[2.0, 0, 0], [0, 3, -1]]])  # y mu = (2,0,0), xi = (0,3,-1)
    # F_{+1} = (1/2)[relu(2)^2 + relu(0)^2 + relu(0)^2 + relu(3)^2] = (4 + 9)/2
    # F_{-1} = (1/2)[relu(0)^2 + relu(-2)^2 + relu(-1)^2 + relu(0)^2] = 0
    assert torch.allclose(net(X), torch.tensor([6.5]))


def test_signal_noise_quantities():
    net = PatchNet(d=3, m=1, q=3.0)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[[2.0, 1.0, 0.0]], [[-1.0, 0.0, 4.0]]]))
    from sparsenb.experiments.pruning_fraction import PatchData
    data = PatchData(X=torch.tensor([[[1.0, 0, 0], [0, 1.0, 1.0]], [[-1.0, 0, 0], [0, 2.0, 0.5]]]),
                     y=torch.tensor([1.0, -1.0]), mu=torch.tensor([1.0, 0, 0]))
    out = signal_noise(net, data)
    assert out["signal_max"] == 2.0 and out["signal_mean"] == 1.5
    # example 0 (y=+1): |<w_+, xi_0>| = 1; example 1 (y=-1): |<w_-, xi_1>| = 2
    assert out["noise_max"] == 1.5 and out["noise_mean"] == 1.5


def test_mask_holds_under_gradient_descent_and_loss_decreases():
    res = train_gd(p=0.5, seed=0, d=40, n=10, m=3, mu_norm=3.0, sigma_p=1.0, sigma_0=0.1, q=3.0,
                   eta=0.5, steps=60, n_test=50, log_points=5)
    hist = res["history"]
    assert hist[0]["step"] == 0 and hist[-1]["step"] == 60
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.1
    assert res["density"] == round(0.5 * 40) / 40
    assert 0 <= res["signal_neurons"] <= 6 and 0.0 <= res["test_err"] <= 1.0
    assert all(math.isfinite(h["noise_max"]) for h in hist)


def test_pruned_weights_stay_zero():
    gen = torch.Generator().manual_seed(0)
    data = make_patch_data(8, 20, 2.0, 1.0, gen)
    net = PatchNet(20, 2, 3.0, 0.1, gen)
    masks = Masking(net, names=["weight"])
    masks.update("weight", neuron_masks(20, 2, 0.75, gen))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    masks.attach(opt)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.softplus(-data.y * net(data.X)).mean().backward()
        opt.step()
    assert torch.all(net.weight[~masks["weight"]] == 0)
    assert torch.any(net.weight[masks["weight"]] != 0)


def test_log_steps():
    assert log_steps(0, 5) == {0}
    grid = log_steps(1000, 3)
    assert {0, 1, 10, 100, 1000} <= grid and max(grid) == 1000


def test_mlp_prune_run_prunes_hidden_layer_exactly():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(64, 1, 4, 4, generator=gen)
    y = (X.flatten(1).sum(1) > 0).long()
    data = TensorData("toy", X[:48], y[:48], X[48:], y[48:], 2, (1, 4, 4), "random")
    res = mlp_prune_run(data, p=0.75, seed=0, hidden=8, epochs=2, lr=0.1, batch_size=16, device="cpu")
    assert res["density"] == round(0.25 * 16 * 8) / (16 * 8)
    assert len(res["history"]) == 2 and 0.0 <= res["test_acc"] <= 1.0


def test_summarize_sweep():
    from sparsenb.experiments.pruning_fraction import summarize_sweep
    rows = [{"p": 0.5, "e": 0.2}, {"p": 0.0, "e": 0.4}, {"p": 0.5, "e": 0.4}]
    out = summarize_sweep(rows, ["e"])
    assert [r["p"] for r in out] == [0.0, 0.5] and [r["n"] for r in out] == [1, 2]
    assert out[0]["e_std"] == 0.0 and out[1]["e_mean"] == pytest.approx(0.3)
    assert out[1]["e_max"] == 0.4 and out[1]["e_std"] == pytest.approx(0.1414, abs=1e-4)


# ---- the notebook's claim rules (pt.claims)
def _synthetic_runs(errors_by_p, loss=1e-4, signal_neurons=3):
    from sparsenb.experiments import pruning_fraction as pt
    runs = [{"p": p, "seed": s, "test_err": e + 0.002 * s, "train_loss": loss, "train_err": 0.0, "signal_max": 1.0,
             "noise_max": 0.5, "signal_neurons": 0 if p >= 0.98 else signal_neurons}
            for p, e in errors_by_p.items() for s in range(4)]
    return runs, pt.summarize_sweep(runs, pt.SWEEP_KEYS)


def _mlp_summary(acc_by_p):
    from sparsenb.experiments import pruning_fraction as pt
    runs = [{"p": p, "test_acc": a, "train_loss": 0.1} for p, a in acc_by_p.items() for _ in range(2)]
    return pt.summarize_sweep(runs, ["test_acc", "train_loss"])


def _cfg(**kw):
    from sparsenb.nb.catalog import resolve
    return dict(resolve("05_pruning_fraction", "cpu"), P_GRID=[0.0, 0.3, 0.5, 0.7, 0.98], **kw)


def test_claims_hold_on_a_curve_that_falls_to_a_threshold_then_reaches_chance():
    from sparsenb.experiments import pruning_fraction as pt
    runs, summary = _synthetic_runs({0.0: 0.09, 0.3: 0.07, 0.5: 0.04, 0.7: 0.2, 0.98: 0.49})
    mlp = _mlp_summary({0.0: 0.95, 0.5: 0.955, 0.9: 0.94, 0.99: 0.80})
    m, claims = pt.claims(_cfg(MLP_P=[0.0, 0.5, 0.9, 0.99]), runs, summary, mlp, num_classes=10)
    by_id = {c["id"]: c for c in claims}
    assert [c["id"] for c in claims] == ["low_error_below_threshold", "chance_error_at_large_p", "real_data_mild_pruning"]
    assert by_id["low_error_below_threshold"]["holds"] is True and m["best_p"] == 0.5
    assert m["best_p_test_err_mean"] == pytest.approx(0.043) and m["p0_vs_best_welch_p"] < 0.05
    assert m["spearman_p_vs_err_below_best"] == pytest.approx(-1.0)
    assert by_id["chance_error_at_large_p"]["holds"] is True and m["p_max_runs_without_signal_neuron"] == 4
    assert by_id["real_data_mild_pruning"]["holds"] and by_id["real_data_mild_pruning"]["state"] == "held"
    assert m["mlp/best_mild_p"] == 0.5 and m["p0.5/test_err_mean"] == pytest.approx(0.043)


def test_claims_fail_when_pruning_does_not_help_or_the_net_does_not_fit():
    from sparsenb.experiments import pruning_fraction as pt
    runs, summary = _synthetic_runs({0.0: 0.04, 0.3: 0.06, 0.5: 0.08, 0.7: 0.2, 0.98: 0.3})  # best at p = 0
    mlp = _mlp_summary({0.0: 0.95, 0.5: 0.90, 0.9: 0.89, 0.99: 0.94})
    m, claims = pt.claims(_cfg(MLP_P=[0.0, 0.5, 0.9, 0.99]), runs, summary, mlp, num_classes=10)
    assert [c["holds"] for c in claims] == [False, False, False]  # p* = 0; 30 % error is not chance; dense best
    assert m["best_p"] == 0.0 and m["p0_vs_best_welch_p"] == 1.0
    runs, summary = _synthetic_runs({0.0: 0.09, 0.3: 0.07, 0.5: 0.04, 0.7: 0.2, 0.98: 0.49}, loss=0.5)
    _, claims = pt.claims(_cfg(MLP_P=[0.0, 0.5, 0.9, 0.99]), runs, summary, mlp, num_classes=10)
    assert not claims[0]["holds"] and not claims[1]["holds"], "a net that does not fit its data holds neither claim"
