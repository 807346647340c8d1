"""Tests of sparsenb.experiments.truly_sparse (fast: tiny data and nets)."""
import math

import pytest
import torch

from sparsenb.data import TensorData
from sparsenb.layers.truly_sparse import er_layer_nnz
from sparsenb.experiments.truly_sparse import (dense_equivalent_bytes, scaling_sweep,
                                            train_masked_set, train_truly_sparse)


def tiny_data(n=96, d=20, k=3):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(d, k, generator=g)
    X = torch.randn(n + 60, d, generator=g)
    y = (X @ w).argmax(1)
    return TensorData(name="tiny", X_train=X[:n], y_train=y[:n], X_test=X[n:], y_test=y[n:],
                      num_classes=k, input_shape=(d,), source="synthetic")


CFG = dict(HIDDEN=[40, 40], EPSILON=4, ZETA=0.3, EPOCHS=4, BATCH_SIZE=16, LR=0.1, MOMENTUM=0.9,
           WEIGHT_DECAY=1e-4, OPTIMIZER="sgd", SCHEDULE="constant", ACTIVATION="relu", ALPHA=0.6,
           DROPOUT=0.0, INIT="linear", EVOLVE_LAST=False, PRUNE=False, PRUNE_START=0, PRUNE_EVERY=1,
           PRUNE_PERCENTILE=20.0)


def test_train_truly_sparse_runs_learns_and_keeps_nnz():
    r = train_truly_sparse(tiny_data(), CFG, seed=0)
    assert len(r["history"]) == CFG["EPOCHS"]
    assert r["nnz"] == r["nnz_init"] == sum(er_layer_nnz(r["sizes"], CFG["EPSILON"]))
    assert all(math.isfinite(h["train_loss"]) for h in r["history"])
    assert r["history"][-1]["train_loss"] < r["history"][0]["train_loss"]
    assert 0.0 <= r["test_acc"] <= 1.0 and r["peak_rss_mb"] > 0
    assert r["neurons_pruned"] == [0, 0]


def test_train_truly_sparse_is_deterministic_per_seed():
    a = train_truly_sparse(tiny_data(), CFG, seed=3)
    b = train_truly_sparse(tiny_data(), CFG, seed=3)
    assert a["test_acc"] == b["test_acc"] and a["train_loss"] == b["train_loss"]


def test_importance_pruning_schedule_removes_neurons_and_nnz():
    r = train_truly_sparse(tiny_data(), CFG, seed=0, overrides={"PRUNE": True, "ACTIVATION": "allrelu",
                                                               "EVOLVE_LAST": True, "DROPOUT": 0.2})
    # should_prune(e, 0, 1) holds for e = 1, 2 (not after the last epoch 3)
    assert [h["pruned"] > 0 for h in r["history"]] == [False, True, True, False]
    assert r["nnz"] < r["nnz_init"]
    assert all(p > 0 for p in r["neurons_pruned"])
    assert r["activation"] == "allrelu" and r["prune"] is True


def test_masked_twin_has_the_same_layer_nnz():
    data = tiny_data()
    r = train_masked_set(data, CFG, seed=0)
    want = er_layer_nnz(r["sizes"], CFG["EPSILON"])
    assert sum(r["layer_nnz"]) == sum(want)
    assert all(abs(a - b) <= 1 for a, b in zip(r["layer_nnz"], want))
    assert len(r["history"]) == CFG["EPOCHS"] and 0.0 <= r["test_acc"] <= 1.0


def test_dense_equivalent_bytes():
    m = dense_equivalent_bytes([4, 3, 2])
    assert m["params"] == 4 * 3 + 3 + 3 * 2 + 2
    assert m["weights"] == 4 * m["params"] and m["training"] == 3 * m["weights"]


def test_scaling_sweep_rows_and_cap():
    rows = scaling_sweep([32, 64], epsilon=2, batch=8, dense_cap=32, steps=1, rounds=1)
    assert {(r["variant"], r["width"]) for r in rows} == {(v, w) for v in ("dense", "masked", "sparse") for w in (32, 64)}
    for r in rows:
        if r["variant"] != "sparse" and r["width"] == 64:
            assert r["ms"] is None and r["bytes_needed"] > 0
        else:
            assert r["ms"] > 0 and r["bytes"] > 0
    sparse = {r["width"]: r for r in rows if r["variant"] == "sparse"}
    assert sparse[64]["nnz"] == 2 * 2 * 64


