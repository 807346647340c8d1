"""Tests for sparsenb.experiments.pruning_at_init and the pruning-at-init additions to sparsenb.experiments.common.

* method options for snip/grasp/synflow/magnitude_init come from the config, ``options`` override them;
* ``prune_run`` builds exactly the masks a ``train_run`` with the same arguments trains with;
* ``EVAL="end"`` evaluates once; the collapse report is part of every sparse run;
* collapse table / highest sparsity before collapse on hand-made rows;
* the two figures draw.
"""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from sparsenb.experiments import common as experiment
from sparsenb.data import TensorData
from sparsenb.experiments.common import build_method, prune_run, train_run
from sparsenb.experiments.pruning_at_init import (CRITERIA, collapse_table, max_sparsity_before_collapse,
                                      plot_accuracy_vs_sparsity, plot_collapse_map,
                                      plot_layer_density)


def tiny_images(n_train=64, n_test=32, side=28, seed=0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    return TensorData("tiny", torch.randn(n_train, 1, side, side, generator=g), torch.randint(0, 10, (n_train,), generator=g),
                      torch.randn(n_test, 1, side, side, generator=g), torch.randint(0, 10, (n_test,), generator=g),
                      10, (1, side, side), "random")


CFG = dict(MODEL="lenet300", OPTIMIZER="adam", LR=1e-3, BATCH_SIZE=16, EPOCHS=2, SCHEDULE="cosine")


# ---------------------------------------------------------------- experiment
def test_build_method_for_pruning_at_init():
    cfg = dict(SCOPE="layerwise", PRUNE_BATCHES=2, SYNFLOW_ITERATIONS=10, GRASP_TEMPERATURE=100.0, DISTRIBUTION="uniform")
    m = build_method("synflow", cfg, 0.9, 3)
    assert (m.seed, m.sparsity, m.distribution, m.scope, m.batches, m.iterations) == (3, 0.9, "uniform", "layerwise", 2, 10)
    m = build_method("grasp", {}, 0.5, 0)
    assert (m.sparsity, m.distribution, m.scope, m.batches, m.temperature) == (0.5, "erk", "global", 1, 200.0)
    m = build_method("snip", cfg, 0.5, 0)  # SNIP does not read SynFlow's iterations
    assert (m.scope, m.batches, m.iterations) == ("layerwise", 2, None)
    assert not hasattr(build_method("static", cfg, 0.5, 0), "scope")
    assert set(experiment.PRUNE_AT_INIT) == {m for m, _ in CRITERIA.values()} - {"static"}


@pytest.mark.parametrize("label", list(CRITERIA))
def test_prune_run_builds_the_masks_train_run_trains(label):
    data = tiny_images()
    method, opts = CRITERIA[label]
    cfg = dict(CFG, SYNFLOW_ITERATIONS=5)
    p = prune_run(data, cfg, method, 0.95, seed=1, device="cpu", options=opts, label=label)
    t = train_run(data, dict(cfg, EPOCHS=1, EVAL="end"), method, 0.95, seed=1, device="cpu", progress=False,
                  options=opts, label=label)
    assert p["method"] == t["method"] == label
    assert p["layers"] == t["layers"] and p["collapse"] == t["collapse"]
    assert p["nnz"] == round(0.05 * 266200)
    assert set(p["collapse"]) == {"empty_layers", "connected", "alive_units"}


def test_options_override_config_distribution():
    data = tiny_images()
    uni = prune_run(data, dict(CFG, DISTRIBUTION="erk"), "static", 0.9, 0, "cpu", options={"distribution": "uniform"})
    erk = prune_run(data, dict(CFG, DISTRIBUTION="erk"), "static", 0.9, 0, "cpu")
    assert all(abs(l["density"] - 0.1) < 1e-3 for l in uni["layers"].values())
    assert erk["layers"]["1.weight"]["density"] < 0.1 < erk["layers"]["5.weight"]["density"]


def test_eval_end_evaluates_once_and_lenet5_collapse_report():
    data = tiny_images(n_train=32, n_test=16)
    r = train_run(data, dict(CFG, MODEL="lenet5", EVAL="end"), "snip", 0.9, 0, "cpu", progress=False)
    assert "test_acc" not in r["history"][0] and "test_acc" in r["history"][-1]
    assert 0.0 <= r["test_acc"] <= 1.0 and r["collapse"]["connected"] in (True, False)
    assert list(r["collapse"]["alive_units"]) == ["features.0.weight", "features.3.weight",
                                                  "classifier.1.weight", "classifier.3.weight"]
    d = train_run(data, dict(CFG, EPOCHS=1), "dense", 0.0, 0, "cpu", progress=False)
    assert d["collapse"] is None and "test_acc" in d["history"][0]
    with pytest.raises(ValueError, match="EVAL"):
        train_run(data, dict(CFG, EVAL="never"), "dense", 0.0, 0, "cpu", progress=False)


def test_prune_run_rejects_dense():
    with pytest.raises(ValueError, match="no masks"):
        prune_run(tiny_images(), CFG, "dense", 0.0, 0, "cpu")


# ------------------------------------------------------------- collapse logic
def sweep_row(method, s, seed, connected):
    return {"method": method, "sparsity": s, "seed": seed, "collapse": {"connected": connected}}


def test_collapse_table_and_highest_sparsity_before_collapse():
    sweep = [sweep_row("a", s, seed, True) for s in (0.9, 0.99, 0.999) for seed in (0, 1)]
    sweep += [sweep_row("b", 0.9, 0, True), sweep_row("b", 0.9, 1, True),
              sweep_row("b", 0.99, 0, True), sweep_row("b", 0.99, 1, False),   # one seed disconnected
              sweep_row("b", 0.999, 0, True), sweep_row("b", 0.999, 1, True)]  # connected again: still counts as collapsed before
    sweep += [sweep_row("c", s, 0, s < 0.5) for s in (0.9, 0.99)]
    summary = [{"method": "a", "sparsity": 0.99, "mean": 0.9}, {"method": "a", "sparsity": 0.999, "mean": 0.2}]
    t = collapse_table(sweep, summary, acc_threshold=0.2)
    row = {(r["method"], r["sparsity"]): r for r in t}
    assert row[("a", 0.99)]["collapsed"] is False and row[("a", 0.99)]["acc"] == 0.9
    assert row[("a", 0.999)]["reason"] == "accuracy"           # 0.2 <= threshold
    assert row[("a", 0.9)]["acc"] is None
    assert row[("b", 0.99)]["reason"] == "disconnected" and row[("b", 0.99)]["connected_seeds"] == 1
    assert row[("b", 0.999)]["collapsed"] is False
    assert [r["method"] for r in t][:3] == ["a", "a", "a"] and [r["sparsity"] for r in t][:3] == [0.9, 0.99, 0.999]
    assert max_sparsity_before_collapse(t) == {"a": 0.99, "b": 0.9, "c": None}


def test_figures_draw():
    rows = [{"method": m, "sparsity": s, "mean": 0.9 - s / 2, "std": 0.01} for m in ("random_erk", "snip")
            for s in (0.5, 0.9, 0.99)]
    fig = plot_accuracy_vs_sparsity({"A": (rows, {"mean": 0.95, "std": 0.002}), "B": (rows, None)})
    assert len(fig.axes) == 2
    sweep = [sweep_row(m, s, 0, not (m == "snip" and s == 0.99)) for m in ("random_erk", "snip") for s in (0.5, 0.9, 0.99)]
    fig = plot_collapse_map({"A": collapse_table(sweep, rows), "B": collapse_table(sweep)})
    assert len(fig.axes) == 2

    layers = {"a": {"nnz": 10, "numel": 100, "density": 0.1}, "b": {"nnz": 0, "numel": 10, "density": 0.0}}
    fig = plot_layer_density({"A": [{"method": "snip", "layers": layers}, {"method": "synflow", "layers": layers}]}, "s")
    assert len(fig.axes) == 1 and any(t.get_text() == "0" for t in fig.axes[0].texts)
