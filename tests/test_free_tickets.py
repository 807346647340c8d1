"""Tests for sparsenb.experiments.free_tickets: encodings, a tiny end-to-end DST/EDST/dense comparison, costs."""
import pytest
import torch

from sparsenb.train import calibration
from sparsenb.experiments import free_tickets as ft
from sparsenb.data import TensorData

SETTING = dict(MODEL="mlp", MODEL_KW={"hidden": [32]}, EPOCHS=2, EXPLORE_EPOCHS=1, REFINE_EPOCHS=1, DELTA_T=3,
               BATCH_SIZE=32, LR=0.1, AUGMENT=False)
COMMON = dict(M=2, SPARSITY=0.8, DISTRIBUTION="erk", DROP_FRACTION=0.5, LARGE_DROP=0.8, GROWTH="gradient",
              MOMENTUM=0.9, WEIGHT_DECAY=5e-4)


def tiny_data(seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 1, 4, 4, generator=g) * 2
    y_tr, y_te = torch.randint(0, 3, (128,), generator=g), torch.randint(0, 3, (60,), generator=g)
    x_tr = centres[y_tr] + torch.randn(128, 1, 4, 4, generator=g)
    x_te = centres[y_te] + torch.randn(60, 1, 4, 4, generator=g)
    return TensorData("tiny", x_tr, y_tr, x_te, y_te, 3, (1, 4, 4), "synthetic test data")


def test_tensor_and_mask_encodings_round_trip():
    t = torch.rand(5, 3, dtype=torch.float64)
    assert torch.equal(ft.decode_tensor(ft.encode_tensor(t)), t.float())
    masks = {"a": torch.rand(3, 7) < 0.3, "b.weight": torch.rand(2, 3, 3, 3) < 0.5}
    back = ft.unpack_masks(ft.pack_masks(masks))
    assert back.keys() == masks.keys() and all(torch.equal(back[k], masks[k]) for k in masks)


def test_member_seeds():
    assert ft.member_seeds("dense", 1, 3) == [3, 4, 5]
    assert ft.member_seeds("edst", 1, 3) == [1]
    with pytest.raises(ValueError, match="kind"):
        ft.member_seeds("pf", 0, 3)


@pytest.fixture(scope="module")
def runs():
    data = tiny_data()
    out = {k: [[ft.train_member(data, SETTING, COMMON, k, s, device="cpu", progress=False)
                for s in ft.member_seeds(k, 0, COMMON["M"])]] for k in ft.KINDS}
    return data, out


def test_train_member_outputs(runs):
    data, out = runs
    edst = out["edst"][0][0]
    assert len(edst["members"]) == 2 and edst["epochs"] == 3 and edst["reexplorations"] == 1
    assert edst["steps"] == 3 * 4 and edst["dense_grad_steps"] > 0
    for kind in ("dst", "edst"):
        for r in out[kind][0]:
            assert abs(r["density"] - 0.2) < 0.01 and 0.2 <= r["itop"] <= 1.0
            for m in r["members"]:
                p = ft.decode_tensor(m["probs"])
                assert p.shape == (60, 3) and torch.allclose(p.sum(1), torch.ones(60), atol=1e-5)
                masks = ft.unpack_masks(m["masks"])
                assert sum(int(v.sum()) for v in masks.values()) == round(0.2 * sum(v.numel() for v in masks.values()))
    # EDST re-exploration grew unseen weights: ITOP above the density
    assert edst["itop"] > edst["density"]
    assert out["dense"][0][0]["itop"] == 1.0


