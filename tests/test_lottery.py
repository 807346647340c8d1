"""Tests for sparsenb.experiments.lottery_tickets: run_imp drives IMP with the Trainer (exact per-layer nnz,
rewinding, controls, fixed epochs), the summary over seeds, the match rule and the figure."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from sparsenb.data import TensorData
from sparsenb.experiments.lottery_tickets import ARMS, imp_summary, matches_dense, plot_imp, run_imp
from sparsenb.methods.imp import imp_nnz


def tiny(n_train=48, n_test=24, seed=0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    return TensorData("tiny", torch.randn(n_train, 12, generator=g), torch.randint(0, 3, (n_train,), generator=g),
                      torch.randn(n_test, 12, generator=g), torch.randint(0, 3, (n_test,), generator=g),
                      3, (12,), "random")


CFG = dict(MODEL="lenet300", EPOCHS=2, BATCH_SIZE=16, LR=1e-3, OPTIMIZER="adam", ROUNDS=2)


def test_run_imp_rounds_controls_and_exact_nnz():
    rows = run_imp(tiny(), CFG, seed=0, device="cpu")
    assert [r["round"] for r in rows] == [0, 1, 2]
    numel = {"1.weight": 300 * 12, "3.weight": 100 * 300, "5.weight": 3 * 100}  # 12 inputs, 3 classes
    for r in rows:
        rates = {"1.weight": 0.2, "3.weight": 0.2, "5.weight": 0.1}
        assert r["nnz"] == {n: imp_nnz(numel[n], rates[n], r["round"]) for n in numel}
        assert r["pct_remaining"] == pytest.approx(100 * sum(r["nnz"].values()) / sum(numel.values()))
        arms = set(ARMS) if r["round"] else {"ticket"}
        assert arms <= set(r)
        for a in arms:
            m = r[a]
            assert 0.0 <= m["test_acc"] <= 1.0 and len(m["train_loss_curve"]) == CFG["EPOCHS"]
            assert m["density"] == pytest.approx(r["density"])


def test_run_imp_is_reproducible_and_seed_dependent():
    a = run_imp(tiny(), dict(CFG, ROUNDS=1), seed=3, device="cpu", controls=())
    b = run_imp(tiny(), dict(CFG, ROUNDS=1), seed=3, device="cpu", controls=())
    c = run_imp(tiny(), dict(CFG, ROUNDS=1), seed=4, device="cpu", controls=())
    strip = lambda rows: [(r["nnz"], r["ticket"]["test_acc"], r["ticket"]["train_loss_curve"]) for r in rows]
    assert strip(a) == strip(b) and strip(a) != strip(c)
    assert "reinit" not in a[1]


def test_run_imp_rewind_to_step():
    rows = run_imp(tiny(), dict(CFG, ROUNDS=1, REWIND=3), seed=0, device="cpu", controls=("reinit",))
    assert len(rows) == 2 and "reinit" in rows[1] and "random_mask" not in rows[1]


def test_imp_summary_and_match_rule():
    run = lambda accs: [{"round": r, "pct_remaining": 100 * 0.8 ** r, "ticket": {"test_acc": a},
                         **({"reinit": {"test_acc": a - 0.1}} if r else {})} for r, a in enumerate(accs)]
    s = imp_summary([run([0.9, 0.92]), run([0.94, 0.96])])
    row = {(x["arm"], x["round"]): x for x in s}
    assert set(row) == {("ticket", 0), ("ticket", 1), ("reinit", 1)}
    assert row[("ticket", 0)]["mean"] == pytest.approx(0.92) and row[("ticket", 0)]["std"] == pytest.approx(0.02 ** 0.5 * 0.2)
    assert row[("reinit", 1)]["mean"] == pytest.approx(0.84) and row[("ticket", 1)]["n"] == 2
    assert row[("ticket", 1)]["pct_remaining"] == pytest.approx(80.0)
    # within max(std, 0.2 points) of dense, or above it
    assert matches_dense(0.979, 0.980, 0.0005) and not matches_dense(0.9779, 0.980, 0.0005)
    assert matches_dense(0.975, 0.980, 0.006) and matches_dense(0.99, 0.98, 0.0)


def test_plot_imp_draws_three_lines():
    run = lambda d: [{"round": r, "pct_remaining": 100 * 0.8 ** r,
                      **{a: {"test_acc": 0.9 - 0.01 * r * (a != "ticket") + d} for a in (ARMS if r else ("ticket",))}}
                     for r in range(4)]
    fig = plot_imp(imp_summary([run(0.0), run(0.01)]), title="t", band=(40, 60))
    assert len(fig.axes[0].containers) == 3


def test_first_batches_advance_the_loader_as_the_hand_written_loop():
    from sparsenb.experiments.lottery_tickets import FirstBatches

    def loader():
        return tiny().loaders(16, seed=1)[0]  # 3 batches per pass

    a = loader()
    got = [y.clone() for _, y in FirstBatches(a, 5)]
    b, want, done = loader(), [], 0
    while done < 5:
        for _, y in b:
            want.append(y.clone())
            done += 1
            if done >= 5:
                break
    assert len(FirstBatches(a, 5)) == 5 and len(got) == 5
    assert all(torch.equal(x, y) for x, y in zip(got, want))
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
