"""Tests for sparsenb.core.masks: the mask semantics every method relies on.

* pruned weights are exactly zero after every optimizer step (SGD+momentum+wd, Adam, AdamW ...);
* pruned gradients are zeroed before the step where the optimizer needs it (not elementwise, or
  ``mask_grads=True``); for elementwise optimizers the kept weights are bit-identical without it;
* ``update`` gives grown weights a value and resets optimizer moments at grown
  and dropped positions only;
* masks are bool buffers that survive a state_dict round trip;
* exact nnz per layer.
"""
import io
import warnings
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import sparsenb as snb
from sparsenb.core.distributions import layer_nnz
from sparsenb.core.masks import Masking, density_report, prunable_parameters, sparsify, topk_mask

MOMENT_KEYS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum")


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))


def convnet(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    )


def batch(model: nn.Module, gen: torch.Generator, n: int = 16):
    if isinstance(model[0], nn.Conv2d):
        return torch.randn(n, 2, 6, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    return torch.randn(n, 8, generator=gen), torch.randint(0, 4, (n,), generator=gen)


def train_step(model, opt, gen):
    x, y = batch(model, gen)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


def assert_pruned_zero(masks: Masking):
    for mp in masks:
        assert mp.mask.dtype == torch.bool
        assert torch.all(mp.param[~mp.mask] == 0), mp.name


OPTIMIZERS = {
    "sgd_momentum_wd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-2),
    "adam_amsgrad": lambda ps: torch.optim.Adam(ps, lr=1e-2, amsgrad=True),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-2, momentum=0.5, weight_decay=1e-2),
    "adagrad": lambda ps: torch.optim.Adagrad(ps, lr=1e-2, weight_decay=1e-2),
    "adamax": lambda ps: torch.optim.Adamax(ps, lr=1e-2, weight_decay=1e-2),
    "nadam": lambda ps: torch.optim.NAdam(ps, lr=1e-2, weight_decay=1e-2),
    "radam": lambda ps: torch.optim.RAdam(ps, lr=1e-2, weight_decay=1e-2),
}


# ------------------------------------------------- zeros after every step
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("how", ["sparsify", "attach"])
@pytest.mark.parametrize("net", [mlp, convnet])
def test_pruned_weights_exactly_zero_after_every_step(opt_name, how, net):
    model = net(0)
    opt = OPTIMIZERS[opt_name](model.parameters())
    if how == "sparsify":
        masks = sparsify(model, 0.7, optimizer=opt, seed=1)
    else:
        masks = Masking(model)
        masks.set_random(layer_nnz(masks.shapes(), 0.3, "erk"), generator=torch.Generator().manual_seed(1))
        masks.attach(opt)
    assert masks.optimizer is opt
    before = {mp.name: mp.mask.clone() for mp in masks}
    kept_before = {mp.name: mp.param.detach().clone() for mp in masks}
    gen = torch.Generator().manual_seed(2)
    for _ in range(5):
        train_step(model, opt, gen)
        assert_pruned_zero(masks)
    for mp in masks:
        assert torch.equal(mp.mask, before[mp.name])  # a step never changes a mask
        # ... but training did happen at the kept positions
        assert not torch.equal(mp.param.detach()[mp.mask], kept_before[mp.name][mp.mask])
    assert not masks.grads_masked  # every optimizer here is elementwise: no pre-step mask


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_masked_grads_keep_moments_zero_at_pruned_positions(opt_name):
    """With ``mask_grads=True`` no optimizer moment builds up at pruned positions."""
    model = mlp(0)
    opt = OPTIMIZERS[opt_name](model.parameters())
    masks = sparsify(model, 0.7, seed=1)
    masks.attach(opt, mask_grads=True)
    assert masks.grads_masked
    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        train_step(model, opt, gen)
        assert_pruned_zero(masks)
    for mp in masks:
        for k, v in opt.state[mp.param].items():
            if torch.is_tensor(v) and v.shape == mp.param.shape:  # Adamax's exp_inf is max(.., |g| + eps)
                assert torch.all(v[~mp.mask].abs() <= (1e-8 if k == "exp_inf" else 0)), (mp.name, k)