def test_masked_twin_mask_is_not_correlated_with_the_init():
    """The kept first-layer weights of the masked twin look like a uniform sample of the init."""
    import sparsenb.experiments.truly_sparse as tst
    from sparsenb import methods
    from sparsenb.models import MLP
    from sparsenb.train import set_seed
    captured = {}
    orig = methods.get

    def spy(name, **kw):
        m = orig(name, **kw)
        captured["method"] = m
        return m

    tst.methods.get = spy
    try:
        data = tiny_data(n=32)
        tst.train_masked_set(data, dict(CFG, EPOCHS=1, HIDDEN=[200, 200], EPSILON=4), seed=0)
    finally:
        tst.methods.get = orig
    assert captured["method"].seed != 0
    set_seed(0)
    w0 = MLP(20, [200, 200], 3)[1].weight.detach()
    scores = torch.rand(w0.shape, generator=torch.Generator().manual_seed(captured["method"].seed))
    keep = scores.flatten().topk(800).indices
    kept = w0.flatten()[keep]
    # a uniform sample of U(-b, b) has mean ~0; the seed collision gave mean ~ +0.9 b
    assert abs(float(kept.mean())) < 0.2 * float(w0.abs().max())


def test_removed_neurons_stay_removed():
    r = train_truly_sparse(tiny_data(), dict(CFG, EPOCHS=6, PRUNE_START=0, PRUNE_EVERY=2), seed=1,
                           overrides={"PRUNE": True})
    # every pruned neuron has no incoming connection at the end (regrowth onto it was discarded)
    total = sum(r["sizes"][1:-1])
    assert total - sum(r["active_neurons"]) >= sum(r["neurons_pruned"]) > 0


def test_remove_neurons_drops_in_and_out_connections():
    from sparsenb.experiments.truly_sparse import build_truly_sparse, remove_neurons
    m = build_truly_sparse([10, 30, 30, 3], dict(EPSILON=5), seed=0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(4, 10)).sum().backward()
    opt.step()
    gone = [{0, 1, 2}, {5}]
    remove_neurons(m, gone, opt)
    assert not torch.isin(m.layers[0].rows, torch.tensor([0, 1, 2])).any()
    assert not torch.isin(m.layers[1].cols, torch.tensor([0, 1, 2])).any()
    assert not (m.layers[1].rows == 5).any() and not (m.layers[2].cols == 5).any()
    for layer in m.layers:
        assert opt.state[layer.values]["momentum_buffer"].shape == layer.values.shape
    m(torch.randn(4, 10)).sum().backward()  # still trains
    opt.step()


def test_regrow_alive_only_between_present_neurons_and_keeps_budget():
    from sparsenb.experiments.truly_sparse import build_truly_sparse, regrow_alive, remove_neurons
    m = build_truly_sparse([10, 30, 30, 3], dict(EPSILON=5), seed=0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(4, 10)).sum().backward()
    opt.step()
    budget = [layer.nnz for layer in m.layers]
    gone = [{0, 1, 2}, {5, 6}]
    remove_neurons(m, gone, opt)
    regrow_alive(m, gone, budget, opt, torch.Generator().manual_seed(0))
    # the dense output layer has only 28 x 3 positions between present neurons left
    assert [layer.nnz for layer in m.layers] == [budget[0], budget[1], 28 * 3]
    assert not torch.isin(m.layers[0].rows, torch.tensor([0, 1, 2])).any()
    assert not torch.isin(m.layers[1].cols, torch.tensor([0, 1, 2])).any()
    assert not torch.isin(m.layers[1].rows, torch.tensor([5, 6])).any()
    assert not torch.isin(m.layers[2].cols, torch.tensor([5, 6])).any()
    for layer in m.layers:
        lin = layer.linear_indices()
        assert bool((lin[1:] > lin[:-1]).all())  # sorted, unique
        assert opt.state[layer.values]["momentum_buffer"].shape == layer.values.shape


@pytest.mark.parametrize("overrides", [dict(DROPOUT=0.2, SCHEDULE="cosine"),
                                       dict(PRUNE=True, PRUNE_START=0, PRUNE_EVERY=1, ACTIVATION="allrelu")])
