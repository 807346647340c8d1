"""Tests for sparsenb.layers.truly_sparse (Curci, Mocanu, Pechenizkiy 2021).

The truly sparse layer is checked against a dense ``nn.Linear`` whose weight is
its ``to_dense()`` (outputs, input gradients, value gradients = the dense weight
gradient at the nonzeros); the SET evolution, importance pruning, All-ReLU and
the ER density on hand-made cases; the absence of any dense n_in x n_out tensor
in forward/backward with a dispatch mode that sees every op's output.

The tests run with one intra-op thread (restored afterwards): on a shared,
oversubscribed 2-core machine OpenMP's spinning threads made the tiny
matrices of these tests ~100x slower, with no effect on the results.
"""
import math
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from sparsenb.layers import (
    AllReLU,
    TrulySparseLinear,
    TrulySparseMLP,
    er_density,
    evolve_set,
    importance_prune,
    neuron_importance,
    sample_positions,
    should_prune,
)
from sparsenb.layers.truly_sparse import _percentile

FAST = settings(max_examples=40, deadline=None)
# pytest resets warning filters per test; the module's filter for torch's one-time notice then no longer applies
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state")


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sorted_unique(layer: TrulySparseLinear) -> bool:
    lin = layer.linear_indices()
    return bool((lin[1:] > lin[:-1]).all()) and bool(((layer.rows >= 0) & (layer.rows < layer.out_features)).all()) \
        and bool(((layer.cols >= 0) & (layer.cols < layer.in_features)).all())


def dense_twin(layer: TrulySparseLinear) -> nn.Linear:
    lin = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        lin.weight.copy_(layer.to_dense())
        if layer.bias is not None:
            lin.bias.copy_(layer.bias)
    return lin


# ----------------------------------------------------------- numerics vs dense
@FAST
@given(n_in=st.integers(1, 40), n_out=st.integers(1, 40), density=st.floats(0.01, 1.0),
       batch=st.integers(1, 9), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_matches_dense_linear(n_in, n_out, density, batch, bias, seed):
    g = torch.Generator().manual_seed(seed)
    layer = TrulySparseLinear(n_in, n_out, density=density, bias=bias, generator=g)
    assert layer.nnz == round(density * n_in * n_out) and sorted_unique(layer)
    dense = dense_twin(layer)
    x = torch.randn(batch, n_in, generator=g)
    gy = torch.randn(batch, n_out, generator=g)
    xs, xd = x.clone().requires_grad_(), x.clone().requires_grad_()
    ys, yd = layer(xs), dense(xd)
    torch.testing.assert_close(ys, yd, atol=1e-5, rtol=1e-5)
    (ys * gy).sum().backward()
    (yd * gy).sum().backward()
    torch.testing.assert_close(xs.grad, xd.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.values.grad, dense.weight.grad[layer.rows, layer.cols], atol=1e-5, rtol=1e-5)
    if bias:
        torch.testing.assert_close(layer.bias.grad, dense.bias.grad, atol=1e-5, rtol=1e-5)


def test_leading_dims_and_float64_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    layer = TrulySparseLinear(7, 5, density=0.4, generator=g, dtype=torch.float64)
    x = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 3, 5)
    torch.testing.assert_close(y, x @ layer.to_dense().T + layer.bias)
    x2 = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    v = layer.values.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, w: _with_values(layer, a, w), (x2, v))
    b = layer.bias.detach().clone().requires_grad_()  # the bias is fused into the sparse product
    assert torch.autograd.gradcheck(lambda a, w, c: _with_values(layer, a, w, c), (x2, v, b))


def test_fused_bias_gives_the_same_bits_as_adding_it():
    layer = TrulySparseLinear(64, 48, density=0.2, generator=torch.Generator().manual_seed(3))
    x = torch.randn(16, 64, requires_grad=True)
    y = layer(x)
    x2 = x.detach().clone().requires_grad_()
    ref = _with_values(layer, x2, layer.values, None) + layer.bias
    assert torch.equal(y, ref)
    g = torch.randn(16, 48)
    y.backward(g)
    gb = layer.bias.grad.clone()
    layer.bias.grad = None
    ref.backward(g)
    assert torch.equal(gb, layer.bias.grad) and torch.equal(x.grad, x2.grad)


