"""The mask explorer (notebooks/00_explore.ipynb) driven without a kernel: set widget values, click buttons."""
import numpy as np
import pytest

from sparsenb.core.distributions import layer_nnz
from sparsenb.nb.explorer import Explorer

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ex():
    return Explorer(model="mlp", method="static", distribution="erk", sparsity=0.9, steps_per_update=5)


def expected_nnz(ex: Explorer) -> dict[str, int]:
    return layer_nnz(ex.masks.shapes(), 1.0 - ex.sparsity.value, ex.distribution.value)


@pytest.mark.parametrize("distribution, sparsity", [("uniform", 0.8), ("er", 0.95), ("erk", 0.9)])
def test_densities_follow_the_widgets_exactly(ex, distribution, sparsity):
    ex.distribution.value = distribution
    ex.sparsity.value = sparsity
    nnz = expected_nnz(ex)
    assert {mp.name: int(mp.mask.sum()) for mp in ex.masks} == nnz
    total = sum(mp.mask.numel() for mp in ex.masks)
    assert ex.masks.nnz() == round((1 - sparsity) * total)
    assert ex.densities() == {n: k / ex.masks[n].numel() for n, k in nnz.items()}
    if distribution == "uniform":  # hand check: every layer at the global density, to rounding
        for d in ex.densities().values():
            assert d == pytest.approx(1 - sparsity, abs=0.01)


def test_figures_are_png_and_follow_the_layer_choice(ex):
    assert ex.density_image.value[:8] == PNG and ex.mask_image.value[:8] == PNG
    assert set(ex.figures) == {"densities", "mask"}
    before = ex.mask_image.value
    ex.layer.value = ex.layer.options[-1]
    assert ex.mask_image.value != before
    codes = ex.mask_codes()
    assert codes.shape == tuple(ex.masks[ex.layer.value].shape)
    assert set(np.unique(codes)) <= {0, 1}, "nothing grown or dropped before training"


@pytest.mark.parametrize("method", ["set", "rigl"])
def test_dst_steps_change_the_topology_and_keep_nnz_exact(ex, method):
    ex.distribution.value, ex.sparsity.value = "erk", 0.9
    ex.method.value = method
    ex.layer.value = ex.layer.options[0]
    nnz = expected_nnz(ex)
    start_image, start_mask = ex.mask_image.value, ex.masks[ex.layer.value].clone()
    for _ in range(2):
        ex.train_button.click()
        assert {mp.name: int(mp.mask.sum()) for mp in ex.masks} == nnz, "nnz per layer must stay exact"
        for mp in ex.masks:  # pruned weights are exactly zero after every step
            assert not mp.param.detach()[~mp.mask].any()
    assert ex.step == 2 * ex.steps.value and ex.updates == 2
    assert not bool((ex.masks[ex.layer.value] == start_mask).all()), f"{method} did not change the mask"
    assert ex.mask_image.value != start_image
    codes = ex.mask_codes()
    assert (codes == 2).sum() == (codes == 3).sum() > 0, "as many grown as dropped"
    assert 0 < ex.replaced[-1][ex.layer.value] == pytest.approx((codes == 3).sum() / start_mask.sum().item())


def test_static_never_changes_the_mask_and_reset_restores_the_start(ex):
    ex.method.value = "static"
    start = {mp.name: mp.mask.clone() for mp in ex.masks}
    w0 = ex.net[1].weight.detach().clone()
    ex.train_button.click()
    assert all(bool((ex.masks[n] == m).all()) for n, m in start.items())
    assert ex.replaced[-1] == {n: 0.0 for n in start}
    assert not bool((ex.net[1].weight == w0).all()), "the weights trained"
    ex.reset_button.click()
    assert ex.step == 0 and ex.updates == 0 and ex.replaced == []
    assert bool((ex.net[1].weight == w0).all()), "reset rebuilds the same seeded start"


def test_bad_choices_are_refused_with_the_options():
    with pytest.raises(ValueError, match="choose one of"):
        Explorer(model="resnet50")
    with pytest.raises(ValueError, match="the explorer shows"):
        Explorer(method="snip")
