"""Sup-tickets (Yin et al. 2022): epoch split, triangular LR, superposition = running average,
magnitude pruning to the target nnz, large prune-and-regrow, BN re-estimation, frozen-mask cycles."""
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sparsenb.nb import catalog
from sparsenb import data as snb_data
from sparsenb.core.masks import Masking
from sparsenb.methods import sup_tickets as st
from sparsenb.experiments import sup_tickets as ste


# ----------------------------------------------------------------- schedule
def test_split_epochs_matches_the_authors_cifar_setting():
    assert st.split_epochs(250, 8, 0.1) == (226, 3)  # 25 cyclic epochs -> 3 whole cycles of 8
    assert st.split_epochs(12, 2, 0.5) == (6, 3)
    assert st.split_epochs(3, 1, 0.67) == (1, 2)


@pytest.mark.parametrize("args", [(10, 8, 0.1), (4, 1, 1 - 1e-12), (0, 1, 0.5), (10, 2, 1.5)])
def test_split_epochs_rejects_budgets_without_cycles_or_pretraining(args):
    with pytest.raises(ValueError):
        st.split_epochs(*args)


def test_triangular_lr_low_high_low():
    assert st.triangular_lr(0.0, 0.001, 0.005) == pytest.approx(0.001)
    assert st.triangular_lr(0.25, 0.001, 0.005) == pytest.approx(0.003)
    assert st.triangular_lr(0.5, 0.001, 0.005) == pytest.approx(0.005)
    assert st.triangular_lr(0.75, 0.001, 0.005) == pytest.approx(0.003)
    assert st.triangular_lr(1.0, 0.001, 0.005) == pytest.approx(0.001)
    with pytest.raises(ValueError, match="cycle position"):
        st.triangular_lr(1.5, 0.001, 0.005)


# ------------------------------------------------------------ superposition
def test_superpose_hand_computed():
    avg = {"w": torch.tensor([0.0, 3.0])}
    st.superpose_(avg, {"w": torch.tensor([3.0, 3.0])}, k=1)  # f = 1/2
    assert torch.equal(avg["w"], torch.tensor([1.5, 3.0]))
    st.superpose_(avg, {"w": torch.tensor([6.0, 0.0])}, k=2)  # f = 1/3: 2/3 * 1.5 + 1/3 * 6 = 3
    assert torch.allclose(avg["w"], torch.tensor([3.0, 2.0]))  # = mean of (0, 3, 6) and of (3, 3, 0)


@pytest.mark.parametrize("seed", range(5))
def test_superposition_equals_the_running_average(seed):
    g = torch.Generator().manual_seed(seed)
    tickets = [{"a": torch.randn(4, 3, generator=g), "b": torch.randn(7, generator=g)} for _ in range(6)]
    avg = {k: v.clone() for k, v in tickets[0].items()}
    for k, t in enumerate(tickets[1:], start=1):
        st.superpose_(avg, t, k)
        for name in avg:  # after folding ticket k: the mean of tickets 0..k
            mean = torch.stack([tk[name] for tk in tickets[:k + 1]]).mean(0)
            assert torch.allclose(avg[name], mean, atol=1e-6)


def test_superposition_of_model_states_equals_their_mean():
    nets = []
    for s in range(3):
        torch.manual_seed(s)
        nets.append(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)))
    states = [st.float_state(n) for n in nets]
    assert "1.num_batches_tracked" not in states[0]  # integer counters are not averaged
    avg = {k: v.clone() for k, v in states[0].items()}
    st.superpose_(avg, states[1], 1)
    st.superpose_(avg, states[2], 2)
    for name, v in avg.items():
        assert torch.allclose(v, sum(s[name] for s in states) / 3, atol=1e-6), name


def test_superpose_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be >= 1"):
        st.superpose_({"w": torch.zeros(2)}, {"w": torch.zeros(2)}, 0)
    with pytest.raises(ValueError, match="different tensors"):
        st.superpose_({"w": torch.zeros(2)}, {"v": torch.zeros(2)}, 1)
    with pytest.raises(ValueError, match="shape"):
        st.superpose_({"w": torch.zeros(2)}, {"w": torch.zeros(3)}, 1)


# -------------------------------------------------------- magnitude pruning
def _two_layer() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.1, -0.9], [0.5, 0.2]]))
        net[1].weight.copy_(torch.tensor([[-0.4, 0.3]]))
    return net


def test_magnitude_prune_global_keeps_largest_over_all_layers():
    net = _two_layer()
    masks = st.magnitude_prune_(net, ["0.weight", "1.weight"], 3, scope="global")  # |w| 0.9, 0.5, 0.4 survive
    assert torch.equal(masks["0.weight"], torch.tensor([[False, True], [True, False]]))
    assert torch.equal(masks["1.weight"], torch.tensor([[True, False]]))
    assert torch.equal(net[0].weight, torch.tensor([[0.0, -0.9], [0.5, 0.0]]))
    assert torch.equal(net[1].weight, torch.tensor([[-0.4, 0.0]]))