def test_evaluate_arms_and_costs(runs):
    data, out = runs
    rows = {r["arm"]: r for r in ft.evaluate_arms(out, data.y_test)}
    assert set(rows) == {"single dense", "dense ensemble", "single DST", "DST ensemble", "EDST ticket",
                         "EDST ensemble"}
    assert rows["single dense"]["train_flops"] == pytest.approx(1.0)
    assert rows["dense ensemble"]["train_flops"] == pytest.approx(2.0)
    assert rows["dense ensemble"]["infer_flops"] == pytest.approx(2.0)
    assert rows["single dense"]["disagreement"] is None and rows["dense ensemble"]["mask_distance"] is None
    assert 0 < rows["EDST ensemble"]["mask_distance"] < 1
    # the ensemble row is the metric of the averaged probabilities
    members = [ft.decode_tensor(m["probs"]) for m in out["edst"][0][0]["members"]]
    expect = calibration.summary(calibration.ensemble_probs(members), data.y_test)
    assert rows["EDST ensemble"]["nll"] == pytest.approx(expect["nll"])
    assert rows["EDST ensemble"]["acc"] == pytest.approx(expect["acc"])
    costs = ft.training_costs(out, SETTING["DELTA_T"])
    assert costs["dense"] == 1.0 and costs["dense ensemble"] == pytest.approx(2.0)
    assert costs["static sparse"] == costs["SET"] < costs["RigL"] < 1.0
    assert costs["EDST ensemble"] == pytest.approx(rows["EDST ensemble"]["train_flops"])
    holds, detail = ft.edst_beats_dense(list(rows.values()))
    assert isinstance(holds, bool) and "EDST ensemble acc" in detail


def test_evaluate_arms_per_seed_values(runs):
    data, out = runs
    one = {r["arm"]: r for r in ft.evaluate_arms(out, data.y_test)}
    two = {r["arm"]: r for r in ft.evaluate_arms({k: v * 2 for k, v in out.items()}, data.y_test)}
    for arm, row in two.items():
        assert len(row["per_seed"]["acc"]) == 2
        # two identical seeds: every per-seed value is the one-seed row's mean, the seed std of ensembles is 0
        assert row["per_seed"]["nll"] == pytest.approx([one[arm]["nll"]] * 2)
        assert row["per_seed"]["train_flops"] == pytest.approx([one[arm]["train_flops"]] * 2)
    assert two["EDST ensemble"]["acc_std"] == 0.0 and two["EDST ensemble"]["mask_distance_std"] == 0.0
    assert "disagreement" not in two["single dense"]["per_seed"]
    assert "per_seed" not in ft.reliability_rows(list(two.values()))[0]


def _claim_rows(edst: dict, dense: dict, flops: list) -> list[dict]:
    def row(arm, per, fl):
        return {"arm": arm, "per_seed": dict(per, train_flops=fl),
                **{k: sum(v) / len(v) for k, v in per.items()}, **{f"{k}_std": 0.0 for k in per},
                "train_flops": sum(fl) / len(fl)}
    return [row("EDST ensemble", edst, flops), row("single dense", dense, [1.0] * len(flops))]


def test_edst_beats_dense_needs_mean_and_every_seed():
    dense = {"acc": [90.0, 90.0, 90.0], "nll": [0.5, 0.5, 0.5], "ece": [0.05, 0.05, 0.05]}
    good = {"acc": [91.0, 90.5, 90.2], "nll": [0.4, 0.45, 0.49], "ece": [0.04, 0.03, 0.049]}
    assert ft.edst_beats_dense(_claim_rows(good, dense, [0.6, 0.6, 0.6]))[0]
    # the mean ECE difference is favourable (-0.01) but one seed is worse: not a win
    mixed = dict(good, ece=[0.02, 0.02, 0.08])
    holds, detail = ft.edst_beats_dense(_claim_rows(mixed, dense, [0.6, 0.6, 0.6]))
    assert not holds and "ECE: no" in detail and "accuracy: yes" in detail and "+0.0300" in detail
    # over budget in one seed
    holds, detail = ft.edst_beats_dense(_claim_rows(good, dense, [0.6, 1.1, 0.6]))
    assert not holds and "training FLOPs <= 1x dense: no" in detail
    # a tie is not a win
    assert not ft.edst_beats_dense(_claim_rows(dict(good, acc=[90.0] * 3), dense, [0.6] * 3))[0]


def test_edst_beats_dense_rejects_unpaired_seeds():
    dense = {"acc": [90.0, 90.0], "nll": [0.5, 0.5], "ece": [0.05, 0.05]}
    edst = {"acc": [91.0, 91.0, 91.0], "nll": [0.4] * 3, "ece": [0.04] * 3}
    rows = _claim_rows(edst, dense, [0.6] * 3)
    rows[1]["per_seed"]["train_flops"] = [1.0, 1.0]
    with pytest.raises(ValueError, match="seeds"):
        ft.edst_beats_dense(rows)
