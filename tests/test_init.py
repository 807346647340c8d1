"""Sparsity-aware initialisation (sparsenb.core.init) and the signal-propagation report."""
import math

import pytest
import torch
from torch import nn

import sparsenb as snb
from sparsenb.core import init as si
from sparsenb.experiments.ctre import epsilon_sparsity, init_weights_
from sparsenb.layers.truly_sparse import TrulySparseLinear, evolve_set


def test_kept_fans_hand_computed():
    mask = torch.tensor([[1, 0, 1], [0, 0, 1]], dtype=torch.bool)  # (n_out=2, n_in=3)
    k_in, k_out = si.kept_fans(mask)
    assert k_in.tolist() == [[2, 2, 2], [1, 1, 1]]
    assert k_out.tolist() == [[1, 0, 2], [1, 0, 2]]


def test_sparse_rescale_multiplies_each_row_by_sqrt_dense_over_kept_fan_in():
    w = torch.ones(2, 4)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    si.sparse_init_(w, mask, "sparse")
    assert torch.allclose(w, torch.tensor([[1.0, 1, 1, 1], [2.0, 0, 0, 0]]))  # sqrt(4/4), sqrt(4/1)


def test_sparse_he_and_glorot_bounds_and_zero_pruned():
    torch.manual_seed(0)
    mask = torch.zeros(3, 50, dtype=torch.bool)
    mask[0, :2] = True    # k_in 2 -> He bound sqrt(3)
    mask[1, :50] = True   # k_in 50 -> He bound sqrt(6/50)
    w = torch.empty(3, 50)
    si.sparse_init_(w, mask, "sparse_he", torch.Generator().manual_seed(0))
    assert w[2].abs().sum() == 0 and w[~mask].abs().sum() == 0
    assert w[0, :2].abs().max() <= math.sqrt(3.0) and w[1].abs().max() <= math.sqrt(6 / 50)
    assert w[1].abs().max() > 0.8 * math.sqrt(6 / 50)  # it uses the range, not a smaller one
    g = torch.empty(3, 50)
    si.sparse_init_(g, mask, "sparse_glorot", torch.Generator().manual_seed(0))
    # position (0, 0): k_in 2, k_out (column 0) = 2 -> bound sqrt(6 / 4)
    assert g[0, 0].abs() <= math.sqrt(1.5) and g[~mask].abs().sum() == 0


def test_dense_init_changes_nothing_and_unknown_init_is_refused():
    torch.manual_seed(0)
    a, b = nn.Linear(20, 10), nn.Linear(20, 10)
    b.load_state_dict(a.state_dict())
    snb.sparsify(b, 0.5, seed=0, init="dense")
    assert torch.equal(a.weight[b.weight_mask], b.weight[b.weight_mask])
    with pytest.raises(ValueError, match="unknown init 'kaiming'"):
        snb.sparsify(nn.Linear(4, 4), 0.5, init="kaiming")
    with pytest.raises(ValueError, match="unknown init"):
        snb.methods.get("set", init="xavier")


def _mlp(family: str, sparse: bool, init: str = "dense") -> nn.Module:
    """3 hidden layers of width 1000 on 500 inputs, 10 classes; ER eps = 1 when sparse (every layer)."""
    torch.manual_seed(0)
    model = snb.models.build("mlp", (500,), 10, hidden=(1000, 1000, 1000))
    if family == "glorot":
        init_weights_(model, "glorot")  # Glorot-uniform, zero bias (the CTRE code's TensorFlow default)
    if sparse:
        shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")}
        snb.sparsify(model, epsilon_sparsity(shapes, 1.0), "er", seed=0, init=init)
    return model


@pytest.mark.parametrize("family,sparse_inits", [("glorot", ["sparse", "sparse_glorot"]), ("torch", ["sparse"])])
def test_sparse_aware_init_keeps_output_std_within_2x_of_dense_at_er_eps_1(family, sparse_inits):
    x = torch.randn(256, 500)
    dense = si.signal_report(_mlp(family, sparse=False), x)[-1]["activation_std"]
    starved = si.signal_report(_mlp(family, sparse=True, init="dense"), x)[-1]["activation_std"]
    assert not dense / 2 <= starved <= 2 * dense, (family, starved, dense)  # the dense-scale init starves it
    for init in sparse_inits:
        out = si.signal_report(_mlp(family, sparse=True, init=init), x)[-1]["activation_std"]
        assert dense / 2 <= out <= 2 * dense, (family, init, out, dense)