def _twin_runs(opt_name: str, net, mask_grads: bool | None):
    """Train with a mask update in the middle (drop some kept, grow some pruned weights)."""
    model = net(0)
    opt = OPTIMIZERS[opt_name](model.parameters())
    masks = sparsify(model, 0.6, seed=3)
    masks.attach(opt, mask_grads=mask_grads)
    gen = torch.Generator().manual_seed(4)
    for _ in range(4):
        train_step(model, opt, gen)
    for i, mp in enumerate(masks):  # a RigL-like update: the 3 first kept out, the 3 first pruned in
        flat = mp.mask.reshape(-1).clone()
        kept, pruned = flat.nonzero().squeeze(1)[:3], (~flat).nonzero().squeeze(1)[:3]
        flat[kept], flat[pruned] = False, True
        masks.update(mp.name, flat.view_as(mp.mask), grow="zero" if i % 2 else "init",
                     generator=torch.Generator().manual_seed(i))
    for _ in range(4):
        train_step(model, opt, gen)
        assert_pruned_zero(masks)
    return model, masks


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("net", [mlp, convnet])
def test_elementwise_optimizers_need_no_gradient_mask(opt_name, net):
    """The documented reason for skipping the pre-step gradient mask: for every optimizer in
    ELEMENTWISE_OPTIMIZERS, every parameter (kept weights, biases, BN) ends bit-identical with and
    without it, also across a mask update that regrows weights (their moments are reset)."""
    auto, masks_auto = _twin_runs(opt_name, net, None)
    forced, masks_forced = _twin_runs(opt_name, net, True)
    assert not masks_auto.grads_masked and masks_forced.grads_masked
    for (n, a), (_, b) in zip(auto.named_parameters(), forced.named_parameters()):
        assert torch.equal(a, b), n  # -0.0 == 0.0: pruned zeros may differ only in sign
    for (n, a), (_, b) in zip(auto.named_buffers(), forced.named_buffers()):
        assert torch.equal(a, b), n


def test_gradient_mask_decided_by_optimizer_type():
    model = mlp(0)
    masks = sparsify(model, 0.5, seed=0)

    class MySGD(torch.optim.SGD):  # a subclass may change step(): masked to be safe
        pass

    for opt, expected in [(torch.optim.SGD(model.parameters(), lr=0.1), False),
                          (torch.optim.LBFGS(model.parameters()), True),
                          (torch.optim.Rprop(model.parameters()), True),
                          (MySGD(model.parameters(), lr=0.1), True)]:
        masks.attach(opt)
        assert masks.grads_masked is expected, type(opt).__name__
    masks.attach(torch.optim.SGD(model.parameters(), lr=0.1), mask_grads=True)
    assert masks.grads_masked
    masks.detach()
    assert not masks.grads_masked and masks.optimizer is None


