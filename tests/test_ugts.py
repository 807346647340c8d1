"""Tests for the UGTs / edge-popup score layers (sparsenb.layers.scores), the GNN models
(sparsenb.gnn) and the training scheme (sparsenb.ugts_experiment).

Hand-computed cases: the global vs layerwise masks of fixed scores, the gradual schedule, the
straight-through gradient. Properties: exact nnz at any sparsity, pruned effective weights
exactly zero and frozen weights unchanged after optimizer steps, masks following the scores.
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from sparsenb.data_graphs import GraphData
from sparsenb.gnn import GNN, sparse_features
from sparsenb.layers.scores import Popup, gradual_sparsity, scorable_parameters
from sparsenb.masks import topk_mask
from sparsenb.ugts_experiment import best_by_validation, expected_nnz, pick, summarize_runs, ugts_run


def two_layer(a_scores, b_scores):
    """nn.Sequential of Linear(2->2), Linear(2->1) with Popup scores set by hand."""
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    return model, torch.tensor(a_scores), torch.tensor(b_scores)


def set_scores(pop, *scores):
    with torch.no_grad():
        for p, s in zip(pop.scored.values(), scores):
            p.scores.copy_(s)
    pop.refresh()


# ---------------------------------------------------------------- schedule and top-k
def test_gradual_sparsity_by_hand():
    # 10 epochs, ramp over the first 5: 0, 0.16, 0.32, 0.48, 0.64, then 0.8
    got = [gradual_sparsity(e, 0.8, 10) for e in range(10)]
    assert got == pytest.approx([0.0, 0.16, 0.32, 0.48, 0.64, 0.8, 0.8, 0.8, 0.8, 0.8])
    assert gradual_sparsity(3, 0.5, 10, fraction=0.0) == 0.5
    with pytest.raises(ValueError, match="final sparsity"):
        gradual_sparsity(0, 1.0, 10)


def test_topk_mask_exact_and_ties():
    s = torch.tensor([[0.3, 0.9], [0.1, 0.5]])
    assert topk_mask(s, 2).tolist() == [[False, True], [False, True]]
    assert int(topk_mask(torch.zeros(7), 3).sum()) == 3  # ties still give exactly k
    with pytest.raises(ValueError, match="outside"):
        topk_mask(s, 5)


# ---------------------------------------------------------------- global vs layerwise
def test_global_threshold_ranks_all_layers_together():
    model, a, b = two_layer([[0.9, 0.1], [0.5, 0.3]], [[0.8, 0.2]])
    pop = Popup(model, 0.5, scope="global")
    set_scores(pop, a, b)
    # 6 scores, keep 3: 0.9, 0.8, 0.5
    assert pop.masks()["0.weight"].tolist() == [[True, False], [True, False]]
    assert pop.masks()["1.weight"].tolist() == [[True, False]]


def test_layerwise_keeps_the_same_fraction_of_every_layer():
    model, a, b = two_layer([[0.9, 0.1], [0.5, 0.3]], [[0.2, 0.8]])
    pop = Popup(model, 0.5, scope="layerwise")
    set_scores(pop, a, b)
    assert pop.masks()["0.weight"].tolist() == [[True, False], [True, False]]
    assert pop.masks()["1.weight"].tolist() == [[False, True]]
    assert expected_nnz(pop, 0.5) == 3


def test_effective_weight_is_frozen_weight_times_mask():
    model, a, b = two_layer([[0.9, 0.1], [0.5, 0.3]], [[0.8, 0.2]])
    pop = Popup(model, 0.5, scope="global", weight_init=None)
    with torch.no_grad():
        model[0].parametrizations.weight.original.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    set_scores(pop, a, b)
    assert model[0].weight.tolist() == [[1.0, 0.0], [3.0, 0.0]]


def test_straight_through_gradient_to_scores():
    # dL/dS = dL/dW_eff * W (Ramanujan et al. 2020); L = sum(W_eff @ x) for x = (1, 2)
    model, a, b = two_layer([[0.9, 0.1], [0.5, 0.3]], [[0.8, 0.2]])
    pop = Popup(model[:1], 0.5, scope="layerwise", weight_init=None)
    W = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    with torch.no_grad():
        model[0].parametrizations.weight.original.copy_(W)
    set_scores(pop, a)
    x = torch.tensor([[1.0, 2.0]])
    model[0](x).sum().backward()
    # dL/dW_eff[i, j] = x_j for every (i, j), kept or not
    expected = W * torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    assert torch.equal(pop.scored["0.weight"].scores.grad, expected)
    assert model[0].parametrizations.weight.original.grad is None


def test_abs_rank_keeps_the_largest_magnitudes():
    # edge-popup (hidden-networks SubnetConv.clamped_scores): rank |S|; 6 scores, keep 3: -0.9, 0.8, -0.5
    model, a, b = two_layer([[-0.9, 0.1], [-0.5, 0.3]], [[0.8, -0.2]])
    pop = Popup(model, 0.5, scope="global", rank="abs")
    set_scores(pop, a, b)
    assert pop.masks()["0.weight"].tolist() == [[True, False], [True, False]]
    assert pop.masks()["1.weight"].tolist() == [[True, False]]
    raw = Popup(nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)), 0.5, scope="global")
    set_scores(raw, a, b)  # raw ranking keeps 0.8, 0.3, 0.1
    assert raw.masks()["0.weight"].tolist() == [[False, True], [False, True]]
    with pytest.raises(ValueError, match="unknown rank"):
        Popup(nn.Sequential(nn.Linear(2, 2)), 0.5, rank="square")


def test_abs_rank_gradient_carries_the_sign_of_the_score():
    # dL/dS = dL/dW_eff * W * sign(S); L = sum(W_eff @ x) for x = (1, 2)
    model, a, _ = two_layer([[-0.9, 0.1], [0.5, -0.3]], [[0.8, 0.2]])
    pop = Popup(model[:1], 0.5, scope="layerwise", weight_init=None, rank="abs")
    W = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    with torch.no_grad():
        model[0].parametrizations.weight.original.copy_(W)
    set_scores(pop, a)
    model[0](torch.tensor([[1.0, 2.0]])).sum().backward()
    expected = W * torch.tensor([[1.0, 2.0], [1.0, 2.0]]) * torch.sign(a)
    assert torch.equal(pop.scored["0.weight"].scores.grad, expected)
    assert model[0].weight.tolist() == [[1.0, 0.0], [3.0, 0.0]]  # kept: |-0.9| and |0.5|


def test_only_scores_are_trainable_and_errors_are_clear():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    pop = Popup(model, 0.5)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in pop.parameters()}
    with pytest.raises(ValueError, match="scope"):
        Popup(nn.Sequential(nn.Linear(2, 2)), 0.5, scope="per-neuron")
    with pytest.raises(ValueError, match="sparsity"):
        Popup(nn.Sequential(nn.Linear(2, 2)), 1.0)
    with pytest.raises(ValueError, match="weight_init"):
        Popup(nn.Sequential(nn.Linear(2, 2)), 0.5, weight_init="xavier")
    with pytest.raises(ValueError, match="no Linear"):
        Popup(nn.Sequential(nn.ReLU()), 0.5)


def test_signed_constant_init():
    model = nn.Sequential(nn.Linear(8, 4, bias=False))
    Popup(model, 0.5, weight_init="signed_constant", generator=torch.Generator().manual_seed(0))
    w = model[0].parametrizations.weight.original
    assert torch.allclose(w.abs(), torch.full_like(w, math.sqrt(2 / 8)))


# ---------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(sparsity=st.floats(0.0, 0.99), scope=st.sampled_from(["global", "layerwise"]), seed=st.integers(0, 10))
def test_exact_nnz_zeros_after_steps_frozen_weights(sparsity, scope, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(7, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False))
    pop = Popup(model, sparsity, scope=scope, generator=torch.Generator().manual_seed(seed))
    frozen = [m.parametrizations.weight.original.clone() for m in (model[0], model[2])]
    opt = torch.optim.Adam(pop.parameters(), lr=0.1)
    x, y = torch.randn(16, 7), torch.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        model(x)  # the pre-forward hook refreshes the masks from the stepped scores
        assert sum(int(m.sum()) for m in pop.masks().values()) == expected_nnz(pop, sparsity)
        for m, name in ((model[0], "0.weight"), (model[2], "2.weight")):
            assert torch.all(m.weight[~pop.masks()[name]] == 0)
    for m, w0 in zip((model[0], model[2]), frozen):
        assert torch.equal(m.parametrizations.weight.original, w0)


def test_masks_follow_scores_at_next_forward():
    model = nn.Sequential(nn.Linear(4, 1, bias=False))
    pop = Popup(model, 0.5, scope="global")
    set_scores(pop, torch.tensor([[4.0, 3.0, 2.0, 1.0]]))
    with torch.no_grad():
        pop.scored["0.weight"].scores.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    model(torch.zeros(1, 4))
    assert pop.masks()["0.weight"].tolist() == [[False, False, True, True]]
    pop.set_sparsity(0.75)
    model(torch.zeros(1, 4))
    assert pop.masks()["0.weight"].tolist() == [[False, False, False, True]]


# ---------------------------------------------------------------- GNNs
def toy_graph(n=40, seed=0) -> GraphData:
    """Two communities with class-informative features; 10 train, 10 val, 20 test nodes."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 6, generator=g) * 0.2
    x[torch.arange(n), y] += 1.0
    src, dst = [], []
    for i in range(n):
        for j in range(i + 1, n):
            if (y[i] == y[j] and torch.rand(1, generator=g) < 0.3) or torch.rand(1, generator=g) < 0.02:
                src += [i, j]
                dst += [j, i]
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][:10], masks[1][10:20], masks[2][20:] = True, True, True
    return GraphData("toy", x, torch.tensor([src, dst]), y, *masks, num_classes=2, source="test")