def _with_values(layer: TrulySparseLinear, x: torch.Tensor, values: torch.Tensor,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
    from sparsenb.layers.truly_sparse import _SparseLinearFunction
    return _SparseLinearFunction.apply(x.reshape(-1, layer.in_features), values, bias, layer.crow, layer.cols_k,
                                       layer.crow_t, layer.rows_t, layer.perm_t, layer.vals_t, layer.zeros,
                                       (layer.out_features, layer.in_features), layer.compiled_transposes)


def test_no_grad_paths_and_input_without_grad():
    layer = TrulySparseLinear(6, 4, density=0.5, generator=torch.Generator().manual_seed(1))
    x = torch.randn(3, 6)
    layer(x).sum().backward()  # x needs no grad: only values/bias get one
    assert layer.values.grad is not None
    with torch.no_grad():
        assert layer(x).shape == (3, 4)


# --------------------------------------------------------------- construction
def test_er_density_hand_case():
    # eps (n_in + n_out) / (n_in n_out): 2 * (4 + 6) / 24 = 20/24
    assert er_density(4, 6, 2.0) == pytest.approx(20 / 24)
    layer = TrulySparseLinear(4, 6, epsilon=2.0, generator=torch.Generator().manual_seed(0))
    assert layer.nnz == 20 and layer.density == pytest.approx(20 / 24)
    # capped at 1: eps = 10 -> 100/24 > 1 -> dense
    assert er_density(4, 6, 10.0) == 1.0
    assert TrulySparseLinear(4, 6, epsilon=10.0).nnz == 24
    # the paper's MNIST-sized first layer: 20 * (784 + 1000) = 35680 connections
    assert TrulySparseLinear(784, 1000, epsilon=20).nnz == 35680


def test_constructor_errors_and_repr():
    with pytest.raises(ValueError, match="exactly one"):
        TrulySparseLinear(3, 3)
    with pytest.raises(ValueError, match="exactly one"):
        TrulySparseLinear(3, 3, density=0.5, epsilon=1.0)
    with pytest.raises(ValueError):
        TrulySparseLinear(3, 3, density=0.0)
    r = repr(TrulySparseLinear(10, 10, density=0.3))
    assert "nnz=30" in r and "density=0.3" in r


def test_init_range_uses_dense_fan_in():
    layer = TrulySparseLinear(400, 50, density=0.1, generator=torch.Generator().manual_seed(0))
    assert layer.values.abs().max() <= 1 / math.sqrt(400)
    assert layer.values.abs().max() > 0.9 / math.sqrt(400)
    he = TrulySparseLinear(400, 50, density=0.1, init="he_uniform")
    assert he.values.abs().max() <= math.sqrt(6 / 400) and bool((he.bias == 0).all())


@pytest.mark.parametrize("total,k,n_excl", [(10, 10, 0), (10, 3, 5), (1000, 900, 50), (10**12, 5000, 2000)])
def test_sample_positions_exact_distinct_and_excluding(total, k, n_excl):
    g = torch.Generator().manual_seed(0)
    excl = sample_positions(total, n_excl, generator=g)
    got = sample_positions(total, k, excl, generator=g)
    assert got.numel() == k and bool((got[1:] > got[:-1]).all())
    assert not bool(torch.isin(got, excl).any())
    assert int(got.min()) >= 0 and int(got.max()) < total
    with pytest.raises(ValueError):
        sample_positions(total, total - n_excl + 1, excl, generator=g)


def test_sample_positions_is_uniform():
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(20)
    for _ in range(2000):
        counts[sample_positions(20, 5, torch.tensor([3, 7]), generator=g)] += 1
    assert counts[3] == 0 and counts[7] == 0
    free = counts[[i for i in range(20) if i not in (3, 7)]]
    # each free position is drawn with prob 5/18: 555.6 expected, std ~20
    assert float((free - 2000 * 5 / 18).abs().max()) < 90


# -------------------------------------------------- no dense n_in x n_out tensor
class _MaxStrided(TorchDispatchMode):
    """Records the largest numel of any strided tensor produced by any op."""

    def __init__(self):
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else [out]):
            if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                self.max_numel = max(self.max_numel, t.numel())
        return out


