"""FastDropout: drop rate, scale, layout, gradient, reproducibility and bad input."""
import pytest
import torch

from sparsenb.layers import FastDropout, TrulySparseMLP, dropout_mask, fast_dropout


def test_drop_rate_and_scale_match_p():
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    y = fast_dropout(x, 0.3)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.004  # 400k Bernoulli(0.3) draws: sd 0.0007
    k = round(0.3 * 2 ** 16)
    assert torch.allclose(y[y != 0], torch.tensor(2 ** 16 / (2 ** 16 - k)))
    assert abs(y.mean().item() - 1.0) < 0.01  # expectation kept


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_every_bit_lane_is_used(p):
    torch.manual_seed(1)
    mask = dropout_mask(torch.empty(1000, 400), p)
    # the four 16-bit lanes of each 64-bit word drop at the same rate
    lanes = (mask == 0).reshape(-1, 4).float().mean(0)
    assert torch.all((lanes - p).abs() < 0.01), lanes


def test_column_major_input_keeps_its_layout_and_gets_the_transposed_mask():
    x = torch.randn(300, 64).t()  # (64, 300) with strides (1, 64), as TrulySparseLinear returns
    torch.manual_seed(2)
    y = fast_dropout(x, 0.4)
    torch.manual_seed(2)
    y_t = fast_dropout(x.t().contiguous(), 0.4)
    assert y.stride() == x.stride()
    assert torch.equal(y, y_t.t())


def test_other_layouts_are_made_contiguous():
    x = torch.randn(8, 10, 12).permute(2, 0, 1)
    torch.manual_seed(3)
    y = fast_dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(y, fast_dropout(x.contiguous(), 0.5))
    with pytest.raises(ValueError, match="contiguous"):
        dropout_mask(x, 0.5)


def test_gradient_is_the_mask():
    torch.manual_seed(4)
    x = torch.randn(32, 50, requires_grad=True)
    y = fast_dropout(x, 0.3)
    g = torch.randn_like(y)
    y.backward(g)
    kept = y.detach() != 0
    scale = (y.detach()[kept] / x.detach()[kept]).mean()
    assert torch.allclose(x.grad, g * kept * scale)


def test_same_seed_same_mask_and_generator_is_used():
    x = torch.randn(64, 64)
    torch.manual_seed(5)
    a = fast_dropout(x, 0.3)
    torch.manual_seed(5)
    b = fast_dropout(x, 0.3)
    assert torch.equal(a, b)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(fast_dropout(x, 0.3, generator=g1), fast_dropout(x, 0.3, generator=g2))
    assert not torch.equal(fast_dropout(x, 0.3, generator=g1), a)


def test_edges_and_eval_mode():
    x = torch.randn(16, 16)
    assert fast_dropout(x, 0.0) is x
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))
    m = FastDropout(0.5).eval()
    assert m(x) is x
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            FastDropout(bad)
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            fast_dropout(x, bad)


def test_truly_sparse_mlp_uses_fast_dropout_only_in_training():
    torch.manual_seed(6)
    model = TrulySparseMLP([20, 30, 30, 5], epsilon=3, dropout=0.3)
    assert isinstance(model.dropout, FastDropout)
    x = torch.randn(8, 20)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_mask_does_not_depend_on_the_thread_count():
    x = torch.randn(256, 1000)
    before = torch.get_num_threads()
    masks = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(7)
            masks.append(dropout_mask(x, 0.3))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(masks[0], masks[1])