@pytest.mark.parametrize("kind,names", [
    ("gcn", ["convs.0.lin.weight", "convs.1.lin.weight", "convs.2.lin.weight"]),
    ("gat", ["convs.0.att_src", "convs.0.att_dst", "convs.0.lin.weight", "convs.1.att_src", "convs.1.att_dst",
             "convs.1.lin.weight", "convs.2.att_src", "convs.2.att_dst", "convs.2.lin.weight"]),
    ("gin", [f"convs.{i}.nn.{j}.weight" for i in range(3) for j in (0, 2)]),
])
def test_popup_on_pyg_layers(kind, names):
    g = toy_graph()
    model = GNN(kind, 6, 8, 2, layers=3)
    pop = Popup(model, 0.7, scope="global")
    assert sorted(pop.names) == sorted(names)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == \
           [n for n, p in model.named_parameters() if n.endswith("scores")]
    out = model(g.x, g.edge_index)
    assert out.shape == (40, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in pop.parameters())
    assert sum(int(m.sum()) for m in pop.masks().values()) == expected_nnz(pop, 0.7)
    for name, module, attr in scorable_parameters(model):
        assert torch.all(getattr(module, attr)[~pop.masks()[name]] == 0), name


def test_gnn_shapes_depth_and_errors():
    g = toy_graph()
    assert len(GNN("gcn", 6, 8, 2, layers=16).convs) == 16
    assert GNN("gat", 6, 8, 2, heads=2)(g.x, g.edge_index).shape == (40, 2)
    with pytest.raises(ValueError, match="unknown GNN kind"):
        GNN("sage", 6, 8, 2)
    with pytest.raises(ValueError, match="divisible"):
        GNN("gat", 6, 7, 2, heads=2)
    with pytest.raises(ValueError, match="dense x"):
        GNN("gin", 6, 8, 2)(sparse_features(torch.eye(40, 6)), g.edge_index)