def test_forward_backward_never_build_a_dense_weight():
    layer = TrulySparseLinear(300, 400, density=0.05, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 300, requires_grad=True)
    with _MaxStrided() as mode:
        layer(x).square().sum().backward()
    assert layer.values.grad is not None and x.grad is not None
    assert 0 < mode.max_numel < 300 * 400 // 10  # nnz = 6000, x/y ~ 1600; dense would be 120000


def test_huge_layer_runs_fast():
    # a dense weight or weight gradient would need 4e10 bytes
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    layer = TrulySparseLinear(100_000, 100_000, density=1e-6, generator=g)
    x = torch.randn(4, 100_000, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad.shape == (4, 100_000) and layer.values.grad.shape == (10_000,)
    evolve_set(layer, 0.3, generator=g)
    assert layer.nnz == 10_000 and sorted_unique(layer) and layer.values.grad is None  # stale grad dropped
    assert time.perf_counter() - t0 < 10.0


# ----------------------------------------------------------------------- SET
@FAST
@given(n_in=st.integers(2, 30), n_out=st.integers(2, 30), density=st.floats(0.05, 0.95),
       zeta=st.floats(0.0, 0.9), opt=st.sampled_from(["sgd", "adam"]), grow=st.sampled_from(["init", "zero"]),
       seed=st.integers(0, 2**16))
def test_evolve_set_invariants(n_in, n_out, density, zeta, opt, grow, seed):
    g = torch.Generator().manual_seed(seed)
    layer = TrulySparseLinear(n_in, n_out, density=density, generator=g)
    optim = (torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9) if opt == "sgd"
             else torch.optim.Adam(layer.parameters(), lr=0.01))
    x = torch.randn(5, n_in, generator=g)
    layer(x).square().sum().backward()
    optim.step()
    nnz = layer.nnz
    old_lin, old_vals = layer.linear_indices().clone(), layer.values.detach().clone()
    old_state = {k: v.clone() for k, v in optim.state[layer.values].items() if v.dim() == 1}
    param = layer.values

    out = evolve_set(layer, zeta, optimizer=optim, generator=g, grow_init=grow)

    # exact nnz, sorted unique structure, same Parameter object
    assert layer.nnz == nnz and out["dropped"] == out["grown"] and sorted_unique(layer)
    assert layer.values is param and optim.param_groups[0]["params"][0] is param
    # the SET rule, per sign: dropped non-negatives <= kept non-negatives, dropped negatives >= kept negatives
    lin = layer.linear_indices()
    n_pos, n_neg = int((old_vals >= 0).sum()), int((old_vals < 0).sum())
    assert out["dropped"] == round(zeta * n_pos) + round(zeta * n_neg)
    # kept = old connections present with unchanged value (a dropped position may be regrown)
    pos = torch.searchsorted(lin, old_lin).clamp(max=nnz - 1)
    present = lin[pos] == old_lin
    same = present & (layer.values.detach()[pos] == old_vals)
    assert int(same.sum()) >= nnz - out["dropped"]
    kept = old_vals[same]
    for sel, lo_is_drop in ((old_vals >= 0, True), (old_vals < 0, False)):
        k_sel, d_sel = kept[kept >= 0] if lo_is_drop else kept[kept < 0], old_vals[sel & ~same]
        if k_sel.numel() and d_sel.numel():
            assert (d_sel.max() <= k_sel.min()) if lo_is_drop else (d_sel.min() >= k_sel.max())
    # optimizer state: same shape as values, kept entries preserved, new entries zero
    state = optim.state[layer.values]
    new_mask = torch.ones(nnz, dtype=torch.bool)
    new_mask[pos[same]] = False
    for key, old in old_state.items():
        assert state[key].shape == layer.values.shape
        torch.testing.assert_close(state[key][pos[same]], old[same], atol=0, rtol=0)
        assert bool((state[key][new_mask] == 0).all())
        if grow == "zero":
            assert bool((layer.values.detach()[new_mask] == 0).all())
    # training continues with the same optimizer
    layer(x).square().sum().backward()
    optim.step()
    assert layer.values.grad.shape == (nnz,)


