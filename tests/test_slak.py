"""SLaK: decomposed large-kernel block, small ConvNeXt, SLaK dynamic sparsity, ERF and counting."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import sparsenb as snb
from sparsenb import methods
from sparsenb.models.convnext import ConvNeXtSmall, build_variant
from sparsenb.layers.large_kernel import LargeKernelDW
from sparsenb.core.dropgrow import drop
from sparsenb.methods.slak import SLaK, cosine_prune_rate
from sparsenb.experiments.slak import (effective_receptive_field, erf_area_ratio, erf_centre, parameter_counts,
                                      slak_run)


# ------------------------------------------------------------ large-kernel block
def test_decomposed_block_has_the_three_rectangular_branches():
    b = LargeKernelDW(6, kernel=13, small_kernel=5, decompose=True)
    shapes = [tuple(br.conv.weight.shape) for br in b.branches]
    assert shapes == [(6, 1, 13, 5), (6, 1, 5, 13), (6, 1, 5, 5)]
    assert all(br.conv.groups == 6 and br.conv.bias is None for br in b.branches)
    assert all(isinstance(br.bn, nn.BatchNorm2d) for br in b.branches)


def test_square_block_is_large_plus_small_and_plain_when_kernel_is_small():
    b = LargeKernelDW(4, kernel=31, small_kernel=5, decompose=False)
    assert [tuple(br.conv.weight.shape[-2:]) for br in b.branches] == [(31, 31), (5, 5)]
    plain = LargeKernelDW(4, kernel=7, small_kernel=7, decompose=True)
    assert [tuple(br.conv.weight.shape[-2:]) for br in plain.branches] == [(7, 7)]


def test_decomposed_output_is_the_sum_of_hand_set_branches():
    """1 channel, M = 5, N = 3, BN in eval mode with fresh statistics (y = x / sqrt(1 + eps)).
    The tall 5x3 kernel has a single 1 at its top-centre: out[i, j] = x[i - 2, j] (zero above);
    the wide 3x5 kernel a 2 at its right end: 2 * x[i, j + 2]; the small 3x3 kernel is zero."""
    b = LargeKernelDW(1, kernel=5, small_kernel=3, decompose=True).eval()
    with torch.no_grad():
        for br in b.branches:
            br.conv.weight.zero_()
        b.vertical.conv.weight[0, 0, 0, 1] = 1.0
        b.horizontal.conv.weight[0, 0, 1, 4] = 2.0
    x = torch.arange(36, dtype=torch.float32).view(1, 1, 6, 6)
    expected = torch.zeros(6, 6)
    expected[2:, :] += x[0, 0, :-2, :]
    expected[:, :-2] += 2 * x[0, 0, :, 2:]
    scale = 1 / math.sqrt(1 + b.small.bn.eps)
    torch.testing.assert_close(b(x)[0, 0], expected * scale)


def test_kernel_larger_than_the_map_keeps_the_shape():
    b = LargeKernelDW(3, kernel=31, small_kernel=5, decompose=True)
    assert b(torch.randn(2, 3, 4, 7)).shape == (2, 3, 4, 7)


@settings(max_examples=15, deadline=None)
@given(k=st.sampled_from([3, 5, 7, 9, 15]), n=st.sampled_from([1, 3, 5]), h=st.integers(1, 9),
       w=st.integers(1, 9), decompose=st.booleans())
def test_block_preserves_shape_for_any_odd_kernels(k, n, h, w, decompose):
    b = LargeKernelDW(2, kernel=k, small_kernel=n, decompose=decompose)
    assert b(torch.randn(2, 2, h, w)).shape == (2, 2, h, w)


@pytest.mark.parametrize("kwargs, match", [(dict(kernel=8), "kernel must be an odd"),
                                           (dict(kernel=7, small_kernel=4), "small_kernel must be an odd"),
                                           (dict(kernel=0), "kernel must be an odd")])
def test_even_or_bad_kernels_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LargeKernelDW(2, **kwargs)


def test_wrong_channel_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"needs \(B, 4, H, W\)"):
        LargeKernelDW(4, 7)(torch.randn(1, 3, 8, 8))


# --------------------------------------------------------------------- network
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (1, 8, 8)])
@pytest.mark.parametrize("variant", ["dense7", "dense_large", "slak"])
def test_variants_run_on_any_image_size(variant, shape):
    m = build_variant(variant, shape, 10, dims=[8, 16, 32], depths=[1, 1, 1], large_kernels=[31, 15, 7])
    assert m(torch.randn(2, *shape)).shape == (2, 10)


def test_slak_variant_is_widened_and_decomposed():
    m = build_variant("slak", (3, 32, 32), 10, dims=[16, 32, 64], depths=[1, 1, 1], large_kernels=[31, 15, 7],
                      width=1.3)
    assert m.dims == [20, 41, 83]  # int(16 * 1.3), int(32 * 1.3), int(64 * 1.3)
    lk = m.stages[0][0].large_kernel
    assert lk.decompose and tuple(lk.vertical.conv.weight.shape) == (20, 1, 31, 5)
    d7 = build_variant("dense7", (3, 32, 32), 10, dims=[16, 32, 64], depths=[1, 1, 1], large_kernels=[31, 15, 7])
    assert d7.dims == [16, 32, 64] and all(s[0].large_kernel.kernel == 7 for s in d7.stages)


def test_build_variant_errors():
    with pytest.raises(ValueError, match="unknown variant"):
        build_variant("slak51", (3, 32, 32), 10, [8], [1], [7])
    with pytest.raises(ValueError, match="image data"):
        build_variant("slak", (40,), 10, [8], [1], [7])
    with pytest.raises(ValueError, match="one entry per stage"):
        ConvNeXtSmall(3, 10, dims=[8, 16], depths=[1], kernels=[7])


def test_parameter_counts_by_hand():
    """dims [4], 1 block, kernel 3 (square only), 1 input channel, 2 classes.
    weights: stem 4*1*2*2 = 16, depthwise 4*3*3 = 36, pw1 4*16 = 64, pw2 16*4 = 64, head 4*2 = 8 -> 188;
    other: stem bias 4, LN2d 8, BN 8, LN 8, pw1 bias 16, pw2 bias 4, gamma 4, final LN 8, head bias 2 -> 62."""
    m = ConvNeXtSmall(1, 2, dims=[4], depths=[1], kernels=[3])
    c = parameter_counts(m)
    assert c == {"weights": 188, "nonzero_weights": 188, "depthwise_nonzero": 36, "other": 62, "nonzero_params": 250}
    assert c["nonzero_params"] == sum(p.numel() for p in m.parameters())
    masks = snb.sparsify(m, 0.5, distribution="uniform", seed=0)
    c = parameter_counts(m)
    assert c["nonzero_weights"] == masks.nnz() and c["weights"] == 188 and c["other"] == 62


# ------------------------------------------------------------- SLaK sparsity
def test_cosine_prune_rate():
    assert cosine_prune_rate(0, 100, 0.5) == pytest.approx(0.5)
    assert cosine_prune_rate(50, 100, 0.5) == pytest.approx(0.005 + 0.495 / 2)
    assert cosine_prune_rate(100, 100, 0.5) == pytest.approx(0.005)


def test_magnitude_drop_takes_the_smallest_kept():
    w = torch.tensor([[0.1, -0.05, 3.0], [-2.0, 0.0, 0.5]])
    mask = torch.tensor([[True, True, True], [True, False, True]])
    dropped = drop(w.abs(), mask, 2)  # kept |w|: .1 .05 3 2 .5 -> drop .05 and .1 (the pruned 0 is not kept)
    assert dropped.tolist() == [[True, True, False], [False, False, False]]


def _tiny_slak(seed=0, **kw):
    torch.manual_seed(seed)
    model = build_variant("slak", (1, 8, 8), 3, dims=[4, 8], depths=[1, 1], large_kernels=[7, 5], small_kernel=3)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    meth = methods.get("slak", sparsity=0.4, seed=seed, **kw)
    return model, meth, x, y


@pytest.mark.parametrize("init", ["snip", "random"])
def test_slak_init_is_exact_and_updates_keep_every_layer_nnz(init):
    model, meth, x, y = _tiny_slak(mask_init=init, update_every=2, drop_fraction=0.5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    masks = meth.init_masks(model, (x, y))
    masks.attach(opt)
    assert masks.nnz() == round(0.6 * masks.numel())
    meth.setup(total_steps=8, steps_per_epoch=8, epochs=1)
    before = {n: int(mp.mask.sum()) for n, mp in masks.params.items()}
    for step in range(8):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        meth.after_step(step, masks)
        for mp in masks:
            assert not mp.param[~mp.mask].any(), "pruned weights must be exactly zero"
    assert {n: int(mp.mask.sum()) for n, mp in masks.params.items()} == before
    assert sorted({e["step"] for e in meth.events}) == [2, 4, 6]
    assert all(e["grown"] == e["dropped"] for e in meth.events)


def test_slak_update_drops_smallest_and_grows_zeros_at_absent_positions():
    model, meth, x, y = _tiny_slak(mask_init="random", update_every=1, drop_fraction=0.3)
    masks = meth.init_masks(model)
    meth.setup(total_steps=100, steps_per_epoch=100, epochs=1)
    mp = min(masks, key=lambda q: float(q.mask.float().mean()))  # the sparsest layer (ERK leaves small ones dense)
    assert not bool(mp.mask.all())
    with torch.no_grad():
        mp.param.copy_(torch.randn_like(mp.param) * mp.mask)
    old_mask, old_w = mp.mask.clone(), mp.param.detach().clone()
    meth.after_step(1, masks)
    new_mask = mp.mask
    k = math.ceil(cosine_prune_rate(1, 100, 0.3) * int(old_mask.sum()))
    survivors = old_mask & ~drop(old_w.abs(), old_mask, k)  # all but the k smallest |w|
    grown = new_mask & ~survivors  # k random absent positions (a just-dropped one may come back)
    assert (new_mask & survivors).equal(survivors) and int(grown.sum()) == k
    assert torch.equal(mp.param[survivors], old_w[survivors])
    assert (mp.param[grown & ~old_mask] == 0).all()  # new connections start at zero
    assert torch.equal(mp.param[grown & old_mask], old_w[grown & old_mask])  # a re-drawn dropped one stays


def test_slak_method_errors():
    with pytest.raises(ValueError, match="mask_init must be"):
        SLaK(mask_init="grasp")
    with pytest.raises(ValueError, match="update_every"):
        SLaK(update_every=0)
    model, meth, _, _ = _tiny_slak(mask_init="snip")
    with pytest.raises(ValueError, match="needs a batch"):
        meth.init_masks(model)


# -------------------------------------------------------------------- ERF
def test_erf_of_the_bare_downsampling_path_is_the_8x8_patch():
    """With layer scale 0 every block is the identity, so the central output (2, 2) of the last of 3
    stages (stride 8) depends on exactly the input pixels 16..23 x 16..23 of a 32x32 image."""
    torch.manual_seed(0)
    m = ConvNeXtSmall(3, 10, dims=[4, 8, 16], depths=[1, 1, 1], kernels=[7, 7, 7], layer_scale=0.0)
    erf = effective_receptive_field(m, torch.randn(6, 3, 32, 32))
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[16:24, 16:24] = True
    assert (erf[~inside] == 0).all() and (erf[inside] > 0).sum() > 32
    assert erf_centre(m, (32, 32)) == (19, 19)
    assert m.training, "the model's mode is restored"


def test_large_kernel_blocks_widen_the_erf():
    torch.manual_seed(0)
    m = ConvNeXtSmall(3, 10, dims=[4, 8, 16], depths=[1, 1, 1], kernels=[15, 7, 3], layer_scale=1.0)
    erf = effective_receptive_field(m, torch.randn(4, 3, 32, 32))
    assert (erf[:16].sum() > 0) and (erf[:, :8].sum() > 0)


def test_erf_area_ratio_by_hand():
    point = torch.zeros(5, 5)
    point[2, 2] = 7.0
    assert erf_area_ratio(point, 0.5) == pytest.approx(1 / 25)
    flat = torch.ones(5, 5)  # squares of 1, 9, 25 pixels hold 4 %, 36 %, 100 % of the mass
    assert [erf_area_ratio(flat, t) for t in (0.2, 0.3, 0.5, 0.99)] == pytest.approx([9 / 25, 9 / 25, 1, 1])
    corner = torch.ones(4, 4)  # centred at (0, 0): squares clipped to 1, 4, 9, 16 pixels
    assert erf_area_ratio(corner, 0.5, centre=(0, 0)) == pytest.approx(9 / 16)
    with pytest.raises(ValueError, match="non-negative"):
        erf_area_ratio(-flat, 0.5)
    with pytest.raises(ValueError, match="all zero"):
        erf_area_ratio(torch.zeros(3, 3), 0.5)


# ------------------------------------------------------------------- driver
def test_slak_run_on_digits_is_exactly_sparse_and_reports_everything():
    data = snb.data.load("digits").subset(256, 128, seed=0)
    cfg = snb.nb.catalog.resolve("12_slak", "smoke", dict(EPOCHS=2, ERF_IMAGES=8))  # 8 steps, updates every 5
    r = slak_run(data, cfg, "slak", seed=0, device="cpu", progress=False)
    assert r["density"] == pytest.approx(0.6, abs=1e-4)
    assert r["params"]["nonzero_weights"] == round(0.6 * r["params"]["weights"])
    assert r["macs"] < r["dense_macs"] and r["mask_changes"] > 0
    assert 0 <= r["test_acc"] <= 1 and r["epoch_seconds"] > 0
    assert set(r["erf"]["ratios"]) == {"0.2", "0.3", "0.5", "0.99"}
    d = slak_run(data, cfg, "dense7", seed=0, device="cpu", progress=False)
    assert d["density"] == 1.0 and d["macs"] == d["dense_macs"] and d["mask_changes"] == 0