@pytest.mark.parametrize("change", ["fill_buffer", "load_state_dict", "update", "to_double"])
def test_fused_masks_follow_mask_changes(change):
    """The float masks are cached; every way of changing a mask (or the weights' dtype) is seen."""
    model = mlp(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    masks = sparsify(model, 0.5, optimizer=opt, seed=0)
    gen = torch.Generator().manual_seed(0)
    train_step(model, opt, gen)  # builds the cache
    if change == "fill_buffer":
        masks["2.weight"][:3] = False  # in-place edit of the buffer
    elif change == "load_state_dict":
        other = mlp(1)
        sparsify(other, 0.9, seed=7)
        model.load_state_dict(other.state_dict())
    elif change == "update":
        masks.update("0.weight", torch.zeros_like(masks["0.weight"]))
    else:
        model.double()
    for _ in range(2):
        x, y = batch(model, gen)
        opt.zero_grad()
        F.cross_entropy(model(x.to(next(model.parameters()).dtype)), y).backward()
        opt.step()
        assert_pruned_zero(masks)
    params, fmasks = masks._fused_masks()
    for mp in masks:
        if not bool(mp.mask.all()):
            i = next(i for i, p in enumerate(params) if p is mp.param)
            assert fmasks[i].dtype == mp.param.dtype
            assert torch.equal(fmasks[i].bool(), mp.mask)


def test_control_without_attach_adam_moves_pruned_weights():
    """Control: the hooks are what keeps the zeros (a plain Adam loop does not)."""
    model = mlp(0)
    masks = sparsify(model, 0.7, seed=1)  # not attached
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train_step(model, opt, torch.Generator().manual_seed(0))
    moved = sum(int((mp.param[~mp.mask] != 0).sum()) for mp in masks)
    assert moved > 0


def test_pruned_grads_zeroed_before_step():
    model = mlp(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    masks = sparsify(model, 0.8, seed=0).attach(opt, mask_grads=True)
    seen = []

    def check(optimizer, args, kwargs):  # registered after attach -> runs after the mask hook
        for mp in masks:
            g = mp.param.grad
            seen.append((bool(torch.all(g[~mp.mask] == 0)), bool(torch.any(g[mp.mask] != 0))))

    opt.register_step_pre_hook(check)
    x, y = batch(model, torch.Generator().manual_seed(0))
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    # autograd computed dense gradients: they are nonzero at pruned positions before the step
    assert all(bool(torch.any(mp.param.grad[~mp.mask] != 0)) for mp in masks)
    opt.step()
    assert seen and all(zero and nonzero for zero, nonzero in seen)
    for mp in masks:
        assert torch.all(opt.state[mp.param]["momentum_buffer"][~mp.mask] == 0)


@pytest.mark.parametrize("opt_name", ["sgd", "lbfgs"])
@pytest.mark.parametrize("closure_as", ["positional", "keyword"])
def test_step_with_closure_masks_the_recomputed_grads(opt_name, closure_as):
    """With ``opt.step(closure)`` the gradients are recomputed inside the step;
    they must be masked there too (regression: they reached the optimizer dense)."""
    model = mlp(0)
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)
    masks = sparsify(model, 0.8, seed=0).attach(opt, mask_grads=True if opt_name == "sgd" else None)
    assert masks.grads_masked  # LBFGS: by default (not elementwise); SGD: asked for
    x, y = batch(model, torch.Generator().manual_seed(0))
    calls = []

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        calls.append(1)
        return loss

    losses = []
    for _ in range(3):
        out = opt.step(closure) if closure_as == "positional" else opt.step(closure=closure)
        losses.append(float(out.detach()))
        assert_pruned_zero(masks)
        for mp in masks:  # the grads left by the last closure call are masked
            assert torch.all(mp.param.grad[~mp.mask] == 0)
    assert calls and all(math.isfinite(v) for v in losses)
    if opt_name == "sgd":
        for mp in masks:
            assert torch.all(opt.state[mp.param]["momentum_buffer"][~mp.mask] == 0)


def test_attach_again_detaches_old_optimizer():
    model = mlp(0)
    opt1 = torch.optim.SGD(model.parameters(), lr=0.1)
    opt2 = torch.optim.SGD(model.parameters(), lr=0.1)
    masks = sparsify(model, 0.8, optimizer=opt1, seed=0)
    masks.attach(opt2)
    assert masks.optimizer is opt2
    gen = torch.Generator().manual_seed(0)
    train_step(model, opt2, gen)
    assert_pruned_zero(masks)
    train_step(model, opt1, gen)  # no hooks on opt1 any more: pruned weights move
    assert any(bool(torch.any(mp.param[~mp.mask] != 0)) for mp in masks)
    masks.detach()
    assert masks.optimizer is None


# -------------------------------------------------------------- update()
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_update_resets_moments_at_grown_and_dropped_only(opt_name):
    model = mlp(0)
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        fill = {"momentum_buffer": 7.0}
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        fill = {"exp_avg": 3.0, "exp_avg_sq": 5.0}
    masks = sparsify(model, 0.5, optimizer=opt, seed=0)
    train_step(model, opt, torch.Generator().manual_seed(0))  # creates the state
    name = "2.weight"
    mp = masks.params[name]
    p, old = mp.param, mp.mask.clone()
    for k, v in fill.items():  # make every entry nonzero so that resets are visible
        opt.state[p][k].fill_(v)
    step_before = opt.state[p].get("step", torch.tensor(0.0)).clone()
    # new mask: drop the first 5 kept positions, grow the first 5 pruned ones
    flat_old = old.reshape(-1)
    kept_idx = flat_old.nonzero().squeeze(1)[:5]
    pruned_idx = (~flat_old).nonzero().squeeze(1)[:5]
    new = flat_old.clone()
    new[kept_idx] = False
    new[pruned_idx] = True
    new = new.view_as(old)
    weights_before = p.detach().clone()

    change = masks.update(name, new, grow="zero")

    assert change == {"grown": 5, "dropped": 5}
    grown, dropped = new & ~old, old & ~new
    changed = grown | dropped
    assert int(grown.sum()) == 5 and int(dropped.sum()) == 5
    for k, v in fill.items():
        state = opt.state[p][k]
        assert torch.all(state[changed] == 0), k
        assert torch.all(state[~changed] == v), k  # untouched elsewhere
    if "step" in opt.state[p]:
        assert torch.equal(opt.state[p]["step"], step_before)
    assert torch.equal(masks[name], new)
    assert torch.all(p[grown] == 0) and torch.all(p[dropped] == 0)
    unchanged_kept = old & new
    assert torch.equal(p.detach()[unchanged_kept], weights_before[unchanged_kept])


def test_update_other_layers_state_untouched():
    model = mlp(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    masks = sparsify(model, 0.5, optimizer=opt, seed=0)
    train_step(model, opt, torch.Generator().manual_seed(0))
    for mp in masks:
        opt.state[mp.param]["momentum_buffer"].fill_(2.0)
    masks.update("2.weight", masks["2.weight"].clone().logical_not_())  # every entry changes
    assert torch.all(opt.state[masks.params["2.weight"].param]["momentum_buffer"] == 0)
    for name in ("0.weight", "4.weight"):
        assert torch.all(opt.state[masks.params[name].param]["momentum_buffer"] == 2.0)


@pytest.mark.parametrize("net,name,fan_in", [(mlp, "2.weight", 16), (convnet, "0.weight", 2 * 3 * 3)])
def test_grow_init_and_zero_values(net, name, fan_in):
    model = net(0)
    masks = sparsify(model, 0.6, seed=0)
    old = masks[name].clone()
    new = torch.ones_like(old)  # grow every pruned weight
    masks.update(name, new, grow="init")
    p = masks.params[name].param.detach()
    grown = new & ~old
    assert int(grown.sum()) > 10
    bound = 1 / math.sqrt(fan_in)
    assert torch.all(p[grown] != 0)
    assert torch.all(p[grown].abs() <= bound)
    assert p[grown].unique().numel() > int(grown.sum()) // 2  # fresh independent draws

    # drop them again, then regrow with "zero"
    masks.update(name, old)
    assert torch.all(p[grown] == 0)
    masks.update(name, new, grow="zero")
    assert torch.all(p[grown] == 0)


def test_update_with_values():
    model = mlp(0)
    masks = sparsify(model, 0.5, seed=0)
    old = masks["0.weight"].clone()
    values = torch.full(old.shape, 0.25)
    masks.update("0.weight", torch.ones_like(old), values=values)
    p = masks.params["0.weight"].param
    assert torch.all(p[~old] == 0.25)


def test_update_bad_grow_or_shape_leaves_mask_unchanged():
    model = mlp(0)
    masks = sparsify(model, 0.5, seed=0)
    before = masks["0.weight"].clone()
    with pytest.raises(ValueError, match="grow must be"):
        masks.update("0.weight", torch.ones_like(before), grow="random")
    with pytest.raises(ValueError, match="shape"):
        masks.update("0.weight", torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="shape"):
        masks.update("0.weight", torch.ones_like(before).t())
    assert torch.equal(masks["0.weight"], before)


def test_update_accepts_non_bool_mask_and_zeroes_dropped():
    model = mlp(0)
    masks = sparsify(model, 0.0, seed=0)  # all kept
    m = masks["0.weight"]
    new = torch.zeros(m.shape, dtype=torch.float32)
    new[0] = 1.0
    masks.update("0.weight", new)
    assert masks["0.weight"].dtype == torch.bool
    assert int(masks["0.weight"].sum()) == m.shape[1]
    assert_pruned_zero(masks)


# --------------------------------------------------- buffers & checkpoints
def test_masks_are_bool_buffers_in_state_dict():
    model = convnet(0)
    masks = sparsify(model, 0.5, seed=0)
    sd = model.state_dict()
    assert set(k for k in sd if k.endswith("_mask")) == {"0.weight_mask", "4.weight_mask"}
    for name in masks.params:
        buf = sd[name + "_mask"]
        assert buf.dtype == torch.bool
        assert buf.shape == masks.params[name].param.shape
        assert buf.device == masks.params[name].param.device
        assert torch.equal(buf, masks[name])
    assert not any(n.endswith("_mask") for n, _ in model.named_parameters())
    # biases and batch-norm parameters are not masked
    assert set(masks.params) == {"0.weight", "4.weight"}
    assert prunable_parameters(model) == ["0.weight", "4.weight"]


def test_state_dict_round_trip_into_fresh_model():
    model_a = mlp(0)
    opt = torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9)
    masks_a = sparsify(model_a, 0.8, optimizer=opt, seed=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        train_step(model_a, opt, gen)
    buf = io.BytesIO()
    torch.save(model_a.state_dict(), buf)
    buf.seek(0)

    model_b = mlp(1)
    masks_b = sparsify(model_b, 0.8, seed=123)
    assert not all(torch.equal(masks_a[n], masks_b[n]) for n in masks_a.params)
    ptrs = {n: masks_b[n].data_ptr() for n in masks_b.params}
    containers = {n: masks_b[n] for n in masks_b.params}
    model_b.load_state_dict(torch.load(buf))

    for n in masks_a.params:
        assert torch.equal(masks_b[n], masks_a[n])
        assert masks_b[n].dtype == torch.bool
        assert masks_b[n].data_ptr() == ptrs[n]  # loaded in place
        assert torch.equal(containers[n], masks_a[n])  # old references see the loaded values
        assert torch.equal(masks_b.params[n].param, masks_a.params[n].param)
    assert density_report(model_b) == density_report(model_a) == masks_a.report()
    assert masks_b.nnz() == masks_a.nnz()

    # training model_b continues exactly sparse at the loaded pattern
    opt_b = torch.optim.Adam(model_b.parameters(), lr=1e-2)
    masks_b.attach(opt_b)
    for _ in range(3):
        train_step(model_b, opt_b, gen)
    assert_pruned_zero(masks_b)
    for n in masks_a.params:
        assert torch.equal(masks_b[n], masks_a[n])


def test_masking_reuses_existing_buffers():
    model = mlp(0)
    masks = sparsify(model, 0.8, seed=0)
    again = Masking(model)
    assert again.nnz() == masks.nnz()
    for n in masks.params:
        assert again[n] is masks[n]


# ------------------------------------------------------------------ reports
def test_density_report_matches_masks():
    model = convnet(0)
    masks = sparsify(model, 0.7, seed=0)
    rep = density_report(model)
    expected = {}
    for mp in masks:
        nnz, numel = int(mp.mask.sum()), mp.mask.numel()
        expected[mp.name] = {"nnz": nnz, "numel": numel, "density": nnz / numel}
    assert rep == expected
    assert rep == masks.report()
    assert masks.nnz() == sum(v["nnz"] for v in rep.values())
    assert masks.numel() == sum(v["numel"] for v in rep.values())
    assert masks.density() == pytest.approx(masks.nnz() / masks.numel())
    # reports follow mask updates
    masks.update("4.weight", torch.ones_like(masks["4.weight"]))
    assert density_report(model)["4.weight"] == {"nnz": 192, "numel": 192, "density": 1.0}


def test_density_report_top_level_and_unmasked_model():
    lin = nn.Linear(5, 3)
    masks = sparsify(lin, 0.6, seed=0)
    assert list(masks.params) == ["weight"]
    assert density_report(lin) == {"weight": {"nnz": 6, "numel": 15, "density": 6 / 15}}
    assert density_report(mlp(0)) == {}


# --------------------------------------------------------------- sparsify
@pytest.mark.parametrize("distribution", ["uniform", "er", "erk"])
@pytest.mark.parametrize("net", [mlp, convnet])
def test_sparsify_exact_nnz(distribution, net):
    model = net(0)
    masks = sparsify(model, 0.75, distribution=distribution, seed=0)
    expected = layer_nnz(masks.shapes(), 1.0 - 0.75, distribution)
    assert {n: int(m.mask.sum()) for n, m in masks.params.items()} == expected
    total = masks.numel()
    assert masks.nnz() == round((1 - 0.75) * total)
    assert_pruned_zero(masks)


def test_sparsify_seed_reproducible():
    a = sparsify(mlp(0), 0.8, seed=5)
    b = sparsify(mlp(0), 0.8, seed=5)
    c = sparsify(mlp(0), 0.8, seed=6)
    assert all(torch.equal(a[n], b[n]) for n in a.params)
    assert not all(torch.equal(a[n], c[n]) for n in a.params)


def test_sparsify_zero_sparsity_keeps_everything():
    model = mlp(0)
    w = [p.detach().clone() for p in model.parameters()]
    masks = sparsify(model, 0.0, seed=0)
    assert all(bool(m.mask.all()) for m in masks)
    assert all(torch.equal(a, b) for a, b in zip(w, model.parameters()))


@pytest.mark.parametrize("dense,expect_dense", [
    ("first_last", {"0.weight", "4.weight"}),
    ("first", {"0.weight"}),
    ("last", {"4.weight"}),
    (["2.weight"], {"2.weight"}),
    ("2.weight", {"2.weight"}),  # a single name, not a sequence of characters
    ((), set()),
    (None, set()),
    ("none", set()),
])
def test_sparsify_dense_options(dense, expect_dense):
    model = mlp(0)
    # uniform: no layer overflows, so only the named layers are dense; budget 258 of 368
    masks = sparsify(model, 0.3, distribution="uniform", dense=dense, seed=0)
    for n, mp in masks.params.items():
        assert bool(mp.mask.all()) == (n in expect_dense), n
    assert masks.nnz() == round(0.7 * masks.numel())
    expected = layer_nnz(masks.shapes(), 0.7, "uniform", sorted(expect_dense))
    assert {n: int(m.mask.sum()) for n, m in masks.params.items()} == expected


def test_sparsify_explicit_names():
    model = mlp(0)
    masks = sparsify(model, 0.5, names=["2.weight", "2.bias"], seed=0)
    assert set(masks.params) == {"2.weight", "2.bias"}
    assert set(density_report(model)) == {"2.weight", "2.bias"}


@pytest.mark.parametrize("sparsity", [1.0, 1.5, -0.1])
def test_sparsify_bad_sparsity(sparsity):
    with pytest.raises(ValueError, match="sparsity"):
        sparsify(mlp(0), sparsity)


def test_sparsify_errors():
    with pytest.raises(ValueError, match="not in the model"):
        sparsify(mlp(0), 0.5, names=["nope.weight"])
    with pytest.raises(ValueError, match="not among the prunable layers"):
        sparsify(mlp(0), 0.5, dense=["nope.weight"])
    with pytest.raises(ValueError, match="unknown distribution"):
        sparsify(mlp(0), 0.5, distribution="normal")
    with pytest.raises(ValueError, match="no prunable"):
        Masking(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)))
    with pytest.raises(ValueError, match="budget"):
        sparsify(mlp(0), 0.9, dense="first_last")