def test_sparse_features_give_the_same_output():
    g = toy_graph()
    x = torch.zeros(40, 50)
    x[torch.arange(40), torch.arange(40) % 50] = 1.0
    xs = sparse_features(x)
    assert xs.layout == torch.sparse_csr
    assert sparse_features(g.x) is g.x  # dense features stay dense
    for kind in ("gcn", "gat"):
        torch.manual_seed(0)
        model = GNN(kind, 50, 8, 2).eval()
        assert torch.allclose(model(x, g.edge_index), model(xs, g.edge_index), atol=1e-6)


# ---------------------------------------------------------------- training scheme
def test_ugts_run_schedule_selection_and_exact_sparsity():
    g = toy_graph()
    r = ugts_run(g, "ugts", "gcn", 0.8, seed=0, hidden=16, epochs=10, lr=0.05)
    assert [h["sparsity"] for h in r["history"]] == pytest.approx([0.0, 0.16, 0.32, 0.48, 0.64] + [0.8] * 5)
    best = max(r["history"], key=lambda h: h["val_acc"])  # first epoch with the best validation accuracy
    assert (r["best_epoch"], r["test_acc"], r["val_acc"]) == (best["epoch"], best["test_acc"], best["val_acc"])
    assert r["nnz"] == r["expected_nnz"] == round(0.2 * r["numel"]) and r["zeros_exact"]
    ep = ugts_run(g, "edgepopup", "gcn", 0.8, seed=0, hidden=16, epochs=4)
    assert [h["sparsity"] for h in ep["history"]] == [0.8] * 4
    assert ep["nnz"] == ep["expected_nnz"]


