"""Tests for the DSN model (sparsenb.models.dsn), its training scheme (sparsenb.methods.dsn) and driver.

Hand-computed cases: the group windows, the regions, the drop-fraction schedule, one
drop/regrow update on a tiny group; then invariants in short training loops (masks inside
the regions, weights outside the windows exactly zero after every step, nnz per group fixed)
and a hypothesis property test of one group update.
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from sparsenb.train import flops
from sparsenb import methods
from sparsenb.data import TensorData
from sparsenb.models.dsn import DSNNet, WindowedConv1d, build_dsn, group_windows, windowed_convs
from sparsenb.experiments.dsn import batch_size_for, dsn_run, published_gaps, summarize_runs
from sparsenb.core.dropgrow import grow
from sparsenb.methods.dsn import DSN, dsn_drop_fraction, dsn_group_update, region_nnz
from sparsenb.train import Trainer


# ------------------------------------------------------------------ model
def test_group_windows_are_the_papers_receptive_fields():
    assert group_windows(39, 3) == [13, 26, 39]
    assert group_windows(9, 3) == [3, 6, 9]
    assert group_windows(10, 3) == [3, 6, 9]  # K // groups taps per step, as the official code
    with pytest.raises(ValueError, match="groups"):
        group_windows(2, 3)


def test_region_is_left_aligned_window_per_output_group():
    conv = WindowedConv1d(in_channels=2, group_channels=2, kernel_size=6, groups=3)
    r = conv.region()
    assert r.shape == (6, 2, 6) and r.dtype == torch.bool
    expected_taps = [2, 2, 4, 4, 6, 6]  # windows [2, 4, 6], two output channels per group
    for o, taps in enumerate(expected_taps):
        assert r[o, :, :taps].all() and not r[o, :, taps:].any()
    assert int(r.sum()) == 2 * 2 * (2 + 4 + 6)
    assert torch.equal(conv.region(1), r & (torch.arange(6)[:, None, None].expand(6, 2, 6) // 2 == 1))


def test_windowed_conv_keeps_length_and_zero_padding_is_centred():
    conv = WindowedConv1d(1, 1, kernel_size=5, groups=1, padding="zero")
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0] = 1.0  # tap 0 reads x[t - 2] with padding (2, 2)
    x = torch.arange(1.0, 8.0).view(1, 1, 7)
    assert torch.equal(conv(x), torch.tensor([[[0.0, 0.0, 1, 2, 3, 4, 5]]]))
    rep = WindowedConv1d(1, 1, kernel_size=5, groups=1, padding="replicate")
    with torch.no_grad():
        rep.weight.zero_()
        rep.weight[0, 0, 4] = 1.0  # tap 4 reads x[t + 4], right side replicated
    assert torch.equal(rep(x), torch.tensor([[[5.0, 6, 7, 7, 7, 7, 7]]]))
    with pytest.raises(ValueError, match="padding"):
        WindowedConv1d(1, 1, padding="circular")


def test_dsnnet_shapes_bottlenecks_and_errors():
    uni = DSNNet(1, 3, width=4, depth=2, kernel_size=9)
    assert uni(torch.randn(5, 1, 30)).shape == (5, 3)
    assert isinstance(uni.blocks[0].bottleneck, torch.nn.Identity)  # one input channel: no bottleneck
    assert uni.blocks[1].bottleneck.weight.shape == (4, 12, 1)
    multi = build_dsn((6, 20), 4, width=4, depth=2, kernel_size=9)
    assert multi(torch.randn(2, 6, 20)).shape == (2, 4)
    assert multi.blocks[0].bottleneck.weight.shape == (4, 6, 1)
    assert list(windowed_convs(multi)) == ["blocks.0.wide.conv.weight", "blocks.1.wide.conv.weight"]
    with pytest.raises(ValueError, match="channels, length"):
        build_dsn((1, 28, 28), 10)
    with pytest.raises(ValueError, match="channels, length"):
        uni(torch.randn(5, 30))


# ------------------------------------------------------------------ schedule and selection rules
def test_drop_fraction_cosine_from_alpha_to_floor():
    assert dsn_drop_fraction(0, 0.5, 100) == pytest.approx(0.5)
    assert dsn_drop_fraction(50, 0.5, 100) == pytest.approx(0.001 + 0.499 / 2)
    assert dsn_drop_fraction(100, 0.5, 100) == 0.001
    assert dsn_drop_fraction(500, 0.5, 100) == 0.001
    vals = [dsn_drop_fraction(t, 0.5, 100) for t in range(0, 101, 10)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))


def test_region_nnz_floors_density_times_region_size():
    region = torch.zeros(2, 1, 10, dtype=torch.bool)
    region[:, :, :7] = True  # 14 allowed positions
    assert region_nnz(region, 0.2) == 2  # floor(2.8), as int() in the official code
    assert region_nnz(region, 0.01) == 1  # at least one weight per group


def test_grow_in_region_picks_highest_scores_inside_only():
    region = torch.tensor([True, True, False, True])
    scores = torch.tensor([0.1, 0.5, 0.9, 0.3])
    assert torch.equal(grow(scores, region, 2), torch.tensor([False, True, False, True]))
    with pytest.raises(ValueError, match="only 3 are allowed"):
        grow(scores, region, 4)


def test_group_update_hand_computed():
    # one output channel, one input, 6 taps; window = first 4 taps
    region = torch.tensor([[[True, True, True, True, False, False]]])
    mask = torch.tensor([[[True, True, False, False, False, False]]])
    weight = torch.tensor([[[0.9, -0.1, 0.0, 0.0, 0.0, 0.0]]])
    scores = torch.tensor([[[0.0, 0.0, 0.2, 0.7, 1.0, 1.0]]])  # outside the window scores highest: ignored
    # fraction 0.5 of nnz 2 -> drop ceil(1) = the smallest |w| (tap 1), regrow the best-scored absent tap in window (3)
    new = dsn_group_update(weight, mask, region, 0.5, scores)
    assert torch.equal(new, torch.tensor([[[True, False, False, True, False, False]]]))
    # a just-dropped position may come back when it has the highest score
    scores2 = torch.tensor([[[0.0, 0.9, 0.2, 0.1, 1.0, 1.0]]])
    assert torch.equal(dsn_group_update(weight, mask, region, 0.5, scores2), mask)
    with pytest.raises(ValueError, match="outside"):
        dsn_group_update(weight, ~region & torch.tensor([[[0, 0, 0, 0, 1, 0]]], dtype=torch.bool), region, 0.5, scores)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(2, 12), st.floats(0.0, 0.99), st.integers(0, 10_000))
def test_group_update_property_inside_region_same_nnz(out_g, c_in, window, fraction, seed):
    k = 12
    g = torch.Generator().manual_seed(seed)
    region = torch.zeros(out_g, c_in, k, dtype=torch.bool)
    region[:, :, :window] = True
    n = region_nnz(region, 0.3)
    mask = grow(torch.rand(region.shape, generator=g), region, n)
    weight = torch.randn(region.shape, generator=g) * mask
    new = dsn_group_update(weight, mask, region, fraction, torch.rand(region.shape, generator=g))
    assert int(new.sum()) == n
    assert not (new & ~region).any()
    k = math.ceil(fraction * n)
    assert int((mask & ~new).sum()) <= k and int((mask ^ new).sum()) <= 2 * k
    if k == 0:
        assert torch.equal(new, mask)


# ------------------------------------------------------------------ the method on a model
def tiny(seed=0, in_ch=1):
    torch.manual_seed(seed)
    return DSNNet(in_ch, 3, width=4, depth=2, kernel_size=9, adaptive_size=8)


def test_init_masks_density_within_each_region_and_only_wide_convs():
    model = tiny()
    method = methods.get("dsn", sparsity=0.8, seed=1)
    assert isinstance(method, DSN) and method.density == pytest.approx(0.2)
    masks = method.init_masks(model)
    assert set(masks.params) == set(windowed_convs(model))  # bottlenecks and head stay dense
    for name, conv in windowed_convs(model).items():
        m = masks[name]
        for g in range(conv.groups):
            region = conv.region(g)
            assert int((m & region).sum()) == region_nnz(region, 0.2)
        assert not (m & ~conv.region()).any()
        assert torch.all(conv.weight[~m] == 0)
    with pytest.raises(ValueError, match="WindowedConv1d"):
        methods.get("dsn").init_masks(torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3)))


def test_init_masks_reproducible_and_seed_dependent():
    a = methods.get("dsn", seed=3).init_masks(tiny(0))
    b = methods.get("dsn", seed=3).init_masks(tiny(0))
    c = methods.get("dsn", seed=4).init_masks(tiny(0))
    name = "blocks.1.wide.conv.weight"
    assert torch.equal(a[name], b[name]) and not torch.equal(a[name], c[name])


def train_steps(model, method, epochs=6, steps=3, in_ch=1):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    masks = method.init_masks(model)
    masks.attach(opt)
    method.setup(total_steps=epochs * steps, steps_per_epoch=steps, epochs=epochs)
    gen = torch.Generator().manual_seed(0)
    convs = windowed_convs(model)
    history = []
    for epoch in range(epochs):
        for _ in range(steps):
            x, y = torch.randn(8, in_ch, 20, generator=gen), torch.randint(0, 3, (8,), generator=gen)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            for name, conv in convs.items():  # after EVERY step: pruned and out-of-window weights exactly zero
                assert torch.all(conv.weight[~masks[name]] == 0)
                assert torch.all(conv.weight[~conv.region()] == 0)
        before = {n: masks[n].clone() for n in convs}
        method.on_epoch_end(epoch, masks)
        history.append({n: (before[n], masks[n].clone()) for n in convs})
    return masks, history


def test_dsn_updates_every_k_epochs_keep_group_nnz_and_stay_in_windows():
    model = tiny()
    method = methods.get("dsn", sparsity=0.8, update_every=6, seed=0)  # 2 epochs of 3 steps
    masks, history = train_steps(model, method, epochs=6)
    changed = [any(not torch.equal(b, a) for b, a in h.values()) for h in history]
    assert changed == [False, True, False, True, False, False]  # after epochs 2 and 4, never after the last
    for name, conv in windowed_convs(model).items():
        for g in range(conv.groups):
            region = conv.region(g)
            assert int((masks[name] & region).sum()) == region_nnz(region, 0.2)
        assert not (masks[name] & ~conv.region()).any()
    assert {e["step"] for e in method.events} == {6, 12}
    e = method.events[0]
    assert e["fraction"] == pytest.approx(dsn_drop_fraction(6, 0.5, int(0.8 * 18)))
    assert e["grown"] == e["dropped"] > 0


def test_static_arm_never_changes_masks():
    model = tiny()
    method = methods.get("dsn", update_every=3, fix=True)
    masks, history = train_steps(model, method, epochs=4)
    assert all(torch.equal(b, a) for h in history for b, a in h.values())
    assert method.events == []


def test_multivariate_input_trains_and_stays_sparse():
    model = tiny(in_ch=6)
    train_steps(model, methods.get("dsn", update_every=3), epochs=3, in_ch=6)


def test_grown_weights_start_at_zero_and_moments_reset():
    model = tiny()
    method = methods.get("dsn", update_every=1, drop_fraction=0.5, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    masks = method.init_masks(model)
    masks.attach(opt)
    method.setup(total_steps=10, steps_per_epoch=1, epochs=10)
    x, y = torch.randn(8, 1, 20), torch.randint(0, 3, (8,))
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    name = "blocks.1.wide.conv.weight"
    before = masks[name].clone()
    method.on_epoch_end(0, masks)
    grown = masks[name] & ~before
    assert grown.any()
    w = masks.params[name].param
    assert torch.all(w[grown] == 0)
    assert torch.all(opt.state[w]["exp_avg"][grown] == 0) and torch.all(opt.state[w]["exp_avg_sq"][grown] == 0)


def test_method_state_round_trip_replays_regrowth():
    m1 = methods.get("dsn", update_every=1, seed=5)
    m1.init_masks(tiny())
    state = m1.state_dict()
    a = m1.random_scores(torch.zeros(3, 4))
    m2 = methods.get("dsn", update_every=1, seed=99)
    m2.load_state_dict(state)
    assert torch.equal(a, m2.random_scores(torch.zeros(3, 4)))


def test_update_every_is_in_steps_and_defaults_to_five_epochs():
    m = methods.get("dsn", update_every=4)
    m.setup(total_steps=30, steps_per_epoch=3, epochs=10)
    # step counts at epoch ends 3, 6, 9, 12, ...: the multiples 4, 8, 12, 16, 20, 24 of update_every are
    # reached at the ends of epochs 1, 2, 3, 5, 6, 7 (27 in epoch 8 passes none; epoch 9 is the last)
    assert [e for e in range(10) if m.is_update_epoch(e)] == [1, 2, 3, 5, 6, 7]
    d = methods.get("dsn")
    d.setup(total_steps=60, steps_per_epoch=3, epochs=20)
    assert d.update_every == 15 and [e for e in range(20) if d.is_update_epoch(e)] == [4, 9, 14]


def test_bad_options_raise():
    with pytest.raises(ValueError, match="update_every"):
        methods.get("dsn", update_every=0)
    with pytest.raises(ValueError, match="floor"):
        methods.get("dsn", drop_fraction=0.1, floor=0.2)


# ------------------------------------------------------------------ FLOPs and the driver
def test_flops_of_windowed_sparse_net_hand_computed():
    model = DSNNet(1, 2, width=3, depth=1, kernel_size=9, adaptive_size=4)
    x = torch.randn(1, 1, 10)
    # dense: wide conv 9 out x 1 in x 9 taps x 10 positions + head 2 x 9 x 4 positions
    assert flops.forward_macs(model, x, masked=False) == 9 * 9 * 10 + 2 * 9 * 4
    methods.get("dsn", sparsity=0.8, seed=0).init_masks(model)
    # regions: 3 channels x (3, 6, 9) taps -> floor(0.2 * 9) = 1, floor(0.2 * 18) = 3, floor(0.2 * 27) = 5 kept
    assert flops.forward_macs(model, x, masked=True) == (1 + 3 + 5) * 10 + 2 * 9 * 4


def _toy_series(n=24, length=30, seed=0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    t = torch.linspace(0, 6.28, length)
    X = (torch.sin(t * (1 + y[:, None])) + 0.1 * torch.randn(n, length, generator=g)).unsqueeze(1).float()
    return TensorData("toy", X[: n // 2], y[: n // 2].long(), X[n // 2:], y[n // 2:].long(), 2, (1, length), "toy")


CFG = dict(WIDTH=4, DEPTH=2, KERNEL=9, GROUPS=3, PADDING="zero", ADAPTIVE_SIZE=8, DENSITY=0.2, ALPHA=0.5,
           UPDATE_EVERY=2, T_END=0.8, FLOOR=0.001, LR=3e-3, LR_MIN=1e-4, BATCH_SIZE=16, EPOCHS=6,
           SELECT="min_train_loss")


def test_batch_size_rule_of_the_official_code():
    assert batch_size_for(50, 16) == 5 and batch_size_for(1000, 16) == 16 and batch_size_for(12, 16) == 2


def test_dsn_run_arms_summary_and_flops_ratios():
    data = _toy_series()
    runs = [dsn_run(data, CFG, arm, seed=0, device="cpu", progress=False) for arm in ("dense", "static", "dsn")]
    dense, static, dsn = runs
    assert dense["density"] == 1.0 and dense["region_density"] is None and dense["mask_updates"] == 0
    assert static["mask_updates"] == 0 and dsn["mask_updates"] == 2  # after epochs 2 and 4 of 6
    for r in (static, dsn):
        assert r["outside_region_nonzero"] == 0
        assert 0.19 < r["region_density"] <= 0.2
        assert r["f_forward"] < dense["f_forward"] == r["f_dense"]
        assert r["history"][-1]["train_loss"] < r["history"][0]["train_loss"]
        assert 1 <= r["selected_epoch"] <= CFG["EPOCHS"]
        assert r["train_loss"] == min(h["train_loss"] for h in r["history"])
    assert static["nnz"] == dsn["nnz"]
    rows = summarize_runs(runs)
    by_arm = {r["arm"]: r for r in rows}
    assert by_arm["dense"]["inference_flops_ratio"] == 1.0
    assert by_arm["dsn"]["inference_flops_ratio"] == pytest.approx(dsn["f_forward"] / dense["f_forward"])
    assert by_arm["dsn"]["training_flops_ratio"] == pytest.approx(by_arm["dsn"]["inference_flops_ratio"])


def test_trainer_checkpoint_resume_keeps_dsn_masks(tmp_path):
    data = _toy_series()

    def loader():
        return data.loaders(4, seed=0)[0]  # a fresh shuffling generator per run

    def make(checkpoint=None, callbacks=()):
        torch.manual_seed(0)
        model = tiny()
        method = methods.get("dsn", update_every=3, seed=0)  # every epoch of 3 steps
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        return Trainer(model, method, opt, epochs=4, device="cpu", progress=False, checkpoint=checkpoint,
                       callbacks=callbacks)

    full = make()
    full.fit(loader())

    def crash(trainer, row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt  # the checkpoint of epoch 2 is on disk

    with pytest.raises(KeyboardInterrupt):
        make(tmp_path / "ck.pt", [crash]).fit(loader())
    resumed = make(tmp_path / "ck.pt")
    resumed.fit(loader())
    assert resumed.method.events and len(resumed.method.events) == len(full.method.events)
    for name in windowed_convs(full.model):
        assert torch.equal(full.masks[name], resumed.masks[name])
        assert torch.equal(full.model.get_parameter(name), resumed.model.get_parameter(name))


def test_published_gaps_only_for_known_sets():
    rows = [{"dataset": "ucr:GunPoint", "arm": "dsn", "acc_mean": 0.99},
            {"dataset": "ucr:BasicMotions", "arm": "dsn", "acc_mean": 1.0},
            {"dataset": "ucr:GunPoint", "arm": "dense", "acc_mean": 1.0}]
    gaps = published_gaps(rows)
    assert {g["method"] for g in gaps} == {"ROCKET", "InceptionTime", "OS-CNN"}
    assert {g["dataset"] for g in gaps} == {"GunPoint"}
    assert [round(g["gap"], 6) for g in gaps] == [-1.0, -1.0, -0.9]


def test_published_claim_states():
    from sparsenb.experiments.dsn import published_claim
    rows = [{"dataset": "ucr:GunPoint", "arm": "dsn", "acc_mean": 0.99},
            {"dataset": "ucr:BasicMotions", "arm": "dsn", "acc_mean": 1.0}]
    out = published_claim(rows, {"ucr:GunPoint": 2, "ucr:BasicMotions": 4})
    # GunPoint gaps -1.0 / -1.0 / -0.9 points: within 2; BasicMotions has no reference: named, not dropped
    assert (out["state"], out["holds"]) == ("held", True)
    assert out["text"].endswith("OS-CNN (GunPoint)") and out["id"] == "dsn_near_published"
    assert out["detail"].endswith("not evaluated on BasicMotions (no published reference)")
    out = published_claim(rows[1:], {"ucr:BasicMotions": 4})
    assert (out["state"], out["holds"]) == ("not evaluated", None)
    assert out["reason"].startswith("no published ROCKET / InceptionTime / OS-CNN accuracy for BasicMotions")
    out = published_claim([{"dataset": "ucr:GunPoint", "arm": "dsn", "acc_mean": 0.97}], {"ucr:GunPoint": 2})
    assert (out["state"], out["holds"]) == ("not held", False)  # -3 points from ROCKET
    out = published_claim([{"dataset": "ucr:GunPoint", "arm": "dsn", "acc_mean": 0.5}], {"ucr:GunPoint": 2})
    assert out["state"] == "inconclusive" and out["reason"].startswith("GunPoint/dsn 50.0 % at chance level")
