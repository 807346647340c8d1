"""Binary STE gates (sparsenb.layers.gates) and the polarization regulariser (sparsenb.methods.polarization_gates)."""
import copy

import pytest
import torch
from torch import nn

from sparsenb import methods
from sparsenb.layers.gates import Gates, hard_gate
from sparsenb.methods.polarization_gates import lambda_at, polarization, polarized_fraction, zhuang_t


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 5), nn.ReLU(), nn.Linear(5, 3))


def test_hard_gate_is_exactly_binary_and_its_gradient_passes_straight_through():
    g = torch.tensor([0.1, 0.5, 0.49, 0.9], requires_grad=True)
    b = hard_gate(g, 0.5)
    assert b.tolist() == [0.0, 1.0, 0.0, 1.0]
    upstream = torch.tensor([1.0, -2.0, 3.0, 0.25])
    b.backward(upstream)
    assert torch.equal(g.grad, upstream)  # identity backward, also through the closed gates


@pytest.mark.parametrize("granularity", ["connection", "channel"])
def test_gate_gradient_is_the_effective_weight_gradient_times_the_weight(granularity):
    model = _net()
    gates = Gates(model, granularity=granularity, init=1.0)
    x = torch.randn(6, 2, 5, 5)
    model(x).pow(2).sum().backward()
    # reference: the same net without gates, gradient w.r.t. its (all kept) weights
    ref = _net()
    ref(x).pow(2).sum().backward()
    for (name, g), m in zip(gates.gates.items(), [ref[0], ref[3], ref[5]]):
        expected = m.weight.grad * m.weight.detach()  # Eq. 2: dL/dW_eff * W
        if granularity == "channel":
            expected = expected.reshape(expected.shape[0], -1).sum(1)
        torch.testing.assert_close(g.score.grad, expected)


def test_a_closed_gate_zeroes_its_weight_and_blocks_the_weight_gradient_but_not_its_own():
    model = _net()
    gates = Gates(model, init=1.0)
    first = gates.gates["0"]
    with torch.no_grad():
        first.score[0, 0, 0, 0] = 0.2
    assert model[0].weight[0, 0, 0, 0] == 0
    model(torch.randn(4, 2, 5, 5)).sum().backward()
    assert gates.weights("0").grad[0, 0, 0, 0] == 0
    assert first.score.grad[0, 0, 0, 0] != 0


@pytest.mark.parametrize("granularity", ["connection", "channel"])
def test_removing_the_gates_gives_the_gated_outputs_bit_for_bit(granularity):
    model = _net(1)
    gates = Gates(model, granularity=granularity)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in gates.parameters():
            p.uniform_(0, 1)
    x = torch.randn(8, 2, 5, 5)
    before = model(x)
    expected_masks = gates.masks()
    assert 0 < gates.sparsity() < 1
    masks = gates.remove()
    assert not any(hasattr(m, "parametrizations") and "weight" in m.parametrizations for m in model.modules())
    assert isinstance(model[0].weight, nn.Parameter)
    after = model(x)
    assert torch.equal(before, after)
    for name, m in masks.items():
        assert torch.equal(m, expected_masks[name])
        assert (model.get_submodule(name).weight[~m] == 0).all()
    with pytest.raises(RuntimeError):
        gates.remove()


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.77])
def test_exact_removal_keeps_exactly_the_target_number_with_ties(sparsity):
    model = _net(2)
    gates = Gates(model)
    with torch.no_grad():
        for p in gates.parameters():
            p.copy_((torch.rand(p.shape) < 0.5).float())  # many exact ties at 0 and 1
    n = gates.scores().numel()
    scores = gates.scores()
    masks = gates.remove(sparsity)
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept == round((1 - sparsity) * n)
    flat = torch.cat([m.reshape(-1) for m in masks.values()])  # connection gates: one per weight, in layer order
    # every kept gate scores at least as high as every removed one
    if 0 < kept < n:
        assert scores[flat].min() >= scores[~flat].max()
    assert sum(m.numel() for m in masks.values()) == n


def test_optimizer_built_before_the_gates_still_trains_the_weights():
    model = _net()
    w = model[0].weight
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Gates(model)
    assert model[0].parametrizations.weight.original is w  # same Parameter object: the optimizer still owns it
    before = w.detach().clone()
    model(torch.randn(4, 2, 5, 5)).sum().backward()
    opt.step()
    assert not torch.equal(before, w.detach())


def test_zhuang_t_minimiser_has_the_target_fraction_at_zero():
    n = 40
    for s in (0.25, 0.5, 0.75):
        values = []
        for k in range(n + 1):
            g = torch.cat([torch.zeros(k), torch.ones(n - k)])
            values.append(float(polarization(g, s, pivot="mean")))
        assert min(range(n + 1), key=values.__getitem__) == round(s * n)
    assert zhuang_t(0.5) == 0.0


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.8])
def test_polarization_alone_drives_gates_to_zero_and_one_at_the_target(sparsity):
    torch.manual_seed(0)
    g = torch.nn.Parameter(0.4 + 0.2 * torch.rand(500))  # all in the middle, none polarized
    assert polarized_fraction(g.detach()) == 0.0
    opt = torch.optim.Adam([g], lr=0.01)
    for _ in range(200):
        opt.zero_grad()
        polarization(g, sparsity).backward()
        opt.step()
        with torch.no_grad():
            g.clamp_(0, 1)
    assert polarized_fraction(g.detach()) == 1.0
    assert float((g < 0.5).float().mean()) == pytest.approx(sparsity, abs=1 / 500)


def test_polarization_on_a_toy_task_polarizes_and_keeps_the_useful_connections():
    """y depends on 4 of 16 inputs: training a gated linear model with the regulariser at 50 % leaves
    bimodal gates, and the 4 useful connections among the kept ones."""
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    w_true = torch.zeros(16)
    w_true[:4] = torch.tensor([2.0, -1.5, 1.0, 3.0])
    y = x @ w_true
    model = nn.Sequential(nn.Linear(16, 1, bias=False))
    method = methods.get("polarization_gates", sparsity=0.5, lam=0.05, gate_lr=0.02, warmup=0.2, ramp=0.3)
    method.init_masks(model)
    method.setup(total_steps=400, steps_per_epoch=400, epochs=1)
    opt = torch.optim.SGD(method.gates.weight_parameters(), lr=0.05)
    for step in range(400):
        opt.zero_grad()
        loss = (model(x).squeeze(1) - y).pow(2).mean()
        loss.backward()
        method.after_backward(step, None)
        opt.step()
        method.after_step(step, None)
    scores = method.gates.scores()
    assert polarized_fraction(scores) == 1.0
    assert method.gates.sparsity() == pytest.approx(0.5, abs=1 / 16)
    assert method.gates.masks()["0"][0, :4].all()


def test_lambda_schedule():
    assert lambda_at(0, 100, 1.0, 0.1, 0.3) == 0.0
    assert lambda_at(9, 100, 1.0, 0.1, 0.3) == 0.0
    assert lambda_at(25, 100, 1.0, 0.1, 0.3) == pytest.approx(0.5)
    assert lambda_at(40, 100, 1.0, 0.1, 0.3) == 1.0
    assert lambda_at(99, 100, 1.0, 0.1, 0.3) == 1.0


def test_method_is_registered_and_checks_its_options():
    assert "polarization_gates" in methods.available()
    with pytest.raises(ValueError):
        methods.get("polarization_gates", pivot="median")
    with pytest.raises(ValueError):
        methods.get("polarization_gates", granularity="neuron")