def test_magnitude_prune_per_layer():
    net = _two_layer()
    masks = st.magnitude_prune_(net, ["0.weight", "1.weight"], {"0.weight": 1, "1.weight": 1}, scope="layer")
    assert masks.nnz() == 2 and bool(masks["0.weight"][0, 1]) and bool(masks["1.weight"][0, 0])
    with pytest.raises(ValueError, match="scope must be"):
        st.magnitude_prune_(_two_layer(), ["0.weight"], 1, scope="neuron")


# --------------------------------------------------------- prune-and-regrow
def test_reexplore_gradient_growth_hand_computed():
    net = nn.Sequential(nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.5, -0.1, 0.0], [0.3, 0.0, -0.2]]))
    masks = Masking(net)
    masks.update("0.weight", torch.tensor([[True, True, False], [True, False, True]]))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    masks.attach(opt)
    opt.state[net[0].weight]["momentum_buffer"] = torch.ones(2, 3)
    grads = {"0.weight": torch.tensor([[0.0, 0.0, 5.0], [0.0, 4.0, 0.0]])}
    rows = st.reexplore_(masks, 0.5, "gradient", grads=grads)  # drop 2 smallest |w| (0.1, 0.2), grow |g| 5, 4
    assert rows == [{"layer": "0.weight", "grown": 2, "dropped": 2}]
    assert torch.equal(masks["0.weight"], torch.tensor([[True, False, True], [True, True, False]]))
    w = net[0].weight
    assert w[0, 2] == 0 and w[1, 1] == 0 and w[0, 1] == 0 and w[1, 2] == 0  # grown at zero, dropped zeroed
    assert w[0, 0] == 0.5 and w[1, 0] == 0.3
    mom = opt.state[w]["momentum_buffer"]
    assert torch.equal(mom, torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))  # moments of changed weights reset


@pytest.mark.parametrize("seed", range(4))
def test_reexplore_random_keeps_nnz_per_layer_and_skips_dense_layers(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    masks = Masking(net)
    g = torch.Generator().manual_seed(seed)
    masks.set_random({"0.weight": 60, "2.weight": 150}, generator=g)  # layer 2 stays dense
    before = {mp.name: mp.mask.clone() for mp in masks}
    rows = st.reexplore_(masks, 0.5, "random", generator=g)
    assert [r["layer"] for r in rows] == ["0.weight"]
    assert int(masks["0.weight"].sum()) == 60 and bool(masks["2.weight"].all())
    assert int((before["0.weight"] & ~masks["0.weight"]).sum()) <= 30
    assert bool((net[0].weight[~masks["0.weight"]] == 0).all())


def test_reexplore_rejects_bad_input():
    masks = Masking(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="needs grads"):
        st.reexplore_(masks, 0.5, "gradient")
    with pytest.raises(ValueError, match="growth must be"):
        st.reexplore_(masks, 0.5, "momentum")
    with pytest.raises(ValueError, match="fraction"):
        st.reexplore_(masks, 1.0, "random")


# ------------------------------------------------------------ BN statistics
def test_reestimate_bn_gives_the_data_statistics():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 4, 4) * 2 + 5
    net = nn.Sequential(nn.BatchNorm2d(3))
    net.eval()
    loader = DataLoader(TensorDataset(x, torch.zeros(64, dtype=torch.long)), batch_size=16)
    st.reestimate_bn(net, loader)
    bn = net[0]
    assert torch.allclose(bn.running_mean, x.mean((0, 2, 3)), atol=1e-5)  # equal batches: mean of batch means
    batch_vars = torch.stack([x[i:i + 16].var((0, 2, 3), unbiased=True) for i in range(0, 64, 16)]).mean(0)
    assert torch.allclose(bn.running_var, batch_vars, atol=1e-4)
    assert bn.momentum == 0.1 and not net.training


# ------------------------------------------------------ cycles and pipeline
def _tiny_task(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)


