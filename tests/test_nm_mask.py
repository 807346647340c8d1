"""Structured masks and gradual magnitude pruning.

* N:M masks keep exactly N of every M consecutive inputs, also when every weight ties, for Linear
  and Conv weights, and keep the largest ones;
* channel masks keep whole rows, exactly ``keep`` of them; compacting a channel-pruned MLP gives a
  smaller dense net with the same outputs (also with the removed units' biases folded in);
* the CSR forward computes what the model computes;
* GMP's cubic schedule at hand-computed points, and GMP training ends at the exact final nnz.
"""
import pytest
import torch
from torch import nn

from sparsenb import methods
from sparsenb.core.distributions import layer_nnz
from sparsenb.core.masks import Masking
from sparsenb.core.pruning import channel_mask, compact_mlp, nm_mask
from sparsenb.methods.gmp import gmp_sparsity
from sparsenb.train import Trainer
from sparsenb.train.timing import csr_forward, time_forward, time_interleaved


def groups_of(mask: torch.Tensor, m: int) -> torch.Tensor:
    return mask.movedim(1, -1).reshape(-1, m)


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 8), (0, 4), (4, 4)])
def test_nm_mask_keeps_exactly_n_of_every_m(n, m):
    w = torch.randn(6, 16, generator=torch.Generator().manual_seed(0))
    mask = nm_mask(w, n, m)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    assert (groups_of(mask, m).sum(1) == n).all()


def test_nm_mask_with_ties_is_still_exact():
    for w in (torch.ones(5, 12), torch.zeros(5, 12), torch.tensor([[1.0, 1.0, 1.0, 0.5] * 3] * 2)):
        assert (groups_of(nm_mask(w, 2, 4), 4).sum(1) == 2).all()


def test_nm_mask_keeps_the_largest_magnitudes():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.2, 5.0, -0.1, 0.0, -4.0]])
    assert nm_mask(w, 2, 4).tolist() == [[False, True, True, False, True, False, False, True]]


def test_nm_mask_conv_groups_run_over_input_channels():
    w = torch.randn(3, 8, 2, 2, generator=torch.Generator().manual_seed(1))
    mask = nm_mask(w, 2, 4)
    per_group = mask.reshape(3, 2, 4, 2, 2).sum(2)  # input channels 0-3 and 4-7 at each kernel position
    assert (per_group == 2).all()


def test_nm_mask_rejects_indivisible_inputs():
    with pytest.raises(ValueError, match="divisible"):
        nm_mask(torch.randn(4, 6), 2, 4)


def test_channel_mask_keeps_whole_rows_with_largest_l1():
    w = torch.tensor([[1.0, 1.0], [5.0, 0.0], [0.1, 0.1], [-3.0, -3.0]])
    mask = channel_mask(w, 2)
    assert mask.tolist() == [[False, False], [True, True], [False, False], [True, True]]
    ties = channel_mask(torch.ones(7, 3), 4)
    assert int(ties.all(1).sum()) == 4 and bool((ties.all(1) | ~ties.any(1)).all())


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))


def masked_forward(model, masks, x):
    with torch.no_grad():
        for name, m in masks.items():
            mod = dict(model.named_modules())[name.rsplit(".", 1)[0]]
            mod.weight.mul_(m)
        return model(x)


def test_compact_mlp_equals_the_masked_net_and_is_smaller():
    model = mlp()
    with torch.no_grad():  # positive biases: a removed ReLU unit still sends relu(b) > 0 onward
        model[1].bias.uniform_(0.1, 0.5)
        model[3].bias.uniform_(0.1, 0.5)
    masks = {"1.weight": channel_mask(model[1].weight, 6), "3.weight": channel_mask(model[3].weight, 5)}
    x = torch.randn(20, 10, generator=torch.Generator().manual_seed(2))
    small = compact_mlp(model, masks)
    want = masked_forward(model, masks, x)
    assert [l.weight.shape for l in small if isinstance(l, nn.Linear)] == [(6, 10), (5, 6), (3, 5)]
    torch.testing.assert_close(small(x), want, rtol=1e-5, atol=1e-6)
    # the removed units do carry a signal (relu of their bias): without folding it the outputs would differ
    no_bias = mlp()
    no_bias.load_state_dict(model.state_dict())
    with torch.no_grad():
        no_bias[1].bias[~masks["1.weight"].any(1)] = 0.0
        no_bias[3].bias[~masks["3.weight"].any(1)] = 0.0
    assert not torch.allclose(masked_forward(no_bias, masks, x), want, atol=1e-4)