def test_evolve_set_hand_case():
    layer = TrulySparseLinear(3, 2, density=1.0)  # positions 0..5
    with torch.no_grad():
        layer.values.copy_(torch.tensor([0.5, -0.1, 0.05, -0.7, 0.9, -0.02]))
    # zeta 0.5: positives 0.5, 0.05, 0.9 -> drop round(1.5)=2 smallest (0.05, 0.5);
    # negatives -0.1, -0.7, -0.02 -> drop 2 largest (-0.02, -0.1). Layer is full: they all regrow.
    out = evolve_set(layer, 0.5, grow_init="zero", generator=torch.Generator().manual_seed(0))
    assert out == {"dropped": 4, "grown": 4, "nnz": 6}
    torch.testing.assert_close(layer.values.detach(), torch.tensor([0.0, 0.0, 0.0, -0.7, 0.9, 0.0]))


# ----------------------------------------------------------- importance pruning
def test_importance_prune_hand_case():
    layer = TrulySparseLinear(4, 3, density=1.0)  # rows 0,0,0,0,1,1,1,1,2,2,2,2
    w = torch.tensor([[0.5, -0.5, 0.0, 0.0],   # importance 1.0
                      [0.1, 0.1, -0.1, 0.0],   # importance 0.3
                      [1.0, -1.0, 0.0, 0.0]])  # importance 2.0
    with torch.no_grad():
        layer.values.copy_(w.reshape(-1))
    opt = torch.optim.SGD(layer.parameters(), lr=0.0, momentum=0.9)  # lr 0: fills momentum, keeps w
    layer(torch.randn(2, 4)).sum().backward()
    opt.step()
    torch.testing.assert_close(neuron_importance(layer), torch.tensor([1.0, 0.3, 2.0]))
    # numpy.percentile([0.3, 1, 2], 34) = 0.3 + 0.68 * 0.7 = 0.776 -> neuron 1 only
    assert float(_percentile(torch.tensor([1.0, 0.3, 2.0]), 34)) == pytest.approx(0.776)
    removed = importance_prune(layer, 34, optimizer=opt)
    assert removed.tolist() == [1]
    assert layer.nnz == 8 and sorted_unique(layer) and not bool((layer.rows == 1).any())
    assert opt.state[layer.values]["momentum_buffer"].shape == (8,)
    dense = layer.to_dense().detach()
    torch.testing.assert_close(dense[[0, 2]], w[[0, 2]])
    assert bool((dense[1] == 0).all())
    layer(torch.randn(2, 4)).sum().backward()
    opt.step()  # the optimizer follows the smaller structure


def test_should_prune_schedule():
    assert [e for e in range(0, 241) if should_prune(e, start=200, every=10)] == [210, 220, 230, 240]
    assert should_prune(5, start=0, every=5) and not should_prune(0, start=0, every=5)


def test_state_dict_roundtrip_after_pruning():
    g = torch.Generator().manual_seed(0)
    a = TrulySparseLinear(20, 10, density=0.5, generator=g)
    importance_prune(a, 30)
    evolve_set(a, 0.3, generator=g)
    b = TrulySparseLinear(20, 10, density=0.5, generator=torch.Generator().manual_seed(1))
    assert b.nnz != a.nnz
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 20)
    torch.testing.assert_close(b(x), a(x))
    assert b.nnz == a.nnz and sorted_unique(b)


