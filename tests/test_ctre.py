"""Tests for CTRE (sparsenb.methods.ctre) and its notebook driver (sparsenb.experiments.ctre).

Hand-made cases: cosine similarities written out by hand, the drop of the
smallest |w|, growth that picks the highest-similarity *absent* connections,
CTRE_sim's replacement of re-grown connections, CTRE_seq's switch to random
growth when validation accuracy stalls; then the batched similarity equals the
one-shot formula (property test), and training keeps exact nnz with pruned
weights exactly zero.
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from sparsenb import methods
from sparsenb.experiments.ctre import (claim_beats_baselines, epochs_for, epsilon_sparsity, init_weights_, load_dataset,
                                      split_validation, summarize_runs)
from sparsenb.data import TensorData
from sparsenb.core.distributions import layer_nnz
from sparsenb.core.masks import Masking
from sparsenb.methods.ctre import (CTRESeq, CTRESim, SimilarityAccumulator, activation_similarity, ctre_masks,
                                   cosine_similarity, magnitude_drop)
from sparsenb.train import Trainer


def tiny_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))


def tiny_data(n: int = 60, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, y


# ------------------------------------------------------------ cosine similarity
def test_cosine_similarity_hand_computed():
    # 3 examples; inputs a0 = (1, 0, 0), a1 = (1, 1, 0); outputs b0 = (2, 0, 0), b1 = (0, -3, 0)
    a = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, -3.0], [0.0, 0.0]])
    s = cosine_similarity(a, b)  # (n_out, n_in)
    expected = torch.tensor([[1.0, 1 / math.sqrt(2)],   # b0 vs a0, a1
                             [0.0, 1 / math.sqrt(2)]])  # b1 vs a0 (orthogonal), a1: |-3| / (3 sqrt 2)
    assert s.shape == (2, 2)
    assert torch.allclose(s, expected, atol=1e-6)


def test_cosine_similarity_is_zero_for_a_dead_neuron():
    a = torch.tensor([[0.0, 1.0], [0.0, 2.0]])  # input neuron 0 never fires
    b = torch.tensor([[1.0], [1.0]])
    s = cosine_similarity(a, b)
    assert s[0, 0] == 0 and torch.isfinite(s).all()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), n_in=st.integers(1, 6), n_out=st.integers(1, 5), batch=st.integers(1, 9),
       seed=st.integers(0, 10_000))
def test_batched_accumulation_equals_one_shot(n, n_in, n_out, batch, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, n_in, generator=g).relu(), torch.randn(n, n_out, generator=g)
    acc = SimilarityAccumulator(n_in, n_out)
    for i in range(0, n, batch):
        acc.add(a[i:i + batch], b[i:i + batch])
    assert acc.rows == n
    assert torch.allclose(acc.similarity(), cosine_similarity(a, b), atol=1e-6)
    s = acc.similarity()
    assert s.min() >= 0 and s.max() <= 1 + 1e-6


def test_accumulator_rejects_wrong_shapes():
    acc = SimilarityAccumulator(3, 2)
    with pytest.raises(ValueError, match="n_in=3"):
        acc.add(torch.ones(4, 2), torch.ones(4, 2))
    with pytest.raises(ValueError, match="same B"):
        acc.add(torch.ones(4, 3), torch.ones(5, 2))


def test_activation_similarity_uses_relu_outputs_and_softmax_for_the_last_layer():
    model = tiny_mlp()
    X, _ = tiny_data()
    sims = activation_similarity(model, [(X[:25], None), (X[25:], None)])
    assert set(sims) == {"1.weight", "3.weight", "5.weight"}
    with torch.no_grad():
        h1 = model[2](model[1](X))
        h2 = model[4](model[3](h1))
        p = torch.softmax(model[5](h2), 1)
    assert torch.allclose(sims["1.weight"], cosine_similarity(X, h1), atol=1e-5)
    assert torch.allclose(sims["3.weight"], cosine_similarity(h1, h2), atol=1e-5)
    assert torch.allclose(sims["5.weight"], cosine_similarity(h2, p), atol=1e-5)
    assert model.training  # train mode restored


def test_activation_similarity_rejects_non_chain_models():
    model = nn.Sequential(nn.Linear(4, 5), nn.Linear(6, 2))
    with pytest.raises(ValueError, match="chain of Linear"):
        activation_similarity(model, [torch.zeros(2, 4)])


# ----------------------------------------------------------------- drop / grow
def test_magnitude_drop_removes_smallest_active_weights():
    w = torch.tensor([[0.5, -0.1, 0.0], [0.3, -0.9, 0.05]])
    m = torch.tensor([[True, True, False], [True, True, True]])
    drop = magnitude_drop(w, m, 0.4)  # int(0.4 * 5) = 2: |-0.1| and |0.05|
    assert drop.tolist() == [[False, True, False], [False, False, True]]


def test_growth_picks_the_highest_similarity_absent_connections():
    """The 'done when' case: CTRE's growth picks the highest-similarity absent connections."""
    w = torch.tensor([[0.9, 0.0, 0.0, 0.0],
                      [0.0, -0.8, 0.0, 0.01]])
    m = w != 0  # 3 active
    sim = torch.tensor([[0.95, 0.10, 0.70, 0.20],   # (0, 0) is active: it must not be "grown"
                        [0.30, 0.99, 0.60, 0.80]])  # (1, 1) active; (1, 3) active but will be dropped
    new, counts = ctre_masks(w, m, drop_fraction=0.34, grow_scores=sim, replace_regrown=False, random_scores=torch.zeros(2, 4))
    # int(0.34 * 3) = 1 dropped: (1, 3) with |w| = 0.01. Absent after the drop: all but (0,0), (1,1).
    # highest similarity among them: (1, 3) = 0.80 (just dropped, allowed in CTRE_seq's cosine phase)
    assert counts == {"dropped": 1, "grown_by_score": 1, "replaced_by_random": 0}
    assert new.tolist() == m.tolist()
    new2, _ = ctre_masks(w, m, drop_fraction=0.67, grow_scores=sim, replace_regrown=False, random_scores=torch.zeros(2, 4))
    # int(0.67 * 3) = 2 dropped: (1, 3) and (1, 1); grown: the 2 best of the absent ones: (1, 1) .99, (1, 3) .80
    assert new2.tolist() == [[True, False, False, False], [False, True, False, True]]
    sim2 = sim.clone()
    sim2[1, 3] = 0.0
    new3, _ = ctre_masks(w, m, drop_fraction=0.34, grow_scores=sim2, replace_regrown=False, random_scores=torch.zeros(2, 4))
    assert new3.tolist() == [[True, False, True, False], [False, True, False, False]]  # (0, 2) = 0.70 is best


