"""sparsenb.experiments.common.summarize: the one summary over seeds behind every notebook's table."""
import math

import numpy as np
import pytest
import torch

from sparsenb.experiments.common import summarize

ROWS = [
    {"method": "set", "sparsity": 0.9, "seed": 0, "test_acc": 0.5, "val_acc": 0.4},
    {"method": "rigl", "sparsity": 0.9, "seed": 0, "test_acc": 0.7, "val_acc": 0.6},
    {"method": "set", "sparsity": 0.9, "seed": 1, "test_acc": 0.7, "val_acc": 0.2},
    {"method": "set", "sparsity": 0.5, "seed": 0, "test_acc": 0.9, "val_acc": 0.8},
]


def test_one_metric_gets_bare_columns_groups_in_first_seen_order():
    rows = summarize(ROWS)
    assert [(r["method"], r["sparsity"]) for r in rows] == [("set", 0.9), ("rigl", 0.9), ("set", 0.5)]
    assert set(rows[0]) == {"method", "sparsity", "n", "mean", "std"}
    assert rows[0]["n"] == 2 and rows[0]["mean"] == pytest.approx(0.6)
    assert rows[0]["std"] == pytest.approx(math.sqrt(0.02))  # sample std of (0.5, 0.7)
    assert rows[1]["std"] == 0.0 and rows[1]["n"] == 1


def test_several_metrics_and_per_metric_stats_get_prefixed_columns():
    rows = summarize(ROWS, ("method",), ["test_acc", "val_acc"], stats=("mean", "max"))
    assert set(rows[0]) == {"method", "n", "test_acc_mean", "test_acc_max", "val_acc_mean", "val_acc_max"}
    assert rows[0]["test_acc_max"] == 0.9 and rows[0]["val_acc_mean"] == pytest.approx(1.4 / 3)
    rows = summarize(ROWS, ("method",), {"test_acc": ("mean", "std"), "val_acc": ("min",)})
    assert set(rows[0]) == {"method", "n", "test_acc_mean", "test_acc_std", "val_acc_min"}
    assert rows[0]["val_acc_min"] == 0.2


def test_backends_follow_torch_and_numpy_to_the_bit():
    g = torch.Generator().manual_seed(0)
    vals = torch.rand(8, generator=g, dtype=torch.float64).tolist()
    rows = [{"k": 0, "x": v} for v in vals]
    (t,) = summarize(rows, ("k",), "x", backend="torch")
    (n,) = summarize(rows, ("k",), "x", backend="numpy")
    assert t["mean"] == float(torch.tensor(vals, dtype=torch.float64).mean())
    assert t["std"] == float(torch.tensor(vals, dtype=torch.float64).std())
    assert n["mean"] == float(np.mean(vals)) and n["std"] == float(np.std(vals, ddof=1))


def test_unknown_stat_or_backend_is_refused():
    with pytest.raises(ValueError, match="unknown stats"):
        summarize(ROWS, stats=("median",))
    with pytest.raises(ValueError, match="backend"):
        summarize(ROWS, backend="pandas")
