"""Tests for sparsenb.methods: registry, dense/static, SET and RigL.

The SET and RigL selection rules are checked on hand-made tensors with the
expected positions written out; the hooks are then run in tiny training loops
with an attached optimizer.
"""
import io
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sparsenb import methods
from sparsenb.core.distributions import layer_nnz
from sparsenb.core.masks import Masking, sparsify
from sparsenb.methods import METHODS, Method, available, get, register
from sparsenb.methods.rigl import RigL, cosine_drop_fraction, rigl_drop_grow, rigl_masks
from sparsenb.core.dropgrow import set_drop
from sparsenb.methods.set import SET


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))


def backward(model, gen):
    x, y = torch.randn(16, 8, generator=gen), torch.randint(0, 4, (16,), generator=gen)
    F.cross_entropy(model(x), y).backward()


def snapshot(masks: Masking) -> dict[str, torch.Tensor]:
    return {n: mp.mask.clone() for n, mp in masks.params.items()}


def per_layer_nnz(masks: Masking) -> dict[str, int]:
    return {n: int(mp.mask.sum()) for n, mp in masks.params.items()}


def assert_pruned_zero(masks: Masking):
    for mp in masks:
        assert torch.all(mp.param[~mp.mask] == 0), mp.name


# ------------------------------------------------------------------ registry
def test_registry_lists_core_methods():
    names = available()
    assert {"dense", "static", "set", "rigl"} <= set(names)
    assert names == sorted(names)
    assert set(names) == set(METHODS)
    assert methods.available is available


def test_get_builds_configured_instances():
    r = get("rigl", sparsity=0.8, update_every=10, drop_fraction=0.2, t_end=0.5, seed=3)
    assert isinstance(r, RigL) and isinstance(r, Method)
    assert (r.sparsity, r.update_every, r.drop_fraction, r.t_end, r.seed, r.name) == (0.8, 10, 0.2, 0.5, 3, "rigl")
    s = get("set", sparsity=0.7, drop_fraction=0.2, distribution="er")
    assert isinstance(s, SET) and (s.drop_fraction, s.distribution, s.grow, s.name) == (0.2, "er", "init", "set")
    assert get("static").name == "static"
    assert get("dense").name == "dense"
    for n in ("dense", "static", "set", "rigl"):
        assert METHODS[n].name == n


def test_get_unknown_lists_available_names():
    with pytest.raises(ValueError) as err:
        get("magic")
    msg = str(err.value)
    assert "magic" in msg
    for n in ("dense", "static", "set", "rigl"):
        assert n in msg


def test_register_duplicate_and_new():
    with pytest.raises(ValueError, match="already registered"):
        register("rigl")(type("Other", (Method,), {}))
    try:
        @register("_test_tmp")
        class Tmp(Method):
            pass

        assert "_test_tmp" in available()
        assert isinstance(get("_test_tmp", sparsity=0.5), Tmp)
        assert Tmp.name == "_test_tmp"
    finally:
        METHODS.pop("_test_tmp", None)


@pytest.mark.parametrize("name,kwargs", [
    ("static", {"sparsity": 1.0}),
    ("static", {"sparsity": -0.1}),
    ("rigl", {"update_every": 0}),
    ("rigl", {"drop_fraction": 1.0}),
    ("rigl", {"drop_fraction": -0.1}),
    ("rigl", {"t_end": 0.0}),
    ("rigl", {"t_end": 1.5}),
    ("set", {"drop_fraction": 1.0}),
    ("set", {"drop_fraction": -0.1}),
])
def test_bad_options(name, kwargs):
    with pytest.raises(ValueError):
        get(name, **kwargs)


# ---------------------------------------------------------- dense / static
def test_dense_returns_no_masks_and_hooks_accept_none():
    d = get("dense", sparsity=0.9)
    assert d.sparsity == 0.0
    assert d.init_masks(mlp()) is None
    d.setup(10, 5, 2)
    d.after_backward(0, None)
    d.after_step(0, None)
    d.on_epoch_end(0, None)
    # the other methods accept masks=None as well
    for name in ("static", "set", "rigl"):
        m = get(name)
        m.setup(10, 5, 2)
        m.after_backward(5, None)
        m.after_step(5, None)
        m.on_epoch_end(0, None)