def test_train_truly_sparse_resumes_bit_identically(tmp_path, monkeypatch, overrides):
    """Interrupted after epoch 2 and resumed from the checkpoint, a run ends with the same weights,
    topology, optimizer state and history as an uninterrupted one (SET evolution generator, pruned
    neurons, dropout and shuffling RNGs all restored)."""
    import sparsenb.experiments.truly_sparse as tst

    cfg = dict(CFG, EPOCHS=4, **overrides)
    full = tst.train_truly_sparse(tiny_data(), cfg, seed=5, checkpoint=tmp_path / "full.pt")
    ckpt = tmp_path / "run.pt"
    calls = {"n": 0}
    real_eval = tst.evaluate

    def crash_in_epoch_3(model, loader):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")
        return real_eval(model, loader)

    monkeypatch.setattr(tst, "evaluate", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        tst.train_truly_sparse(tiny_data(), cfg, seed=5, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2
    monkeypatch.setattr(tst, "evaluate", real_eval)
    torch.manual_seed(123)  # a resumed run must not depend on the state it starts in
    resumed = tst.train_truly_sparse(tiny_data(), cfg, seed=5, checkpoint=ckpt)

    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(resumed["history"]) == strip(full["history"])
    for key in ("test_acc", "test_loss", "train_loss", "nnz", "active_neurons", "neurons_pruned"):
        assert resumed[key] == full[key], key
    final, ref = torch.load(ckpt, weights_only=False), torch.load(tmp_path / "full.pt", weights_only=False)
    assert final["epoch"] == ref["epoch"] == 4
    for k, v in ref["model"].items():
        assert torch.equal(final["model"][k], v), k
    for i, s in ref["optimizer"]["state"].items():
        assert torch.equal(final["optimizer"]["state"][i]["momentum_buffer"], s["momentum_buffer"])
    assert torch.equal(final["method"]["evolution_generator"], ref["method"]["evolution_generator"])


def test_train_truly_sparse_checkpoint_restores_the_model_exactly(tmp_path):
    import sparsenb.experiments.truly_sparse as tst

    cfg = dict(CFG, EPOCHS=2, PRUNE=True)
    tst.train_truly_sparse(tiny_data(), cfg, seed=1, checkpoint=tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=False)
    model = tst.build_truly_sparse([20, 40, 40, 3], cfg, seed=9)  # other topology and nnz
    model.load_state_dict(state["model"])
    for k, v in state["model"].items():
        assert torch.equal(model.state_dict()[k], v), k
    assert state["method"]["evolution_generator"].dtype == torch.uint8 and len(state["method"]["pruned"]) == 2


# ---- the notebook's claim rules (tst.claims)
def _runs(accs, **extra):
    return [dict({"test_acc": a, "seconds": 1.0}, **extra) for a in accs]


def _claims_cfg(sections):
    from sparsenb.nb.catalog import resolve
    return dict(resolve("06_truly_sparse", "smoke"), SECTIONS=sections, ACT_INITS=["he_uniform", "sparse_he"])


def test_claims_apply_the_stated_rules_and_name_sections_not_run():
    from sparsenb.experiments import truly_sparse as tst
    sizes = [784, 100, 100, 10]
    pruned = _runs([0.85, 0.86], sizes=sizes, active_neurons=[40, 40], nnz=50, nnz_init=100)
    allrelu = _runs([0.86, 0.865], sizes=sizes, active_neurons=[95, 95])
    relu = _runs([0.80, 0.81])
    acts = {"he_uniform": {"relu": relu, "allrelu": allrelu, "pruned": pruned},
            "sparse_he": {"relu": _runs([0.5, 0.5]), "allrelu": _runs([0.4, 0.4], sizes=sizes, active_neurons=[95, 95]),
                          "pruned": _runs([0.3, 0.3], sizes=sizes, active_neurons=[90, 90], nnz=90, nnz_init=100)}}
    scaling = [{"variant": "sparse", "width": 1000, "bytes": 1e4, "ms": 1.0},
               {"variant": "dense", "width": 1000, "bytes": 4e6, "ms": 1.0},
               {"variant": "sparse", "width": 8000, "bytes": 8.4e4, "ms": 2.0}]
    m, claims = tst.claims(_claims_cfg(["scaling", "set", "activation", "pruning"]), 10, 1, scaling=scaling,
                           set_truly=_runs([0.890, 0.892]), set_masked=_runs([0.889, 0.889]), acts=acts)
    by_id = {c["id"]: c for c in claims}
    assert by_id["scale"]["state"] == "not evaluated" and "SECTIONS" in by_id["scale"]["reason"]
    assert by_id["scaling"]["holds"] and m["scaling/sparse_bytes_growth_over_width_growth"] == pytest.approx(8.4 / 8)
    assert by_id["set"]["holds"] and by_id["set"]["state"] == "held"          # gap 0.2 points <= 0.5
    assert by_id["activation"]["holds"]                                        # 86.25 > 80.5
    assert by_id["pruning"]["holds"] and m["pruning/neurons_removed_frac_mean"] == pytest.approx(0.6)
    assert m["pruning/neurons_without_inputs_unpruned_frac_mean"] == pytest.approx(0.05)
    assert m["pruning/nnz_final_over_init_mean"] == pytest.approx(0.5)
    assert not by_id["activation+sparse_he_init"]["holds"], "the second init arm gets its own ids"
    assert not by_id["pruning+sparse_he_init"]["holds"]                       # only 5 % more neurons removed
    assert m["relu/test_acc_std"] == pytest.approx(0.00707, abs=1e-5) and m["threads"] == 1


def test_claims_fail_on_a_gap_and_a_loss_and_an_arm_at_chance_is_inconclusive():
    from sparsenb.experiments import truly_sparse as tst
    sizes = [784, 100, 10]
    acts = {"he_uniform": {"relu": _runs([0.86]), "allrelu": _runs([0.85], sizes=sizes, active_neurons=[90]),
                           "pruned": _runs([0.80], sizes=sizes, active_neurons=[30], nnz=1, nnz_init=2)}}
    _, claims = tst.claims(_claims_cfg(["set", "activation", "pruning"]), 10, 1,
                           set_truly=_runs([0.88]), set_masked=_runs([0.87]), acts=acts)
    by_id = {c["id"]: c for c in claims}
    assert [by_id[k]["holds"] for k in ("set", "activation", "pruning")] == [False, False, False]
    _, claims = tst.claims(_claims_cfg(["set"]), 10, 1, set_truly=_runs([0.11]), set_masked=_runs([0.11]))
    assert {c["id"]: c for c in claims}["set"]["state"] == "inconclusive"


def test_claims_on_the_committed_record_give_its_committed_verdicts():
    """The rules moved out of the notebook unchanged: runs rebuilt from results/06_truly_sparse/cpu's numbers
    (per arm three seeds at mean - std, mean, mean + std) give the record's claims and metrics."""
    import json
    from pathlib import Path
    from sparsenb.experiments import truly_sparse as tst
    from sparsenb.nb.catalog import resolve

    record = json.loads((Path(__file__).resolve().parents[1] / "results/06_truly_sparse/cpu/results.json").read_text())
    m, cfg = record["metrics"], resolve("06_truly_sparse", "cpu")
    sizes = [784, *cfg.HIDDEN_ACT, 10]
    total = sum(cfg.HIDDEN_ACT)

    def runs(key, **extra):
        mean, std = m[f"{key}/test_acc_mean"], m[f"{key}/test_acc_std"]
        return [dict({"test_acc": a}, **extra) for a in (mean - std, mean, mean + std)]

    def arm(tag):
        removed, ratio = m[f"pruning{tag}/neurons_removed_frac_mean"], m[f"pruning{tag}/nnz_final_over_init_mean"]
        alive = round(total * (1 - removed))
        return {"relu": runs(f"relu{tag}"), "allrelu": runs(f"allrelu{tag}", sizes=sizes, active_neurons=[total]),
                "pruned": runs(f"pruned{tag}", sizes=sizes, active_neurons=[alive], nnz=ratio, nnz_init=1.0)}

    big = {k: m[f"big/{k}"] for k in ("nnz", "test_acc", "seconds", "train_seconds", "peak_rss_mb", "sizes")}
    big["history"] = [{}] * m["big/epochs"]
    metrics, claims = tst.claims(
        cfg, 10, m["threads"], cross=m["crossover"], scaling=m["scaling"],
        set_truly=runs("set_truly_sparse", seconds=m["set_truly_sparse/seconds_mean"]),
        set_masked=runs("set_masked", seconds=m["set_masked/seconds_mean"]),
        acts={"he_uniform": arm(""), "sparse_he": arm("+sparse_he_init")}, big=big, dense_eq=m["big/dense_equivalent_bytes"])
    assert [(c["id"], c["text"], c.get("detail", ""), c.get("reason", "")) for c in claims] == [
        (c["id"], c["text"], c.get("detail", ""), c.get("reason", "")) for c in record["claims"]]
    states = [c.get("state") or {True: "held", False: "not held"}[c["holds"]] for c in claims]
    assert states == [c["state"] for c in record["claims"]]
    for key, value in metrics.items():
        assert value == (pytest.approx(m[key]) if isinstance(value, float) else m[key]), key
