"""sparsenb.core.topk.topk_indices returns the same index set as torch.topk, ties and specials included."""
import pytest
import torch

from sparsenb.core.topk import topk_indices


def _same_set(score, k, largest):
    ours = topk_indices(score, k, largest=largest)
    ref = torch.topk(score, k, largest=largest, sorted=False).indices
    assert ours.dtype == torch.int64 and ours.numel() == k
    assert torch.equal(ours.sort().values, ref.sort().values)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("kind", ["normal", "abs_with_zeros", "few_values", "inf_sentinels", "sorted", "nan"])
def test_same_set_as_torch_topk(kind, largest):
    g = torch.Generator().manual_seed(hash((kind, largest)) % 2**31)
    n = 200_003
    x = torch.randn(n, generator=g)
    if kind == "abs_with_zeros":  # magnitudes with a block of exact zeros (grown-at-zero weights)
        x = x.abs()
        x[torch.rand(n, generator=g) < 0.3] = 0.0
    elif kind == "few_values":     # heavy ties everywhere: must fall back and match torch
        x = torch.randint(0, 5, (n,), generator=g).float()
    elif kind == "inf_sentinels":  # the masked_fill(+-inf) of drop and grow scores
        x[torch.rand(n, generator=g) < 0.9] = float("inf") if not largest else float("-inf")
    elif kind == "sorted":         # a strided sample of a sorted input is still a fair sample
        x = x.sort().values
    elif kind == "nan":
        x[123] = float("nan")
    for k in (1, 37, 5_000, 40_000):
        _same_set(x, k, largest)


def test_small_and_integer_inputs_use_torch_topk():
    x = torch.arange(100)
    assert sorted(topk_indices(x, 3).tolist()) == [97, 98, 99]
    assert sorted(topk_indices(x.float(), 2, largest=False).tolist()) == [0, 1]
    assert topk_indices(torch.randn(1 << 17), 0).numel() == 0


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="1-D"):
        topk_indices(torch.randn(3, 3), 1)
    with pytest.raises(ValueError, match="outside"):
        topk_indices(torch.randn(10), 11)