def run_epochs(method, model, masks, opt, epochs, steps_per_epoch, gen, check=None):
    """The hook sequence of a training loop."""
    method.setup(epochs * steps_per_epoch, steps_per_epoch, epochs)
    step = 0
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            opt.zero_grad()
            backward(model, gen)
            method.after_backward(step, masks)
            opt.step()
            method.after_step(step, masks)
            if check:
                check(step)
            step += 1
        method.on_epoch_end(epoch, masks)


@pytest.mark.parametrize("distribution", ["uniform", "er", "erk"])
def test_static_exact_and_unchanged_by_training(distribution):
    model = mlp()
    method = get("static", sparsity=0.75, distribution=distribution, seed=1)
    masks = method.init_masks(model)
    assert isinstance(masks, Masking)
    assert per_layer_nnz(masks) == layer_nnz(masks.shapes(), 0.25, distribution)
    assert_pruned_zero(masks)
    before = snapshot(masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    masks.attach(opt)
    run_epochs(method, model, masks, opt, epochs=3, steps_per_epoch=3, gen=torch.Generator().manual_seed(0))
    assert all(torch.equal(before[n], masks[n]) for n in before)
    assert method.events == []
    assert_pruned_zero(masks)


def test_init_masks_seeded_and_dense_policy():
    a = get("static", sparsity=0.8, seed=4).init_masks(mlp())
    b = get("static", sparsity=0.8, seed=4).init_masks(mlp())
    c = get("static", sparsity=0.8, seed=5).init_masks(mlp())
    assert all(torch.equal(a[n], b[n]) for n in a.params)
    assert not all(torch.equal(a[n], c[n]) for n in a.params)
    fl = get("static", sparsity=0.5, dense="first_last", distribution="uniform").init_masks(mlp())
    assert bool(fl["0.weight"].all()) and bool(fl["4.weight"].all())
    assert not bool(fl["2.weight"].all())
    assert fl.nnz() == round(0.5 * fl.numel())


# --------------------------------------------------------------------- SET
def test_set_drop_hand_made():
    #                 0     1     2     3     4     5     6     7     8      9    10    11
    w = torch.tensor([0.5, -0.1, 0.2, -0.7, 0.05, 0.3, -0.3, 0.9, -0.02, 0.4, 0.6, -0.5]).view(3, 4)
    mask = torch.ones(12, dtype=torch.bool)
    mask[4] = mask[8] = False  # 0.05 and -0.02 are closest to zero but inactive: never dropped
    mask = mask.view(3, 4)
    # active positives: 0 (.5), 2 (.2), 5 (.3), 7 (.9), 9 (.4), 10 (.6) -> n_pos = 6
    # active negatives: 1 (-.1), 3 (-.7), 6 (-.3), 11 (-.5)           -> n_neg = 4
    # zeta 0.5: 3 smallest positives {2, 5, 9}, 2 negatives closest to zero {1, 6}
    drop = set_drop(w, mask, 0.5)
    assert drop.dtype == torch.bool and drop.shape == w.shape
    assert sorted(drop.reshape(-1).nonzero().squeeze(1).tolist()) == [1, 2, 5, 6, 9]
    # zeta 0.3: round(1.8) = 2 positives {2, 5}, round(1.2) = 1 negative {1}
    drop = set_drop(w, mask, 0.3)
    assert sorted(drop.reshape(-1).nonzero().squeeze(1).tolist()) == [1, 2, 5]
    # zeta 0: nothing
    assert not set_drop(w, mask, 0.0).any()


def test_set_drop_zero_weight_counts_as_positive():
    w = torch.tensor([0.0, 0.4, 0.8, -0.2, -0.9])
    mask = torch.ones(5, dtype=torch.bool)
    # positives (incl. 0): 0, 1, 2 -> round(.5*3) = round(1.5) = 2 -> {0 (0.0), 1 (.4)}
    # negatives: 3, 4 -> round(.5*2) = 1 -> {3 (-.2)}
    assert set_drop(w, mask, 0.5).nonzero().squeeze(1).tolist() == [0, 1, 3]


def _set_setup(grow="init", dense=(), seed=0, sparsity=0.8):
    model = mlp(0)
    method = get("set", sparsity=sparsity, drop_fraction=0.3, distribution="er", grow=grow, dense=dense, seed=seed)
    masks = method.init_masks(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    masks.attach(opt)
    return model, method, masks, opt


def test_set_on_epoch_end_evolves_exactly():
    model, method, masks, opt = _set_setup()
    epochs, spe = 3, 2
    method.setup(epochs * spe, spe, epochs)
    gen = torch.Generator().manual_seed(0)
    nnz0 = per_layer_nnz(masks)
    fan_in = {n: mp.param.shape[1] for n, mp in masks.params.items()}
    for epoch in range(epochs):
        for _ in range(spe):
            opt.zero_grad()
            backward(model, gen)
            opt.step()
        old = snapshot(masks)
        drops = {mp.name: set_drop(mp.param, mp.mask, method.drop_fraction) for mp in masks}
        n_events = len(method.events)
        method.on_epoch_end(epoch, masks)
        assert per_layer_nnz(masks) == nnz0
        assert_pruned_zero(masks)
        if epoch == epochs - 1:  # no evolution after the last epoch
            assert all(torch.equal(old[n], masks[n]) for n in old)
            assert len(method.events) == n_events
            continue
        for mp in masks:
            new, o = mp.mask, old[mp.name]
            assert not torch.equal(new, o), mp.name
            grown, dropped = new & ~o, o & ~new
            assert int(grown.sum()) == int(dropped.sum()) > 0
            assert torch.all(dropped <= drops[mp.name])  # only SET's chosen weights leave
            assert torch.all((o & ~drops[mp.name]) <= new)  # all the others stay
            w = mp.param.detach()[grown]
            assert torch.all(w != 0)  # grow="init": fresh nonzero values
            assert torch.all(w.abs() <= 1 / math.sqrt(fan_in[mp.name]))
            buf = opt.state[mp.param]["momentum_buffer"]
            assert torch.all(buf[grown | dropped] == 0)
        new_events = method.events[n_events:]
        assert [e["layer"] for e in new_events] == list(masks.params)
        for e in new_events:
            assert e["step"] == (epoch + 1) * spe
            assert e["grown"] == e["dropped"] > 0


def test_set_grow_zero_and_dense_layers_untouched():
    model, method, masks, opt = _set_setup(grow="zero", dense="first_last", sparsity=0.5)
    assert bool(masks["0.weight"].all()) and bool(masks["4.weight"].all())
    old = snapshot(masks)
    method.on_epoch_end(0, masks)  # setup() not called: epochs = 0, always evolve
    assert torch.equal(masks["0.weight"], old["0.weight"]) and torch.equal(masks["4.weight"], old["4.weight"])
    new, o = masks["2.weight"], old["2.weight"]
    grown = new & ~o
    assert grown.any()
    assert torch.all(masks.params["2.weight"].param[grown] == 0)
    assert [e["layer"] for e in method.events] == ["2.weight"]


# -------------------------------------------------------------------- RigL
def test_cosine_drop_fraction_by_hand():
    alpha, t_end = 0.3, 100
    assert cosine_drop_fraction(0, alpha, t_end) == pytest.approx(0.3)  # alpha/2 * (1 + 1)
    assert cosine_drop_fraction(50, alpha, t_end) == pytest.approx(0.15)  # alpha/2 * (1 + 0)
    # alpha/2 * (1 + cos(pi/4)) = 0.15 * 1.70711
    assert cosine_drop_fraction(25, alpha, t_end) == pytest.approx(0.15 * (1 + math.sqrt(0.5)))
    assert cosine_drop_fraction(100, alpha, t_end) == 0.0
    assert cosine_drop_fraction(150, alpha, t_end) == 0.0
    vals = [cosine_drop_fraction(t, alpha, t_end) for t in range(0, 101, 10)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))  # decreasing


W = torch.tensor([[0.9, -0.1, 0.0],
                  [0.5, 0.0, -0.05],
                  [0.0, 0.3, -0.7]])
M = torch.tensor([[1, 1, 0],
                  [1, 0, 1],
                  [0, 1, 1]], dtype=torch.bool)


def test_rigl_masks_hand_made():
    # active |w|: (0,0) .9, (0,1) .1, (1,0) .5, (1,2) .05, (2,1) .3, (2,2) .7
    # k = 2 -> drop the two smallest: (1,2) and (0,1)
    # absent after the drop and their |g|: (0,2) .4, (1,1) .3, (2,0) .8, (0,1) .2, (1,2) .01
    # grow the two largest: (2,0) and (0,2); the large gradients of kept weights
    # (5.0 at (0,0), 9.0 at (2,1)) are irrelevant.
    g = torch.tensor([[5.0, 0.2, -0.4],
                      [0.1, 0.3, 0.01],
                      [-0.8, 9.0, 0.05]])
    new = rigl_masks(W, g, M, 2)
    expected = torch.tensor([[1, 0, 1],
                             [1, 0, 0],
                             [1, 1, 1]], dtype=torch.bool)
    assert new.dtype == torch.bool
    assert torch.equal(new, expected)
    assert int(new.sum()) == int(M.sum())
    assert torch.equal(M, torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=torch.bool))  # input untouched


