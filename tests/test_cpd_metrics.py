"""TCPDBench's F1 and covering (sparsenb.cpd.metrics) on cases computed by hand from the definitions."""
import pytest

from sparsenb.cpd.metrics import cover_single, covering, f_measure, partition_from_cps, true_positives


def test_true_positives_no_double_counting():
    # each prediction serves one truth point; 23 has no prediction within 5
    assert true_positives({1, 10, 20, 23}, {3, 8, 20}) == {1, 10, 20}
    assert true_positives({1, 2, 3}, set()) == set()


def test_f1_all_annotators_matched():
    # T_k + {0}: {0,10,20}, {0,11,20}, {0,10}, {0,5}; X = {0,10,20}.
    # union {0,5,10,11,20}: 0->0, 10->10, 20->20; 11 and 5 find only used points -> P = 3/3.
    # every annotator fully matched (5 -> 10 at distance 5, 11 -> 10) -> R = 1 -> F1 = 1.
    ann = {"1": [10, 20], "2": [11, 20], "3": [10], "4": [0, 5]}
    assert f_measure(ann, [10, 20]) == 1.0


def test_f1_point_zero_convention():
    ann = {"1": [], "2": [10], "3": [50]}
    # X = {0, 10}: P = 2/2; R = (1/1 + 2/2 + 1/2) / 3 = 5/6; F1 = 2 P R / (P + R) = 10/11
    assert f_measure(ann, [10]) == pytest.approx(10 / 11)
    # empty prediction: X = {0}: P = 1; R = (1 + 1/2 + 1/2) / 3 = 2/3; F1 = 0.8 (never undefined)
    f1, p, r = f_measure(ann, [], return_pr=True)
    assert (f1, p, r) == (pytest.approx(0.8), 1.0, pytest.approx(2 / 3))


def test_f1_margin_is_inclusive_at_5():
    assert f_measure({"a": [10]}, [15]) == 1.0
    # 16 is 6 away: X = {0, 16}, P = 1/2, R = 1/2 -> F1 = 1/2
    assert f_measure({"a": [10]}, [16]) == pytest.approx(0.5)
    assert f_measure({"a": [10]}, [16], margin=6) == 1.0


def test_f1_one_prediction_matches_one_truth():
    # truth {0,10,12}, X = {0,11}: 11 serves one of 10/12 only -> P = 2/2, R = 2/3 -> F1 = 0.8
    assert f_measure({"a": [10, 12]}, [11]) == pytest.approx(0.8)


def test_partition_from_cps():
    assert partition_from_cps([], 5) == [{0, 1, 2, 3, 4}]
    assert partition_from_cps([3, 5], 8) == [{0, 1, 2}, {3, 4}, {5, 6, 7}]
    assert partition_from_cps([0, 4], 6) == [{0, 1, 2, 3}, {4, 5}]
    assert partition_from_cps([1, 2, 7], 8) == [{0}, {1}, {2, 3, 4, 5, 6}, {7}]


def test_cover_single_by_hand():
    # true {1,2,3} covered exactly (3 x 1); {4,5,6} best J with {4,5} = 2/3 -> (3 + 2) / 6
    assert cover_single([{1, 2, 3}, {4, 5}, {6}], [{1, 2, 3}, {4, 5, 6}]) == pytest.approx(5 / 6)
    # one true segment of 6 covered by {1,2,3,4}: J = 4/6
    assert cover_single([{1, 2, 3, 4}, {5, 6}], [{1, 2, 3, 4, 5, 6}]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        cover_single([{1, 2}], [{1, 2, 3}])


def test_covering_averages_annotators():
    # prediction cuts 45 points at 10 and 20. Annotator 1 (same cuts): 1.
    # annotator 2 ([0,10),[10,45)): (10 x 1 + 35 x 25/35) / 45 = 35/45.
    # annotator 3 ([0,5),[5,45)): (5 x 5/10 + 40 x 25/40) / 45 = 27.5/45.
    expected = (1 + 35 / 45 + 27.5 / 45) / 3
    assert covering({"1": [10, 20], "2": [10], "3": [0, 5]}, [10, 20], 45) == pytest.approx(expected)


def test_covering_empty_prediction():
    # one segment of 10; annotator cuts at 5: each half has J = 5/10 -> 0.5; no cut: 1
    assert covering({"a": [5], "b": []}, [], 10) == pytest.approx((0.5 + 1) / 2)


def test_metrics_need_annotators():
    with pytest.raises(ValueError):
        f_measure({}, [1])
    with pytest.raises(ValueError):
        covering({}, [1], 5)
