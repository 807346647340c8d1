"""Tests for sparsenb.core.criteria: per-tensor criteria and the model-level SNIP, GraSP, SynFlow.

Every model-level score is checked against numbers computed by hand (the
arithmetic is in the comments) or against an explicit Hessian, and every
criterion must leave the model untouched (weights, signs, BN statistics, mode).
"""
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from sparsenb.core.criteria import (MODEL_CRITERIA, grasp_scores, gradient_magnitude, magnitude, magnitude_scores,
                                    model_scores, random, random_scores, snip_scores, synflow_scores, take_batches)
from sparsenb.core.masks import Masking


def half_mse(out, y):
    return 0.5 * ((out - y) ** 2).sum()


def linear(weight, bias=None) -> nn.Linear:
    weight = torch.as_tensor(weight, dtype=torch.float64)
    m = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).double()
    with torch.no_grad():
        m.weight.copy_(weight)
        if bias is not None:
            m.bias.copy_(torch.as_tensor(bias, dtype=torch.float64))
    return m


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


# -------------------------------------------------------- per-tensor criteria
def test_simple_criteria_still_work():
    w = torch.tensor([[-3.0, 1.0], [0.5, -0.25]])
    assert torch.equal(magnitude(w), w.abs())
    g = torch.tensor([[1.0, -2.0], [0.0, 4.0]])
    assert torch.equal(gradient_magnitude(w, grad=g), g.abs())
    with pytest.raises(ValueError, match="dense gradient"):
        gradient_magnitude(w)
    buf = torch.full((4,), 7.0)
    assert gradient_magnitude(w, grad=g, out=buf.view(2, 2)).data_ptr() == buf.data_ptr()
    assert torch.equal(buf, g.abs().reshape(-1))  # written into the caller's buffer
    r = random(w, generator=torch.Generator().manual_seed(0))
    assert r.shape == w.shape and bool(((r >= 0) & (r < 1)).all())
    assert torch.equal(r, random(w, generator=torch.Generator().manual_seed(0)))


def test_model_level_magnitude_and_random():
    model = nn.Sequential(linear([[-3.0, 1.0], [0.5, -0.25]]), nn.ReLU(), linear([[2.0, -4.0]]))
    masks = {"0.weight": torch.tensor([[True, False], [True, True]]), "2.weight": torch.tensor([[True, True]])}
    s = magnitude_scores(model, masks)
    assert torch.equal(s["0.weight"], torch.tensor([[3.0, 0.0], [0.5, 0.25]], dtype=torch.float64))
    assert torch.equal(s["2.weight"], torch.tensor([[2.0, 4.0]], dtype=torch.float64))
    a = random_scores(model, masks, generator=torch.Generator().manual_seed(1))
    b = model_scores("random", model, masks, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a[n], b[n]) and a[n].shape == s[n].shape for n in a)
    assert set(MODEL_CRITERIA) == {"magnitude", "random", "snip", "grasp", "synflow"}
    with pytest.raises(ValueError, match="unknown model criterion"):
        model_scores("magic", model)


def test_default_masks_use_model_buffers():
    model = nn.Sequential(linear([[1.0, -2.0, 3.0]]))
    assert torch.equal(magnitude_scores(model)["0.weight"], torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64))
    masks = Masking(model)
    masks.update("0.weight", torch.tensor([[True, False, True]]))
    assert torch.equal(magnitude_scores(model)["0.weight"], torch.tensor([[1.0, 0.0, 3.0]], dtype=torch.float64))


def test_take_batches():
    x, y = torch.zeros(4, 2), torch.zeros(4)
    assert len(take_batches((x, y), 3)) == 1
    loader = [(x, y), (x + 1, y), (x + 2, y)]
    got = take_batches(loader, 2)
    assert len(got) == 2 and torch.equal(got[1][0], x + 1)
    with pytest.raises(ValueError, match="init_data"):
        take_batches(None)


# ---------------------------------------------------------------------- SNIP
def test_snip_by_hand():
    # L = 1/2 (w.x - y)^2, w = [2, -1], x = [1, 3], y = 0.5
    # w.x = 2 - 3 = -1, residual = -1.5, g = -1.5 * x = [-1.5, -4.5]
    # |g * w| = [3.0, 4.5]
    model = linear([[2.0, -1.0]])
    x, y = torch.tensor([[1.0, 3.0]], dtype=torch.float64), torch.tensor([[0.5]], dtype=torch.float64)
    before = state(model)
    s = snip_scores(model, None, (x, y), loss_fn=half_mse)
    assert torch.allclose(s["weight"], torch.tensor([[3.0, 4.5]], dtype=torch.float64))
    assert_unchanged(model, before)
    # with w[1] pruned the loss is taken at theta * m: w.x = 2, residual = 1.5, g = [1.5, 4.5]
    # scores: |1.5 * 2| = 3, pruned weight (value 0 in theta * m) -> 0
    s = snip_scores(model, {"weight": torch.tensor([[True, False]])}, (x, y), loss_fn=half_mse)
    assert torch.allclose(s["weight"], torch.tensor([[3.0, 0.0]], dtype=torch.float64))
    assert_unchanged(model, before)


def test_snip_cross_entropy_and_batch_average():
    torch.manual_seed(0)
    model = linear(torch.randn(3, 4), bias=torch.randn(3))
    w = model.weight.detach()
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(5, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (5,), generator=gen))
               for _ in range(2)]

    def grad(x, y):  # dCE/dW = (softmax - onehot)^T x / N
        p = torch.softmax(x @ w.T + model.bias.detach(), 1)
        return (p - F.one_hot(y, 3).double()).T @ x / len(y)

    g = (grad(*batches[0]) + grad(*batches[1])) / 2
    s = snip_scores(model, None, batches, n_batches=2)
    assert torch.allclose(s["weight"], (g * w).abs())
    assert torch.allclose(model_scores("snip", model, data=batches)["weight"], (grad(*batches[0]) * w).abs())