# ------------------------------------------------------------------ topk
def test_topk_mask_hand_made():
    s = torch.tensor([[0.1, 0.9, 0.3], [0.7, 0.2, 0.8]])
    m = topk_mask(s, 3)
    assert m.dtype == torch.bool and m.shape == s.shape
    assert torch.equal(m, torch.tensor([[False, True, False], [True, False, True]]))
    assert int(topk_mask(s, 0).sum()) == 0
    assert bool(topk_mask(s, 6).all())


@pytest.mark.parametrize("k", [0, 1, 7, 19, 20])
def test_topk_mask_exact_k_with_ties(k):
    s = torch.zeros(4, 5)
    assert int(topk_mask(s, k).sum()) == k
    s = torch.tensor([1.0, 1.0, 1.0, 0.0] * 5).view(4, 5)
    assert int(topk_mask(s, k).sum()) == k


@pytest.mark.parametrize("k", [-1, 21])
def test_topk_mask_k_out_of_range(k):
    with pytest.raises(ValueError, match="outside"):
        topk_mask(torch.zeros(4, 5), k)


# ------------------------------------------------------------ properties
@settings(max_examples=30, deadline=None)
@given(
    sparsity=st.floats(min_value=0.0, max_value=0.99, allow_nan=False),
    seed=st.integers(0, 2**31 - 1),
    distribution=st.sampled_from(["uniform", "er", "erk"]),
    opt_name=st.sampled_from(["sgd_momentum_wd", "adam", "adamw"]),
)
def test_sparsify_property_exact_and_stays_sparse(sparsity, seed, distribution, opt_name):
    model = mlp(seed % 7)
    opt = OPTIMIZERS[opt_name](model.parameters())
    masks = sparsify(model, sparsity, distribution=distribution, optimizer=opt, seed=seed)
    expected = layer_nnz(masks.shapes(), 1.0 - sparsity, distribution)
    assert {n: int(mp.mask.sum()) for n, mp in masks.params.items()} == expected
    assert masks.nnz() == round((1.0 - sparsity) * masks.numel())
    assert_pruned_zero(masks)
    before = {n: mp.mask.clone() for n, mp in masks.params.items()}
    gen = torch.Generator().manual_seed(seed)
    for _ in range(3):
        train_step(model, opt, gen)
        assert_pruned_zero(masks)
    assert all(torch.equal(before[n], masks[n]) for n in before)
    assert density_report(model) == masks.report()


