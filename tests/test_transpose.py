"""transposed_copy and TrulySparseLinear(compiled_transposes=True): the same bits as torch's copy.

The compiled kernel is built once per worker (Inductor caches it on disk), so the tests that
compile share one xdist group.
"""
import warnings

import pytest
import torch

import sparsenb.layers.transpose as tr
from sparsenb.layers import TrulySparseLinear, TrulySparseMLP, transposed_copy

BIG = (128, tr.MIN_COMPILED_NUMEL // 128)  # just large enough for the compiled path


def _fail_compile(*args, **kwargs):
    raise RuntimeError("no C++ compiler found\nsecond line")


@pytest.fixture
def fresh_state(monkeypatch):
    """A process state in which the kernel was neither built nor refused."""
    monkeypatch.setattr(tr, "_kernel", None)
    monkeypatch.setattr(tr, "_failure", None)


def test_column_major_input_is_returned_without_copy():
    x = torch.randn(64, 32).t()  # (32, 64), column-major: its .t() is contiguous
    out = transposed_copy(x, compiled=True)
    assert out.data_ptr() == x.data_ptr() and out.is_contiguous() and out.shape == (64, 32)


def test_eager_copy_is_the_contiguous_transpose():
    x = torch.randn(5, 7)
    out = transposed_copy(x)
    assert out.is_contiguous() and out.data_ptr() != x.data_ptr() and torch.equal(out, x.t())


def test_small_or_eager_calls_never_compile(fresh_state, monkeypatch):
    monkeypatch.setattr(torch, "compile", _fail_compile)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = torch.randn(16, 64)
        assert torch.equal(transposed_copy(small, compiled=True), small.t())  # under MIN_COMPILED_NUMEL
        big = torch.randn(*BIG)
        assert torch.equal(transposed_copy(big, compiled=False), big.t())
    assert tr.compiled_transpose_failure() is None and tr._kernel is None


def test_failed_compile_warns_once_and_falls_back(fresh_state, monkeypatch):
    monkeypatch.setattr(torch, "compile", _fail_compile)
    big = torch.randn(*BIG)
    with pytest.warns(RuntimeWarning, match=r"could not be compiled \(RuntimeError: no C\+\+ compiler found\)"):
        out = transposed_copy(big, compiled=True)
    assert torch.equal(out, big.t()) and out.is_contiguous()
    assert tr.compiled_transpose_failure() == "RuntimeError: no C++ compiler found"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning: the process stays on torch's copy
        assert torch.equal(transposed_copy(big, compiled=True), big.t())


@pytest.mark.xdist_group("inductor")
def test_compiled_copy_matches_torch_bit_for_bit():
    for shape in (BIG, (BIG[1] + 3, 129)):  # one kernel for all shapes (dynamic=True)
        x = torch.randn(*shape, dtype=torch.float32)
        out = transposed_copy(x, compiled=True)
        assert tr.compiled_transpose_failure() is None
        assert out.is_contiguous() and out.shape == (shape[1], shape[0]) and torch.equal(out, x.t())
    assert tr._kernel is not None


@pytest.mark.xdist_group("inductor")
@pytest.mark.parametrize("layout", ["row_major", "column_major"])
def test_layer_with_compiled_transposes_gives_the_same_bits(layout):
    n, width = BIG
    layers = [TrulySparseLinear(width, width, density=0.01, generator=torch.Generator().manual_seed(0),
                                compiled_transposes=c) for c in (False, True)]
    assert "compiled_transposes=True" in repr(layers[1]) and "compiled" not in repr(layers[0])
    assert layers[0].state_dict().keys() == layers[1].state_dict().keys()
    base = torch.randn(n, width, generator=torch.Generator().manual_seed(1))
    got = []
    for layer in layers:
        x = (base.clone() if layout == "row_major" else base.t().contiguous().t()).requires_grad_()
        y = layer(x)
        y.square().mean().backward()
        assert x.grad.stride() == x.stride()  # the input gradient arrives in the input's layout
        got.append((y.detach(), x.grad, layer.values.grad, layer.bias.grad))
    for a, b in zip(*got):
        assert torch.equal(a, b)
    assert tr.compiled_transpose_failure() is None


def test_layer_rejects_a_non_bool_switch():
    with pytest.raises(TypeError, match="compiled_transposes must be True or False, got 'no'"):
        TrulySparseLinear(8, 8, density=0.5, compiled_transposes="no")


def test_a_layer_pickled_before_the_setting_existed_still_runs():
    import pickle
    layer = TrulySparseLinear(8, 6, density=0.5, generator=torch.Generator().manual_seed(0))
    old = pickle.loads(pickle.dumps(layer))
    del old.__dict__["compiled_transposes"]  # as unpickled from a sparsenb without it
    x = torch.randn(3, 8)
    assert old.compiled_transposes is False and torch.equal(old(x), layer(x))


@pytest.mark.xdist_group("inductor")
def test_mlp_passes_compiled_transposes_to_every_layer_with_the_same_bits():
    n, width = BIG  # the first layer's input is over the compiled kernel's threshold
    mlps = [TrulySparseMLP([width, 64, 10], epsilon=4, generator=torch.Generator().manual_seed(0),
                           compiled_transposes=c) for c in (False, True)]
    assert [layer.compiled_transposes for layer in mlps[1].layers] == [True, True]
    assert [layer.compiled_transposes for layer in mlps[0].layers] == [False, False]
    x = torch.randn(n, width, generator=torch.Generator().manual_seed(1))
    got = []
    for mlp in mlps:
        out = mlp(x)
        out.square().mean().backward()
        got.append([out.detach()] + [p.grad for p in mlp.parameters()])
    for a, b in zip(*got):
        assert torch.equal(a, b)
    assert tr.compiled_transpose_failure() is None