# --------------------------------------------------------------------- GraSP
def tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()


@pytest.mark.parametrize("temperature", [1.0, 200.0])
def test_grasp_equals_theta_times_explicit_hessian_gradient(temperature):
    model = tiny_net()
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.randint(0, 3, (6,), generator=gen)
    names = ["0.weight", "2.weight"]
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    flat = torch.cat([params[n].detach().reshape(-1) for n in names])

    def loss(v):  # loss of logits / T as a function of the weights only (biases fixed)
        ws, i = {}, 0
        for n, s in zip(names, shapes):
            ws[n] = v[i:i + s.numel()].view(s)
            i += s.numel()
        return F.cross_entropy(functional_call(model, ws, (x,)) / temperature, y)

    H = torch.autograd.functional.hessian(loss, flat)            # (35, 35)
    g = torch.autograd.functional.jacobian(loss, flat)           # (35,)
    expected = flat * (H @ g)                                    # = -S(-theta) of GraSP
    before = state(model)
    s = grasp_scores(model, None, (x, y), temperature=temperature)
    got = torch.cat([s[n].reshape(-1) for n in names])
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-14)
    assert got.abs().max() > 0
    assert_unchanged(model, before)


def test_grasp_sign_convention_keeps_lowest_paper_score():
    # GraSP removes the weights with the highest S = -theta * Hg; our score is -S,
    # so keeping the top-k of our score removes exactly the highest S.
    model = tiny_net()
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(8, 3, generator=gen, dtype=torch.float64), torch.randint(0, 3, (8,), generator=gen)
    s = grasp_scores(model, None, (x, y))
    ours = torch.cat([v.reshape(-1) for v in s.values()])
    paper_S = -ours
    removed = torch.topk(paper_S, 10).indices
    kept = torch.topk(ours, ours.numel() - 10).indices
    assert set(removed.tolist()).isdisjoint(kept.tolist())


def test_grasp_batches_average_to_hessian_of_mean_loss():
    model = tiny_net()
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(8, 3, generator=gen, dtype=torch.float64), torch.randint(0, 3, (8,), generator=gen)
    whole = grasp_scores(model, None, (x, y), temperature=1.0)
    split = grasp_scores(model, None, [(x[:4], y[:4]), (x[4:], y[4:])], temperature=1.0, n_batches=2)
    for n in whole:
        assert torch.allclose(whole[n], split[n], rtol=1e-9, atol=1e-15)


# ------------------------------------------------------------------- SynFlow
def test_synflow_two_layer_by_hand():
    # R = 1^T |W2| |W1| 1; S(W1[i, j]) = |W1[i, j]| * sum_k |W2[k, i]|,
    #                      S(W2[k, i]) = |W2[k, i]| * sum_j |W1[i, j]|
    W1 = torch.tensor([[1.0, -2.0, 0.5, 3.0], [-1.0, 1.0, 2.0, -0.5], [0.25, 4.0, -1.0, 1.0]])
    W2 = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 1.0, 1.0]])
    model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(W1)
        model[2].weight.copy_(W2)
    before = state(model)
    s = synflow_scores(model, None, input_shape=(4,))
    col = W2.abs().sum(0)  # [5, 2, 1.5]
    row = W1.abs().sum(1)  # [6.5, 4.5, 6.25]
    assert s["0.weight"].dtype == torch.float64
    assert torch.allclose(s["0.weight"], (W1.abs() * col[:, None]).double())
    assert torch.allclose(s["2.weight"], (W2.abs() * row[None, :]).double())
    assert s["0.weight"][0, 0].item() == 1.0 * 5.0  # |W1[0,0]| * (|2| + |-3|)
    # conservation (paper, Theorem 1): each layer's scores sum to R = 1^T|W2||W1|1
    R = (W2.abs() @ W1.abs()).sum().item()
    assert s["0.weight"].sum().item() == pytest.approx(R) and s["2.weight"].sum().item() == pytest.approx(R)
    assert_unchanged(model, before)  # signs restored / never touched
    assert model.training


def test_synflow_applies_mask():
    W1 = torch.tensor([[1.0, -2.0], [3.0, 1.0]])
    W2 = torch.tensor([[-1.0, 2.0]])
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(W1)
        model[1].weight.copy_(W2)
    masks = {"0.weight": torch.tensor([[True, True], [False, True]]), "1.weight": torch.tensor([[True, True]])}
    s = synflow_scores(model, masks, input_shape=(2,))
    # masked |W1| = [[1, 2], [0, 1]]; col sums of |W2| = [1, 2]; row sums of masked |W1| = [3, 1]
    assert torch.allclose(s["0.weight"], torch.tensor([[1.0, 2.0], [0.0, 2.0]], dtype=torch.float64))
    assert torch.allclose(s["1.weight"], torch.tensor([[3.0, 2.0]], dtype=torch.float64))


def test_synflow_leaves_batchnorm_and_mode_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    model(torch.randn(4, 2, 6, 6))  # non-trivial running statistics
    before = state(model)
    s = model_scores("synflow", model, data=(torch.randn(5, 2, 6, 6), torch.zeros(5)))  # shape from data
    assert set(s) == {"0.weight", "4.weight"}
    assert all(bool(torch.isfinite(v).all()) and bool((v >= 0).all()) for v in s.values())
    assert_unchanged(model, before)
    assert model.training
    with pytest.raises(ValueError, match="input_shape"):
        model_scores("synflow", model)
