import pytest
import torch
from torch import nn

from sparsenb import methods
from sparsenb.train import flops
from sparsenb.core.masks import Masking


def _tiny_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_dense_mlp_matches_hand_count():
    model = _tiny_mlp()
    # 4*3 + 3*2 = 18 multiply-accumulates per example
    assert flops.layer_macs(model, torch.zeros(5, 4)) == {"0": 12, "2": 6}
    assert flops.forward_macs(model, torch.zeros(1, 4)) == 18


def test_masked_mlp_counts_only_kept_weights():
    model = _tiny_mlp()
    masks = Masking(model)
    m0 = torch.zeros(3, 4, dtype=torch.bool)
    m0[0, :2] = True  # 2 kept
    m0[2, 3] = True   # 3 kept
    masks.set_masks({"0.weight": m0, "2.weight": torch.ones(2, 3, dtype=torch.bool)})
    assert flops.forward_macs(model, torch.zeros(2, 4)) == 3 + 6
    assert flops.forward_macs(model, torch.zeros(2, 4), masked=False) == 18


def test_conv_counts_weights_times_output_positions():
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(3, 3, 3, groups=3))
    # 3*2*3*3 = 54 weights x 8*8 positions; depthwise 3*1*3*3 = 27 weights x 6*6 positions
    assert flops.layer_macs(conv, torch.zeros(1, 2, 8, 8)) == {"0": 54 * 64, "1": 27 * 36}
    c1 = nn.Conv1d(1, 4, 5)  # 20 weights x 16 positions
    assert flops.forward_macs(c1, torch.zeros(3, 1, 20)) == 20 * 16


def test_training_costs_follow_rigl_appendix():
    f_s, f_d = 10.0, 100.0
    assert methods.get("dense").step_macs(f_s, f_d) == 300.0
    assert methods.get("set").step_macs(f_s, f_d) == 30.0
    assert methods.get("snip").step_macs(f_s, f_d) == 30.0
    # RigL with update_every (delta_t) = 4: (3*10*4 + 2*10 + 100) / 5 = 48
    assert methods.get("rigl", update_every=4).step_macs(f_s, f_d) == pytest.approx(48.0)
    # EDST with gradient growth pays RigL's average; with random growth only 3 f_S
    assert methods.get("edst", update_every=4).step_macs(f_s, f_d) == pytest.approx(48.0)
    assert methods.get("edst", update_every=4, growth="random").step_macs(f_s, f_d) == 30.0
    assert flops.training_macs(methods.get("static"), 1000, f_s) == 30_000
    assert flops.training_macs(methods.get("dense"), 10, f_s, f_d) == 3000
    rel = flops.relative({"dense": 300.0, "rigl": 48.0}, "dense")
    assert rel == {"dense": 1.0, "rigl": pytest.approx(0.16)}
    with pytest.raises(ValueError, match="examples_seen"):
        flops.training_macs(methods.get("set"), -1, f_s)


def test_model_mode_is_restored():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model.train()
    flops.forward_macs(model, torch.zeros(1, 4))
    assert model.training


def test_sparse_run_macs_hand_count_on_tiny_mlp():
    model = _tiny_mlp()  # dense forward 18 MACs per example
    masks = Masking(model)
    m0 = torch.zeros(3, 4, dtype=torch.bool)
    m0[:, 0] = True  # 3 kept of 12
    masks.set_masks({"0.weight": m0})
    f_s = flops.forward_macs(model, torch.zeros(1, 4))
    f_d = flops.forward_macs(model, torch.zeros(1, 4), masked=False)
    assert (f_s, f_d) == (3 + 6, 18)
    # 10 steps of batch 4, 2 of them with dense gradients: 4 * (8 * 27 + 2 * (18 + 18)) = 4 * 288
    assert flops.sparse_run_macs(10, 4, f_s, f_d, dense_grad_steps=2) == 4 * (8 * 27 + 2 * 36)
    assert flops.sparse_run_macs(10, 4, f_s) == 4 * 10 * 27
    # one dense-gradient step every delta_t + 1 steps = RigL's average formula
    assert flops.sparse_run_macs(11, 1, f_s, f_d, 1) == pytest.approx(
        flops.training_macs(methods.get("rigl", update_every=10), 11, f_s, f_d))
    # a dense run: 3 f_D per example per step
    assert flops.sparse_run_macs(10, 4, f_d) == 4 * 10 * 54
    with pytest.raises(ValueError, match="f_dense"):
        flops.sparse_run_macs(10, 4, f_s, dense_grad_steps=1)
    with pytest.raises(ValueError):
        flops.sparse_run_macs(10, 4, f_s, f_d, dense_grad_steps=11)


def test_ensemble_macs_sums_members():
    # 3 tickets at 9 MACs each: 27 per example at inference; relative to one dense pass of 18: 1.5
    assert flops.ensemble_macs([9, 9, 9]) == 27
    assert flops.relative({"dense": 18, "edst": flops.ensemble_macs([9, 9, 9])}, "dense")["edst"] == 1.5
    with pytest.raises(ValueError, match="at least one"):
        flops.ensemble_macs([])