def _masked_net():
    """A small seeded conv net with random masks attached to its SGD: ``(net, masks, opt)``."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    masks = Masking(net)
    masks.set_random({"0.weight": 12, "4.weight": 100}, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    masks.attach(opt)
    return net, masks, opt


def test_train_cycle_keeps_the_mask_frozen_and_pruned_weights_zero():
    net, masks, opt = _masked_net()
    before = {mp.name: mp.mask.clone() for mp in masks}
    rows = ste.train_cycle(net, opt, _tiny_task(), 2, 0.001, 0.005, torch.device("cpu"))
    assert len(rows) == 2 and all(math.isfinite(r["train_loss"]) for r in rows)
    assert rows[-1]["lr_last"] == pytest.approx(0.001) and rows[0]["lr_last"] == pytest.approx(0.005)
    for mp in masks:
        assert torch.equal(mp.mask, before[mp.name])
        assert bool((mp.param[~mp.mask] == 0).all())


def test_train_cycle_on_the_trainer_equals_the_hand_written_cycle():
    net, _, opt = _masked_net()
    rows = ste.train_cycle(net, opt, _tiny_task(), 2, 0.001, 0.005, torch.device("cpu"))
    ref, _, ref_opt = _masked_net()
    loader = _tiny_task()
    n, lrs = len(loader), []
    for e in range(2):  # the cycle as it was written before it ran on the Trainer
        for i, (x, y) in enumerate(loader):
            lr = st.triangular_lr((e + (i + 1) / n) / 2, 0.001, 0.005)
            for g in ref_opt.param_groups:
                g["lr"] = lr
            lrs.append(lr)
            ref_opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(ref(x), y).backward()
            ref_opt.step()
    for a, b in zip(net.state_dict().values(), ref.state_dict().values()):
        assert torch.equal(a, b)
    assert opt.param_groups[0]["lr"] == lrs[-1]
    assert [(r["lr_first"], r["lr_last"]) for r in rows] == [(lrs[0], lrs[n - 1]), (lrs[n], lrs[-1])]


def test_superposed_model_has_exact_target_nnz_and_leaves_the_template_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    masks = Masking(net)
    masks.set_random({"0.weight": 12, "4.weight": 100}, generator=torch.Generator().manual_seed(1))
    avg = st.float_state(net)
    other = {k: torch.randn_like(v) for k, v in avg.items()}  # a ticket with a dense support
    st.superpose_(avg, other, 1)
    template_state = {k: v.clone() for k, v in net.state_dict().items()}
    sup = st.superposed_model(net, avg, list(masks.params), 112, "global", _tiny_task())
    sup_masks = Masking(sup, list(masks.params))
    assert sup_masks.nnz() == 112
    for mp in sup_masks:
        assert bool((mp.param[~mp.mask] == 0).all())
    for k, v in net.state_dict().items():
        assert torch.equal(v, template_state[k]), k
    assert not torch.equal(sup[1].running_mean, avg["1.running_mean"])  # BN re-estimated


@pytest.fixture(scope="module")
def smoke_runs():
    torch.set_num_threads(1)
    cfg = catalog.resolve("09_sup_tickets", "smoke", {"EPOCHS": 3})
    data = snb_data.load("digits").subset(400, 200, seed=0)
    return cfg, ste.sup_tickets_run(data, cfg, "rigl", cfg.SPARSITY, 0), ste.base_run(data, cfg, "rigl", cfg.SPARSITY, 0)


def test_sup_tickets_run_keeps_the_budget_and_exact_density(smoke_runs):
    cfg, sup, base = smoke_runs
    assert sup["pretrain_epochs"] + sup["cycles_n"] * cfg.CYCLE_EPOCHS == cfg.EPOCHS == len(base["history"])
    assert sup["nnz"] == base["nnz"] == sup["sup_nnz"]  # same sparsity for base, tickets and superposition
    assert sup["sup_nonzero"] <= sup["sup_nnz"]
    for c in sup["cycles"]:
        assert c["union_density"] >= sup["density"] - 1e-9  # the average lives on the union of the supports
        assert c["mask_change"] > 0  # the large prune-and-regrow changed the topology
        assert c["lr_last"] == pytest.approx(cfg.LR_MIN)
        assert 0.0 <= c["ticket_acc"] <= 1.0 and 0.0 <= c["sup_acc"] <= 1.0
    assert sup["last_ticket_acc"] == sup["cycles"][-1]["ticket_acc"]


def test_summary_and_gaps(smoke_runs):
    _, sup, base = smoke_runs
    rows = ste.summarize([base], [sup])
    assert [r["model"] for r in rows] == ["base DST", "DST pre-trained (ticket 0)", "last cheap ticket",
                                          "superposed ticket"]
    gaps = ste.paired_gaps([base], [sup], "rigl")
    assert gaps["sup_minus_base"] == [pytest.approx(sup["sup_acc"] - base["test_acc"])]
    assert gaps["sup_minus_last"] == [pytest.approx(sup["sup_acc"] - sup["last_ticket_acc"])]


def test_driver_rejects_a_non_dst_method():
    cfg = catalog.resolve("09_sup_tickets", "smoke")
    with pytest.raises(ValueError, match="base DST method"):
        ste.build_trainer(snb_data.load("digits"), cfg, "snip", 0.8, 0, 1)
