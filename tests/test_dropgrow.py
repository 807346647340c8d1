"""The drop / grow primitives (sparsenb.core.dropgrow) on hand-computed cases: ranking, ties, sentinels."""
import pytest
import torch

from sparsenb.core.dropgrow import drop, drop_indices, grow, grow_indices, set_drop
from sparsenb.methods.rigl import rigl_drop_grow, rigl_masks


# ---------------------------------------------------------------------- drop
def test_drop_takes_the_smallest_scores_among_kept_only():
    score = torch.tensor([[0.1, 0.05, 3.0], [2.0, 0.0, 0.5]])
    mask = torch.tensor([[True, True, True], [True, False, True]])
    # kept scores: .1 .05 3 2 .5 -> the two smallest are .05 and .1; the absent 0.0 is never dropped
    assert drop(score, mask, 2).tolist() == [[True, True, False], [False, False, False]]
    assert drop(score, mask, 0).tolist() == [[False] * 3] * 2
    assert drop(score, mask, 5).tolist() == mask.tolist()  # every kept position


def test_drop_ranks_negative_scores_below_the_plus_inf_sentinel():
    # scores below -1 (the old sentinel) must still be ranked correctly: absent positions get +inf
    score = torch.tensor([-5.0, -2.0, -7.0, 1.0])
    mask = torch.tensor([True, True, False, True])
    assert drop(score, mask, 2).tolist() == [True, True, False, False]  # -5 and -2; -7 is absent


def test_drop_refuses_more_than_kept():
    with pytest.raises(ValueError, match="cannot drop 3 positions: only 2 are kept"):
        drop(torch.zeros(4), torch.tensor([True, False, True, False]), 3)
    with pytest.raises(ValueError, match="negative"):
        drop(torch.zeros(4), torch.ones(4, dtype=torch.bool), -1)


# ---------------------------------------------------------------------- grow
def test_grow_takes_the_largest_scores_among_allowed_only():
    score = torch.tensor([[0.99, 0.1, 0.5], [0.7, 0.98, 0.2]])
    allowed = torch.tensor([[False, True, True], [True, False, True]])
    # allowed: (0,1) .1, (0,2) .5, (1,0) .7, (1,2) .2 -> the two largest: (1,0), (0,2); .99 and .98 are not allowed
    assert grow(score, allowed, 2).tolist() == [[False, False, True], [True, False, False]]
    assert not grow(score, allowed, 0).any()


def test_grow_ranks_scores_below_minus_one_above_the_minus_inf_sentinel():
    # with a -1.0 sentinel a not-allowed position would beat an allowed score of -3; with -inf it cannot
    score = torch.tensor([-3.0, 5.0, -4.0, 9.0])
    allowed = torch.tensor([True, False, True, False])
    assert grow(score, allowed, 2).tolist() == [True, False, True, False]
    assert grow(score, allowed, 1).tolist() == [True, False, False, False]


def test_grow_refuses_more_than_allowed():
    with pytest.raises(ValueError, match="cannot grow 2 positions: only 1 are allowed"):
        grow(torch.zeros(2), torch.tensor([True, False]), 2)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_ties_still_give_exactly_n_inside_the_allowed_set(k):
    score = torch.zeros(3, 4)  # all tied
    allowed = torch.zeros(3, 4, dtype=torch.bool)
    allowed[1] = True
    g = grow(score, allowed, k)
    assert int(g.sum()) == k and not (g & ~allowed).any()
    d = drop(score, allowed, k)
    assert int(d.sum()) == k and not (d & ~allowed).any()


def test_ties_resolve_the_same_way_every_time():
    score = torch.tensor([1.0, 2.0, 2.0, 2.0, 0.0])
    allowed = torch.ones(5, dtype=torch.bool)
    first = grow(score, allowed, 2)
    assert all(torch.equal(first, grow(score, allowed, 2)) for _ in range(5))
    assert int(first[1:4].sum()) == 2  # both from the tied 2.0s, never the 1.0


def test_indices_variants_match_the_masks():
    g = torch.Generator().manual_seed(0)
    score, mask = torch.randn(6, 7, generator=g), torch.rand(6, 7, generator=g) < 0.5
    d = drop_indices(score, mask, 5)
    assert d.dtype == torch.int64 and d.shape == (5,)
    assert sorted(d.tolist()) == drop(score, mask, 5).reshape(-1).nonzero().squeeze(1).tolist()
    gi = grow_indices(score, ~mask, 4)
    assert sorted(gi.tolist()) == grow(score, ~mask, 4).reshape(-1).nonzero().squeeze(1).tolist()


# ------------------------------------------------------ compositions by methods
def test_set_drop_is_drop_by_magnitude_per_sign():
    w = torch.tensor([0.5, -0.1, 0.2, -0.7, 0.05, 0.3, -0.3, 0.9])
    mask = torch.tensor([True, True, True, True, False, True, True, True])
    # kept non-negative: .5 .2 .3 .9 -> round(0.5 * 4) = 2 closest to zero: .2 (2), .3 (5)
    # kept negative: -.1 -.7 -.3 -> round(0.5 * 3) = round(1.5) = 2: -.1 (1), -.3 (6); 0.05 is absent
    assert set_drop(w, mask, 0.5).nonzero().squeeze(1).tolist() == [1, 2, 5, 6]


def test_rigl_update_is_drop_by_weight_then_grow_by_gradient():
    W = torch.tensor([[0.5, -0.1, 0.0], [0.0, 2.0, -0.05]])
    g = torch.tensor([[0.0, 0.3, 0.9], [0.2, 0.0, 0.1]])
    M = W != 0  # kept: (0,0) .5, (0,1) .1, (1,1) 2, (1,2) .05
    # k = 2: drop |w| .05 (1,2) and .1 (0,1); grow the two largest |g| among the now absent:
    # (0,2) .9, (0,1) .3 (just dropped, may come back), (1,0) .2, (1,2) .1 -> (0,2), (0,1)
    assert rigl_masks(W, g, M, 2).tolist() == [[True, True, True], [False, True, False]]
    drop_i, grow_i = rigl_drop_grow(W, g, M, 2)
    assert sorted(drop_i.tolist()) == [1, 5] and sorted(grow_i.tolist()) == [1, 2]


def test_overwrite_writes_the_sentinels_into_the_score_and_picks_the_same():
    g = torch.Generator().manual_seed(3)
    score = torch.randn(300, 400, generator=g).abs()
    mask = torch.rand(300, 400, generator=g) < 0.2
    for fn, keep, fill in ((drop_indices, mask, float("inf")), (grow_indices, ~mask, float("-inf"))):
        expect = fn(score, keep, 500)
        scratch = score.clone()
        got = fn(scratch, keep, 500, overwrite=True)
        assert torch.equal(got.sort().values, expect.sort().values)
        assert torch.equal(scratch, score.masked_fill(~keep, fill))  # written in place
    with pytest.raises(ValueError, match="contiguous"):
        drop_indices(score.t(), mask.t(), 5, overwrite=True)


def test_rigl_drop_grow_without_a_gradient_says_so():
    w = torch.randn(8, 8)
    with pytest.raises(ValueError, match="dense gradient"):
        rigl_drop_grow(w, None, torch.rand(8, 8) < 0.5, 2)