def test_signal_report_hand_computed():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        model[2].weight.copy_(torch.tensor([[2.0, 3.0]]))
    snb.Masking(model)  # all-ones masks: density 1
    x = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    rows = si.signal_report(model, x)
    assert [r["layer"] for r in rows] == ["0", "2", "output"]
    assert rows[0]["input_std"] == pytest.approx(float(x.std()))
    assert rows[0]["activation_std"] == pytest.approx(float(torch.tensor([1.0, -2.0, 3.0, 4.0]).std()))
    h = torch.tensor([[1.0, 0.0], [3.0, 4.0]])  # ReLU of the first layer's output
    out = torch.tensor([2.0, 18.0])
    assert rows[1]["input_std"] == pytest.approx(float(h.std()))
    assert rows[1]["activation_std"] == rows[2]["activation_std"] == pytest.approx(float(out.std()))
    assert rows[0]["density"] == 1.0 and "grad_std" not in rows[0]


def test_signal_report_gradients_only_over_kept_weights_and_leaves_grads_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    masks = snb.sparsify(model, 0.5, seed=0)
    x, y = torch.randn(5, 8), torch.randint(0, 3, (5,))
    rows = si.signal_report(model, x, y)
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    g = model[0].weight.grad[masks["0.weight"]]
    assert rows[0]["grad_std"] == pytest.approx(float(g.std()))
    assert rows[0]["density"] == pytest.approx(masks["0.weight"].float().mean().item())
    model.zero_grad(set_to_none=True)
    si.signal_report(model, x, y)
    assert model[0].weight.grad is None  # the caller's gradients are restored


def test_method_init_applies_once_after_init_masks_and_regrowth_follows_the_rule():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
    ref = [p.detach().clone() for p in model.parameters()]
    meth = snb.methods.get("set", sparsity=0.9, init="sparse", drop_fraction=0.5, seed=0)
    masks = meth.init_masks(model)
    assert masks.init == "sparse"
    m0 = masks["0.weight"]
    k = m0.sum(1, keepdim=True).clamp(min=1)
    expected = ref[0] * (100 / k).sqrt() * m0  # rescaled exactly once (not twice through super())
    assert torch.allclose(model[0].weight, expected)
    # regrowth: new weights of a sparse_he method lie within sqrt(6 / k_in) of their row
    meth = snb.methods.get("set", sparsity=0.9, init="sparse_he", drop_fraction=0.5, seed=0)
    masks = meth.init_masks(model)
    meth.setup(10, 1, 10)
    before = masks["0.weight"].clone()
    meth.on_epoch_end(0, masks)
    after = masks["0.weight"]
    grown = after & ~before
    bound = (6 / after.sum(1, keepdim=True).clamp(min=1).float()).sqrt().expand_as(after)
    assert grown.any() and bool((model[0].weight[grown].abs() <= bound[grown]).all())
    assert float(model[0].weight.detach()[grown].abs().max()) > 1 / math.sqrt(100)  # larger than the dense-fan-in range


def test_truly_sparse_linear_sparse_he_matches_kept_fan_in_variance_and_regrowth():
    g = torch.Generator().manual_seed(0)
    layer = TrulySparseLinear(1000, 400, epsilon=2, init="sparse_he", generator=g)
    k_in = torch.bincount(layer.rows, minlength=400).clamp(min=1).float()
    bound = (6 / k_in[layer.rows]).sqrt()
    assert bool((layer.values.detach().abs() <= bound).all())
    x = torch.randn(512, 1000)
    pre = layer(x).detach()
    dense = TrulySparseLinear(1000, 400, epsilon=2, init="he_uniform", generator=torch.Generator().manual_seed(0))
    assert pre.std() > 5 * dense(x).detach().std()  # the dense fan-in starves it (density ~0.5 %)
    assert 0.7 < float(pre.var() / 2) < 1.3  # Var(z) = k_in * 2/k_in * E[x^2] = 2 for every neuron with inputs
    before = layer.linear_indices().clone()
    evolve_set(layer, 0.3, generator=g)
    new = ~torch.isin(layer.linear_indices(), before)
    k_in = torch.bincount(layer.rows, minlength=400).clamp(min=1).float()
    assert new.sum() > 0
    assert bool((layer.values.detach()[new].abs() <= (6 / k_in[layer.rows[new]]).sqrt()).all())
    assert float(layer.values.detach()[new].abs().max()) > math.sqrt(6 / 1000)  # not the dense fan-in range
    with pytest.raises(ValueError, match="init must be one of"):
        TrulySparseLinear(4, 4, density=0.5, init="sparse")