def test_rigl_masks_can_regrow_just_dropped():
    # as above but |g| at the just-dropped (1,2) is 2.0: it wins the regrowth with (2,0)
    g = torch.tensor([[5.0, 0.2, -0.4],
                      [0.1, 0.3, 2.0],
                      [-0.8, 9.0, 0.05]])
    new = rigl_masks(W, g, M, 2)
    assert torch.equal(new, torch.tensor([[1, 0, 0],
                                          [1, 0, 1],
                                          [1, 1, 1]], dtype=torch.bool))


def test_rigl_masks_k_zero_is_a_copy():
    new = rigl_masks(W, torch.ones(3, 3), M, 0)
    assert torch.equal(new, M) and new is not M


def test_rigl_drop_grow_hand_made_and_same_as_rigl_masks():
    g = torch.tensor([[5.0, 0.2, -0.4],
                      [0.1, 0.3, 2.0],
                      [-0.8, 9.0, 0.05]])
    drop, grow = rigl_drop_grow(W, g, M, 2)
    assert sorted(drop.tolist()) == [1, 5]  # (0,1) and (1,2)
    assert sorted(grow.tolist()) == [5, 6]  # (1,2) comes back, (2,0) is new
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):  # random layers, with ties in |w| and |g|
        w = torch.randint(-3, 4, (7, 9), generator=gen).float()
        grad = torch.randint(-3, 4, (7, 9), generator=gen).float()
        m = torch.rand(7, 9, generator=gen) < 0.4
        k = int(torch.randint(0, int(m.sum()) + 1, (), generator=gen))
        drop, grow = rigl_drop_grow(w, grad, m, k) if k else (torch.empty(0, dtype=torch.long),) * 2
        new = m.clone().reshape(-1)
        new[drop], new[grow] = False, True
        assert torch.equal(new.view_as(m), rigl_masks(w, grad, m, k))


