"""Tests for sparsenb.experiments.random_search (Farahani 2024's random search in node space).

* configurations keep exactly round((1-s) h) nodes per hidden layer;
* node -> weight masks are outer products (hand-checked on a 3-4-2 net);
* masked evaluation equals evaluating a model whose weights were zeroed, and does not modify the model;
* the search returns the argmin of the candidate losses, candidate 0 is the random baseline;
* a search run trains a subnetwork whose removed nodes stay removed;
* epochs_to_fraction and compare on hand-made numbers.
"""
import pytest
import torch
from torch import nn

from sparsenb.data import TensorData
from sparsenb.models import MLP
from sparsenb.experiments.random_search import compare, epochs_to_fraction, search_run, split_validation
from sparsenb.methods.random_search import linear_layers, masked_eval, node_masks, random_search, sample_node_config


def toy_data(n=120, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, 3, 3, generator=gen)
    y = (X.flatten(1)[:, 0] > 0).long() + (X.flatten(1)[:, 1] > 0).long()
    return TensorData("toy", X[:80], y[:80], X[80:], y[80:], 3, (1, 3, 3), "random")


@pytest.mark.parametrize("s", [0.0, 0.5, 0.9])
def test_sample_node_config_exact(s):
    config = sample_node_config([10, 20, 7], s, torch.Generator().manual_seed(0))
    assert [int(c.sum()) for c in config] == [max(1, round((1 - s) * h)) for h in (10, 20, 7)]
    assert all(c.dtype == torch.bool for c in config)


def test_node_masks_outer_product_by_hand():
    torch.manual_seed(0)
    model = MLP(3, (4,), 2)
    assert linear_layers(model) == ["1", "3"]
    a = torch.tensor([True, False, True, False])
    masks = node_masks(model, [a])
    assert torch.equal(masks["1.weight"], torch.tensor([[1, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=torch.bool))
    assert torch.equal(masks["3.weight"], torch.tensor([[1, 0, 1, 0], [1, 0, 1, 0]], dtype=torch.bool))
    with pytest.raises(ValueError):
        node_masks(model, [a, a])


def test_masked_eval_matches_zeroed_model_and_leaves_model_alone():
    torch.manual_seed(0)
    model = MLP(9, (6, 5), 3)
    config = sample_node_config([6, 5], 0.5, torch.Generator().manual_seed(1))
    masks = node_masks(model, config)
    X, y = torch.randn(20, 1, 3, 3), torch.randint(0, 3, (20,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ev = masked_eval(model, masks, X, y)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        for name, m in masks.items():
            model.get_parameter(name).mul_(m)
        logits = model(X)
    assert ev["loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-6)
    assert ev["acc"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))


def test_random_search_picks_argmin_and_candidate_zero_is_the_first_draw():
    torch.manual_seed(0)
    model = MLP(9, (16, 16), 3)
    X, y = torch.randn(50, 1, 3, 3), torch.randint(0, 3, (50,))
    res = random_search(model, 0.75, X, y, candidates=12, generator=torch.Generator().manual_seed(5))
    assert len(res["losses"]) == len(res["configs"]) == 12
    assert res["losses"][res["best"]] == min(res["losses"])
    first = sample_node_config([16, 16], 0.75, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first, res["configs"][0]))


def test_split_validation():
    data = toy_data()
    train, Xv, yv = split_validation(data, 20, seed=0)
    assert len(train.y_train) == 60 and len(yv) == 20 and Xv.shape == (20, 1, 3, 3)
    assert torch.equal(train.X_test, data.X_test)
    _, Xv2, _ = split_validation(data, 20, seed=0)
    assert torch.equal(Xv, Xv2)


def test_search_run_arms_share_parent_and_keep_nodes_removed():
    data = toy_data()
    train, Xv, yv = split_validation(data, 20)
    kw = dict(hidden=(12, 12), candidates=8, epochs=2, lr=0.05, batch_size=16, device="cpu")
    rnd = search_run(train, Xv, yv, "random", 0.5, 0, **kw)
    sea = search_run(train, Xv, yv, "search", 0.5, 0, **kw)
    dense = search_run(train, Xv, yv, "dense", 0.0, 0, **kw)
    assert rnd["candidate_losses"] == sea["candidate_losses"], "same parent, same candidates"
    assert rnd["chosen"] == 0 and sea["init_val_loss"] == min(sea["candidate_losses"])
    assert sea["init_val_loss"] <= rnd["init_val_loss"]
    # 6 of 12 nodes per hidden layer: 9*6 + 6*6 + 6*3 kept of 9*12 + 12*12 + 12*3
    assert sea["nnz"] == 9 * 6 + 6 * 6 + 6 * 3 and dense["density"] == 1.0
    assert len(sea["history"]) == 2
    with pytest.raises(ValueError):
        search_run(train, Xv, yv, "best", 0.5, 0, **kw)


def test_epochs_to_fraction():
    hist = [{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.9}, {"epoch": 3, "test_acc": 0.95},
            {"epoch": 4, "test_acc": 1.0}]
    assert epochs_to_fraction(hist, 0.9) == 2
    assert epochs_to_fraction(hist, 0.95) == 3
    assert epochs_to_fraction(hist, 0.5) == 1
    assert epochs_to_fraction(hist, 1.0) == 4


def test_compare():
    out = compare([1.0, 1.1, 1.2, 1.3], [0.0, 0.1, 0.2, 0.1])
    assert out["diff"] > 0 and out["welch_p_greater"] < 0.01 and out["mwu_p_greater"] < 0.05
    rev = compare([0.0, 0.1, 0.2, 0.1], [1.0, 1.1, 1.2, 1.3])
    assert rev["welch_p_greater"] > 0.99
    same = compare([2.0, 2.0], [2.0, 2.0])
    assert same["welch_p"] == 1.0 and same["mwu_p_greater"] == 1.0
    with pytest.raises(ValueError):
        compare([1.0], [1.0, 2.0])
