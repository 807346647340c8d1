"""Tests for sparsenb.core.distributions: per-layer nnz of uniform / ER / ERK.

Hand-computed cases first (the arithmetic is in the comments), then a
hypothesis property test of the invariants every distribution must satisfy.
"""
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sparsenb.core.distributions import DISTRIBUTIONS, layer_nnz, raw_scores


# --------------------------------------------------------------- raw scores
def test_raw_scores_by_hand():
    shapes = {"lin": (4, 2), "conv": (8, 3, 3, 3), "bias": (6,)}
    erk = raw_scores(shapes, "erk")
    er = raw_scores(shapes, "er")
    uni = raw_scores(shapes, "uniform")
    # ERK: sum of all dims / numel
    assert erk["lin"] == pytest.approx((4 + 2) / 8)
    assert erk["conv"] == pytest.approx((8 + 3 + 3 + 3) / 216)  # 17/216: kernel dims count
    # ER: (n_out + n_in) / (n_out * n_in), kernel ignored
    assert er["lin"] == pytest.approx(6 / 8)
    assert er["conv"] == pytest.approx((8 + 3) / (8 * 3))  # 11/24
    # 1-D parameters and uniform: constant score
    assert erk["bias"] == er["bias"] == 1.0
    assert uni == {"lin": 1.0, "conv": 1.0, "bias": 1.0}


def test_raw_scores_unknown_kind():
    with pytest.raises(ValueError, match="unknown distribution"):
        raw_scores({"a": (2, 2)}, "gaussian")
    with pytest.raises(ValueError, match="unknown distribution"):
        layer_nnz({"a": (2, 2)}, 0.5, "gaussian")


# ------------------------------------------------------- hand-computed nnz
def test_erk_two_linear_layers_by_hand():
    # a: 4x4 (numel 16), score (4+4)/16 = 1/2   -> score*numel = 8
    # b: 4x2 (numel 8),  score (4+2)/8  = 3/4   -> score*numel = 6
    # density 0.5: total 24, budget 12; eps = 12 / (8 + 6) = 6/7
    # real nnz: a = 8 * 6/7 = 6.857, b = 6 * 6/7 = 5.143 -> floors 6 + 5 = 11,
    # one weight short -> largest fractional part (a, .857) gets it: a 7, b 5.
    shapes = {"a": (4, 4), "b": (4, 2)}
    assert layer_nnz(shapes, 0.5, "erk") == {"a": 7, "b": 5}
    # for 2-D weights ER == ERK
    assert layer_nnz(shapes, 0.5, "er") == {"a": 7, "b": 5}


def test_erk_default_kind_is_erk():
    shapes = {"a": (4, 4), "b": (4, 2)}
    assert layer_nnz(shapes, 0.5) == layer_nnz(shapes, 0.5, "erk")


def test_conv_erk_uses_kernel_dims():
    # c: conv (8,3,3,3), numel 216;  f: linear (10,8), numel 80; density 0.3
    # total 296, budget round(88.8) = 89
    # ERK: c score*numel = 17, f score*numel = 18 -> eps = 89/35
    #      c = 17*89/35 = 43.23, f = 18*89/35 = 45.77 -> floors 43 + 45 = 88, +1 to f
    # ER:  c score*numel = 216*11/24 = 99, f = 18   -> eps = 89/117
    #      c = 75.31, f = 13.69 -> floors 75 + 13 = 88, +1 to f
    shapes = {"c": (8, 3, 3, 3), "f": (10, 8)}
    assert layer_nnz(shapes, 0.3, "erk") == {"c": 43, "f": 46}
    assert layer_nnz(shapes, 0.3, "er") == {"c": 75, "f": 14}


def test_uniform_by_hand():
    # (5,5) and (3,5), density 0.4: total 40, budget 16 -> 10 and 6 exactly
    assert layer_nnz({"a": (5, 5), "b": (3, 5)}, 0.4, "uniform") == {"a": 10, "b": 6}
    # (3,3) and (1,5), density 0.3: total 14, budget round(4.2) = 4
    # real: a = 2.7, b = 1.5 -> floors 2 + 1 = 3, +1 to a (.7 > .5)
    assert layer_nnz({"a": (3, 3), "b": (1, 5)}, 0.3, "uniform") == {"a": 3, "b": 1}


def test_one_dimensional_parameter_gets_constant_score():
    # w: (6,) score 1 -> 6; a: (4,4) score 1/2 -> 8. density .5: total 22, budget 11,
    # eps = 11/14: w = 4.71, a = 6.29 -> floors 4 + 6 = 10, +1 to w (.71)
    assert layer_nnz({"w": (6,), "a": (4, 4)}, 0.5, "erk") == {"w": 5, "a": 6}


def test_overflowing_layer_becomes_dense_and_rest_is_resolved():
    # a: (100,100) numel 10000, score 0.02 -> 200;  b: (2,2) numel 4, score 1 -> 4
    # density 0.1: total 10004, budget round(1000.4) = 1000
    # eps = 1000/204 = 4.90 -> b's density 4.9 > 1 -> b dense (4 weights)
    # re-solve: eps = 996/200 -> a density 0.0996, nnz 996
    out = layer_nnz({"a": (100, 100), "b": (2, 2)}, 0.1, "erk")
    assert out == {"a": 996, "b": 4}
    assert out["b"] == 4  # == numel
    assert sum(out.values()) == round(0.1 * 10004)