# -------------------------------------------------------------------- All-ReLU
def test_allrelu_hand_values():
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5], requires_grad=True)
    even, odd = AllReLU(0.6, 0), AllReLU(0.6, 1)
    torch.testing.assert_close(even(x), torch.tensor([1.2, 0.3, 0.0, 1.5]))
    torch.testing.assert_close(odd(x), torch.tensor([-1.2, -0.3, 0.0, 1.5]))
    assert AllReLU(0.6, 2).negative_slope == -0.6 and AllReLU(0.6, 3).negative_slope == 0.6
    even(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.6, -0.6, -0.6, 1.0]))


# ------------------------------------------------------------------------ MLP
def test_mlp_structure():
    mlp = TrulySparseMLP([30, 20, 20, 3], epsilon=2, activation="allrelu", alpha=0.5,
                         generator=torch.Generator().manual_seed(0))
    assert [l.nnz for l in mlp.layers] == [100, 80, 46]  # round(2 * (n_in + n_out)), last layer 46 < 60
    assert [a.negative_slope for a in mlp.activations] == [-0.5, 0.5]
    assert mlp(torch.randn(4, 5, 6)).shape == (4, 3)  # input flattened
    before = mlp.layers[-1].linear_indices().clone()
    mlp.evolve(0.3)  # the output layer is not evolved by default
    torch.testing.assert_close(mlp.layers[-1].linear_indices(), before)


def test_tiny_mlp_learns_with_evolution_and_pruning():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, generator=g)
    y = (x @ torch.randn(20, generator=g) > 0).long()
    mlp = TrulySparseMLP([20, 64, 64, 2], epsilon=4, activation="allrelu", generator=g)
    opt = torch.optim.Adam(mlp.parameters(), lr=0.01)
    with torch.no_grad():
        first = float(F.cross_entropy(mlp(x), y))
    for step in range(150):
        opt.zero_grad()
        F.cross_entropy(mlp(x), y).backward()
        opt.step()
        if step in (50, 100):
            nnz = mlp.nnz()
            mlp.evolve(0.2, optimizer=opt, generator=g)
            assert mlp.nnz() == nnz
        if step == 75:
            removed = mlp.importance_prune(10, optimizer=opt)
            assert all(r.numel() >= 1 for r in removed)
    with torch.no_grad():
        last = float(F.cross_entropy(mlp(x), y))
        acc = float((mlp(x).argmax(1) == y).float().mean())
    assert last < 0.5 * first and last < 0.3 and acc > 0.9


def test_cpu_autocast_runs_in_value_dtype():
    layer = TrulySparseLinear(8, 6, density=0.5, generator=torch.Generator().manual_seed(0))
    x = torch.randn(4, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, x @ layer.to_dense().T + layer.bias)
    y.sum().backward()
    assert x.grad.dtype == torch.float32 and layer.values.grad.dtype == torch.float32