def test_ctre_sim_replaces_regrown_connections_by_random_new_ones():
    w = torch.tensor([[0.9, 0.0, 0.0, 0.0],
                      [0.0, -0.8, 0.0, 0.01]])
    m = w != 0
    sim = torch.tensor([[0.95, 0.10, 0.70, 0.20],
                        [0.30, 0.99, 0.60, 0.80]])
    rnd = torch.tensor([[0.0, 0.9, 0.1, 0.2],
                        [0.3, 0.0, 0.4, 0.99]])  # highest random score on the just-dropped (1, 3)
    new, counts = ctre_masks(w, m, drop_fraction=0.34, grow_scores=sim, replace_regrown=True, random_scores=rnd)
    # cosine picks (1, 3), which was just dropped -> replaced by the best random position that is
    # neither kept nor just dropped: (0, 1) with 0.9 (the dropped (1, 3) is avoided despite 0.99)
    assert counts == {"dropped": 1, "grown_by_score": 0, "replaced_by_random": 1}
    assert new.tolist() == [[True, True, False, False], [False, True, False, False]]
    assert int(new.sum()) == int(m.sum())


# -------------------------------------------------------------- method classes
def er_model_and_method(name: str, **kw):
    model = tiny_mlp()
    X, y = tiny_data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=20, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")}
    meth = methods.get(name, sparsity=epsilon_sparsity(shapes, 1.0), seed=0, **kw)
    return model, meth, loader, (X, y)


def test_registered_names_and_options():
    assert {"ctre_sim", "ctre_seq"} <= set(methods.available())
    assert isinstance(methods.get("ctre_sim"), CTRESim)
    s = methods.get("ctre_sim", drop_fraction=0.3, grow="init")
    assert (s.drop_fraction, s.grow, s.distribution) == (0.3, "init", "er")
    with pytest.raises(ValueError, match="grow must be"):
        methods.get("ctre_sim", grow="ones")
    with pytest.raises(ValueError, match="val_data"):
        methods.get("ctre_seq")


def test_init_masks_needs_training_data_and_an_mlp():
    with pytest.raises(ValueError, match="training data"):
        methods.get("ctre_sim", sparsity=0.5).init_masks(tiny_mlp(), None)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(ValueError, match="MLPs"):
        methods.get("ctre_sim", sparsity=0.5).init_masks(conv, torch.zeros(4, 1, 3, 3))


