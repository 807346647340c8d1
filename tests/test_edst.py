"""Tests for sparsenb.methods.edst: EDST's phases, its large re-exploration and its tickets."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsenb import methods
from sparsenb.methods.edst import EDST, edst_lr_factor, large_drop_and_grow
from sparsenb.train import Trainer


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))


def loader(n_batches: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 8, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(n_batches)]


def test_registered_with_paper_defaults():
    m = methods.get("edst", sparsity=0.8)
    assert isinstance(m, EDST) and m.name == "edst"
    assert (m.tickets, m.explore_epochs, m.refine_epochs, m.update_every) == (3, 150, 100, 1000)
    assert (m.drop_fraction, m.large_drop, m.growth, m.total_epochs) == (0.5, 0.8, "gradient", 450)


@pytest.mark.parametrize("kw, word", [({"tickets": 0}, "tickets"), ({"large_drop": 1.0}, "fractions"),
                                      ({"growth": "momentum"}, "growth")])
def test_bad_options_raise(kw, word):
    with pytest.raises(ValueError, match=word):
        EDST(**kw)


def test_lr_factor_hand_schedule():
    # explore 3 epochs, refine 4 epochs: 1,1,1 | .1,.1,.01,.01 | .1,.1,.01,.01
    got = [edst_lr_factor(e, 3, 4) for e in range(11)]
    assert got == [1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.1, 0.1, 0.01, 0.01]
    assert [edst_lr_factor(e, 0, 3) for e in range(3)] == [0.1, 0.1, 0.01]


def test_large_drop_and_grow_gradient_hand_case():
    w = torch.tensor([[0.5, -0.1, 0.0, 0.0], [0.3, 0.0, -0.9, 0.2]])
    mask = w != 0
    g = torch.tensor([[0.0, 0.0, 5.0, 1.0], [0.0, 4.0, 0.0, 0.0]])
    # 5 active, fraction 0.4 -> k=2: drop |w| 0.1 and 0.2, grow |g| 5.0 and 4.0
    new = large_drop_and_grow(w, g, mask, 0.4, "gradient")
    expect = torch.tensor([[True, False, True, False], [True, True, True, False]])
    assert torch.equal(new, expect)


def test_large_drop_and_grow_random_keeps_nnz_and_the_largest_weights():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(20, 30, generator=gen)
    mask = torch.rand(20, 30, generator=gen) < 0.2
    new = large_drop_and_grow(w, None, mask, 0.8, "random", torch.rand(20, 30, generator=gen))
    k = round(0.8 * int(mask.sum()))
    assert int(new.sum()) == int(mask.sum())
    # the nnz - k largest-|w| active weights survive; grown positions may include just-dropped ones
    score = w.abs().masked_fill(~mask, -1).reshape(-1)
    top = torch.zeros(600, dtype=torch.bool)
    top[torch.topk(score, int(mask.sum()) - k).indices] = True
    assert torch.all(new.reshape(-1)[top])
    with pytest.raises(ValueError, match="gradient"):
        large_drop_and_grow(w, None, mask, 0.8, "gradient")


def test_phases_reexploration_and_update_steps():
    m = EDST(tickets=3, explore_epochs=2, refine_epochs=2, update_every=3, sparsity=0.8)
    m.setup(total_steps=8 * 4, steps_per_epoch=4, epochs=8)
    assert m.phase_starts == [0, 8, 16, 24]
    assert [m.phase_of(s)[0] for s in (0, 7, 8, 15, 16, 31)] == [0, 0, 1, 1, 2, 3]
    assert [s for s in range(32) if m.is_reexploration_step(s)] == [16, 24]  # before tickets 2 and 3 only
    # regular: offset 3 within each 8-step phase (offset 6 is too close to the phase end)
    assert [s for s in range(32) if m.is_update_step(s)] == [3, 11, 19, 27]
    with pytest.raises(ValueError, match="total_epochs|epochs"):
        m.setup(total_steps=40, steps_per_epoch=4, epochs=10)


def test_training_saves_tickets_keeps_nnz_and_zeros():
    model = mlp()
    m = EDST(tickets=3, explore_epochs=2, refine_epochs=2, update_every=2, sparsity=0.8, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    tr = Trainer(model, m, opt, epochs=m.total_epochs, device="cpu", progress=False)
    nnz0 = {mp.name: int(mp.mask.sum()) for mp in tr.masks}
    tr.fit(loader())
    assert len(m.tickets_state) == 3
    kinds = [e["kind"] for e in m.events]
    assert kinds.count("reexplore") == 2 * len(tr.masks)  # every sparse layer, before tickets 2 and 3
    for e in m.events:
        if e["kind"] == "reexplore":
            assert e["grown"] == e["dropped"] > 0
    for ticket in m.tickets_state:
        for name, k in nnz0.items():
            mod = name.rpartition(".")[0]
            mask = ticket[f"{mod}.weight_mask"]
            assert int(mask.sum()) == k
            assert torch.all(ticket[name][~mask] == 0)
    # re-exploration moved the topology: consecutive tickets differ
    a, b = m.tickets_state[0]["0.weight_mask"], m.tickets_state[1]["0.weight_mask"]
    assert not torch.equal(a, b)
    # tickets are copies, not views of the live model
    assert m.tickets_state[-1]["0.weight"].data_ptr() != model[0].weight.data_ptr()
    assert m.dense_gradient_steps() == len({e["step"] for e in m.events}) > 0


def test_reexploration_drops_large_fraction_regular_drops_half():
    model = mlp(1)
    m = EDST(tickets=2, explore_epochs=2, refine_epochs=2, update_every=2, sparsity=0.8, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    tr = Trainer(model, m, opt, epochs=m.total_epochs, device="cpu", progress=False)
    nnz = {mp.name: int(mp.mask.sum()) for mp in tr.masks}
    tr.fit(loader())
    for e in m.events:
        frac = 0.8 if e["kind"] == "reexplore" else 0.5
        # RigL may regrow a just-dropped weight, so at most the nominal count actually changes
        assert e["dropped"] <= round(frac * nnz[e["layer"]])
    big = [e for e in m.events if e["kind"] == "reexplore"]
    assert big and all(e["step"] == 16 for e in big)