def test_method_defaults_and_optimizers():
    g = toy_graph()
    u = ugts_run(g, "ugts", "gcn", 0.5, seed=0, hidden=8, epochs=5)
    e = ugts_run(g, "edgepopup", "gcn", 0.5, seed=0, hidden=8, epochs=5)
    d = ugts_run(g, "dense", "gcn", 0.0, seed=0, hidden=8, epochs=5)
    assert (u["rank"], u["optimizer"]) == ("raw", "adamw")  # the UGTs code
    assert (e["rank"], e["optimizer"]) == ("abs", "adamw")  # hidden-networks ranks |scores|
    assert (d["rank"], d["optimizer"]) == (None, "adam")    # Kipf & Welling's dense GCN
    # without weight decay AdamW takes exactly Adam's steps; with it they differ
    losses = {opt: [h["loss"] for h in ugts_run(g, "ugts", "gcn", 0.5, seed=0, hidden=8, epochs=6, lr=0.05,
                                                optimizer=opt)["history"]] for opt in ("adam", "adamw")}
    assert losses["adam"] == losses["adamw"]
    wd = {opt: [h["loss"] for h in ugts_run(g, "dense", "gcn", 0.0, seed=0, hidden=8, epochs=6, lr=0.05,
                                            weight_decay=0.5, optimizer=opt)["history"]] for opt in ("adam", "adamw")}
    assert wd["adam"][0] == wd["adamw"][0] and wd["adam"][-1] != wd["adamw"][-1]
    with pytest.raises(ValueError, match="unknown optimizer"):
        ugts_run(g, "ugts", "gcn", 0.5, epochs=1, optimizer="sgd")


def test_dense_run_learns_and_runs_are_reproducible():
    g = toy_graph()
    r = ugts_run(g, "dense", "gcn", 0.0, seed=1, hidden=16, epochs=30, lr=0.05)
    assert r["density"] == 1.0 and r["test_acc"] > 0.8
    assert r["history"][-1]["loss"] < r["history"][0]["loss"]
    again = ugts_run(g, "dense", "gcn", 0.0, seed=1, hidden=16, epochs=30, lr=0.05)
    assert [h["loss"] for h in again["history"]] == [h["loss"] for h in r["history"]]
    with pytest.raises(ValueError, match="unknown method"):
        ugts_run(g, "rigl", "gcn")


def test_summarize_and_pick():
    rows = summarize_runs([
        {"method": "ugts", "kind": "gcn", "layers": 2, "sparsity": 0.9, "test_acc": 0.8, "val_acc": 0.7},
        {"method": "ugts", "kind": "gcn", "layers": 2, "sparsity": 0.9, "test_acc": 0.6, "val_acc": 0.5},
        {"method": "dense", "kind": "gcn", "layers": 2, "sparsity": 0.0, "test_acc": 0.5, "val_acc": 0.5}])
    u = pick(rows, method="ugts")
    assert u["test_acc_mean"] == pytest.approx(0.7) and u["test_acc_std"] == pytest.approx(math.sqrt(0.02))
    assert u["val_acc_mean"] == pytest.approx(0.6) and u["n"] == 2
    assert pick(rows, method="dense")["test_acc_std"] == 0.0
    with pytest.raises(KeyError):
        pick(rows, kind="gcn")