def test_overflow_cascade_needs_second_pass():
    # big (100,100): score*numel 200; mid (10,10): 20; tiny (2,2): 4. density .11
    # total 10104, budget round(1111.44) = 1111
    # pass 1: eps = 1111/224 = 4.96 -> tiny (density 4.96) dense, mid (0.992) not yet
    # pass 2: eps = 1107/220 = 5.03 -> mid (density 1.006) now dense as well
    # pass 3: eps = 1007/200 -> big 1007
    out = layer_nnz({"big": (100, 100), "mid": (10, 10), "tiny": (2, 2)}, 0.11, "erk")
    assert out == {"big": 1007, "mid": 100, "tiny": 4}
    assert sum(out.values()) == 1111


def test_many_small_layers_all_dense_except_big():
    shapes = {"big": (200, 200), "s1": (2, 2), "s2": (3, 3)}
    total = 40000 + 4 + 9
    out = layer_nnz(shapes, 0.05, "erk")
    assert out["s1"] == 4 and out["s2"] == 9
    assert sum(out.values()) == round(0.05 * total)
    assert out["big"] == round(0.05 * total) - 13


def test_density_one_is_fully_dense():
    shapes = {"a": (4, 4), "b": (4, 2), "c": (8, 3, 3, 3)}
    for kind in DISTRIBUTIONS:
        assert layer_nnz(shapes, 1.0, kind) == {"a": 16, "b": 8, "c": 216}


def test_dense_option():
    # a kept dense (16). density 0.8: total 32, budget round(25.6) = 26
    # the other 10 weights are shared by b (4,2) and c (2,4): both score*numel 6 -> 5 and 5
    shapes = {"a": (4, 4), "b": (4, 2), "c": (2, 4)}
    out = layer_nnz(shapes, 0.8, "erk", dense=["a"])
    assert out == {"a": 16, "b": 5, "c": 5}
    # uniform with a dense layer: b, c share 10 of 16 -> 5 each
    assert layer_nnz(shapes, 0.8, "uniform", dense=["a"]) == {"a": 16, "b": 5, "c": 5}


def test_all_layers_dense_at_matching_density():
    shapes = {"a": (2, 2), "b": (2, 2)}
    assert layer_nnz(shapes, 1.0, "erk", dense=["a", "b"]) == {"a": 4, "b": 4}


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("density", [0.0, -0.1, 1.0001, 2.0])
def test_density_outside_range(density):
    with pytest.raises(ValueError, match="density must be in"):
        layer_nnz({"a": (4, 4)}, density)


def test_unknown_dense_name():
    with pytest.raises(ValueError, match="not among the prunable layers"):
        layer_nnz({"a": (4, 4), "b": (4, 2)}, 0.5, dense=["nope"])


def test_dense_layers_exceed_budget():
    # a alone holds 16 weights; density 0.5 of 24 is a budget of 12
    with pytest.raises(ValueError, match="more than the budget"):
        layer_nnz({"a": (4, 4), "b": (4, 2)}, 0.5, dense=["a"])


# -------------------------------------------------------- property tests
shape_st = st.lists(st.integers(1, 12), min_size=1, max_size=4).map(tuple)


@settings(max_examples=50, deadline=None)
@given(
    shapes=st.lists(shape_st, min_size=1, max_size=6),
    density=st.floats(min_value=1e-3, max_value=1.0, allow_nan=False),
    kind=st.sampled_from(DISTRIBUTIONS),
    dense_flags=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_layer_nnz_invariants(shapes, density, kind, dense_flags):
    named = {f"l{i}": s for i, s in enumerate(shapes)}
    numel = {n: math.prod(s) for n, s in named.items()}
    total = sum(numel.values())
    dense = [n for n, f in zip(named, dense_flags) if f]
    budget = round(density * total)
    assume(sum(numel[n] for n in dense) <= budget)

    out = layer_nnz(named, density, kind, dense)

    assert set(out) == set(named)
    assert all(isinstance(v, int) for v in out.values())
    assert sum(out.values()) == budget
    assert abs(sum(out.values()) - density * total) <= 0.5 + 1e-9
    for n in named:
        assert 0 <= out[n] <= numel[n]
    for n in dense:
        assert out[n] == numel[n]
    # ordering: a layer with a higher raw score is not (beyond rounding) sparser
    scores = raw_scores(named, kind)
    free = [n for n in named if n not in dense]
    for i in free:
        for j in free:
            if scores[i] > scores[j]:
                assert (out[i] + 1) / numel[i] >= (out[j] - 1) / numel[j] - 1e-12


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(shape_st, min_size=1, max_size=5),
    density=st.floats(min_value=1e-3, max_value=1.0, allow_nan=False),
)
def test_uniform_layers_within_one_weight_of_target_density(shapes, density):
    named = {f"l{i}": s for i, s in enumerate(shapes)}
    out = layer_nnz(named, density, "uniform")
    total = sum(math.prod(s) for s in shapes)
    eps = round(density * total) / total  # the exact common density after integer budgeting
    for n, s in named.items():
        assert abs(out[n] - eps * math.prod(s)) < 1.0 + 1e-9