def test_public_api_exports():
    assert snb.sparsify is sparsify and snb.Masking is Masking
    assert snb.density_report is density_report and snb.topk_mask is topk_mask


# ---------------------------------------------------------------- argument checks before the model is touched
def _has_mask_buffers(model):
    return any(name.endswith("_mask") for name, _ in model.named_buffers())


@pytest.mark.parametrize("kwargs, message", [
    (dict(sparsity=0.9, distribution="foo"), "unknown distribution 'foo'"),
    (dict(sparsity="0.9"), "sparsity must be a number in \\[0, 1\\).*got '0.9' of type str"),
    (dict(sparsity=None), "sparsity must be a number.*NoneType"),
    (dict(sparsity=True), "sparsity must be a number"),
    (dict(sparsity=1.0), "sparsity must be in \\[0, 1\\)"),
    (dict(sparsity=float("nan")), "sparsity must be in \\[0, 1\\)"),
    (dict(sparsity=0.9, dense=["nope.weight"]), "dense layers \\['nope.weight'\\]"),
    (dict(sparsity=0.9, optimizer="sgd"), "optimizer must be a torch.optim.Optimizer"),
    (dict(sparsity=0.9, seed="0"), "seed must be an int"),
    (dict(sparsity=0.9, on_empty="shout"), "on_empty must be one of"),
])
def test_sparsify_checks_every_argument_before_touching_the_model(kwargs, message):
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        snb.sparsify(model, **kwargs)
    assert not _has_mask_buffers(model), "a rejected call must not add mask buffers"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _three_to_two():
    return nn.Sequential(nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 3), nn.ReLU(), nn.Linear(3, 2))