@pytest.mark.parametrize("grow_value", ["zero", "init"])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_update_indices_equals_update(grow_value, opt_name):
    """Masking.update_indices (RigL's O(k) path) leaves mask, weights, moments and the
    float-mask cache exactly as Masking.update with the same new mask."""
    def make():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "sgd"
               else torch.optim.Adam(model.parameters(), lr=0.01))
        masks = sparsify(model, 0.5, seed=1, optimizer=opt)
        x, y = torch.randn(5, 6), torch.randint(0, 3, (5,))
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        return model, opt, masks

    ma, oa, ka = make()
    mb, ob, kb = make()
    name = "0.weight"
    m = ka[name].reshape(-1)
    kept, absent = m.nonzero().squeeze(1), (~m).nonzero().squeeze(1)
    drop = kept[[0, 2, 4]]
    grow = torch.cat([absent[[1, 3]], kept[[2]]])  # kept[2] is dropped and regrown: unchanged
    new = m.clone()
    new[drop], new[grow] = False, True
    ca = ka.update(name, new.view_as(ka[name]), grow=grow_value, generator=torch.Generator().manual_seed(5))
    cb = kb.update_indices(name, drop, grow, grow_value=grow_value,
                           generator=torch.Generator().manual_seed(5))
    assert ca == cb == {"grown": 2, "dropped": 2}
    assert torch.equal(ka[name], kb[name])
    for pa, pb in zip(ma.parameters(), mb.parameters()):
        assert torch.equal(pa, pb)
        for key, va in oa.state[pa].items():
            assert torch.equal(va, ob.state[pb][key]), key
    for fa, fb in zip(ka._fused_masks()[1], kb._fused_masks()[1]):
        assert torch.equal(fa, fb)
    assert kb._fused_masks()[1][0].bool().equal(kb[name])