def test_compact_mlp_accepts_a_masking():
    model = mlp(1)
    masking = Masking(model)
    masking.set_masks({"1.weight": channel_mask(model[1].weight, 8)})
    x = torch.randn(7, 10)
    with torch.no_grad():
        torch.testing.assert_close(compact_mlp(model, masking)(x), model(x), rtol=1e-5, atol=1e-6)


def test_csr_forward_matches_the_model():
    model = mlp(2)
    with torch.no_grad():
        for lin in (model[1], model[3], model[5]):
            lin.weight.mul_(torch.rand(lin.weight.shape) < 0.3)
    x = torch.randn(9, 10)
    with torch.no_grad():
        torch.testing.assert_close(csr_forward(model)(x), model(x), rtol=1e-5, atol=1e-6)


def test_time_forward_reports_positive_times():
    t = time_forward(lambda: torch.ones(10) * 2, repeats=3, warmup=1)
    assert t["repeats"] == 3 and 0 < t["min_ms"] <= t["median_ms"]


def test_gmp_schedule_hand_checked():
    # s_f = 0.9, t_0 = 10, n = 4, delta_t = 5: span 20
    assert gmp_sparsity(0, 0.9, 10, 4, 5) == 0.0
    assert gmp_sparsity(10, 0.9, 10, 4, 5) == pytest.approx(0.0)
    assert gmp_sparsity(15, 0.9, 10, 4, 5) == pytest.approx(0.9 * (1 - 0.75 ** 3))  # 0.520312...
    assert gmp_sparsity(20, 0.9, 10, 4, 5) == pytest.approx(0.9 - 0.9 * 0.125)  # 0.7875
    assert gmp_sparsity(25, 0.9, 10, 4, 5) == pytest.approx(0.9 * (1 - 0.25 ** 3))
    assert gmp_sparsity(30, 0.9, 10, 4, 5) == 0.9 and gmp_sparsity(99, 0.9, 10, 4, 5) == 0.9
    assert gmp_sparsity(20, 0.8, 10, 4, 5, initial=0.4) == pytest.approx(0.8 - 0.4 * 0.125)


def test_gmp_trains_dense_then_reaches_the_exact_final_nnz_and_never_regrows():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(64, 8), torch.randint(0, 4, (64,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    gmp = methods.get("gmp", sparsity=0.75, distribution="uniform", update_every=4, begin=0.0, end=0.5)
    seen = []
    trainer = Trainer(model, gmp, torch.optim.SGD(model.parameters(), lr=0.1), epochs=4, progress=False,
                      callbacks=[lambda t, row: seen.append({n: t.masks[n].clone() for n in ("0.weight", "2.weight")})])
    hist = trainer.fit(loader)
    assert hist[0]["density"] < 1.0 and hist[-1]["density"] == pytest.approx(0.25, abs=1 / 192)
    want = layer_nnz(trainer.masks.shapes(), 0.25, "uniform")
    assert {n: int(m.sum()) for n, m in seen[-1].items()} == want
    for before, after in zip(seen, seen[1:]):
        for n in before:
            assert not bool((after[n] & ~before[n]).any()), "a pruned weight came back"
    assert gmp.events and gmp.events[-1]["step"] == 16  # t_0 = 0, n = 16 // 4 = 4 pruning steps: 4, 8, 12, 16


def test_time_interleaved_times_every_function_each_round():
    calls = []
    t = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=4, warmup=1)
    assert calls[:2] == ["a", "b"]  # warm-up of each
    assert all(sorted(calls[i:i + 2]) == ["a", "b"] for i in range(2, 10, 2))  # then each once per round
    assert set(t) == {"a", "b"} and all(v["repeats"] == 4 and v["min_ms"] <= v["median_ms"] for v in t.values())