def test_kernel_caches_per_topology_and_column_major_chain():
    """The backward reuses the cached W^T value buffer (no per-step allocation), the kernels
    get int32 indices, and a chain of layers computes on column-major activations correctly."""
    g = torch.Generator().manual_seed(3)
    a = TrulySparseLinear(9, 7, density=0.4, generator=g, bias=False)
    b = TrulySparseLinear(7, 5, density=0.5, generator=g)
    assert a.crow.dtype == a.cols_k.dtype == a.crow_t.dtype == a.rows_t.dtype == torch.int32
    ptr = a.vals_t.data_ptr()
    x = torch.randn(4, 9, requires_grad=True)
    for _ in range(2):
        a.values.grad = b.values.grad = x.grad = None
        h = a(x)
        assert h.stride() == (1, 4) and not h._is_view()
        h.relu_()  # in place on the layer's output (no bias): allowed, it is not a view
        out = b(h)
        out.square().sum().backward()
    assert a.vals_t.data_ptr() == ptr  # the same buffer, refilled
    assert torch.equal(a.vals_t, a.values.detach()[a.perm_t])
    # the same computation with dense weights
    wa, wb = a.to_dense().detach().requires_grad_(), b.to_dense().detach().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    ((torch.relu(x2 @ wa.T) @ wb.T + b.bias.detach()).square().sum()).backward()
    torch.testing.assert_close(x.grad, x2.grad)
    lin = a.linear_indices()
    torch.testing.assert_close(a.values.grad, wa.grad.reshape(-1)[lin])
    # a new topology rebuilds the buffers at the new size
    a.set_structure(lin[:5], a.values.detach()[:5])
    assert a.vals_t.numel() == a.zeros.numel() == 5 and a.cols_k.numel() == 5


def test_spmm_writes_the_same_bits_as_matmul_into_uninitialised_memory():
    """``_spmm`` (addmm into a fresh ``out`` with beta=0) equals ``a @ b`` bit for bit and never
    reads ``out``: garbage (here NaN) in the fresh buffer does not leak into the result."""
    from sparsenb.layers.truly_sparse import _csr, _spmm
    layer = TrulySparseLinear(300, 200, density=0.05, generator=torch.Generator().manual_seed(0))
    w = _csr(layer.crow, layer.cols_k, layer.values.detach(), (200, 300))
    b = torch.randn(300, 64)
    out = torch.full((200, 64), float("nan"))
    assert torch.equal(torch.addmm(out, w, b, beta=0.0, out=out), w @ b)
    for threads in (1, 2):  # the autouse fixture one_thread restores the count afterwards
        torch.set_num_threads(threads)
        assert torch.equal(_spmm(w, b), w @ b)


def test_mlp_relu_in_place_gives_the_same_bits_as_out_of_place():
    """TrulySparseMLP applies ReLU in place on each layer's fresh output (one activation-sized
    tensor less per hidden layer): outputs and every gradient are bit-identical to ``F.relu``."""
    mlp = TrulySparseMLP([20, 32, 32, 3], epsilon=3, generator=torch.Generator().manual_seed(0))
    assert all(a.inplace for a in mlp.activations)
    x = torch.randn(8, 20)
    out = mlp(x)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in mlp.parameters()]
    for p in mlp.parameters():
        p.grad = None
    h = x
    for layer in mlp.layers[:-1]:
        h = torch.nn.functional.relu(layer(h))
    ref = mlp.layers[-1](h)
    ref.square().sum().backward()
    assert torch.equal(out, ref)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, mlp.parameters()))



@pytest.mark.parametrize("activation,dropout", [("relu", 0.0), ("allrelu", 0.3)])
def test_hidden_layers_of_mlp_see_column_major_inputs_and_gradients(activation, dropout):
    """What ``benchmarks/truly_sparse.py`` times as the "hidden" context: inside a TrulySparseMLP a
    hidden layer gets a column-major input (the previous layer's output through the activation
    and dropout) and a column-major upstream gradient (the next layer's input gradient), so
    neither its forward nor its backward copies data into another layout."""
    mlp = TrulySparseMLP([12, 16, 16, 16, 3], epsilon=2, activation=activation, dropout=dropout,
                         generator=torch.Generator().manual_seed(0)).train()
    seen = {}

    def keep_input(module, args):
        seen["x"] = args[0].stride()

    def keep_output(module, args, out):
        out.register_hook(lambda g: seen.__setitem__("g", g.stride()))

    mlp.layers[1].register_forward_pre_hook(keep_input)
    mlp.layers[1].register_forward_hook(keep_output)
    x = torch.randn(8, 12)
    F.cross_entropy(mlp(x), torch.randint(0, 3, (8,))).backward()
    assert seen["x"] == (1, 8) and seen["g"] == (1, 8)