@pytest.mark.parametrize("name", ["ctre_sim", "ctre_seq"])
def test_training_keeps_exact_nnz_and_pruned_weights_zero(name):
    X, y = tiny_data()
    kw = {"val_data": (X[:20], y[:20]), "patience": 2} if name == "ctre_seq" else {}
    model, meth, loader, _ = er_model_and_method(name, grow="he_uniform", **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    trainer = Trainer(model, meth, opt, epochs=6, device="cpu", progress=False, init_data=loader)
    masks = trainer.masks
    before = {n: int(mp.mask.sum()) for n, mp in masks.params.items()}
    shapes = masks.shapes()
    # ER with epsilon 1: layer (n_out, n_in) keeps n_in + n_out connections
    assert before == layer_nnz(shapes, 1 - epsilon_sparsity(shapes, 1.0), "er")
    assert before == {n: s[0] + s[1] for n, s in shapes.items()}
    old = {n: mp.mask.clone() for n, mp in masks.params.items()}
    trainer.fit(loader)
    assert {n: int(mp.mask.sum()) for n, mp in masks.params.items()} == before
    for mp in masks:
        assert torch.all(mp.param[~mp.mask] == 0)
    assert any(not torch.equal(old[n], mp.mask) for n, mp in masks.params.items()), "the topology never changed"
    assert len(meth.events) == 5 * len(masks)  # epochs 1..5 evolve, not after the last
    if name == "ctre_sim":
        assert meth.sim_epochs == 5 and meth.sim_seconds > 0


def test_ctre_seq_switches_to_random_growth_when_validation_stalls():
    X, y = tiny_data()
    model, meth, loader, _ = er_model_and_method("ctre_seq", val_data=(X[:20], y[:20]), patience=2)
    masks = meth.init_masks(model, loader)
    meth.setup(total_steps=30, steps_per_epoch=3, epochs=10)
    accs = iter([0.5, 0.6, 0.6, 0.55, 0.9, 0.9])  # best at epoch 1; epochs 2, 3 do not improve
    meth.validation_accuracy = lambda: next(accs)
    for epoch in range(6):
        meth.on_epoch_end(epoch, masks)
    assert meth.switch_epoch == 3  # 2 epochs without improvement after epoch 1
    cosine = [e["cosine"] for e in meth.events if e["layer"] == "1.weight"]
    assert cosine == [1, 1, 1, 0, 0, 0]  # stays random after the switch even though epoch 4 improved
    assert meth.sim_epochs == 3


def test_ctre_sim_state_dict_round_trip():
    model, meth, loader, _ = er_model_and_method("ctre_sim")
    meth.init_masks(model, loader)
    meth.sim_seconds, meth.sim_epochs = 1.5, 3
    other = methods.get("ctre_sim", sparsity=meth.sparsity, seed=5)
    other.load_state_dict(meth.state_dict())
    assert (other.sim_seconds, other.sim_epochs) == (1.5, 3)
    assert torch.equal(other.generator.get_state(), meth.generator.get_state())


# ------------------------------------------------------------------- driver
def test_epsilon_sparsity_hand_computed():
    # 500-100-2: (100, 500) keeps 600 of 50000, (2, 100) keeps 102 of 200 -> 702 / 50200
    assert epsilon_sparsity({"a": (100, 500), "b": (2, 100)}, 1.0) == pytest.approx(1 - 702 / 50200)
    # a layer whose epsilon budget exceeds its size is dense: (2, 3) has 6 < 2 * 5
    assert epsilon_sparsity({"a": (2, 3)}, 2.0) == 0.0
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_sparsity({"a": (2, 3)}, 0)


def test_epochs_for_one_int_or_one_per_dataset():
    assert epochs_for({"EPOCHS": 7}, "Yale") == 7
    cfg = {"EPOCHS": {"madelon": 40, "Yale": 150}}
    assert (epochs_for(cfg, "madelon"), epochs_for(cfg, "Yale")) == (40, 150)
    with pytest.raises(ValueError, match="no entry for dataset 'PCMAC'"):
        epochs_for(cfg, "PCMAC")
    for bad in (0, 2.5, True, "10"):
        with pytest.raises(ValueError, match="must be an int >= 1"):
            epochs_for({"EPOCHS": bad}, "Yale")


def test_glorot_init_bounds_and_zero_bias():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 2))
    assert init_weights_(model, "glorot") is model
    for m, (n_in, n_out) in ((model[0], (300, 100)), (model[2], (100, 2))):
        bound = math.sqrt(6 / (n_in + n_out))
        assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.9 * bound
        assert torch.all(m.bias == 0)
    before = [p.clone() for p in model.parameters()]
    init_weights_(model, "torch")  # leaves the weights alone
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="unknown INIT 'he'"):
        init_weights_(model, "he")


def test_load_dataset_rejects_an_unknown_scaling():
    with pytest.raises(ValueError, match="unknown SCALING 'z'"):
        load_dataset("Yale", "z")


