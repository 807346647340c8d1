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
    elif kind == "sorted":         # the hashed sample of a sorted input is still a fair sample
        x = x.sort().values
    elif kind == "nan":
        x[123] = float("nan")
    for k in (1, 37, 5_000, 40_000):
        _same_set(x, k, largest)


@pytest.mark.parametrize("largest", [True, False])
def test_column_structured_scores_take_the_fast_path(monkeypatch, largest):
    """A weight gradient's magnitudes ``|delta_i x_j|`` are correlated along columns; the sample
    must see many columns, or its threshold misses and the full ``torch.topk`` runs (it did with a
    stride of ``n // 16384`` = 256 columns on a 2048-wide layer: 8 columns only)."""
    g = torch.Generator().manual_seed(7)
    rows, cols = torch.rand(2048, generator=g), torch.rand(2048, generator=g) ** 8
    score = (rows[:, None] * cols[None, :]).reshape(-1)
    k = 100_000
    full_calls = []
    real_topk = torch.topk

    def spy(x, kk, *args, **kwargs):
        if x.numel() == score.numel():
            full_calls.append(kk)
        return real_topk(x, kk, *args, **kwargs)

    monkeypatch.setattr(torch, "topk", spy)
    ours = topk_indices(score, k, largest=largest)
    assert full_calls == []
    monkeypatch.setattr(torch, "topk", real_topk)
    ref = torch.topk(score, k, largest=largest, sorted=False).indices
    assert torch.equal(ours.sort().values, ref.sort().values)


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