def test_a_layout_that_empties_a_layer_warns_by_default_and_can_raise():
    # uniform at 0.99: the 3 -> 2 output layer (6 weights) keeps round(0.06) = 0
    with pytest.warns(snb.distributions.EmptyLayerWarning, match=r"keeps no weight in \['4.weight'\]"):
        masks = snb.sparsify(_three_to_two(), 0.99, "uniform")
    assert masks.report()["4.weight"]["nnz"] == 0
    model = _three_to_two()
    with pytest.raises(ValueError, match="keeps no weight"):
        snb.sparsify(model, 0.99, "uniform", on_empty="raise")
    assert not _has_mask_buffers(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snb.sparsify(_three_to_two(), 0.99, "uniform", on_empty="ignore")
        snb.sparsify(_three_to_two(), 0.9, "erk")  # ERK keeps every layer non-empty here: no warning
    with pytest.raises(ValueError, match="keeps no weight"):
        snb.methods.get("static", sparsity=0.99, distribution="uniform", on_empty="raise").init_masks(_three_to_two())
    with pytest.warns(snb.distributions.EmptyLayerWarning):
        snb.methods.get("static", sparsity=0.99, distribution="uniform").init_masks(_three_to_two())


@pytest.mark.parametrize("name, kwargs, message", [
    ("rigl", dict(sparsity="high"), "sparsity must be a number"),
    ("set", dict(sparsity=0.9, distribution="foo"), "unknown distribution 'foo'"),
    ("set", dict(sparsity=0.9, zeta=0.3), "method 'set' has no option 'zeta'.*'drop_fraction'"),
    ("rigl", dict(sparsity=0.9, grow="random"), "grow must be 'zero' or 'init'"),
    ("static", dict(sparsity=0.9, seed=1.5), "seed must be an int"),
    ("static", dict(sparsity=0.9, dense=3), "dense must be parameter names"),
    ("static", dict(sparsity=0.9, on_empty="x"), "on_empty must be one of"),
])
def test_methods_get_checks_every_argument(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        snb.methods.get(name, **kwargs)


@pytest.mark.parametrize("how", ["update", "update_indices"])
def test_regrown_weights_restart_rprop_step_size_and_adagrad_sum(how):
    """Rprop's per-weight step size restarts at lr (at 0 a regrown weight would never move);
    Adagrad's sum at its initial accumulator value; other state at 0."""
    for make, key, fresh in [(lambda ps: torch.optim.Rprop(ps, lr=0.01), "step_size", 0.01),
                             (lambda ps: torch.optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.5), "sum", 0.5),
                             (lambda ps: torch.optim.Adam(ps, lr=0.1), "exp_avg_sq", 0.0)]:
        model = mlp(0)
        opt = make(model.parameters())
        masks = sparsify(model, 0.5, optimizer=opt, seed=0)
        gen = torch.Generator().manual_seed(0)
        for _ in range(3):
            train_step(model, opt, gen)
        p, m = model[0].weight, masks["0.weight"]
        opt.state[p][key].fill_(0.003)  # a value no reset produces (and a small Rprop step)
        absent = (~m).reshape(-1).nonzero().squeeze(1)
        grow = absent[:: absent.numel() // 4][:4]  # spread over rows (a row may be a dead neuron)
        drop = m.reshape(-1).nonzero().squeeze(1)[:4]
        if how == "update":
            new = m.clone().reshape(-1)
            new[drop], new[grow] = False, True
            masks.update("0.weight", new.view_as(m))
        else:
            masks.update_indices("0.weight", drop, grow)
        flat = opt.state[p][key].reshape(-1)
        assert torch.all(flat[grow] == fresh) and torch.all(flat[drop] == fresh), type(opt).__name__
        assert int((flat == 0.003).sum()) == flat.numel() - 8  # the others untouched
        train_step(model, opt, gen)
        if key == "step_size":  # the regrown weights move again, by exactly lr (or not at all: no gradient)
            w = p.detach().reshape(-1)[grow]
            assert torch.any(w != 0) and torch.all((w == 0) | (w.abs() == torch.tensor(0.01)))