def test_split_validation_is_stratified_deterministic_and_disjoint():
    X = torch.arange(40, dtype=torch.float32)[:, None]
    y = torch.tensor([0] * 20 + [1] * 20)
    d = TensorData("t", X, y, X[:4], y[:4], 2, (1,), "test")
    tr, Xv, yv = split_validation(d, 0.1, seed=42, stratify=True)
    tr2, Xv2, _ = split_validation(d, 0.1, seed=42, stratify=True)
    assert torch.equal(Xv, Xv2) and len(yv) == 4 and yv.bincount().tolist() == [2, 2]
    assert len(tr.y_train) == 36 and not set(tr.X_train[:, 0].tolist()) & set(Xv[:, 0].tolist())
    assert torch.equal(tr.X_test, d.X_test)
    # at least one example per class even when the fraction is smaller
    y15 = torch.arange(15).repeat(4)
    d15 = TensorData("t", torch.zeros(60, 1), y15, torch.zeros(1, 1), y15[:1], 15, (1,), "test")
    assert sorted(split_validation(d15, 0.1, seed=42, stratify=True)[2].tolist()) == list(range(15))


def test_claim_rule_compares_best_variant_with_best_baseline():
    rows = [{"dataset": d, "method": m, "mean": v, "std": 0.0, "n": 3} for d, m, v in [
        ("a", "set", 0.7), ("a", "rigl", 0.8), ("a", "ctre_sim", 0.75), ("a", "ctre_seq", 0.81),
        ("b", "set", 0.9), ("b", "rigl", 0.6), ("b", "ctre_sim", 0.85), ("b", "ctre_seq", 0.5),
        ("c", "set", 0.5), ("c", "rigl", 0.5), ("c", "ctre_sim", 0.6), ("c", "ctre_seq", 0.5)]]
    out = claim_beats_baselines(rows, ["a", "b", "c"])
    assert [out["per_dataset"][d]["wins"] for d in "abc"] == [True, False, True]
    assert out["wins"] == 2 and out["holds"]
    assert not claim_beats_baselines(rows, ["a", "b"])["holds"]  # 1 of 2 is not a majority


def test_summarize_runs_mean_and_std():
    res = [{"dataset": "a", "method": "set", "test_at_best_val": v} for v in (0.5, 0.7)]
    (row,) = summarize_runs(res)
    assert row["mean"] == pytest.approx(0.6) and row["std"] == pytest.approx(math.sqrt(0.02)) and row["n"] == 2


def _claim_inputs(acc: dict, curves: dict):
    """rows/results of one seed per (dataset, method) with the given test accuracy and validation curve."""
    results = [{"dataset": d, "method": m, "test_at_best_val": a, "history": [{"val_acc": v} for v in curves[(d, m)]]}
               for (d, m), a in acc.items()]
    cfg = {"DATASETS": sorted({d for d, _ in acc}), "SEEDS": 1, "HIDDEN": [8, 8, 8], "EPSILON": 1, "EPOCHS": 3}
    return summarize_runs(results), results, cfg


def test_ctre_claim_states():
    from sparsenb.experiments.ctre import ctre_claim
    rising = [0.3, 0.5, 0.6]
    acc = {("a", "set"): 0.60, ("a", "rigl"): 0.62, ("a", "ctre_sim"): 0.70, ("a", "ctre_seq"): 0.65}
    rows, results, cfg = _claim_inputs(acc, {k: rising for k in acc})
    out = ctre_claim(rows, results, cfg, {"a": 3})  # 3 classes: chance threshold 1/3 + 0.05
    assert (out["state"], out["holds"], out["reason"]) == ("held", True, "")
    assert out["text"] == "CTRE beats SET and RigL at extreme sparsity (MLP [8, 8, 8], ER eps = 1; a)"
    assert out["id"] == "ctre_beats_set_rigl" and "a: CTRE_sim 70.00% vs RigL 62.00%" in out["detail"]
    # the case on 15 classes: CTRE 15 % beats SET / RigL 5 %; SET and RigL sit at chance (<= 10 %)
    acc = {("y", "set"): 0.05, ("y", "rigl"): 0.05, ("y", "ctre_sim"): 0.15, ("y", "ctre_seq"): 0.12}
    rows, results, cfg = _claim_inputs(acc, {k: rising for k in acc})
    out = ctre_claim(rows, results, cfg, {"y": 15})
    assert out["holds"] and out["state"] == "inconclusive"
    assert out["reason"].startswith("y/SET 5.0 %, y/RigL 5.0 % at chance level (<= 10.0 % for 15 classes)")
    # an arm whose validation accuracy never beat its first epoch
    acc = {("a", "set"): 0.60, ("a", "rigl"): 0.62, ("a", "ctre_sim"): 0.70, ("a", "ctre_seq"): 0.65}
    curves = {k: rising for k in acc} | {("a", "rigl"): [0.6, 0.6, 0.55]}
    rows, results, cfg = _claim_inputs(acc, curves)
    out = ctre_claim(rows, results, cfg, {"a": 3})
    assert out["state"] == "inconclusive" and out["reason"].startswith("a/RigL never better than after the first epoch")
