"""Tests for sparsenb.core.pruning and the pruning methods (SNIP/GraSP/SynFlow at init, IMP).

* selection keeps exact counts, globally and per layer;
* pruning at init hits the exact target, SynFlow follows d^(k/n) round by round
  and never revives a pruned weight;
* layer_collapse on hand-made masks (empty layer, disconnected net, conv -> linear);
* iterative magnitude pruning with a fake ``train_fn``: exact 0.8^r / 0.9^r
  per-layer nnz, rewinding, and the reinit / random-mask controls.
"""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsenb import methods
from sparsenb.core.distributions import layer_nnz
from sparsenb.core.masks import Masking
from sparsenb.methods.imp import FixedMasks, imp_nnz, iterative_magnitude_pruning
from sparsenb.core.pruning import global_topk, layer_collapse, layerwise_topk, magnitude_prune, prune_at_init
from sparsenb.train import Trainer

SHAPES = {"0.weight": (16, 8), "2.weight": (12, 16), "4.weight": (4, 12)}  # 128 + 192 + 48 = 368


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))


def convnet(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def data(n: int = 32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=gen), torch.randint(0, 4, (n,), generator=gen)


def nnz(masks: Masking) -> dict[str, int]:
    return {n: int(mp.mask.sum()) for n, mp in masks.params.items()}


def assert_pruned_zero(masks: Masking):
    for mp in masks:
        assert torch.all(mp.param[~mp.mask] == 0), mp.name


# ----------------------------------------------------------------- selection
def test_global_and_layerwise_topk_by_hand():
    scores = {"a": torch.tensor([[5.0, 1.0], [3.0, 0.0]]), "b": torch.tensor([4.0, 2.0, 6.0])}
    g = global_topk(scores, 3)  # the three largest overall: 6 (b), 5 (a), 4 (b)
    assert torch.equal(g["a"], torch.tensor([[True, False], [False, False]]))
    assert torch.equal(g["b"], torch.tensor([True, False, True]))
    lw = layerwise_topk(scores, {"a": 2, "b": 1})
    assert torch.equal(lw["a"], torch.tensor([[True, False], [True, False]]))
    assert torch.equal(lw["b"], torch.tensor([False, False, True]))
    assert sum(int(m.sum()) for m in global_topk(scores, 0).values()) == 0
    assert all(bool(m.all()) for m in global_topk(scores, 7).values())
    with pytest.raises(ValueError):
        global_topk(scores, 8)


def test_global_topk_exact_with_ties():
    scores = {"a": torch.zeros(10), "b": torch.ones(3, 3), "c": torch.full((4,), float("-inf"))}
    for k in (0, 5, 9, 12, 19):
        assert sum(int(m.sum()) for m in global_topk(scores, k).values()) == k


@pytest.mark.parametrize("criterion", ["magnitude", "random", "snip", "grasp"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_prune_at_init_exact_counts(criterion, scope):
    model = mlp()
    masks = prune_at_init(model, criterion, 0.9, data=data(), scope=scope, distribution="erk",
                          generator=torch.Generator().manual_seed(0))
    assert masks.nnz() == round(0.1 * 368) == 37
    if scope == "layerwise":
        assert nnz(masks) == layer_nnz(SHAPES, 0.1, "erk")
    assert_pruned_zero(masks)


def test_global_magnitude_is_one_threshold_layerwise_is_not():
    model = mlp()
    w = {n: p.detach().abs().clone() for n, p in model.named_parameters() if n.endswith("weight")}
    masks = prune_at_init(model, "magnitude", 0.8, scope="global")
    kept = torch.cat([w[n][mp.mask] for n, mp in masks.params.items()])
    pruned = torch.cat([w[n][~mp.mask] for n, mp in masks.params.items()])
    assert kept.min() >= pruned.max()
    masks = magnitude_prune(mlp(), None, 0.75, scope="layerwise")  # uniform: 25% of each layer
    assert nnz(masks) == {"0.weight": 32, "2.weight": 48, "4.weight": 12}


def test_dense_layers_count_towards_the_global_budget():
    masks = prune_at_init(mlp(), "magnitude", 0.5, dense="first_last")
    assert nnz(masks) == {"0.weight": 128, "2.weight": 184 - 128 - 48, "4.weight": 48}  # 184 = round(0.5 * 368)


def test_magnitude_prune_only_removes_kept_weights():
    model = mlp()
    masks = magnitude_prune(model, None, 0.5)
    first = {n: mp.mask.clone() for n, mp in masks.params.items()}
    masks = magnitude_prune(model, masks, 0.8, scope="global")
    assert masks.nnz() == round(0.2 * 368)
    assert all(bool((mp.mask & ~first[n]).sum() == 0) for n, mp in masks.params.items())
    with pytest.raises(ValueError, match="outside"):
        magnitude_prune(model, masks, 0.5)  # would need weights that are already pruned


def test_synflow_iterative_schedule_is_exact_and_monotone(monkeypatch):
    seen = []
    original = Masking.set_masks

    def recording(self, new, grow="zero"):
        original(self, new, grow)
        seen.append({n: mp.mask.clone() for n, mp in self.params.items()})

    monkeypatch.setattr(Masking, "set_masks", recording)
    n_rounds, density = 10, 0.05
    masks = prune_at_init(mlp(), "synflow", 1 - density, input_shape=(8,), iterations=n_rounds)
    counts = [sum(int(m.sum()) for m in s.values()) for s in seen]
    assert counts == [round(density ** (k / n_rounds) * 368) for k in range(1, n_rounds + 1)]
    assert counts[-1] == masks.nnz() == round(0.05 * 368) == 18
    for prev, cur in zip(seen, seen[1:]):  # a pruned weight never comes back
        assert all(not bool((cur[n] & ~prev[n]).any()) for n in cur)


def test_synflow_defaults_to_100_rounds(monkeypatch):
    calls = []
    original = Masking.set_masks
    monkeypatch.setattr(Masking, "set_masks", lambda self, new, grow="zero": (calls.append(1), original(self, new, grow)))
    masks = prune_at_init(mlp(), "synflow", 0.9, input_shape=(8,))
    assert len(calls) == 100 and masks.nnz() == 37


def test_prune_at_init_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sparsity"):
        prune_at_init(mlp(), "magnitude", 1.0)
    with pytest.raises(ValueError, match="scope"):
        prune_at_init(mlp(), "magnitude", 0.5, scope="per_layer")
    with pytest.raises(ValueError, match="init_data"):
        prune_at_init(mlp(), "snip", 0.5)


# ------------------------------------------------------------ layer collapse
def test_layer_collapse_dense_and_empty_layer():
    model = mlp()
    masks = Masking(model)
    assert layer_collapse(model, masks) == {
        "empty_layers": [], "connected": True, "alive_units": {"0.weight": 16, "2.weight": 12, "4.weight": 4}}
    masks.update("2.weight", torch.zeros(12, 16, dtype=torch.bool))
    rep = layer_collapse(model)  # read from the model's mask buffers
    assert rep["empty_layers"] == ["2.weight"] and rep["connected"] is False
    assert rep["alive_units"] == {"0.weight": 16, "2.weight": 0, "4.weight": 0}


def test_layer_collapse_disconnected_without_empty_layer():
    m0 = torch.zeros(16, 8, dtype=torch.bool)
    m0[:4, 0] = True                       # hidden units 0..3 alive
    m1 = torch.zeros(12, 16, dtype=torch.bool)
    m1[:, 4:] = True                       # layer 2 listens only to the dead units 4..15
    m2 = torch.ones(4, 12, dtype=torch.bool)
    rep = layer_collapse(mlp(), {"0.weight": m0, "2.weight": m1, "4.weight": m2})
    assert rep == {"empty_layers": [], "connected": False,
                   "alive_units": {"0.weight": 4, "2.weight": 0, "4.weight": 0}}
    m1[5, 3] = True                        # one path: input 0 -> unit 3 -> unit 5 -> all outputs
    rep = layer_collapse(mlp(), {"0.weight": m0, "2.weight": m1, "4.weight": m2})
    assert rep["connected"] and rep["alive_units"] == {"0.weight": 4, "2.weight": 1, "4.weight": 4}


def test_layer_collapse_conv_to_linear_maps_channel_blocks():
    conv = torch.zeros(4, 2, 3, 3, dtype=torch.bool)
    conv[1, 0, 2, 2] = True                # only channel 1 alive -> linear inputs 16..31
    lin = torch.zeros(3, 64, dtype=torch.bool)
    lin[:, :16] = True                     # reads channel 0 only
    lin[2, 48:] = True                     # and channel 3
    rep = layer_collapse(convnet(), {"0.weight": conv, "3.weight": lin})
    assert rep["connected"] is False and rep["alive_units"] == {"0.weight": 1, "3.weight": 0}
    lin[1, 31] = True                      # last position of channel 1's block
    rep = layer_collapse(convnet(), {"0.weight": conv, "3.weight": lin})
    assert rep["connected"] is True and rep["alive_units"] == {"0.weight": 1, "3.weight": 1}
    with pytest.raises(ValueError, match="sequential"):
        layer_collapse(convnet(), {"0.weight": conv, "x": torch.ones(3, 7, dtype=torch.bool)})


# ---------------------------------------------------------- methods + Trainer
@pytest.mark.parametrize("name", ["snip", "grasp", "synflow", "magnitude_init"])
def test_pruning_methods_train_with_fixed_masks(name):
    x, y = data(32)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    model = mlp()
    method = methods.get(name, sparsity=0.9, **({"iterations": 5} if name == "synflow" else {}))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(model, method, opt, epochs=2, device="cpu", progress=False, init_data=loader)
    before = {n: mp.mask.clone() for n, mp in trainer.masks.params.items()}
    assert trainer.masks.nnz() == 37
    trainer.fit(loader)
    assert all(torch.equal(mp.mask, before[n]) for n, mp in trainer.masks.params.items())
    assert_pruned_zero(trainer.masks)


def test_data_driven_method_needs_data_and_layerwise_option():
    with pytest.raises(ValueError, match="init_data"):
        methods.get("snip", sparsity=0.5).init_masks(mlp())
    masks = methods.get("grasp", sparsity=0.5, scope="layerwise", distribution="uniform").init_masks(mlp(), data())
    assert nnz(masks) == {"0.weight": 64, "2.weight": 96, "4.weight": 24}
    masks = methods.get("synflow", sparsity=0.5, iterations=2, input_shape=(8,)).init_masks(mlp())
    assert masks.nnz() == 184


def test_fixed_method_reuses_given_masks():
    model = mlp()
    masks = magnitude_prune(model, None, 0.75)
    method = methods.get("fixed", masks=masks)
    assert isinstance(method, FixedMasks) and method.sparsity == pytest.approx(0.75, abs=1e-2)
    assert method.init_masks(model) is masks
    with pytest.raises(ValueError, match="another model"):
        method.init_masks(mlp())


# ----------------------------------------------------------------------- IMP
def fake_train(log: list, steps_default: int = 3):
    """A few SGD steps on random data (from torch's global RNG) with the masks attached;
    logs what it was given."""

    def train_fn(model, masks, steps=steps_default):
        log.append({"params": {n: p.detach().clone() for n, p in model.named_parameters()},
                    "masks": {n: mp.mask.clone() for n, mp in masks.params.items()},
                    "model": model, "steps": steps})
        opt = masks.attach(torch.optim.SGD(model.parameters(), lr=0.5)).optimizer
        x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        return {"loss": float(loss.detach())}

    return train_fn


def test_imp_schedule_exact_integers():
    # hidden layers 0.8^r, output layer 0.9^r, rounded to the nearest weight
    assert [imp_nnz(128, 0.2, r) for r in range(4)] == [128, 102, 82, 66]    # 102.4, 81.92, 65.536
    assert [imp_nnz(192, 0.2, r) for r in range(4)] == [192, 154, 123, 98]   # 153.6, 122.88, 98.304
    assert [imp_nnz(48, 0.1, r) for r in range(4)] == [48, 43, 39, 35]       # 43.2, 38.88, 34.992


def test_imp_rounds_nnz_rewind_and_pruning_rule():
    log, trained = [], []
    res = iterative_magnitude_pruning(lambda: mlp(0), fake_train(log), rounds=3, seed=7,
                                      on_round=lambda r, m, k: trained.append(
                                          {n: p.detach().clone() for n, p in m.named_parameters()}))
    assert [r["round"] for r in res] == [0, 1, 2, 3] and len(log) == 4
    assert [r["nnz"] for r in res] == [
        {"0.weight": 128, "2.weight": 192, "4.weight": 48},
        {"0.weight": 102, "2.weight": 154, "4.weight": 43},
        {"0.weight": 82, "2.weight": 123, "4.weight": 39},
        {"0.weight": 66, "2.weight": 98, "4.weight": 35},
    ]
    assert res[3]["density"] == pytest.approx((66 + 98 + 35) / 368)
    assert all("loss" in r["ticket"] for r in res)
    theta0 = log[0]["params"]  # make_model() after torch.manual_seed(7) (mlp re-seeds with 0)
    assert all(torch.equal(theta0[n], p.detach()) for n, p in mlp(0).named_parameters())
    for r in range(1, 4):
        start, m = log[r]["params"], log[r]["masks"]
        for n, mask in m.items():
            assert torch.equal(start[n][mask], theta0[n][mask])           # rewound to theta_0
            assert bool((start[n][~mask] == 0).all())                     # pruned = 0
            assert not bool((mask & ~log[r - 1]["masks"][n]).any())       # nested masks
            prev = log[r - 1]["masks"][n]                                 # magnitude rule on trained weights
            w = trained[r - 1][n].abs()
            assert w[mask].min() >= w[prev & ~mask].max()
        assert torch.equal(start["0.bias"], theta0["0.bias"])             # biases rewound too


def test_imp_rewind_to_step_k():
    log = []
    iterative_magnitude_pruning(lambda: mlp(0), fake_train(log), rounds=2, rewind=2, seed=0)
    assert [e["steps"] for e in log] == [2, 3, 3, 3]  # pre-training to theta_k, then rounds 0..2
    theta_k = log[1]["params"]  # the state after the k-step pre-training, where round 0 starts
    assert not torch.equal(theta_k["0.weight"], log[0]["params"]["0.weight"])
    for e in log[2:]:
        for n, mask in e["masks"].items():
            assert torch.equal(e["params"][n][mask], theta_k[n][mask])


def test_imp_controls_keep_per_layer_nnz():
    log = []
    res = iterative_magnitude_pruning(lambda: mlp(0) if not log else nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4)),
        fake_train(log), rounds=2, control=["reinit", "random_mask"], seed=0)
    # calls: round 0 ticket; round 1 ticket, reinit, random_mask; round 2 the same
    assert len(log) == 7 and set(res[1]) >= {"ticket", "reinit", "random_mask"} and "reinit" not in res[0]
    theta0 = log[0]["params"]
    for r, (t, ri, rm) in zip((1, 2), (log[1:4], log[4:7])):
        per_layer = {n: int(m.sum()) for n, m in t["masks"].items()}
        assert per_layer == res[r]["nnz"]
        assert ri["model"] is not t["model"] and rm["model"] is not t["model"]
        # reinit: the ticket's masks, a fresh initialisation
        assert all(torch.equal(ri["masks"][n], t["masks"][n]) for n in per_layer)
        assert not torch.equal(ri["params"]["0.bias"], theta0["0.bias"])
        # random mask: same per-layer nnz, other positions, the original initialisation
        assert {n: int(m.sum()) for n, m in rm["masks"].items()} == per_layer
        assert any(not torch.equal(rm["masks"][n], t["masks"][n]) for n in per_layer)
        for n, mask in rm["masks"].items():
            assert torch.equal(rm["params"][n][mask], theta0[n][mask])
            assert bool((rm["params"][n][~mask] == 0).all())


def test_imp_controls_do_not_change_the_ticket_run():
    a = iterative_magnitude_pruning(lambda: mlp(0), fake_train([]), rounds=2, seed=1)
    b = iterative_magnitude_pruning(lambda: mlp(0), fake_train([]), rounds=2, seed=1, control="random_mask")
    assert [r["ticket"] for r in a] == [r["ticket"] for r in b]
    assert [r["nnz"] for r in a] == [r["nnz"] for r in b]


def test_imp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="control"):
        iterative_magnitude_pruning(mlp, fake_train([]), rounds=1, control="shuffle")
    with pytest.raises(ValueError, match="rewind"):
        iterative_magnitude_pruning(mlp, fake_train([]), rounds=1, rewind="late")
