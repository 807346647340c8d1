"""Claim states: the chance-level and never-improved rules, comparisons, and how records and the gallery store them."""
import json

import pytest

import sparsenb as snb
from sparsenb.nb.catalog import GalleryRow
from sparsenb.nb.claims import at_chance, chance_threshold, comparison, never_improved, state_of
from sparsenb.nb.gallery import _verdict


def test_chance_threshold_is_1_5x_chance_and_5_points_for_few_classes():
    assert chance_threshold(10) == pytest.approx(0.15)        # 0.1 + 0.5 * 0.1
    assert chance_threshold(100) == pytest.approx(0.015)      # 1.5 x 0.01
    assert chance_threshold(15) == pytest.approx(0.1)         # 1/15 + 0.5/15 = 1.5/15
    assert chance_threshold(2) == pytest.approx(0.55)         # 0.5 + 0.5 * 0.1
    assert chance_threshold(4) == pytest.approx(0.30)         # 0.25 + 0.05


def test_at_chance():
    assert at_chance(0.15, 10) and at_chance(0.05, 10)
    assert not at_chance(0.1501, 10)
    assert at_chance(0.061, 15)            # the Yale case: one class predicted, 2 of 33 faces
    assert at_chance(0.50, 2) and not at_chance(0.551, 2)
    with pytest.raises(ValueError, match="fraction"):
        at_chance(15.0, 10)                # a percentage passed by mistake
    with pytest.raises(ValueError, match="num_classes"):
        at_chance(0.5, 1)


def test_never_improved():
    assert never_improved([0.5, 0.5, 0.4])
    assert never_improved([0.3])
    assert not never_improved([0.3, 0.2, 0.31])
    assert never_improved([2.0, 2.1, 2.0], higher_is_better=False)
    assert not never_improved([2.0, 1.9], higher_is_better=False)
    with pytest.raises(ValueError):
        never_improved([])


def test_comparison_states_and_reasons():
    assert comparison(True, {"CTRE": 0.64, "SET": 0.60}, 2) == ("held", "")
    assert comparison(False, {"CTRE": 0.64, "SET": 0.70}, 2) == ("not held", "")
    # the case: 15 % beat 5 % on a 15-class task (threshold 10 %): SET sat at chance
    state, reason = comparison(True, {"CTRE": 0.15, "SET": 0.05}, 15)
    assert state == "inconclusive" and reason.startswith("SET 5.0 % at chance level (<= 10.0 % for 15 classes)")
    state, reason = comparison(True, {"CTRE": 0.07, "SET": 0.05}, 20)  # 20 classes: threshold 7.5 %
    assert state == "inconclusive"
    assert "CTRE 7.0 %, SET 5.0 % at chance level (<= 7.5 % for 20 classes)" in reason
    assert "the comparison alone: held" in reason
    state, reason = comparison(False, {"a": 0.9, "b": 0.8}, 10, histories={"a": [0.5, 0.9], "b": [0.8, 0.7]})
    assert state == "inconclusive" and reason.startswith("b never better than after the first epoch")
    # arms on tasks with different numbers of classes
    state, reason = comparison(True, {"madelon/SET": 0.5, "Yale/SET": 0.2}, {"madelon/SET": 2, "Yale/SET": 15})
    assert state == "inconclusive" and "madelon/SET 50.0 %" in reason and "Yale/SET" not in reason


def test_an_arm_no_better_than_the_majority_class_is_at_chance():
    # the deep-GCN case on Cora: 7 classes (chance threshold 19.3 %) but 31.9 % of the test nodes in one class
    arms = {"UGTs 32 layers": 0.3115, "dense 32 layers": 0.3110}
    assert comparison(True, arms, 7) == ("held", "")  # 1/classes alone does not see it
    state, reason = comparison(True, arms, 7, majority=0.319)
    assert state == "inconclusive"
    assert reason.startswith("UGTs 32 layers 31.15 %, dense 32 layers 31.10 % no better than always answering "
                             "the test set's most frequent class (31.9 %)") and "the comparison alone: held" in reason
    assert comparison(True, {"a": 0.80, "b": 0.75}, 7, majority=0.319) == ("held", "")
    state, reason = comparison(False, {"a": 0.80, "b": 0.15}, 7, majority=0.319)  # below 1/classes too: said once
    assert state == "inconclusive" and reason.count("b 15.0") == 1 and "most frequent" not in reason
    with pytest.raises(ValueError, match="most frequent class's share"):
        comparison(True, arms, 7, majority=31.9)  # a percentage passed by mistake


def test_run_claim_stores_state_reason_and_holds(tmp_path):
    run = snb.nb.Run("nbx", "smoke", {}, out_dir=tmp_path)
    assert run.claim("A beats B", True) is True
    assert run.claim("C beats D", False, "1 vs 2") is False
    assert run.claim("E beats F on Yale", True, state="inconclusive", reason="F at chance", id="e_vs_f") is False
    assert run.claim("G within 2 points of published", None, state="not evaluated", reason="no reference") is False
    claims = run.data["claims"]
    assert [(c["state"], c["holds"], c["reason"]) for c in claims] == [
        ("held", True, ""), ("not held", False, ""), ("inconclusive", None, "F at chance"),
        ("not evaluated", None, "no reference")]
    assert claims[2]["id"] == "e_vs_f" and claims[0]["id"] == "A beats B"
    run.claim("E beats F on Cora", False, id="e_vs_f")  # same id replaces, whatever the text
    run.finish()
    claims = json.loads((tmp_path / "results.json").read_text())["claims"]
    assert len(claims) == 4 and claims[-1]["text"] == "E beats F on Cora" and claims[-1]["state"] == "not held"
    assert [c["state"] for c in claims[:3]] == ["held", "not held", "not evaluated"]


def test_run_claim_rejects_bad_states(tmp_path):
    run = snb.nb.Run("nbx", "smoke", {}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown claim state 'maybe'"):
        run.claim("x", True, state="maybe")
    with pytest.raises(ValueError, match="needs its reason"):
        run.claim("x", True, state="inconclusive")
    with pytest.raises(ValueError, match="contradicts"):
        run.claim("x", True, state="not held")
    with pytest.raises(ValueError, match="give holds=True/False, or a state"):
        run.claim("x", None)


def test_old_records_without_state_map_to_held_or_not_held():
    assert state_of({"text": "x", "holds": True}) == "held"
    assert state_of({"text": "x", "holds": False}) == "not held"
    assert state_of({"text": "x", "holds": None, "state": "not evaluated", "reason": "r"}) == "not evaluated"


def test_gallery_shows_all_four_states_and_matches_by_id_or_old_text():
    row = GalleryRow("m", "X beats Y on Cora", lambda m: "", "p", claim_id="x_vs_y")
    rec = lambda **c: [dict({"text": "X beats Y on Citeseer", "id": "x_vs_y", "reason": "", "detail": ""}, **c)]
    assert _verdict(rec(state="held", holds=True), row) == "held"
    assert _verdict(rec(state="not held", holds=False), row) == "**did not hold**"
    assert _verdict(rec(state="inconclusive", holds=None, reason="Y at chance | 10 %"), row) == \
        "*inconclusive*: Y at chance / 10 %"
    assert _verdict(rec(state="not evaluated", holds=None, reason="no reference"), row) == \
        "*not evaluated*: no reference"
    assert _verdict([{"text": "X beats Y on Cora", "holds": False, "detail": ""}], row) == "**did not hold**"
    assert _verdict([{"text": "something else", "id": "other", "holds": True}], row) == "not recorded"