def test_rigl_is_update_step():
    r = get("rigl", update_every=10, t_end=0.75)
    r.setup(total_steps=100, steps_per_epoch=10, epochs=10)
    assert r.end_step == 75
    assert [t for t in range(100) if r.is_update_step(t)] == [10, 20, 30, 40, 50, 60, 70]
    r2 = get("rigl", update_every=3, t_end=1.0)
    r2.setup(total_steps=12, steps_per_epoch=12, epochs=1)
    assert [t for t in range(20) if r2.is_update_step(t)] == [3, 6, 9]


@pytest.mark.parametrize("dense", [(), "first_last"])
def test_rigl_training_loop(dense):
    model = mlp(0)
    lr = 0.1
    # the tiny MLP needs a lower sparsity when its first and last layers are dense
    sparsity = 0.5 if dense else 0.8
    method = get("rigl", sparsity=sparsity, update_every=3, drop_fraction=0.3, t_end=0.75, seed=0, dense=dense)
    masks = method.init_masks(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    masks.attach(opt)
    method.setup(total_steps=12, steps_per_epoch=12, epochs=1)  # end_step 9: updates at 3, 6
    nnz0 = per_layer_nnz(masks)
    dense_names = {"0.weight", "4.weight"} if dense else set()
    gen = torch.Generator().manual_seed(0)
    updated_steps = []
    for step in range(12):
        opt.zero_grad()
        backward(model, gen)
        old = snapshot(masks)
        expected = {}
        if method.is_update_step(step):
            frac = cosine_drop_fraction(step, 0.3, method.end_step)
            for mp in masks:
                k = round(frac * int(mp.mask.sum()))
                expected[mp.name] = old[mp.name] if mp.name in dense_names else \
                    rigl_masks(mp.param, mp.param.grad, mp.mask, k)
        method.after_backward(step, masks)
        grown = {n: masks[n] & ~old[n] for n in old}
        dropped = {n: old[n] & ~masks[n] for n in old}
        if expected:
            updated_steps.append(step)
            assert per_layer_nnz(masks) == nnz0
            for mp in masks:
                n = mp.name
                assert torch.equal(masks[n], expected[n]), n
                if n in dense_names:
                    assert bool(masks[n].all())
                    continue
                # (a just-dropped weight may be regrown, so a layer can end up unchanged)
                assert torch.all(mp.param[grown[n]] == 0)  # grow="zero"
                assert torch.all(mp.param[dropped[n]] == 0)
                buf = opt.state[mp.param]["momentum_buffer"]
                assert torch.all(buf[grown[n] | dropped[n]] == 0)
            assert sum(int(g.sum()) for g in grown.values()) > 0
        else:
            assert all(torch.equal(old[n], masks[n]) for n in old)
        grad_at_grown = {mp.name: mp.param.grad[grown[mp.name]].clone() for mp in masks}
        opt.step()
        method.after_step(step, masks)
        assert_pruned_zero(masks)
        for mp in masks:
            g = grad_at_grown[mp.name]
            if g.numel():
                # grown weight: 0 (+ weight decay * 0), momentum reset -> buf = g, w = -lr * g
                torch.testing.assert_close(mp.param.detach()[grown[mp.name]], -lr * g)
                torch.testing.assert_close(opt.state[mp.param]["momentum_buffer"][grown[mp.name]], g)
    assert updated_steps == [3, 6]
    assert per_layer_nnz(masks) == nnz0
    layers = [n for n in masks.params if n not in dense_names]
    assert [(e["step"], e["layer"]) for e in method.events] == [(s, n) for s in (3, 6) for n in layers]
    for e in method.events:
        assert e["grown"] == e["dropped"] >= 0


def test_rigl_grow_init_gives_nonzero_grown():
    model = mlp(0)
    method = get("rigl", sparsity=0.8, update_every=1, grow="init", seed=0)
    masks = method.init_masks(model)
    method.setup(total_steps=10, steps_per_epoch=10, epochs=1)
    backward(model, torch.Generator().manual_seed(0))
    old = snapshot(masks)
    method.after_backward(1, masks)
    for mp in masks:
        grown = mp.mask & ~old[mp.name]
        assert grown.any()
        assert torch.all(mp.param[grown] != 0)
        assert torch.all(mp.param[grown].abs() <= 1 / math.sqrt(mp.param.shape[1]))


def test_rigl_no_grad_or_non_update_step_is_noop():
    model = mlp(0)
    method = get("rigl", sparsity=0.8, update_every=2, seed=0)
    masks = method.init_masks(model)
    method.setup(total_steps=10, steps_per_epoch=10, epochs=1)
    old = snapshot(masks)
    method.after_backward(2, masks)  # update step but no gradients yet
    backward(model, torch.Generator().manual_seed(0))
    method.after_backward(3, masks)  # not an update step
    method.after_backward(0, masks)  # step 0 never updates
    assert all(torch.equal(old[n], masks[n]) for n in old)
    assert method.events == []


# ------------------------------------------------------------- persistence
@pytest.mark.parametrize("name", ["static", "set", "rigl"])
def test_state_dict_restores_generator(name):
    m1 = get(name, seed=3)
    m1.random_scores(torch.empty(7))  # advance the generator
    m1.log(1, "x", {"grown": 1, "dropped": 1})
    sd = m1.state_dict()
    a = m1.random_scores(torch.empty(4, 4))
    m1.log(2, "y", {"grown": 0, "dropped": 0})
    assert sd["events"] == [{"step": 1, "layer": "x", "grown": 1, "dropped": 1}]  # a copy

    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    m2 = get(name, seed=99)
    m2.load_state_dict(torch.load(buf))
    assert torch.equal(m2.random_scores(torch.empty(4, 4)), a)
    assert m2.events == [{"step": 1, "layer": "x", "grown": 1, "dropped": 1}]
    # loading the same state twice replays the same choice
    m2.load_state_dict(sd)
    assert torch.equal(m2.random_scores(torch.empty(4, 4)), a)


def test_set_resume_is_identical():
    """Checkpoint model + method after one evolution; the next evolution matches."""
    model_a, method_a, masks_a, _ = _set_setup(seed=0)
    method_a.setup(9, 3, 3)
    method_a.on_epoch_end(0, masks_a)
    ckpt = io.BytesIO()
    torch.save({"model": model_a.state_dict(), "method": method_a.state_dict()}, ckpt)
    ckpt.seek(0)
    torch.manual_seed(7)  # grow="init" draws values from torch's global generator
    method_a.on_epoch_end(1, masks_a)

    model_b = mlp(5)
    method_b = get("set", sparsity=0.8, drop_fraction=0.3, distribution="er", seed=42)
    masks_b = method_b.init_masks(model_b)
    state = torch.load(ckpt)
    model_b.load_state_dict(state["model"])
    method_b.load_state_dict(state["method"])
    method_b.setup(9, 3, 3)
    torch.manual_seed(7)
    method_b.on_epoch_end(1, masks_b)
    for n in masks_a.params:
        assert torch.equal(masks_a[n], masks_b[n])
        assert torch.equal(masks_a.params[n].param, masks_b.params[n].param)
    assert method_a.events == method_b.events


def test_random_mask_is_independent_of_weights_drawn_with_the_same_seed():
    """torch.manual_seed(s) then a method seeded with s must not keep the top-k initial weights."""
    import sparsenb as snb
    from sparsenb.core import seeding

    for sparsity in (0.9, 0.98):
        snb.set_seed(0)
        model = snb.models.lenet_300_100()
        init = {n: p.detach().clone() for n, p in model.named_parameters()}
        masks = snb.methods.get("static", sparsity=sparsity, seed=0).init_masks(model)
        for mp in masks:
            if bool(mp.mask.all()):
                continue
            kept = init[mp.name][mp.mask]
            bound = 1 / mp.param.shape[1] ** 0.5
            # kept weights of a random mask are still ~U(-b, b): mean ~0 and |w| mean ~b/2
            assert abs(float(kept.mean())) < 0.1 * bound, (sparsity, mp.name)
            assert abs(float(kept.abs().mean()) - bound / 2) < 0.1 * bound, (sparsity, mp.name)
    assert seeding.derived_seed(0, "method") != seeding.derived_seed(0, "sparsify")