def test_best_by_validation_never_looks_at_test():
    rows = [{"method": "ugts", "sparsity": 0.5, "val_acc_mean": 0.70, "test_acc_mean": 0.60},
            {"method": "ugts", "sparsity": 0.9, "val_acc_mean": 0.75, "test_acc_mean": 0.50},
            {"method": "ugts", "sparsity": 0.99, "val_acc_mean": 0.75, "test_acc_mean": 0.90},
            {"method": "dense", "sparsity": 0.0, "val_acc_mean": 0.99, "test_acc_mean": 0.99}]
    assert best_by_validation(rows, method="ugts")["sparsity"] == 0.9  # first of the tied best
    with pytest.raises(KeyError):
        best_by_validation(rows, method="edgepopup")


def _row(method, kind, sparsity, test, val=None, layers=2):
    return {"method": method, "kind": kind, "layers": layers, "sparsity": sparsity, "test_acc_mean": test,
            "test_acc_std": 0.01, "val_acc_mean": test if val is None else val}


def _claims_cfg(**kw):
    return dict(dict(DATASET="citeseer", MODELS=["gcn", "gat"], MATCH_POINTS=1.0, HIGH_SPARSITY=0.9, SEEDS=1,
                     EPOCHS={"gcn": 5, "gat": 5}, DEPTHS=[2, 16], DEEP_HIDDEN=8, DEEP_SEEDS=1), **kw)


def test_ugts_claims_name_the_graph_and_use_the_four_states():
    from sparsenb.ugts_experiment import ugts_claims
    summary = [_row("dense", "gcn", 0.0, 0.70), _row("ugts", "gcn", 0.5, 0.695, val=0.6), _row("ugts", "gcn", 0.9, 0.60, val=0.5),
               _row("edgepopup", "gcn", 0.5, 0.5), _row("edgepopup", "gcn", 0.9, 0.55),
               _row("dense", "gat", 0.0, 0.70), _row("ugts", "gat", 0.9, 0.65), _row("edgepopup", "gat", 0.9, 0.40)]
    deep = [_row("dense", "gcn", 0.0, 0.70, layers=2), _row("ugts", "gcn", 0.5, 0.69, layers=2),
            _row("dense", "gcn", 0.0, 0.20, layers=16), _row("ugts", "gcn", 0.5, 0.50, layers=16)]
    numbers, out = ugts_claims(summary, deep, _claims_cfg(), num_classes=6)  # chance threshold 1/6 + 0.05 = 21.7 %
    by = {c["id"]: c for c in out}
    assert by["gcn_matches_dense"]["text"] == "An untrained sparse GCN (UGTs) matches the trained dense GCN on Citeseer"
    assert by["gcn_matches_dense"]["holds"] and by["gcn_matches_dense"]["state"] == "held"  # 69.5 vs 70: -0.5 points
    assert numbers["ugts_minus_dense_gcn"] == pytest.approx(-0.005)
    # (0.60 - 0.55) and (0.65 - 0.40): mean +15 points
    assert numbers["ugts_minus_edgepopup_high"] == pytest.approx(0.15) and by["ugts_beats_edgepopup"]["state"] == "held"
    assert not by["gat_matches_dense"]["holds"] and by["gat_matches_dense"]["state"] == "not held"  # -5 points
    # the 16-layer dense GCN sits at chance (20 % <= 21.7 %): the depth claims are inconclusive, not held
    for cid in ("ugts_degrades_less", "deep_ugts_beat_dense"):
        assert by[cid]["holds"] and by[cid]["state"] == "inconclusive"
        assert "dense 16 layers 20.0 % at chance level (<= 21.7 % for 6 classes)" in by[cid]["reason"]
    assert numbers["deep_max_layers"] == 16 and numbers["dense/depth_drop"] == pytest.approx(0.5)
    # nothing swept at or above HIGH_SPARSITY: the edge-popup claim is recorded as not evaluated, not dropped
    _, out = ugts_claims(summary, deep, _claims_cfg(HIGH_SPARSITY=0.99, MODELS=["gcn"]), num_classes=6)
    c = {c["id"]: c for c in out}["ugts_beats_edgepopup"]
    assert (c["state"], c["holds"]) == ("not evaluated", None) and "HIGH_SPARSITY = 0.99" in c["reason"]
