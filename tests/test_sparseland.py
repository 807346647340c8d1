"""The Sparseland primer's driver (sparsenb.experiments.sparseland): the dense-narrow widths respect the
budget, the after-training masks have their structure, the claim rules decide as written, and the timing
unit measures nets that compute what their masked originals compute."""

import pytest
import torch
from torch import nn

from sparsenb.experiments import sparseland as se
from sparsenb.nb.catalog import resolve

CFG = dict(resolve("17_sparseland", "cpu", {}))


def weights(widths):
    return sum(a * b for a, b in zip(widths[:-1], widths[1:]))


@pytest.mark.parametrize("density", [0.1, 0.02, 0.5])
def test_narrow_hidden_stays_within_the_budget_and_uses_most_of_it(density):
    budget = round(density * weights([784, 300, 100, 10]))
    hidden = se.narrow_hidden(784, [300, 100], 10, budget)
    assert weights([784, *hidden, 10]) <= budget
    assert weights([784, hidden[0] + 1, hidden[1] + 1, 10]) > budget  # one more unit per layer would not fit
    assert se.narrow_hidden(784, [300, 100], 10, 10 ** 9) == [300, 100]


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


def test_after_training_masks_have_their_structure():
    nm = se.after_training_masks(mlp(), "nm", 0.9, CFG)
    for name in ("1.weight", "3.weight"):
        assert (nm[name].reshape(-1, 4).sum(1) == 2).all()
    assert nm["5.weight"].all(), "the output layer stays dense"
    ch = se.after_training_masks(mlp(), "channel50", 0.9, CFG)
    rows = ch["1.weight"].all(1)
    assert int(rows.sum()) == 6 and bool((rows | ~ch["1.weight"].any(1)).all())
    un = se.after_training_masks(mlp(), "unstructured50", 0.9, CFG)
    assert int(un["1.weight"].sum()) == 96 and int(un["3.weight"].sum()) == 48 and un["5.weight"].all()
    mag = se.after_training_masks(mlp(), "magnitude", 0.9, CFG)
    assert abs(mag.density() - 0.1) < 0.01


def summaries(**changes):
    s = CFG["SPARSITY"]
    acc = {"dense": 0.95, f"dense_narrow@0.9": 0.90, f"static_erk@0.9": 0.91, "dense_narrow@0.98": 0.6, "static_erk@0.98": 0.7,
           f"static_uniform@{s}": 0.89, f"set@{s}": 0.92, f"rigl@{s}": 0.93, f"gmp@{s}": 0.935, f"snip@{s}": 0.915,
           "after_magnitude": 0.94, "after_magnitude/pruned": 0.92, "after_unstructured50/pruned": 0.94, "after_nm/pruned": 0.93,
           "after_channel50/pruned": 0.9}
    acc.update(changes)
    S = {a: {"mean": v, "std": 0.0, "n": 1, "cost": 8.0 if a.startswith(("dense", "after")) else 0.8, "density": 0.1}
         for a, v in acc.items()}
    T = {k: {"median_ms": 10.0 * r, "min_ms": 9.0 * r, "ratio": r} for k, r in
         {"dense": 1.0, "unstructured50_masked": 1.0, "nm24_masked": 0.95, "channel50_compact": 0.5, "unstructured50_csr": 3.0}.items()}
    return S, T


def verdicts(S, T):
    return {c["id"]: c["holds"] for c in se.claims(S, T, CFG)}


def test_claim_rules_decide_as_written():
    S, T = summaries()
    v = verdicts(S, T)
    assert len(v) == 10 and all(v.values()), v
    flips = {"sparse_wide_beats_dense_narrow": {"dense_narrow@0.98": 0.71},
             "unstructured_most_accurate": {"after_nm/pruned": 0.95},
             "sparse_training_matches_pruning": {"rigl@0.9": 0.929, "set@0.9": 0.928, "gmp@0.9": 0.94},
             "gmp_beats_sparse_to_sparse": {"gmp@0.9": 0.93},
             "dynamic_beats_static": {"set@0.9": 0.90, "rigl@0.9": 0.905, "gmp@0.9": 0.935},
             "later_pruning_is_better": {"snip@0.9": 0.936},
             "erk_beats_uniform": {"static_uniform@0.9": 0.91},
             "random_erk_near_snip": {"snip@0.9": 0.921}}
    for claim_id, change in flips.items():
        v = verdicts(*summaries(**change))
        assert v[claim_id] is False, (claim_id, v)
    S, T = summaries()
    T["nm24_masked"]["ratio"] = 0.85
    assert verdicts(S, T)["masks_give_no_speedup"] is False
    T["channel50_compact"]["ratio"] = 0.85
    assert verdicts(S, T)["channel_pruning_is_faster"] is False


def test_timing_nets_compute_what_their_masked_nets_compute():
    import sparsenb as snb
    data = snb.data.load("digits")
    cfg = dict(CFG, TIMING_BATCH=32, TIMING_REPEATS=2)
    T = se.timing(data, cfg)  # asserts equal outputs of compact/CSR vs masked inside
    assert T["dense"]["ratio"] == 1.0 and T["channel50_compact"]["weights"] < T["dense"]["weights"]
    assert T["magnitude90_csr"]["weights"] == pytest.approx(0.1 * T["dense"]["weights"], abs=3)
